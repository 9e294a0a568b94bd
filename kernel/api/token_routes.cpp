// Personal access tokens (docs/api.md "Personal access tokens"): created through the auth.apitoken
// provider, shown once, stored as the provider's hash, with scopes read/write/admin, an optional
// expiry, and revocable.
//
// Creating a token needs a signed-in session: a token cannot mint further tokens, so a leaked token
// never outlives its own revocation. The admin scope is only granted to admins (and only works while
// the user still is one, see ApiContext::authorize). Listing needs read access and revoking needs
// write access with any credential, so a CI job can revoke its own token.
#include <algorithm>
#include <set>

#include <boost/beast/http/verb.hpp>

#include <samokoder/sdk/auth.hpp>

#include "api/context.hpp"
#include "api/routes.hpp"

namespace samokoder::api {
namespace {

using boost::beast::http::verb;

constexpr std::size_t kTokenBodyLimit = 4096;
constexpr std::size_t kMaxTokenName = 100;

nlohmann::json token_json(const sdk::AccessToken& token) {
  return {{"id", token.id},
          {"name", token.name},
          {"scopes", token.scopes},
          {"expires_at", timestamp_json(token.expires_at)},
          {"created_at", format_timestamp(token.created_at)},
          {"last_used_at", timestamp_json(token.last_used_at)},
          {"revoked", token.revoked}};
}

http::Response create_token(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kWrite);
  if (!auth) return auth.take_response();
  if (auth->method == AuthMethod::kAccessToken) {
    return http::Response::problem(403, "session_required", "Forbidden",
                                   "personal access tokens cannot create tokens; sign in to create one");
  }
  auto body = context.json_body(request);
  if (!body) return body.take_response();
  security::FieldReader reader(*body);
  auto name = reader.required_string("/name", 1, kMaxTokenName);
  auto expires_text = reader.optional_string("/expires_at", 1, 64);
  reader.reject_unknown({"name", "scopes", "expires_at"});
  std::vector<std::string> scopes;
  const nlohmann::json* scopes_value = reader.optional_value("/scopes");
  if (scopes_value == nullptr) {
    reader.add_error("/scopes", "required");
  } else if (!scopes_value->is_array() || scopes_value->empty()) {
    reader.add_error("/scopes", "expected a non-empty array of \"read\", \"write\", \"admin\"");
  } else {
    std::set<std::string> seen;
    for (std::size_t i = 0; i < scopes_value->size(); ++i) {
      const auto& scope = (*scopes_value)[i];
      const std::string path = "/scopes/" + std::to_string(i);
      const std::string value = scope.is_string() ? scope.get<std::string>() : std::string();
      if (value != kScopeRead && value != kScopeWrite && value != kScopeAdmin) {
        reader.add_error(path, "expected \"read\", \"write\" or \"admin\"");
      } else if (!seen.insert(value).second) {
        reader.add_error(path, "duplicate scope");
      } else {
        scopes.push_back(value);
      }
    }
  }
  std::optional<Timestamp> expires_at;
  if (expires_text) {
    expires_at = parse_timestamp(*expires_text);
    if (!expires_at) {
      reader.add_error("/expires_at", "expected an RFC 3339 time such as 2027-01-01T00:00:00Z");
    } else if (*expires_at <= context.now()) {
      reader.add_error("/expires_at", "must be in the future");
    }
  }
  if (!reader.ok()) return validation_problem(reader.errors());
  if (std::find(scopes.begin(), scopes.end(), kScopeAdmin) != scopes.end() && !auth->is_admin) {
    return http::Response::problem(403, "admin_required", "Forbidden",
                                   "only administrators can create tokens with the \"admin\" scope");
  }

  const plugins::Lease provider = context.auth_provider("api_token");
  if (!provider) {
    return http::Response::problem(503, "unavailable", "Service Unavailable",
                                   "personal access tokens are not enabled on this server");
  }
  auto issued = provider.call<sdk::AuthProvider>([](sdk::AuthProvider& p) { return p.issue_secret(); });
  if (!issued.ok()) return problem_from_status(issued.status());
  sdk::NewAccessToken token;
  token.user_id = auth->user_id;
  token.name = *name;
  token.token_hash = issued->stored_hash;
  token.scopes = scopes;
  token.expires_at = expires_at;
  auto created = context.store<sdk::AccessTokenStore>(
      [&](sdk::AccessTokenStore& access_tokens) { return access_tokens.create_access_token(token); });
  if (!created.ok()) return problem_from_status(created.status());
  context.audit(
      auth->user_id, "token.created", created->id, request,
      {{"name", created->name}, {"scopes", created->scopes}, {"expires_at", timestamp_json(expires_at)}});
  nlohmann::json document = token_json(*created);
  document["token"] = issued->secret;  // the only time it is shown
  auto response = http::Response::json(201, document);
  response.set_header("Location", "/api/v1/tokens/" + created->id);
  return response;
}

http::Response list_tokens(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kRead);
  if (!auth) return auth.take_response();
  auto tokens = context.store<sdk::AccessTokenStore>(
      [&](sdk::AccessTokenStore& access_tokens) { return access_tokens.list_access_tokens(auth->user_id); });
  if (!tokens.ok()) return problem_from_status(tokens.status());
  nlohmann::json items = nlohmann::json::array();
  for (const auto& token : *tokens)
    items.push_back(token_json(token));
  return http::Response::json(200, {{"items", std::move(items)}});
}

http::Response revoke_token(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kWrite);
  if (!auth) return auth.take_response();
  const std::string id(request.param("id"));
  const auto revoked = context.store<sdk::AccessTokenStore>([&](sdk::AccessTokenStore& access_tokens) {
    return access_tokens.revoke_access_token(auth->user_id, id);
  });
  if (!revoked.ok()) return problem_from_status(revoked);
  context.audit(auth->user_id, "token.revoked", id, request);
  return http::Response::no_content();
}

}  // namespace

void add_token_routes(http::Router& router, ApiContext& context) {
  http::RouteOptions options;
  options.max_body_bytes = kTokenBodyLimit;
  router.add(
      verb::post, "/api/v1/tokens", [&context](http::Request& r) { return create_token(context, r); },
      options);
  router.add(
      verb::get, "/api/v1/tokens", [&context](http::Request& r) { return list_tokens(context, r); }, options);
  router.add(
      verb::delete_, "/api/v1/tokens/{id}", [&context](http::Request& r) { return revoke_token(context, r); },
      options);
}

}  // namespace samokoder::api
