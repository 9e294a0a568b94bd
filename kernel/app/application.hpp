// Application: the running kernel. It wires config, metrics, the plugin manager and the HTTP server
// together and owns them, in the order they must start and stop.
//
// start() loads the plugins (a failing `required` plugin stops startup with its reason), then binds
// and starts the HTTP server. stop() is the graceful shutdown of DESIGN 7: stop accepting, drain
// requests, unload plugins.
//
// Ownership: owns everything it creates; the Clock passed in must outlive it.
// Thread-safety: construct, start, stop and destroy from one controlling thread (main); the
// accessors are safe from any thread after start().
#pragma once

#include <memory>

#include <samokoder/sdk/status.hpp>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"

namespace samokoder::app {

class Application {
 public:
  Application(config::Config config, const core::Clock& clock);
  ~Application();
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  sdk::Status start();
  void stop();

  std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }
  // "http://127.0.0.1:8080"
  std::string url() const;

  const config::Config& config() const noexcept { return config_; }
  metrics::Registry& metrics() noexcept { return metrics_; }
  plugins::PluginManager& plugins() noexcept { return *plugins_; }

 private:
  std::shared_ptr<http::Router> build_router();

  const config::Config config_;
  const core::Clock& clock_;
  metrics::Registry metrics_;
  std::unique_ptr<plugins::PluginManager> plugins_;
  std::unique_ptr<http::Server> server_;
  bool started_ = false;
};

}  // namespace samokoder::app
