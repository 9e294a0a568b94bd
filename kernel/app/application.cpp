#include "app/application.hpp"

#include <filesystem>

#include <samokoder/sdk/storage.hpp>

#include "api/context.hpp"
#include "api/routes.hpp"
#include "app/config_reload.hpp"
#include "app/ops_routes.hpp"
#include "app/plugin_admin_routes.hpp"
#include "console/routes.hpp"
#include "core/keep_until_exit.hpp"
#include "core/logging.hpp"
#include "llm/routes.hpp"
#include "previews/routes.hpp"
#include "runs/routes.hpp"

namespace samokoder::app {
namespace {

std::unique_ptr<outbound_http::Service> make_http_client(const config::HttpClientConfig& config,
                                                         metrics::Registry& metrics) {
  std::vector<std::string> errors;
  auto proxies = outbound_http::ProxySettings::from_environment(
      outbound_http::ProxySettings::process_environment(), errors);
  for (const std::string& error : errors)
    core::logger("http_client")->error("{}", error);
  return std::make_unique<outbound_http::Service>(config, std::move(proxies), metrics);
}

// share/samokoder/console beside the executable's bin/: where the build tree and an install both put
// the console, so neither `make run` nor an installed server needs it configured.
std::filesystem::path default_console_dir() {
  std::error_code error;
  const auto executable = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return {};
  return executable.parent_path().parent_path() / "share" / "samokoder" / "console";
}

}  // namespace

Application::Application(config::Config config, const core::Clock& clock)
    : config_holder_(std::make_unique<config::Config>(std::move(config))),
      metrics_holder_(std::make_unique<metrics::Registry>()),
      config_(*config_holder_),
      clock_(clock),
      metrics_(*metrics_holder_),
      tasks_(std::make_unique<scheduling::TaskScheduler>(
          config_.server.task_pool, std::chrono::milliseconds(config_.plugins.drain_timeout_ms), metrics_)),
      processes_(std::make_unique<processes::ProcessService>(config_.processes, metrics_)),
      http_client_(make_http_client(config_.http_client, metrics_)),
      plugins_(std::make_unique<plugins::PluginManager>(
          config_.plugins, metrics_, clock_,
          plugins::KernelServices{tasks_.get(), http_client_.get(), processes_.get()})),
      reloaded_(config_) {}

Application::~Application() {
  stop();
  // A call left running may still be inside the plugin manager (a reload stuck in init) or a plugin.
  // It may also record a metric or read the config through the API context kept in stop().
  if (!unfinished_.empty()) {
    core::keep_until_exit(std::move(plugins_));
    core::keep_until_exit(std::move(processes_));
    core::keep_until_exit(std::move(tasks_));
    core::keep_until_exit(std::move(http_client_));
    core::keep_until_exit(std::move(metrics_holder_));
    core::keep_until_exit(std::move(config_holder_));
  }
}

std::shared_ptr<http::Router> Application::build_router() {
  auto router = std::make_shared<http::Router>();
  add_ops_routes(*router, *api_, *plugins_, metrics_, [this] { return storage_health(); });
  api::add_routes(*router, *api_);
  llm::add_llm_routes(*router, *api_, *llm_);
  runs::add_runs_routes(*router, *api_, *runs_);
  previews::add_preview_routes(*router, *api_, *previews_);
  add_plugin_admin_routes(
      *router, *api_, *plugins_,
      [this](const std::string& actor_id, const std::string& source) -> sdk::Result<nlohmann::json> {
        auto report = reload_config_file({actor_id, source, "admin_api"});
        if (!report.ok()) return report.status();
        return nlohmann::json{{"changes", report->changes},
                              {"applied", report->applied},
                              {"restart_required", report->restart_required}};
      });
  if (console_) {
    // The frame source is the preview origin with the port the proxy actually got.
    console::add_console_routes(
        *router, console_,
        console::page_policy(console::preview_frame_source(previews_->public_url("{project}"))));
  }
  return router;
}

sdk::Status Application::load_console() {
  const config::ConsoleConfig& settings = config_.console;
  if (!settings.enabled) return {};
  const bool configured = !settings.dir.empty();
  const std::filesystem::path dir = configured ? settings.dir : default_console_dir();
  auto assets = console::ConsoleAssets::load(dir);
  if (!assets.ok()) {
    if (configured || assets.status().code() != sdk::StatusCode::kNotFound) {
      return sdk::Status(assets.status().code(), "console: " + assets.status().message());
    }
    core::logger("kernel")->warn("no web console at /: {}", assets.status().message());
    return {};
  }
  console_ = std::make_shared<const console::ConsoleAssets>(std::move(assets).value());
  core::logger("kernel")->info("web console: {} files from {}", console_->size(), dir.string());
  return {};
}

sdk::Status Application::start() {
  if (started_) return sdk::Status::failed_precondition("already started");
  auto log = core::logger("kernel");
  if (!http_client_->status().ok()) return http_client_->status();
  // Before any plugin loads: a console folder configured wrong is a mistake to report at once.
  if (auto status = load_console(); !status.ok()) return status;
  // Files written through the API or by a run reach the project's live preview, if it has one.
  const auto workspace_changed = [this](std::string_view project_id, std::string_view path) {
    if (auto* previews = previews_view_.load()) previews->files_changed(project_id, path);
  };
  auto api =
      api::ApiContext::create({&config_, &clock_, &metrics_, plugins_.get(), [this] { return storage(); },
                               [this](const std::string& provider, const std::string& key) {
                                 return llm_->verify_key(provider, key, sdk::never_cancelled());
                               },
                               workspace_changed});
  if (!api.ok()) return api.status();
  api_ = std::move(api).value();
  llm_ = std::make_unique<llm::LlmGateway>(
      llm::LlmGateway::Dependencies{config_.llm, *plugins_, api_->secret_ring(), metrics_, clock_});
  const std::string node_id = Housekeeping::make_node_id();
  // An agent's AgentContext::start_preview: the owner's POST /projects/{id}/preview without a body
  // (same runners, limits, records and audit), except that a preview already starting or running on
  // this node is kept. A server with no runners configured runs no previews: agents are told so.
  // Through previews_view_ like the workspace observer, so it never reaches a manager that is gone
  // (stop() also joins the engine's steps before the manager goes).
  runs::RunEngine::Dependencies run_dependencies{
      config_, *plugins_, *llm_, *processes_, metrics_, clock_, node_id, workspace_changed, {}};
  if (!config_.previews.runners.empty()) {
    run_dependencies.start_preview = [this](const std::string& owner_id,
                                            const std::string& project_id) -> sdk::Status {
      auto* previews = previews_view_.load();
      if (previews == nullptr) return sdk::Status::unavailable("the server is stopping");
      previews::PreviewManager::StartRequest request;
      request.keep_live = true;
      auto started = previews->start_preview(owner_id, project_id, request);
      if (!started.ok()) return started.status();
      if (!started->kept) {
        api_->audit_without_request(owner_id, "preview.started", project_id, "runs",
                                    {{"runner", started->runner}});
      }
      return {};
    };
  }
  runs_ = std::make_unique<runs::RunEngine>(std::move(run_dependencies));
  previews_ = std::make_unique<previews::PreviewManager>(previews::PreviewManager::Dependencies{
      &config_, &clock_, &metrics_, plugins_.get(), [this] { return storage(); }, node_id});
  previews_view_.store(previews_.get());
  // Before any plugin can start a child: end what an earlier run of the server (killed, crashed) left.
  if (const auto swept = processes_->sweep_orphans(); swept.records > 0) {
    log->warn("found {} child process record(s) of an earlier run; ended {} group(s) still alive",
              swept.records, swept.ended);
  }
  // Undoes what start() built, newest first, when a later step fails.
  bool plugins_started = false;
  const auto abandon = [this, &plugins_started](sdk::Status status) {
    server_.reset();
    router_.reset();
    proxy_.reset();
    if (plugins_started) plugins_->stop();
    previews_view_.store(nullptr);
    previews_.reset();
    runs_.reset();
    llm_.reset();
    api_.reset();
    return status;
  };
  if (auto status = plugins_->start(); !status.ok()) return abandon(status);
  plugins_started = true;
  if (auto status = check_schema(); !status.ok()) return abandon(status);
  // The preview origin listens before the API does, so every preview url the API hands out works.
  proxy_ = std::make_unique<previews::PreviewProxy>(
      previews::PreviewProxy::Dependencies{&config_.previews, previews_.get(), api_->preview_grant_key(),
                                           &clock_, &metrics_, config_.server.listen.port == 0});
  if (auto status = proxy_->start(); !status.ok()) return abandon(status);
  previews_->set_proxy_port(proxy_->port());
  router_ = build_router();
  server_ = std::make_unique<http::Server>(config_.server, config_.environment, router_, metrics_,
                                           http::ServerOptions{.access_log = config_.log.access_log});
  server_->use(api_->address_rate_limit_middleware());
  if (auto status = server_->start(); !status.ok()) return abandon(status);
  runs_->start();
  previews_->start();
  if (config_.plugins.watch) {
    watcher_ = std::make_unique<PluginWatcher>(
        *plugins_, std::chrono::seconds(1),
        [this](const std::string& id, const sdk::Result<plugins::ReloadOutcome>& outcome) {
          audit_plugin_reload({"", "file_watcher", "file_watcher"}, id, outcome);
        });
  }
  if (config_.housekeeping.enabled) {
    housekeeping_ = std::make_unique<Housekeeping>(
        config_.housekeeping, clock_, metrics_, [this] { return storage(); }, Housekeeping::make_node_id());
  } else {
    log->warn("housekeeping is off: expired sessions, old login attempts and unreferenced content stay");
  }
  started_ = true;
  log->info("serving on {} ({} I/O threads, {} request and {} plugin pool threads)", url(),
            config_.server.io_threads, config_.server.request_pool.threads,
            config_.server.plugin_pool.threads);
  return {};
}

void Application::stop() {
  if (!started_) return;
  started_ = false;
  auto log = core::logger("kernel");
  watcher_.reset();
  housekeeping_.reset();  // holds storage leases while a pass runs
  log->info("stopping: leaving runs to the next start or another node");
  runs_->stop();
  log->info("stopping: draining HTTP requests");
  server_->stop();  // no request can reach a plugin after this returns
  unfinished_ = server_->unfinished_calls();
  // A config reload left running still applies its live settings to the (stopped) server.
  if (unfinished_.empty()) {
    server_.reset();
  } else {
    core::keep_until_exit(std::move(server_));
  }
  router_.reset();
  log->info("stopping: ending previews");
  proxy_.reset();
  previews_->stop();
  // A call left running may still write a file: from here on nobody is told.
  previews_view_.store(nullptr);
  if (unfinished_.empty()) {
    log->info("stopping: unloading plugins");
    plugins_->stop();
    processes_->shutdown();  // children of generations that stayed PINNED
    // Every plugin waited for its own background tasks when it was unloaded; what is left has no owner.
    unfinished_ = tasks_->stop(std::chrono::steady_clock::now());
    previews_.reset();
    runs_.reset();
    llm_.reset();
    api_.reset();
    log->info("stopped");
    return;
  }
  // Calls the server gave up on still run in plugin code and, once they return, in handlers that use
  // the ApiContext. Waiting for them again would only delay the exit: their plugins stay PINNED (or
  // loaded, when a reload is stuck), and the ApiContext and the plugin manager are kept until the process
  // exits.
  log->error("stopping: {} call(s) still running; the plugins they use stay loaded", unfinished_.size());
  plugins_->stop(std::chrono::milliseconds::zero());
  processes_->shutdown();  // a call waiting on a child returns once its group is gone
  core::keep_until_exit(std::move(previews_));
  core::keep_until_exit(std::move(runs_));
  core::keep_until_exit(std::move(llm_));
  core::keep_until_exit(std::move(api_));
  log->info("stopped, leaving {} call(s) behind", unfinished_.size());
}

sdk::Result<Application::ConfigReloadReport> Application::reload_config(const config::Config& next,
                                                                        const ReloadTrigger& trigger) {
  std::lock_guard lock(reload_mutex_);
  if (!api_ || !server_) return sdk::Status::failed_precondition("the server is not running");
  auto log = core::logger("kernel");
  auto plugin_changes = plugins_->apply_config(
      next.plugins, [&](const std::string& id, const sdk::Result<plugins::ReloadOutcome>& outcome) {
        audit_plugin_reload(trigger, id, outcome);
      });
  if (!plugin_changes.ok()) {
    // Said outright, so nobody takes a new log level or rate limit for applied.
    const sdk::Status status(
        plugin_changes.status().code(),
        plugin_changes.status().message() +
            "\nno other setting of the file was applied; reload again once this is resolved");
    audit(trigger, "config.reload_rejected", "config", {{"reason", status.message()}});
    return status;
  }
  ConfigReloadReport report;
  report.changes = std::move(plugin_changes).value();
  // Live settings are compared with what the last reload applied, restart-only ones with what the server
  // runs on, so a restart-only change is named again by every reload until the restart.
  bool live_change = false;
  for (const auto& change : changed_settings(reloaded_, next)) {
    if (change.apply != Apply::kLive) continue;
    live_change = true;
    report.applied.push_back(change.path);
    report.changes.push_back(change.path + ": applied");
  }
  for (const auto& change : changed_settings(config_, next)) {
    if (change.apply != Apply::kRestart) continue;
    report.restart_required.push_back(change.path);
    report.changes.push_back(change.path + ": changed in the file; takes effect after a restart");
    log->warn("config reload: {} changed but takes effect only after a restart", change.path);
  }
  if (live_change) {
    // Each of these puts in force every live setting of its part (config_reload.cpp says which); the
    // plugin settings went with apply_config above. Restart-only fields handed over are ignored there.
    if (auto status = api_->apply_security(next.security); !status.ok()) {
      audit(trigger, "config.reload_rejected", "config", {{"reason", status.message()}});
      return status;
    }
    server_->apply_live(next.server, next.log.access_log);
    tasks_->apply_live(std::chrono::milliseconds(next.server.task_pool.call_timeout_ms),
                       std::chrono::milliseconds(next.plugins.drain_timeout_ms));
    core::init_logging(next.log);
  }
  reloaded_ = next;
  log->info("config reloaded ({}): {} change(s), {} waiting for a restart", trigger.name,
            report.changes.size(), report.restart_required.size());
  audit(trigger, "config.reloaded", "config",
        {{"changes", report.changes},
         {"applied", report.applied},
         {"restart_required", report.restart_required}});
  return report;
}

void Application::audit(const ReloadTrigger& trigger, std::string_view action, std::string_view target,
                        nlohmann::json detail) {
  if (!api_) return;
  detail["trigger"] = trigger.name;
  api_->audit_without_request(trigger.actor_id, action, target, trigger.source, std::move(detail));
}

void Application::audit_plugin_reload(const ReloadTrigger& trigger, const std::string& id,
                                      const sdk::Result<plugins::ReloadOutcome>& outcome) {
  auto record = plugin_reload_audit(outcome, trigger.name);
  audit(trigger, record.action, id, std::move(record.detail));
}

sdk::Result<Application::ConfigReloadReport> Application::reload_config_file(const ReloadTrigger& trigger) {
  if (config_.source.empty()) {
    return sdk::Status::failed_precondition(
        "the server runs on its embedded defaults: there is no config file to reload");
  }
  auto next = config::load_config_file(config_.source, config::process_environment());
  if (!next.ok()) {
    auto refusal =
        sdk::Status::invalid_argument("config reload rejected, nothing changed: " + next.status().message());
    audit(trigger, "config.reload_rejected", "config", {{"reason", refusal.message()}});
    return refusal;
  }
  return reload_config(*next, trigger);
}

// With auto_migrate off (an operator who migrates by hand), an outdated schema must stop startup rather
// than fail requests one by one later.
sdk::Status Application::check_schema() const {
  const plugins::Lease lease = storage();
  if (!lease) return {};  // no storage configured: required-plugin rules already decided
  auto schema = lease.call<sdk::Storage>([](sdk::Storage& storage) { return storage.schema_status(); });
  if (!schema.ok()) return schema.status();
  if (schema->current_version < schema->supported_version) {
    return sdk::Status::failed_precondition(
        "database schema version " + std::to_string(schema->current_version) + " is older than " +
        lease.generation().descriptor().id + " needs (" + std::to_string(schema->supported_version) +
        "); run `samokoder db migrate` or set \"auto_migrate\": true");
  }
  return {};
}

plugins::Lease Application::storage() const noexcept {
  return plugins_->acquire_storage();
}

sdk::Status Application::storage_health() const {
  const plugins::Lease lease = storage();
  if (!lease) return sdk::Status::unavailable("no storage plugin is active");
  return lease.call<sdk::Storage>([](sdk::Storage& storage) { return storage.health(); });
}

std::string Application::url() const {
  if (!server_) return {};
  return "http://" + server_->endpoint();
}

}  // namespace samokoder::app
