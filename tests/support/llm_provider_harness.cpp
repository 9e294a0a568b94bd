#include "llm_provider_harness.hpp"

#include <fstream>
#include <utility>

#include "outbound_http/service.hpp"
#include "scheduling/task_scheduler.hpp"

namespace samokoder::testing {

using namespace std::chrono_literals;

bool CompletionRecorder::on_delta(std::string_view text) {
  std::lock_guard lock(mutex_);
  deltas_.emplace_back(text);
  return !stop_after_ || deltas_.size() < *stop_after_;
}

void CompletionRecorder::on_retry_after(std::chrono::milliseconds delay) {
  std::lock_guard lock(mutex_);
  retry_after_ = delay;
}

void CompletionRecorder::on_usage(const sdk::TokenUsage& usage) {
  std::lock_guard lock(mutex_);
  usages_.push_back(usage);
}

std::vector<std::string> CompletionRecorder::deltas() const {
  std::lock_guard lock(mutex_);
  return deltas_;
}

std::string CompletionRecorder::text() const {
  std::string joined;
  for (const auto& piece : deltas())
    joined += piece;
  return joined;
}

std::optional<std::chrono::milliseconds> CompletionRecorder::retry_after() const {
  std::lock_guard lock(mutex_);
  return retry_after_;
}

std::vector<sdk::TokenUsage> CompletionRecorder::usages() const {
  std::lock_guard lock(mutex_);
  return usages_;
}

LlmProviderHarness::LlmProviderHarness(std::string plugin_id, std::filesystem::path plugin_file)
    : plugin_id_(std::move(plugin_id)),
      plugin_file_(std::move(plugin_file)),
      pki_(make_pki()),
      dir_("samokoder-" + plugin_id_) {
  const auto ca_file = dir_.path() / "ca.pem";
  std::ofstream(ca_file) << pki_.ca_cert;
  config::HttpClientConfig http;
  http.extra_ca_file = ca_file.string();
  service_ = std::make_unique<outbound_http::Service>(http, outbound_http::ProxySettings{}, registry_);
  tasks_ = std::make_unique<scheduling::TaskScheduler>(
      config::WorkPoolConfig{.threads = 2, .queue_limit = 256, .call_timeout_ms = 60000}, 10s, registry_);
}

LlmProviderHarness::~LlmProviderHarness() {
  unload();
  tasks_->stop(std::chrono::steady_clock::now() + 5s);
}

sdk::Status LlmProviderHarness::load(nlohmann::json config) {
  unload();
  config::PluginEntry entry;
  entry.id = plugin_id_;
  entry.file = plugin_file_.string();
  entry.config = std::move(config);
  config::PluginsConfig plugins;
  plugins.runtime_dir = dir_.path() / "run";
  plugins.plugins = {entry};
  manager_ = std::make_unique<plugins::PluginManager>(
      plugins, registry_, clock_, plugins::KernelServices{.tasks = tasks_.get(), .http = service_.get()});
  return manager_->start();
}

::testing::AssertionResult LlmProviderHarness::start(nlohmann::json config) {
  const sdk::Status loaded = load(std::move(config));
  if (!loaded.ok()) return ::testing::AssertionFailure() << "the manager failed: " << loaded.to_string();
  const auto plugin = info();
  if (!plugin) return ::testing::AssertionFailure() << plugin_id_ << " is unknown";
  if (plugin->state != plugins::PluginState::kActive)
    return ::testing::AssertionFailure() << plugin_id_ << " is not active: " << plugin->failure_message;
  return ::testing::AssertionSuccess();
}

void LlmProviderHarness::unload() {
  if (!manager_) return;
  manager_->stop();
  manager_.reset();
}

std::optional<plugins::PluginInfo> LlmProviderHarness::info() const {
  if (!manager_) return std::nullopt;
  return manager_->find(plugin_id_);
}

sdk::Result<sdk::Completion> LlmProviderHarness::complete(const sdk::CompletionRequest& request,
                                                          sdk::CompletionObserver* observer,
                                                          sdk::CancelToken cancel) {
  auto lease = manager_->acquire(plugin_id_);
  return lease.call<sdk::LlmProvider>(
      [&](sdk::LlmProvider& llm) { return llm.complete(request, observer, cancel); });
}

sdk::Result<std::vector<sdk::ModelInfo>> LlmProviderHarness::list_models(const std::string& base_url,
                                                                         const std::string& key) {
  auto lease = manager_->acquire(plugin_id_);
  return lease.call<sdk::LlmProvider>([&](sdk::LlmProvider& llm) {
    return llm.list_models({.api_key = key, .base_url = base_url}, sdk::never_cancelled());
  });
}

}  // namespace samokoder::testing
