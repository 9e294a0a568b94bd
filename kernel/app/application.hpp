// Application: the running kernel. It wires config, metrics, the plugin manager and the HTTP server
// together and owns them, in the order they must start and stop.
//
// start() checks the secrets (production refuses a missing or weak SAMOKODER_SECRET_KEY), loads the
// plugins (a failing `required` plugin stops startup with its reason), then binds and starts the HTTP
// server with the ops routes and the /api/v1 routes (kernel/api, kernel/llm, kernel/runs), starts the
// run engine and the housekeeping thread. stop() is the graceful shutdown of docs/architecture.md "The
// HTTP server": stop housekeeping, stop working on runs (their leases are given up), stop accepting,
// drain requests and streams, unload plugins.
//
// Ownership: owns everything it creates; the Clock passed in must outlive it.
// Thread-safety: construct, start, stop and destroy from one controlling thread (main); the
// accessors are safe from any thread after start().
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include <samokoder/sdk/status.hpp>

#include "app/housekeeping.hpp"
#include "app/plugin_watcher.hpp"
#include "config/config.hpp"
#include "console/assets.hpp"
#include "core/clock.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "llm/gateway.hpp"
#include "metrics/registry.hpp"
#include "outbound_http/service.hpp"
#include "plugins/plugin_manager.hpp"
#include "previews/manager.hpp"
#include "previews/proxy.hpp"
#include "runs/engine.hpp"

namespace samokoder::api {
class ApiContext;
}

namespace samokoder::app {

class Application {
 public:
  Application(config::Config config, const core::Clock& clock);
  ~Application();
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  sdk::Status start();
  // Returns within about server.shutdown_grace_ms even when a call never returns; see
  // unfinished_calls().
  void stop();
  // The calls stop() left running (route, plugin, how long), empty when everything finished.
  const std::vector<http::WorkPool::Unfinished>& unfinished_calls() const noexcept { return unfinished_; }

  // Who or what asked for a config reload, for the log and the audit record.
  struct ReloadTrigger {
    std::string actor_id;  // the admin's user id; empty for the server itself
    std::string source;    // the client address, or "sighup" / "file_watcher"
    std::string name;      // "admin_api", "sighup" or "file_watcher"
  };
  struct ConfigReloadReport {
    std::vector<std::string> changes;           // one line per change, for people
    std::vector<std::string> applied;           // settings (JSON paths) the running server took over
    std::vector<std::string> restart_required;  // settings that keep their old value until a restart
  };
  // Applies a re-read config (SIGHUP, POST /api/v1/admin/config/reload): the plugin set follows it
  // (PluginManager::apply_config, each plugin reload, swapped or failed, audited with the trigger), the
  // settings that can change live (config_reload.hpp: log level and format, the access log, security
  // settings, HTTP timeouts) are put in force for the requests that follow, and those that cannot are
  // named as needing a restart, in the report, a warning line and the audit record ("config.reloaded").
  sdk::Result<ConfigReloadReport> reload_config(const config::Config& next, const ReloadTrigger& trigger);
  // Reads the file the config came from again (with the current SAMOKODER_* environment) and applies
  // it; an invalid file is rejected whole (kInvalidArgument listing every error, audited as
  // "config.reload_rejected") and changes nothing.
  sdk::Result<ConfigReloadReport> reload_config_file(const ReloadTrigger& trigger);

  std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }
  // "http://127.0.0.1:8080"
  std::string url() const;

  const config::Config& config() const noexcept { return config_; }
  metrics::Registry& metrics() noexcept { return metrics_; }
  plugins::PluginManager& plugins() noexcept { return *plugins_; }
  // The LLM gateway; nullptr before start() and after stop().
  llm::LlmGateway* llm() noexcept { return llm_.get(); }
  // The run orchestrator; nullptr before start() and after stop().
  runs::RunEngine* runs() noexcept { return runs_.get(); }
  // Live previews; nullptr before start() and after stop().
  previews::PreviewManager* previews() noexcept { return previews_.get(); }
  // The preview origin's port (previews.listen); 0 before start().
  std::uint16_t preview_port() const noexcept { return proxy_ ? proxy_->port() : 0; }

  // A lease on the storage backend that serves now (the first ACTIVE storage plugin in config order);
  // empty when there is none.
  plugins::Lease storage() const noexcept;
  // OK when a storage backend is active and answers its health check.
  sdk::Status storage_health() const;

  // The routes being served (the OpenAPI consistency test compares them with the document); nullptr
  // before start() and after stop().
  const http::Router* router() const noexcept { return router_.get(); }

 private:
  std::shared_ptr<http::Router> build_router();
  // Records what `trigger` started, with detail.trigger set; nothing before start().
  void audit(const ReloadTrigger& trigger, std::string_view action, std::string_view target,
             nlohmann::json detail);
  // Audits a plugin reload that `trigger` started (a config reload or the file watcher) as the admin
  // API audits its own (plugin_reload_audit).
  void audit_plugin_reload(const ReloadTrigger& trigger, const std::string& id,
                           const sdk::Result<plugins::ReloadOutcome>& outcome);
  sdk::Status check_schema() const;
  // Reads the web console's files (console_ stays null when the console is off or, from its default
  // folder, not built).
  sdk::Status load_console();

  // On the heap, so that the destructor can keep them for a call that stop() left running (the API
  // context it may still use refers to both); the references are how everything else reaches them.
  std::unique_ptr<config::Config> config_holder_;
  std::unique_ptr<metrics::Registry> metrics_holder_;
  const config::Config& config_;
  const core::Clock& clock_;
  metrics::Registry& metrics_;
  // Before the plugin manager: plugins hold views of it until they are unloaded.
  std::unique_ptr<scheduling::TaskScheduler> tasks_;
  // Before plugins_: every generation's children are ended before the service goes. Before
  // http_client_ too: the HTTP service's destructor runs completions that may still start a child.
  std::unique_ptr<processes::ProcessService> processes_;
  // Outbound HTTP for plugins; declared before the plugin manager, which hands it to every plugin.
  std::unique_ptr<outbound_http::Service> http_client_;
  std::unique_ptr<plugins::PluginManager> plugins_;
  std::unique_ptr<api::ApiContext> api_;  // created by start(), after the secret checks
  // The one way to the models (created by start(): it opens users' keys with the API context's ring).
  std::unique_ptr<llm::LlmGateway> llm_;
  // Drives runs through the agent plugins (created by start(), after the gateway it calls models with).
  std::unique_ptr<runs::RunEngine> runs_;
  // Live previews (created by start()) and the proxy that serves them on their own origin (started
  // before the API listens, stopped after it drained and before the plugins unload).
  std::unique_ptr<previews::PreviewManager> previews_;
  // What the workspace observer calls, read on request and run threads; cleared before previews_ goes.
  std::atomic<previews::PreviewManager*> previews_view_{nullptr};
  std::unique_ptr<previews::PreviewProxy> proxy_;
  std::shared_ptr<const console::ConsoleAssets> console_;
  std::shared_ptr<const http::Router> router_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<PluginWatcher> watcher_;      // only with "watch_plugins": true
  std::unique_ptr<Housekeeping> housekeeping_;  // only with housekeeping.enabled
  std::vector<http::WorkPool::Unfinished> unfinished_;
  // The config as last applied by a reload, against which live settings are compared (config_ keeps
  // what the server started with, against which restart-only settings are). Guarded by reload_mutex_.
  std::mutex reload_mutex_;
  config::Config reloaded_;
  bool started_ = false;
};

}  // namespace samokoder::app
