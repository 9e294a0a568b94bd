// LlmProviderHarness: one LLM provider plugin as the kernel runs it, for tests: the built .so loaded by
// the real plugin manager, its HTTP going through the kernel's outbound HTTP service (which trusts the
// CA of pki(), so a ScriptedModelServer given that PKI serves it over TLS), its first-token timers on
// the kernel's task scheduler. The provider conformance suite (llm_provider_conformance.hpp) and each
// provider plugin's own tests drive it; so can any suite that wants a real provider behind it.
//
// CompletionRecorder: a CompletionObserver that keeps what a provider told its caller, and can stop the
// call after a number of pieces.
//
// Ownership: the harness owns the PKI, a temporary directory, the metrics registry, the HTTP service,
// the scheduler and the plugin manager; the destructor stops the plugin, then the scheduler. A Result
// or Status it returned owns nothing of it. Thread-safety: load(), start() and unload() belong to the
// test's thread; complete() and list_models() may run from any number of threads at once while the
// plugin is loaded (each holds a lease for the call). CompletionRecorder may be fed from one thread
// and read from another.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <samokoder/sdk/llm.hpp>

#include "core/clock.hpp"
#include "loopback_http.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"

namespace samokoder::outbound_http {
class Service;
}
namespace samokoder::scheduling {
class TaskScheduler;
}

namespace samokoder::testing {

class CompletionRecorder final : public sdk::CompletionObserver {
 public:
  bool on_delta(std::string_view text) override;
  void on_retry_after(std::chrono::milliseconds delay) override;
  void on_usage(const sdk::TokenUsage& usage) override;

  // on_delta answers "stop" once this many pieces arrived. Set before the call starts.
  void stop_after(std::size_t pieces) { stop_after_ = pieces; }

  std::vector<std::string> deltas() const;
  std::string text() const;  // the deltas joined
  std::optional<std::chrono::milliseconds> retry_after() const;
  std::vector<sdk::TokenUsage> usages() const;  // every report, in order

 private:
  mutable std::mutex mutex_;
  std::optional<std::size_t> stop_after_;
  std::vector<std::string> deltas_;
  std::optional<std::chrono::milliseconds> retry_after_;
  std::vector<sdk::TokenUsage> usages_;
};

class LlmProviderHarness {
 public:
  // `plugin_id` as configured ("llm.openai"); `plugin_file` the built .so.
  LlmProviderHarness(std::string plugin_id, std::filesystem::path plugin_file);
  ~LlmProviderHarness();
  LlmProviderHarness(const LlmProviderHarness&) = delete;
  LlmProviderHarness& operator=(const LlmProviderHarness&) = delete;

  const std::string& plugin_id() const noexcept { return plugin_id_; }
  // The PKI whose CA the outbound HTTP service trusts: hand it to the ScriptedModelServer for TLS.
  const TestPki& pki() const noexcept { return pki_; }
  metrics::Registry& registry() noexcept { return registry_; }

  // Loads the plugin with `config` as its section, replacing what was loaded before. The Status is
  // the manager's: a provider whose init fails is optional, so that is still ok, and info() tells.
  sdk::Status load(nlohmann::json config = nlohmann::json::object());
  // load() and the plugin active, or why not (its failure message).
  ::testing::AssertionResult start(nlohmann::json config = nlohmann::json::object());
  // Stops and forgets the loaded plugin (nothing when none is).
  void unload();
  // What the manager knows of the plugin; empty before load().
  std::optional<plugins::PluginInfo> info() const;

  sdk::Result<sdk::Completion> complete(const sdk::CompletionRequest& request,
                                        sdk::CompletionObserver* observer,
                                        sdk::CancelToken cancel = sdk::never_cancelled());
  sdk::Result<std::vector<sdk::ModelInfo>> list_models(const std::string& base_url, const std::string& key);

 private:
  std::string plugin_id_;
  std::filesystem::path plugin_file_;
  const TestPki pki_;
  TempDir dir_;
  metrics::Registry registry_;
  core::SystemClock clock_;
  std::unique_ptr<outbound_http::Service> service_;
  std::unique_ptr<scheduling::TaskScheduler> tasks_;
  std::unique_ptr<plugins::PluginManager> manager_;
};

}  // namespace samokoder::testing
