// The operational routes: liveness, readiness, metrics and the plugin inventory.
//
//   GET /healthz                 200 {"status":"ok"} while the process serves HTTP
//   GET /readyz                  200 when every required plugin is ACTIVE and storage answers, else 503
//                                listing why
//   GET /metrics                 Prometheus text format 0.0.4
//   GET /api/v1/plugins          every configured plugin with its state; the failure text
//                                (failure_message) only for an authenticated admin
//   GET /api/v1/plugins/{id}     one plugin, likewise; 404 problem+json when not configured
//
// /healthz and /metrics only read in-memory state and run inline on the I/O threads; /readyz makes a
// round trip to the database and the plugin inventory may authenticate the caller, so they run on a
// worker.
// Thread-safety: the handlers are safe to run concurrently; the referenced objects must outlive
// the router.
#pragma once

#include <functional>

#include "api/context.hpp"
#include "http/router.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"

namespace samokoder::app {

void add_ops_routes(http::Router& router, const api::ApiContext& context,
                    const plugins::PluginManager& plugins, const metrics::Registry& metrics,
                    std::function<sdk::Status()> storage_health);

// Who a plugin document is for: admins see why a plugin failed (failure_message), others its state.
enum class PluginView { kPublic, kAdmin };

// The API representation of one plugin.
nlohmann::json plugin_to_json(const plugins::PluginInfo& info, PluginView view);

}  // namespace samokoder::app
