// Admin endpoints (docs/api.md "Admin"): users (list, change admin flag and tier, unlock) and the
// audit log (filters and pagination). Every route needs Access::kAdmin: an admin user, and for a
// personal access token the "admin" scope; everyone else gets 403. Every change is audited.
#include <boost/beast/http/verb.hpp>

#include "api/context.hpp"
#include "api/routes.hpp"

namespace samokoder::api {
namespace {

using boost::beast::http::verb;

constexpr std::size_t kAdminBodyLimit = 4096;

nlohmann::json admin_user_json(const sdk::User& user) {
  return {{"id", user.id},
          {"email", user.email},
          {"is_admin", user.is_admin},
          {"tier", user.tier},
          {"disabled", user.disabled},
          {"locked_until", timestamp_json(user.locked_until)},
          {"created_at", format_timestamp(user.created_at)},
          {"updated_at", format_timestamp(user.updated_at)}};
}

nlohmann::json audit_json(const sdk::AuditEvent& event) {
  return {{"id", event.id},
          {"occurred_at", format_timestamp(event.occurred_at)},
          {"actor_id", event.actor_id},
          {"action", event.action},
          {"target", event.target},
          {"source_address", event.source_address},
          {"detail", event.detail}};
}

http::Response list_users(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kAdmin);
  if (!auth) return auth.take_response();
  auto page = context.page_request(request);
  if (!page) return page.take_response();
  auto listed = context.store<sdk::UserStore>([&](sdk::UserStore& users) { return users.list_users(*page); });
  if (!listed.ok()) return problem_from_status(listed.status());
  nlohmann::json items = nlohmann::json::array();
  for (const auto& user : listed->items)
    items.push_back(admin_user_json(user));
  return http::Response::json(200, page_json(std::move(items), listed->next_cursor));
}

http::Response update_user(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kAdmin);
  if (!auth) return auth.take_response();
  auto body = context.json_body(request);
  if (!body) return body.take_response();
  security::FieldReader reader(*body);
  auto is_admin = reader.optional_bool("/is_admin");
  auto tier = reader.optional_string("/tier", 1, 32);
  auto unlock = reader.optional_bool("/unlock");
  auto disabled = reader.optional_bool("/disabled");
  reader.reject_unknown({"is_admin", "tier", "unlock", "disabled"});
  if (tier && *tier != "free" && *tier != "starter" && *tier != "pro" && *tier != "team") {
    reader.add_error("/tier", "expected one of free, starter, pro, team");
  }
  if (unlock && !*unlock) reader.add_error("/unlock", "only true is meaningful");
  if (reader.ok() && !is_admin && !tier && !unlock && !disabled)
    reader.add_error("", "nothing to change: set is_admin, tier, unlock or disabled");
  if (!reader.ok()) return validation_problem(reader.errors());
  const std::string id(request.param("id"));
  // An admin cannot demote or disable themselves: the last admin must not lock everyone out.
  if ((is_admin || disabled) && id == auth->user_id) {
    return http::Response::problem(409, "failed_precondition", "Conflict",
                                   "administrators cannot change their own admin flag or disable themselves");
  }
  sdk::UserUpdate update;
  nlohmann::json changes = nlohmann::json::object();
  if (is_admin) {
    update.is_admin = *is_admin;
    changes["is_admin"] = *is_admin;
  }
  if (tier) {
    update.tier = *tier;
    changes["tier"] = *tier;
  }
  if (unlock) {
    // Rewriting the record restarts its failed-login count (see auth_routes.cpp), which is the lock.
    update.locked_until = std::optional<sdk::Timestamp>();
    changes["unlock"] = true;
  }
  if (disabled) {
    update.disabled = *disabled;
    changes["disabled"] = *disabled;
  }
  auto updated =
      context.store<sdk::UserStore>([&](sdk::UserStore& users) { return users.update_user(id, update); });
  // Disabling also ends every login of the account, so enabling it again does not bring old sessions
  // back: the user signs in anew.
  if (updated.ok() && disabled && *disabled) {
    auto revoked = context.store<sdk::SessionStore>(
        [&](sdk::SessionStore& sessions) { return sessions.revoke_user_sessions(id, "account_disabled"); });
    if (revoked.ok()) changes["sessions_revoked"] = *revoked;
  }
  // A demotion or a disable must reach the user's next request, not the next cache expiry.
  context.credentials_changed();
  if (!updated.ok()) return problem_from_status(updated.status());
  context.audit(auth->user_id, "admin.user_updated", id, request, {{"changes", changes}});
  return http::Response::json(200, admin_user_json(*updated));
}

http::Response list_audit(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kAdmin);
  if (!auth) return auth.take_response();
  auto page = context.page_request(request);
  if (!page) return page.take_response();
  sdk::AuditFilter filter;
  std::vector<security::FieldError> errors;
  if (auto actor = request.query_param("actor")) filter.actor_id = std::move(*actor);
  if (auto action = request.query_param("action")) filter.action = std::move(*action);
  for (const auto& [name, into] : {std::pair{"since", &filter.since}, std::pair{"until", &filter.until}}) {
    if (auto text = request.query_param(name)) {
      if (auto time = parse_timestamp(*text)) {
        *into = *time;
      } else {
        errors.push_back({std::string("/") + name, "expected an RFC 3339 time such as 2026-01-01T00:00:00Z"});
      }
    }
  }
  if (!errors.empty()) return validation_problem(errors);
  auto events = context.store<sdk::AuditStore>(
      [&](sdk::AuditStore& audit) { return audit.list_audit_events(filter, *page); });
  if (!events.ok()) return problem_from_status(events.status());
  nlohmann::json items = nlohmann::json::array();
  for (const auto& event : events->items)
    items.push_back(audit_json(event));
  return http::Response::json(200, page_json(std::move(items), events->next_cursor));
}

}  // namespace

void add_admin_routes(http::Router& router, ApiContext& context) {
  http::RouteOptions options;
  options.max_body_bytes = kAdminBodyLimit;
  router.add(
      verb::get, "/api/v1/admin/users", [&context](http::Request& r) { return list_users(context, r); },
      options);
  router.add(
      verb::patch, "/api/v1/admin/users/{id}",
      [&context](http::Request& r) { return update_user(context, r); }, options);
  router.add(
      verb::get, "/api/v1/admin/audit", [&context](http::Request& r) { return list_audit(context, r); },
      options);
}

}  // namespace samokoder::api
