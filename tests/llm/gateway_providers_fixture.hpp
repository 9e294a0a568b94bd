// GatewayProvidersTest: the LLM gateway wired as the kernel wires it, over the real provider plugins
// (the built llm_openai and llm_anthropic .so files) and the SQLite storage plugin, loaded by the
// kernel's plugin manager with its outbound HTTP service and task scheduler, talking TLS (a CA made at
// test time) to one scripted model server per provider. start() creates a user and stores that user's
// key for each provider, sealed as the key API seals it; each server accepts only that key and the
// server-wide keys differ, so every answer shows the user's key is what went upstream.
//
// Shared by gateway_providers_test.cpp and gateway_reload_test.cpp; small on purpose, so it can fold
// into tests/support/llm_provider_harness later.
//
// Ownership: the fixture owns the servers, services, plugins and gateway; teardown stops the gateway,
// then the plugins, then the scheduler, and the servers go last. Thread-safety: gateway_, the servers
// and the helpers that read storage may be used from any thread once start() returned; start() and
// the config members belong to the test's thread before it.
#pragma once

#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <samokoder/sdk/storage.hpp>

#include "gateway_support.hpp"
#include "llm/gateway.hpp"
#include "llm_provider_harness.hpp"
#include "model_server.hpp"
#include "outbound_http/service.hpp"
#include "scheduling/task_scheduler.hpp"
#include "temp_dir.hpp"

namespace samokoder::llm {

using namespace std::chrono_literals;

inline constexpr std::string_view kOpenAiUserKey = "sk-proj-USERKEY-openai-0123456789abcdef";
inline constexpr std::string_view kAnthropicUserKey = "sk-ant-api03-USERKEY-anthropic-0123456789";
inline constexpr std::string_view kOpenAiServerKey = "sk-proj-SERVERKEY-openai-fedcba9876543210";
inline constexpr std::string_view kAnthropicServerKey = "sk-ant-api03-SERVERKEY-anthropic-987654";

// What the caller of the gateway saw of one call (thread-safe: deltas arrive on HTTP threads).
using Collect = testing::CompletionRecorder;

class GatewayProvidersTest : public ::testing::Test {
 protected:
  GatewayProvidersTest() {
    config_.providers["openai"].api_key = std::string(kOpenAiServerKey);
    config_.providers["anthropic"].api_key = std::string(kAnthropicServerKey);
    config_.roles = {{"default", {"openai/gpt-test"}},
                     {"claude", {"anthropic/claude-test"}},
                     {"fallback", {"openai/gpt-test", "anthropic/claude-test"}}};
    config_.retry_initial_backoff_ms = 1;
    config_.retry_max_backoff_ms = 2000;
    config_.connect_timeout_ms = 5000;
    config_.first_token_timeout_ms = 20000;
    config_.idle_timeout_ms = 20000;
    config_.total_timeout_ms = 60000;
    // USD per million tokens: micro-USD per token.
    config_.prices["openai/gpt-test"] = {
        .prompt_usd_per_mtok = 2.0, .completion_usd_per_mtok = 8.0, .cached_prompt_usd_per_mtok = 0.5};
    config_.prices["anthropic/claude-test"] = {
        .prompt_usd_per_mtok = 3.0, .completion_usd_per_mtok = 15.0, .cached_prompt_usd_per_mtok = 0.25};
    EXPECT_TRUE(ring_.add("k1", std::string(32, 'k')).ok());
    const auto ca_file = dir_.path() / "ca.pem";
    std::ofstream(ca_file) << pki_.ca_cert;
    config::HttpClientConfig http;
    http.extra_ca_file = ca_file.string();
    http_ = std::make_unique<outbound_http::Service>(http, outbound_http::ProxySettings{}, metrics_);
    tasks_ = std::make_unique<scheduling::TaskScheduler>(
        config::WorkPoolConfig{.threads = 2, .queue_limit = 256, .call_timeout_ms = 60000}, 10s, metrics_);
  }

  ~GatewayProvidersTest() override {
    gateway_.reset();
    if (plugins_) plugins_->stop();
    tasks_->stop(std::chrono::steady_clock::now() + 5s);
  }

  // The plugins section start() loads: storage, then each provider pointed at its server.
  config::PluginsConfig plugins_config() const {
    config::PluginsConfig plugins;
    plugins.runtime_dir = dir_.path() / "run";
    config::PluginEntry openai;
    openai.id = "llm.openai";
    openai.file = SAMOKODER_LLM_OPENAI_PLUGIN;
    openai.required = true;
    openai.config = {{"base_url", openai_url_}};
    config::PluginEntry anthropic;
    anthropic.id = "llm.anthropic";
    anthropic.file = SAMOKODER_LLM_ANTHROPIC_PLUGIN;
    anthropic.required = true;
    anthropic.config = {{"base_url", anthropic_url_}};
    plugins.plugins = {support::sqlite_storage_entry(dir_.path()), openai, anthropic};
    return plugins;
  }

  void start() {
    plugins_ = std::make_unique<plugins::PluginManager>(
        plugins_config(), metrics_, clock_,
        plugins::KernelServices{.tasks = tasks_.get(), .http = http_.get()});
    const auto started = plugins_->start();
    ASSERT_TRUE(started.ok()) << started.to_string();
    user_id_ = support::create_user(*plugins_);
    ASSERT_FALSE(user_id_.empty());
    support::store_user_key(*plugins_, ring_, user_id_, "openai", kOpenAiUserKey);
    support::store_user_key(*plugins_, ring_, user_id_, "anthropic", kAnthropicUserKey);
    gateway_ =
        std::make_unique<LlmGateway>(LlmGateway::Dependencies{config_, *plugins_, ring_, metrics_, clock_});
  }

  template <typename F>
  auto storage_call(F&& fn) {
    return support::storage_call(*plugins_, std::forward<F>(fn));
  }

  LlmCall call(std::string role = "default", std::string prompt = "say hello") const {
    LlmCall c;
    c.user_id = user_id_;
    c.role = std::move(role);
    c.messages = {{"user", std::move(prompt), false}};
    c.max_tokens = 256;
    return c;
  }

  sdk::Result<LlmAnswer> complete(const LlmCall& c, sdk::CompletionObserver* observer = nullptr,
                                  sdk::CancelToken cancel = sdk::never_cancelled()) {
    return gateway_->complete(c, observer, std::move(cancel));
  }

  // The user's recorded attempts, oldest first.
  std::vector<sdk::LlmRequest> records() { return support::records_of(*plugins_, user_id_); }

  const testing::TestPki pki_ = testing::make_pki();
  testing::ScriptedModelServer openai_server_{{.tls = &pki_, .expected_key = std::string(kOpenAiUserKey)}};
  testing::ScriptedModelServer anthropic_server_{
      {.tls = &pki_,
       .expected_key = std::string(kAnthropicUserKey),
       .models = {"claude-a", "claude-b", "claude-c", "claude-d", "claude-e"},
       .models_page_size = 2}};
  std::string openai_url_ = openai_server_.url("/v1");
  std::string anthropic_url_ = anthropic_server_.url("");
  testing::TempDir dir_{"samokoder-llm-gateway-providers"};
  config::LlmConfig config_ = config::default_llm_config();
  metrics::Registry metrics_;
  core::SystemClock clock_;
  security::KeyRing ring_;
  std::unique_ptr<outbound_http::Service> http_;
  std::unique_ptr<scheduling::TaskScheduler> tasks_;
  std::unique_ptr<plugins::PluginManager> plugins_;
  std::unique_ptr<LlmGateway> gateway_;
  std::string user_id_;
};

}  // namespace samokoder::llm
