#include "app/ops_routes.hpp"

#include <chrono>
#include <ctime>

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

}  // namespace

nlohmann::json plugin_to_json(const plugins::PluginInfo& info) {
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
  return out;
}

void add_ops_routes(http::Router& router, const plugins::PluginManager& plugins,
                    const metrics::Registry& metrics, std::function<sdk::Status()> storage_health) {
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
          not_ready.push_back({{"check", "storage"}, {"detail", storage.message()}});
        }
        if (not_ready.empty()) return http::Response::json(200, {{"status", "ready"}});
        return http::Response::json(503, {{"status", "not_ready"}, {"checks", not_ready}});
      },
      http::RouteOptions{.dispatch = http::Dispatch::kWorker, .max_body_bytes = 0, .group = "ops"});

  router.add(
      verb::get, "/metrics",
      [&metrics](http::Request&) {
        return http::Response::text(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
      },
      inline_route);

  router.add(
      verb::get, "/api/v1/plugins",
      [&plugins](http::Request&) {
        nlohmann::json items = nlohmann::json::array();
        for (const auto& info : plugins.list())
          items.push_back(plugin_to_json(info));
        return http::Response::json(200, {{"items", items}});
      },
      inline_route);

  router.add(
      verb::get, "/api/v1/plugins/{id}",
      [&plugins](http::Request& request) {
        const auto info = plugins.find(request.param("id"));
        if (!info) {
          return http::Response::problem(
              404, "not_found", "Not Found",
              "no plugin \"" + std::string(request.param("id")) + "\" is configured");
        }
        return http::Response::json(200, plugin_to_json(*info));
      },
      inline_route);
}

}  // namespace samokoder::app
