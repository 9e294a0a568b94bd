// The runner engine the process and sandbox preview runners share: it decides how to run a workspace
// (the npm script or Python entry point, or the project's own command), installs its dependencies,
// launches the app, probes it until it answers HTTP, restarts it after a crash or a change of files,
// and keeps its logs. A runner plugin derives from EngineRunner and supplies only its Containment, the
// part that decides how the children are confined (containment.hpp):
//
//   class ProcessRunner final : public preview_common::EngineRunner {
//     sdk::Result<std::unique_ptr<preview_common::Containment>> make_containment(...) override {
//       return preview_common::make_plain_containment();
//     }
//   };
//
// Every slow step (install, launch, readiness probe, crash backoff, reaping a stopped child) runs on
// the plugin's scheduler (HostServices::scheduler()), one short timer tick at a time, so no call of
// the PreviewRunner interface waits for the app and no pool thread is held for the length of an install.
//
// Ownership: the kernel owns the runner; the runner owns its Containment, its previews' children and
// their logs. Options are plain values.
// Thread-safety: as sdk::PreviewRunner, every method may be called concurrently (one mutex guards the
// previews; no blocking call is made under it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/preview_common/containment.hpp>
#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/preview.hpp>
#include <samokoder/sdk/process.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::preview_common {

// The engine's part of a runner plugin's config object (README.md of plugins/preview/process lists
// the keys with their defaults).
struct RunnerOptions {
  std::string node = "/usr/bin/node";                 // its directory leads PATH unless a system one
  std::string npm = "/usr/bin/npm";                   // runs `install` and `run <script>`
  std::string python = "/usr/bin/python3";            // runs the app and creates the .venv
  std::chrono::milliseconds ready_timeout{60000};     // launch to the first HTTP answer
  std::chrono::milliseconds install_timeout{300000};  // each install step
  std::chrono::milliseconds probe_interval{100};      // also the period of the engine's ticks
  std::uint32_t max_restarts = 5;                     // crash restarts within restart_window
  std::chrono::milliseconds restart_window{600000};
  std::chrono::milliseconds restart_backoff{1000};       // after the first crash; doubles each time
  std::chrono::milliseconds restart_backoff_max{30000};  // the doubling stops here
  std::size_t log_buffer_bytes = 256 * 1024;             // kept per preview
  sdk::ProcessLimits limits;                             // for the install and the app
};

// Reads `config` strictly: a key that is neither the engine's nor in `other_keys` (the keys the
// deriving runner reads itself, see EngineRunner::containment_config_keys), or a value of the wrong
// type or range, is kInvalidArgument naming the key.
sdk::Result<RunnerOptions> parse_runner_options(const nlohmann::json& config,
                                                const std::vector<std::string>& other_keys = {});

// A PreviewRunner built on the engine; a runner plugin derives from it and supplies its containment.
class EngineRunner : public sdk::PreviewRunner {
 public:
  EngineRunner();
  ~EngineRunner() override;

  // Parses the options, make_containment(), then containment->check_machine().
  sdk::Status init(sdk::HostServices& host) override;
  // Stops every preview and waits (bounded) until their children are gone.
  void shutdown() noexcept override;

  sdk::Result<sdk::PreviewStatus> start(const sdk::PreviewSpec& spec) override;
  sdk::Status stop(std::string_view project_id) override;
  sdk::Result<sdk::PreviewStatus> status(std::string_view project_id) override;
  sdk::Result<sdk::PreviewLog> logs(std::string_view project_id, std::uint64_t after,
                                    std::size_t max_bytes) override;
  sdk::Status files_changed(std::string_view project_id, const std::vector<std::string>& paths) override;
  // An agent's command, confined as this runner confines a dependency install (Step::kInstall: the
  // network an install gets, no endpoint, no bridge); the cleanup is the Launch's. The command's argv,
  // environment and limits are its own: the runner's install options do not apply to it.
  sdk::Result<sdk::ContainedCommand> contain_command(const sdk::ProcessSpec& command,
                                                     std::string_view project_id) override;

 protected:
  // Called once from init() with the plugin's whole config object; a failure fails init.
  virtual sdk::Result<std::unique_ptr<Containment>> make_containment(sdk::HostServices& host,
                                                                     const nlohmann::json& config) = 0;
  // Top-level keys of the config object that make_containment reads, so the strict option parser
  // lets them through.
  virtual std::vector<std::string> containment_config_keys() const { return {}; }

 private:
  class Engine;
  std::unique_ptr<Engine> engine_;
};

// The pass-through containment of the process runner: the child as given, endpoint = 127.0.0.1:port.
std::unique_ptr<Containment> make_plain_containment();

}  // namespace samokoder::preview_common
