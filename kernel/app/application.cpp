#include "app/application.hpp"

#include "app/ops_routes.hpp"
#include "core/logging.hpp"

namespace samokoder::app {

Application::Application(config::Config config, const core::Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      plugins_(std::make_unique<plugins::PluginManager>(config_.plugins, metrics_, clock_)) {}

Application::~Application() {
  stop();
}

std::shared_ptr<http::Router> Application::build_router() {
  auto router = std::make_shared<http::Router>();
  add_ops_routes(*router, *plugins_, metrics_);
  return router;
}

sdk::Status Application::start() {
  if (started_) return sdk::Status::failed_precondition("already started");
  auto log = core::logger("kernel");
  SAMOKODER_RETURN_IF_ERROR(plugins_->start());
  server_ = std::make_unique<http::Server>(config_.server, config_.environment, build_router(), metrics_,
                                           http::ServerOptions{.access_log = config_.log.access_log});
  if (auto status = server_->start(); !status.ok()) {
    server_.reset();
    plugins_->stop();
    return status;
  }
  started_ = true;
  log->info("serving on {} ({} I/O threads, {} worker threads)", url(), config_.server.io_threads,
            config_.server.worker_threads);
  return {};
}

void Application::stop() {
  if (!started_) return;
  started_ = false;
  auto log = core::logger("kernel");
  log->info("stopping: draining HTTP requests");
  server_->stop();  // no request can reach a plugin after this returns
  server_.reset();
  log->info("stopping: unloading plugins");
  plugins_->stop();
  log->info("stopped");
}

std::string Application::url() const {
  if (!server_) return {};
  return "http://" + server_->endpoint();
}

}  // namespace samokoder::app
