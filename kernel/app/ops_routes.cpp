#include "app/ops_routes.hpp"

#include <chrono>
#include <ctime>

#include <samokoder/sdk/redact.hpp>

#include "api/sessions.hpp"
#include "security/csrf.hpp"

namespace samokoder::app {
namespace {

using boost::beast::http::verb;

std::string iso8601(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[sizeof "2026-01-01T00:00:00Z"];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Whether the caller is an authenticated admin (the same test as the admin routes). A request without
// credentials is answered without a storage round trip; one whose credentials fail any check is
// treated like an anonymous one, since it only loses the failure details.
bool caller_is_admin(const api::ApiContext& context, const http::Request& request) {
  const bool has_credentials =
      !request.header("Authorization").empty() ||
      security::find_cookie(request.header("Cookie"), context.sessions().cookie_names().access).has_value();
  return has_credentials && static_cast<bool>(context.authenticate(request, api::Access::kAdmin));
}

}  // namespace

nlohmann::json plugin_to_json(const plugins::PluginInfo& info, PluginView view) {
  nlohmann::json out = {
      {"id", info.id},
      {"kind", info.kind},
      {"version", info.version.empty() ? nullptr : nlohmann::json(info.version)},
      {"description", info.description},
      {"state", plugins::state_name(info.state)},
      {"failure_reason", info.failure_reason == plugins::FailureReason::kNone
                             ? nullptr
                             : nlohmann::json(plugins::reason_name(info.failure_reason))},
      {"failure_message", info.failure_message.empty() ? nullptr : nlohmann::json(info.failure_message)},
      {"generation", info.generation},
      {"file", info.file},
      {"sha256", info.sha256.empty() ? nullptr : nlohmann::json(info.sha256)},
      {"required", info.required},
      {"enabled", info.enabled},
      {"pinned_generations", info.pinned_generations},
      {"loaded_at", info.loaded_at ? nlohmann::json(iso8601(*info.loaded_at)) : nullptr},
  };
  nlohmann::json retired = nlohmann::json::array();
  for (const auto& generation : info.retired) {
    retired.push_back({{"generation", generation.number},
                       {"version", generation.version},
                       {"state", plugins::state_name(generation.state)}});
  }
  out["retired_generations"] = std::move(retired);
  if (!info.unique_symbols.empty()) out["unique_symbols"] = info.unique_symbols;
  // The failure text can name hosts, paths and what a plugin's config holds; the state and the reason
  // code are enough for everyone else.
  if (view == PluginView::kPublic) out.erase("failure_message");
  return out;
}

void add_ops_routes(http::Router& router, const api::ApiContext& context,
                    const plugins::PluginManager& plugins, const metrics::Registry& metrics,
                    std::function<sdk::Status()> storage_health) {
  const http::RouteOptions inline_route{
      .dispatch = http::Dispatch::kInline, .max_body_bytes = 0, .group = "ops"};

  router.add(
      verb::get, "/healthz",
      [](http::Request&) {
        return http::Response::json(200, {{"status", "ok"}});
      },
      inline_route);

  router.add(
      verb::get, "/readyz",
      [&plugins, storage_health = std::move(storage_health)](http::Request&) {
        nlohmann::json not_ready = nlohmann::json::array();
        for (const auto& info : plugins.list()) {
          if (info.required && info.enabled && info.state != plugins::PluginState::kActive) {
            not_ready.push_back(
                {{"check", "plugin"}, {"plugin", info.id}, {"state", plugins::state_name(info.state)}});
          }
        }
        if (const sdk::Status storage = storage_health(); !storage.ok()) {
          not_ready.push_back({{"check", "storage"}, {"detail", sdk::redact_credentials(storage.message())}});
        }
        if (not_ready.empty()) return http::Response::json(200, {{"status", "ready"}});
        return http::Response::json(503, {{"status", "not_ready"}, {"checks", not_ready}});
      },
      http::RouteOptions{.dispatch = http::Dispatch::kRequest, .max_body_bytes = 0, .group = "ops"});

  router.add(
      verb::get, "/metrics",
      [&metrics](http::Request&) {
        return http::Response::text(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
      },
      inline_route);

  // Authenticating an admin may read storage, so the inventory runs on a worker.
  const http::RouteOptions inventory_route{
      .dispatch = http::Dispatch::kRequest, .max_body_bytes = 0, .group = "ops"};
  auto view_for = [&context](const http::Request& request) {
    return caller_is_admin(context, request) ? PluginView::kAdmin : PluginView::kPublic;
  };

  router.add(
      verb::get, "/api/v1/plugins",
      [&plugins, view_for](http::Request& request) {
        const PluginView view = view_for(request);
        nlohmann::json items = nlohmann::json::array();
        for (const auto& info : plugins.list())
          items.push_back(plugin_to_json(info, view));
        return http::Response::json(200, {{"items", items}});
      },
      inventory_route);

  router.add(
      verb::get, "/api/v1/plugins/{id}",
      [&plugins, view_for](http::Request& request) {
        const auto info = plugins.find(request.param("id"));
        if (!info) {
          return http::Response::problem(
              404, "not_found", "Not Found",
              "no plugin \"" + std::string(request.param("id")) + "\" is configured");
        }
        return http::Response::json(200, plugin_to_json(*info, view_for(request)));
      },
      inventory_route);
}

}  // namespace samokoder::app
