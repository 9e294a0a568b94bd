// PreviewRunnerHarness: one PreviewRunner plugin as the kernel runs it, for tests: the built .so loaded
// by the real plugin manager, its children started by the kernel's real process service (process
// groups, clean environment, kill grace, the on-disk journal in a temporary directory), its ticks on the
// kernel's real task scheduler. The preview runner suites (plugins/preview/*/tests) drive it; so can any
// suite that needs a real runner behind it (the kernel's preview routes, the sandbox runner).
//
// free_port(): a loopback TCP port nothing listens on right now, as the kernel would allocate one.
// http_get(): a plain GET against 127.0.0.1:port or a Unix socket, for checking what a preview serves.
//
// Ownership: the harness owns a temporary directory, the metrics registry, the process service, the
// scheduler and the plugin manager; the destructor unloads the plugin (whose shutdown stops its
// previews), then stops the scheduler and the process service. Results it returns own nothing of it.
// Thread-safety: load(), start_plugin() and unload() belong to the test's thread; the runner calls
// (start, stop, status, logs, files_changed, wait_for_state, run_contained_command) may run from any
// thread while the plugin is loaded (each holds a lease for the call).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <samokoder/sdk/preview.hpp>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"

namespace samokoder::processes {
class ProcessService;
}
namespace samokoder::scheduling {
class TaskScheduler;
}

namespace samokoder::testing {

class PreviewRunnerHarness {
 public:
  // `plugin_id` as configured ("preview.process"); `plugin_file` the built .so. `processes` configures
  // the kernel's process service; its state_dir is replaced by one inside the harness's directory, and
  // the default kill grace is short (1 s) so tests of stubborn children stay fast.
  PreviewRunnerHarness(std::string plugin_id, std::filesystem::path plugin_file,
                       std::optional<config::ProcessesConfig> processes = std::nullopt);
  ~PreviewRunnerHarness();
  PreviewRunnerHarness(const PreviewRunnerHarness&) = delete;
  PreviewRunnerHarness& operator=(const PreviewRunnerHarness&) = delete;

  const std::string& plugin_id() const noexcept { return plugin_id_; }
  metrics::Registry& registry() noexcept { return registry_; }
  const config::ProcessesConfig& processes_config() const noexcept { return processes_config_; }
  // A scratch directory that lives as long as the harness (workspaces go here).
  const std::filesystem::path& dir() const noexcept { return dir_.path(); }

  // Loads the plugin with `config` as its section, replacing what was loaded before. The Status is the
  // manager's; info() tells whether the plugin's init succeeded.
  sdk::Status load(nlohmann::json config = nlohmann::json::object());
  // load() and the plugin active, or why not (its failure message).
  ::testing::AssertionResult start_plugin(nlohmann::json config = nlohmann::json::object());
  // Stops and forgets the loaded plugin (its shutdown stops every preview).
  void unload();
  std::optional<plugins::PluginInfo> info() const;

  sdk::Result<sdk::PreviewStatus> start(const sdk::PreviewSpec& spec);
  sdk::Status stop(std::string_view project_id);
  sdk::Result<sdk::PreviewStatus> status(std::string_view project_id);
  sdk::Result<sdk::PreviewLog> logs(std::string_view project_id, std::uint64_t after, std::size_t max_bytes);
  sdk::Status files_changed(std::string_view project_id, const std::vector<std::string>& paths);

  // An agent's command as the kernel's runs engine runs it: the runner's contain_command, the contained
  // spec run to its end through the kernel's process service, then the cleanup, all under one lease
  // (both are the runner's code). `before_cleanup` sees the contained command once the child ended and
  // before its cleanup runs. Errors are contain_command's, then the process service's.
  sdk::Result<sdk::ProcessResult> run_contained_command(
      const sdk::ProcessSpec& command, std::string_view project_id,
      const std::function<void(const sdk::ContainedCommand&)>& before_cleanup = {});

  // Polls status() until the preview is in `state` (success, with the status) or `timeout` passed, or it
  // reached another final state (kFailed or kStopped when waiting for something else): then a failure
  // naming the last status and the log's tail.
  ::testing::AssertionResult wait_for_state(std::string_view project_id, sdk::PreviewState state,
                                            std::chrono::milliseconds timeout,
                                            sdk::PreviewStatus* out = nullptr);

 private:
  std::string plugin_id_;
  std::filesystem::path plugin_file_;
  TempDir dir_;
  metrics::Registry registry_;
  core::SystemClock clock_;
  config::ProcessesConfig processes_config_;
  std::unique_ptr<processes::ProcessService> processes_;
  std::unique_ptr<scheduling::TaskScheduler> tasks_;
  std::unique_ptr<plugins::PluginManager> manager_;
};

// A loopback port that was free a moment ago (bound to port 0, then closed).
std::uint16_t free_port();

struct HttpAnswer {
  int status = 0;  // 0: no HTTP answer (refused, timed out, not HTTP)
  std::string body;
};
// GET `target` from 127.0.0.1:endpoint.port, or from endpoint.socket_path when set; HTTP/1.0, so the
// body runs to the end of the connection.
HttpAnswer http_get(const sdk::PreviewEndpoint& endpoint, std::string_view target = "/",
                    std::chrono::milliseconds timeout = std::chrono::seconds(2));

const char* state_name(sdk::PreviewState state);

}  // namespace samokoder::testing
