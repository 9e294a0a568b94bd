#include "app/plugin_admin_routes.hpp"

#include "app/ops_routes.hpp"

namespace samokoder::app {
namespace {

using boost::beast::http::verb;

double milliseconds(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

// Every answer of these routes shows the plugin as it stands after the change.
nlohmann::json plugin_document(const plugins::PluginManager& plugins, std::string_view id) {
  const auto info = plugins.find(id);
  return info ? plugin_to_json(*info, PluginView::kAdmin) : nlohmann::json(nullptr);
}

}  // namespace

PluginReloadAudit plugin_reload_audit(const sdk::Result<plugins::ReloadOutcome>& outcome,
                                      std::string_view trigger) {
  if (!outcome.ok()) {
    return {"plugin.reload_failed", {{"reason", outcome.status().message()}, {"trigger", trigger}}};
  }
  return {"plugin.reloaded",
          {{"generation", outcome->generation}, {"version", outcome->version}, {"trigger", trigger}}};
}

void add_plugin_admin_routes(http::Router& router, api::ApiContext& context, plugins::PluginManager& plugins,
                             ConfigReloader reload_config) {
  // Reloads load, self-test and drain plugins, which can take as long as a plugin makes them: they run
  // on the plugin pool, never blocking request work.
  http::RouteOptions options = http::RouteOptions::plugin_call();
  options.group = std::string(api::kGroupDefault);
  options.max_body_bytes = 1024;

  router.add(
      verb::post, "/api/v1/admin/plugins/{id}/reload",
      [&context, &plugins](http::Request& request) {
        auto auth = context.authenticate(request, api::Access::kAdmin);
        if (!auth) return auth.take_response();
        const std::string id(request.param("id"));
        auto outcome = plugins.reload(id);
        auto audit = plugin_reload_audit(outcome, "admin_api");
        context.audit(auth->user_id, audit.action, id, request, std::move(audit.detail));
        if (!outcome.ok()) return api::problem_from_status(outcome.status());
        return http::Response::json(200, {{"plugin", plugin_document(plugins, id)},
                                          {"generation", outcome->generation},
                                          {"version", outcome->version},
                                          {"swap_ms", milliseconds(outcome->swap_latency)},
                                          {"drain_ms", milliseconds(outcome->drain_time)},
                                          {"previous_unmapped", outcome->previous_unmapped}});
      },
      options);

  for (const bool enable : {true, false}) {
    router.add(
        verb::post, enable ? "/api/v1/admin/plugins/{id}/enable" : "/api/v1/admin/plugins/{id}/disable",
        [&context, &plugins, enable](http::Request& request) {
          auto auth = context.authenticate(request, api::Access::kAdmin);
          if (!auth) return auth.take_response();
          const std::string id(request.param("id"));
          const sdk::Status status = plugins.set_enabled(id, enable);
          if (!status.ok()) return api::problem_from_status(status);
          context.audit(auth->user_id, enable ? "plugin.enabled" : "plugin.disabled", id, request);
          return http::Response::json(200, {{"plugin", plugin_document(plugins, id)}});
        },
        options);
  }

  router.add(
      verb::post, "/api/v1/admin/config/reload",
      [&context, reload_config = std::move(reload_config)](http::Request& request) {
        auto auth = context.authenticate(request, api::Access::kAdmin);
        if (!auth) return auth.take_response();
        auto answer = reload_config(auth->user_id, context.client_address(request));
        if (!answer.ok()) return api::problem_from_status(answer.status());
        return http::Response::json(200, *answer);
      },
      options);
}

}  // namespace samokoder::app
