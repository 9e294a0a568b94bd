// The admin routes that change the running plugin set (the triggers of docs/ops.md "Reloading plugins"):
//
//   POST /api/v1/admin/plugins/{id}/reload    load the configured file as a new generation and swap
//   POST /api/v1/admin/plugins/{id}/enable    load and activate a disabled plugin
//   POST /api/v1/admin/plugins/{id}/disable   drain and unload (refused for the only storage backend)
//   POST /api/v1/admin/config/reload          re-read the config file and apply its plugin changes
//
// Admin only (api::Access::kAdmin); every call is audited ("plugin.reloaded", "plugin.reload_failed",
// "plugin.enabled", "plugin.disabled", "config.reloaded", "config.reload_rejected"), with the admin as
// actor and detail.trigger "admin_api". They run on worker
// threads: a reload waits for the old generation to drain.
//
// Thread-safety: handlers may run concurrently; the PluginManager serializes the changes themselves.
// The referenced objects must outlive the router.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "api/context.hpp"
#include "http/router.hpp"
#include "plugins/plugin_manager.hpp"

namespace samokoder::app {

// The audit record of a plugin reload, the same whoever started it: "plugin.reloaded" with the new
// generation and version, or "plugin.reload_failed" with the reason; detail.trigger says what started
// it ("admin_api", "sighup", "file_watcher").
struct PluginReloadAudit {
  std::string action;
  nlohmann::json detail;
};
PluginReloadAudit plugin_reload_audit(const sdk::Result<plugins::ReloadOutcome>& outcome,
                                      std::string_view trigger);

// Re-reads and applies the config for the admin `actor_id` asking from `source_address`, audits it, and
// returns the answer's document; the Status lists every validation error when the file is invalid.
using ConfigReloader = std::function<sdk::Result<nlohmann::json>(const std::string& actor_id,
                                                                 const std::string& source_address)>;

void add_plugin_admin_routes(http::Router& router, api::ApiContext& context, plugins::PluginManager& plugins,
                             ConfigReloader reload_config);

}  // namespace samokoder::app
