// llm.openai as the kernel runs it: the built .so loaded by the real plugin manager, its HTTP going
// through the kernel's outbound HTTP service (TLS with a CA made at test time), its first-token timers
// on the kernel's task scheduler, against the scripted model server answering in the OpenAI Chat
// Completions format and misbehaving on demand. Waits poll with deadlines; nothing asserts a duration.
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <samokoder/sdk/llm.hpp>

#include "core/clock.hpp"
#include "core/logging.hpp"
#include "model_server.hpp"
#include "outbound_http/service.hpp"
#include "plugins/plugin_manager.hpp"
#include "scheduling/task_scheduler.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::llm_openai {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::ModelReply;
using ::testing::Not;
using testing::ScriptedModelServer;
using testing::ScriptedUsage;
using testing::wait_until;

constexpr std::string_view kPluginId = "llm.openai";
constexpr const char* kKey = "sk-proj-SECRETKEY-0123456789abcdef";
constexpr auto kPatience = 20s;

// Records what the provider tells its caller; on_delta can stop the call after `stop_after` pieces.
class Recorder final : public sdk::CompletionObserver {
 public:
  bool on_delta(std::string_view text) override {
    std::lock_guard lock(mutex_);
    deltas_.emplace_back(text);
    return !stop_after_ || deltas_.size() < *stop_after_;
  }
  void on_retry_after(std::chrono::milliseconds delay) override {
    std::lock_guard lock(mutex_);
    retry_after_ = delay;
  }
  void on_usage(const sdk::TokenUsage& usage) override {
    std::lock_guard lock(mutex_);
    usages_.push_back(usage);
  }

  void stop_after(std::size_t pieces) { stop_after_ = pieces; }
  std::vector<std::string> deltas() const {
    std::lock_guard lock(mutex_);
    return deltas_;
  }
  std::string text() const {
    std::string joined;
    for (const auto& piece : deltas())
      joined += piece;
    return joined;
  }
  std::optional<std::chrono::milliseconds> retry_after() const {
    std::lock_guard lock(mutex_);
    return retry_after_;
  }
  std::vector<sdk::TokenUsage> usages() const {
    std::lock_guard lock(mutex_);
    return usages_;
  }

 private:
  mutable std::mutex mutex_;
  std::optional<std::size_t> stop_after_;
  std::vector<std::string> deltas_;
  std::optional<std::chrono::milliseconds> retry_after_;
  std::vector<sdk::TokenUsage> usages_;
};

class OpenAiPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto ca_file = dir_.path() / "ca.pem";
    std::ofstream(ca_file) << pki_.ca_cert;
    config::HttpClientConfig http;
    http.extra_ca_file = ca_file.string();
    service_ = std::make_unique<outbound_http::Service>(http, outbound_http::ProxySettings{}, registry_);
    tasks_ = std::make_unique<scheduling::TaskScheduler>(
        config::WorkPoolConfig{.threads = 2, .queue_limit = 256, .call_timeout_ms = 60000}, 10s, registry_);
  }

  void TearDown() override {
    if (manager_) manager_->stop();
    tasks_->stop(std::chrono::steady_clock::now() + 5s);
  }

  // Loads the plugin with `config` as its section; the load's outcome is for the test to check.
  sdk::Status load(json config = json::object()) {
    config::PluginEntry entry;
    entry.id = std::string(kPluginId);
    entry.file = SAMOKODER_LLM_OPENAI_PLUGIN;
    entry.config = std::move(config);
    config::PluginsConfig plugins;
    plugins.runtime_dir = dir_.path() / "run";
    plugins.plugins = {entry};
    manager_ = std::make_unique<plugins::PluginManager>(
        plugins, registry_, clock_, plugins::KernelServices{.tasks = tasks_.get(), .http = service_.get()});
    return manager_->start();
  }
  void start(json config = json::object()) {
    ASSERT_TRUE(load(std::move(config)).ok());
    const auto info = manager_->find(kPluginId);
    ASSERT_TRUE(info && info->state == plugins::PluginState::kActive)
        << (info ? info->failure_message : "the plugin is unknown");
  }

  static sdk::CompletionRequest request_to(const ScriptedModelServer& server) {
    sdk::CompletionRequest request;
    request.model = "gpt-test";
    request.system = "be brief";
    request.messages = {{"user", "say hello"}};
    request.api_key = kKey;
    request.base_url = server.url("/v1");
    return request;
  }

  sdk::Result<sdk::Completion> complete(const sdk::CompletionRequest& request,
                                        sdk::CompletionObserver* observer,
                                        sdk::CancelToken cancel = sdk::never_cancelled()) {
    auto lease = manager_->acquire(kPluginId);
    return lease.call<sdk::LlmProvider>(
        [&](sdk::LlmProvider& llm) { return llm.complete(request, observer, cancel); });
  }

  sdk::Result<std::vector<sdk::ModelInfo>> list_models(const std::string& base_url, const std::string& key) {
    auto lease = manager_->acquire(kPluginId);
    return lease.call<sdk::LlmProvider>([&](sdk::LlmProvider& llm) {
      return llm.list_models({.api_key = key, .base_url = base_url}, sdk::never_cancelled());
    });
  }

  // The reply the scripted server streams: pieces of text with usage that has cached prompt tokens.
  static ModelReply streamed(std::vector<std::string> deltas) {
    ModelReply reply;
    reply.deltas = std::move(deltas);
    reply.model = "gpt-answered";
    reply.usage = ScriptedUsage{.prompt_tokens = 100, .completion_tokens = 7, .cached_prompt_tokens = 60};
    return reply;
  }

  static void expect_full_usage(const sdk::TokenUsage& usage) {
    EXPECT_EQ(usage.prompt_tokens, 100u);
    EXPECT_EQ(usage.completion_tokens, 7u);
    EXPECT_EQ(usage.cached_prompt_tokens, 60u) << "prompt_tokens_details.cached_tokens";
    EXPECT_EQ(usage.cache_write_tokens, 0u);
    EXPECT_FALSE(usage.estimated);
  }

  const testing::TestPki pki_ = testing::make_pki();
  testing::TempDir dir_{"samokoder-llm-openai"};
  metrics::Registry registry_;
  core::SystemClock clock_;
  std::unique_ptr<outbound_http::Service> service_;
  std::unique_ptr<scheduling::TaskScheduler> tasks_;
  std::unique_ptr<plugins::PluginManager> manager_;
};

// ---- a streamed answer ---------------------------------------------------------------------------

TEST_F(OpenAiPluginTest, StreamsAnAnswerOverTlsWithDeltasUsageAndCachedTokens) {
  ScriptedModelServer server({.tls = &pki_, .expected_key = kKey});
  server.script({streamed({"Hel", "lo, ", "world"})});
  start();
  Recorder recorder;
  auto request = request_to(server);
  request.temperature = 0.25;
  request.max_tokens = 321;
  ASSERT_THAT(request.base_url, HasSubstr("https://"));

  auto completion = complete(request, &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "Hello, world");
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"Hel", "lo, ", "world"}));
  EXPECT_EQ(completion->finish_reason, "stop");
  EXPECT_EQ(completion->model, "gpt-answered");
  expect_full_usage(completion->usage);
  ASSERT_FALSE(recorder.usages().empty());
  expect_full_usage(recorder.usages().back());

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].method, "POST");
  EXPECT_EQ(calls[0].path, "/v1/chat/completions");
  EXPECT_EQ(calls[0].headers.at("authorization"), std::string("Bearer ") + kKey);
  EXPECT_THAT(calls[0].headers.at("content-type"), HasSubstr("application/json"));
  const json& body = calls[0].body;
  EXPECT_EQ(body["model"], "gpt-test");
  EXPECT_EQ(body["max_tokens"], 321);
  EXPECT_EQ(body["temperature"], 0.25);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"], json::parse(R"({"include_usage": true})"));
  EXPECT_EQ(body["messages"], json::parse(R"([{"role": "system", "content": "be brief"},
                                              {"role": "user", "content": "say hello"}])"));
  EXPECT_FALSE(body.contains("response_format"));
}

TEST_F(OpenAiPluginTest, TheSystemPromptComesFirstAndTheConversationKeepsItsOrder) {
  ScriptedModelServer server;
  server.script({streamed({"ok"}), streamed({"ok"})});
  start();
  auto request = request_to(server);
  request.system = "you are a coder";
  request.messages = {{"user", "one"}, {"assistant", "two"}, {"user", "three"}};
  request.temperature.reset();
  ASSERT_TRUE(complete(request, nullptr).ok());
  request.system.clear();
  ASSERT_TRUE(complete(request, nullptr).ok());

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].body["messages"], json::parse(R"([{"role": "system", "content": "you are a coder"},
                                                      {"role": "user", "content": "one"},
                                                      {"role": "assistant", "content": "two"},
                                                      {"role": "user", "content": "three"}])"));
  EXPECT_FALSE(calls[0].body.contains("temperature")) << "unset: the endpoint's default";
  EXPECT_EQ(calls[1].body["messages"][0]["role"], "user") << "no empty system message";
}

TEST_F(OpenAiPluginTest, AStreamSplitIntoSingleBytesGivesTheSameAnswer) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"h\xC3\xA9llo ", "w\xE2\x9C\x93rld"});  // UTF-8 split mid-sequence too
  reply.split_bytes = 1;
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "h\xC3\xA9llo w\xE2\x9C\x93rld");
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"h\xC3\xA9llo ", "w\xE2\x9C\x93rld"}));
  EXPECT_EQ(completion->finish_reason, "stop");
  expect_full_usage(completion->usage);
}

TEST_F(OpenAiPluginTest, EventsMergedIntoOneReadAllArrive) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"one ", "two ", "three"});
  reply.merge_events = true;
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "one two three");
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"one ", "two ", "three"}));
  expect_full_usage(completion->usage);
}

TEST_F(OpenAiPluginTest, KeepAliveCommentsBetweenEventsAreIgnored) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b"});
  reply.keep_alives = true;
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "ab");
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"a", "b"}));
  expect_full_usage(completion->usage);
}

TEST_F(OpenAiPluginTest, FinishReasonsAreNormalised) {
  ScriptedModelServer server;
  ModelReply length = streamed({"cut"});
  length.finish_reason = "length";
  ModelReply tools = streamed({"call"});
  tools.finish_reason = "tool_calls";
  ModelReply filtered = streamed({"no"});
  filtered.finish_reason = "content_filter";
  server.script({length, tools, filtered});
  start();
  for (const char* expected : {"length", "tool_use", "content_filter"}) {
    auto completion = complete(request_to(server), nullptr);
    ASSERT_TRUE(completion.ok()) << completion.status().to_string();
    EXPECT_EQ(completion->finish_reason, expected);
  }
}

TEST_F(OpenAiPluginTest, AnAnswerWithoutUsageIsEstimated) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"twelve chars"});
  reply.usage.reset();
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_TRUE(completion->usage.estimated);
  EXPECT_EQ(completion->usage.completion_tokens, 3u);
  EXPECT_EQ(completion->usage.prompt_tokens, 5u) << "\"be brief\" and \"say hello\": 17 characters";
  ASSERT_FALSE(recorder.usages().empty());
  EXPECT_TRUE(recorder.usages().back().estimated);
}

TEST_F(OpenAiPluginTest, StreamUsageOffSendsNoStreamOptionsAndEstimates) {
  ScriptedModelServer server;
  server.script({streamed({"twelve chars"})});
  start({{"stream_usage", false}});
  auto completion = complete(request_to(server), nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_TRUE(completion->usage.estimated) << "the server sends usage only when asked";
  EXPECT_EQ(completion->usage.completion_tokens, 3u);
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].body.contains("stream_options"));
}

// ---- failures inside the stream --------------------------------------------------------------------

TEST_F(OpenAiPluginTest, AMalformedChunkFailsInternalAndTheSpentTokensAreStillReported) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"abcd", "b", "c"});
  reply.malformed_after = 1;
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kInternal) << completion.status().to_string();
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"abcd"}));
  ASSERT_FALSE(recorder.usages().empty()) << "the received text is accounted";
  EXPECT_TRUE(recorder.usages().back().estimated);
  EXPECT_EQ(recorder.usages().back().completion_tokens, 1u);
}

TEST_F(OpenAiPluginTest, AnErrorObjectInTheStreamMapsByItsType) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b"});
  reply.error_after = 1;
  reply.error_message = "The server had an error while processing your request";
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kUnavailable) << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), HasSubstr("server_error"));
  EXPECT_THAT(completion.status().message(), HasSubstr("had an error while processing"));
  EXPECT_EQ(recorder.text(), "a");
  EXPECT_FALSE(recorder.usages().empty());
}

TEST_F(OpenAiPluginTest, AConnectionClosedMidStreamIsUnavailable) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b", "c"});
  reply.close_after = 2;
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kUnavailable) << completion.status().to_string();
  EXPECT_EQ(recorder.text(), "ab");
  ASSERT_FALSE(recorder.usages().empty());
  EXPECT_GE(recorder.usages().back().completion_tokens, 1u) << "the received text is accounted";
}

TEST_F(OpenAiPluginTest, AConnectionClosedBeforeAnyAnswerIsUnavailable) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.close_before_headers = true;
  server.script({reply});
  start();
  auto completion = complete(request_to(server), nullptr);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kUnavailable) << completion.status().to_string();
}

// ---- HTTP errors -----------------------------------------------------------------------------------

TEST_F(OpenAiPluginTest, RateLimitedIsResourceExhaustedWithTheRetryAfterDelay) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.status = 429;
  reply.retry_after_seconds = 7;
  reply.error_message = "Rate limit reached for gpt-test in organization org-x on requests per min";
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kResourceExhausted)
      << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), HasSubstr("Rate limit reached for gpt-test"));
  EXPECT_EQ(recorder.retry_after(), std::chrono::milliseconds(7000));
}

TEST_F(OpenAiPluginTest, A503IsUnavailableWithItsRetryAfter) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.status = 503;
  reply.retry_after_seconds = 3;
  reply.error_message = "The engine is currently overloaded";
  server.script({reply});
  start();
  Recorder recorder;
  auto completion = complete(request_to(server), &recorder);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kUnavailable) << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), HasSubstr("503"));
  EXPECT_THAT(completion.status().message(), HasSubstr("currently overloaded"));
  EXPECT_EQ(recorder.retry_after(), std::chrono::milliseconds(3000));
}

TEST_F(OpenAiPluginTest, ARefusedKeyIsUnauthenticatedAndNotQuoted) {
  ScriptedModelServer server({.expected_key = "sk-the-right-one"});
  start();
  auto completion = complete(request_to(server), nullptr);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kUnauthenticated) << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), Not(HasSubstr(kKey)));
}

TEST_F(OpenAiPluginTest, EveryHttpErrorMapsToTheGatewaysStatus) {
  const std::vector<std::pair<unsigned, sdk::StatusCode>> cases = {
      {400, sdk::StatusCode::kInvalidArgument},  {401, sdk::StatusCode::kUnauthenticated},
      {403, sdk::StatusCode::kPermissionDenied}, {404, sdk::StatusCode::kInvalidArgument},
      {422, sdk::StatusCode::kInvalidArgument},  {500, sdk::StatusCode::kUnavailable},
      {502, sdk::StatusCode::kUnavailable}};
  ScriptedModelServer server;
  for (const auto& [status, code] : cases) {
    ModelReply reply;
    reply.status = status;
    reply.error_message = "scripted " + std::to_string(status);
    server.script({reply});
  }
  start();
  for (const auto& [status, code] : cases) {
    Recorder recorder;
    auto completion = complete(request_to(server), &recorder);
    EXPECT_EQ(completion.status().code(), code) << status << ": " << completion.status().to_string();
    EXPECT_THAT(completion.status().message(), HasSubstr("scripted " + std::to_string(status)));
    EXPECT_TRUE(recorder.deltas().empty());
  }
}

TEST_F(OpenAiPluginTest, AQuotedEndpointMessageIsTruncated) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.status = 400;
  reply.error_message = std::string(5000, 'x');
  server.script({reply});
  start();
  auto completion = complete(request_to(server), nullptr);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_LT(completion.status().message().size(), 500u);
  EXPECT_THAT(completion.status().message(), HasSubstr("xxx"));
}

// ---- timeouts and cancellation ---------------------------------------------------------------------

TEST_F(OpenAiPluginTest, AStallMidStreamPastTheIdleTimeoutIsDeadlineExceeded) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b"});
  reply.stall_after = 1;
  server.script({reply});
  start();
  Recorder recorder;
  auto request = request_to(server);
  request.timeouts.idle = 300ms;
  auto completion = complete(request, &recorder);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kDeadlineExceeded)
      << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), HasSubstr("idle"));
  EXPECT_THAT(completion.status().message(), Not(HasSubstr("first_token")));
  EXPECT_EQ(recorder.text(), "a");
}

TEST_F(OpenAiPluginTest, NoContentInTimeIsAFirstTokenTimeoutThoughKeepAlivesKeepComing) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"late"});
  reply.keep_alives = true;
  reply.stall_after = 0;  // headers, the role chunk with empty content and a keep-alive, then silence
  server.script({reply});
  start();
  Recorder recorder;
  auto request = request_to(server);
  request.timeouts.first_token = 300ms;
  request.timeouts.idle = 60s;
  auto completion = complete(request, &recorder);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kDeadlineExceeded)
      << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), HasSubstr("first_token"));
  EXPECT_TRUE(recorder.deltas().empty());
  EXPECT_TRUE(wait_until([&] { return server.connections_closed() == 1; }, kPatience))
      << "the stalled connection stays open";
}

TEST_F(OpenAiPluginTest, NoAnswerAtAllInTimeIsAFirstTokenTimeoutToo) {
  ScriptedModelServer server;
  ModelReply reply;
  reply.stall_before_headers = true;
  server.script({reply});
  start({{"first_token_timeout_ms", 300}});
  auto completion = complete(request_to(server), nullptr);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kDeadlineExceeded)
      << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), HasSubstr("first_token"));
}

TEST_F(OpenAiPluginTest, AFinishedCallCancelsItsFirstTokenTimer) {
  ScriptedModelServer server;
  server.script({streamed({"quick"}), streamed({"again"})});
  start({{"first_token_timeout_ms", 200}});
  for (int i = 0; i < 2; ++i) {
    auto completion = complete(request_to(server), nullptr);
    ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  }
  // Past both calls' timeouts: a timer left armed would have run on the task pool by now.
  std::this_thread::sleep_for(600ms);
  for (const char* outcome : {"done", "failed"}) {
    EXPECT_EQ(registry_
                  .counter("samokoder_plugin_tasks_total", "",
                           {{"plugin", std::string(kPluginId)}, {"outcome", outcome}})
                  .value(),
              0)
        << outcome;
  }
}

TEST_F(OpenAiPluginTest, CancellingFromAnotherThreadMidStreamIsCancelledAndClosesTheConnection) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b"});
  reply.stall_after = 1;
  server.script({reply});
  start();
  Recorder recorder;
  sdk::CancelSource run;
  std::thread canceller([&] {
    wait_until([&] { return !recorder.deltas().empty(); }, kPatience);
    run.request_stop();
  });
  auto request = request_to(server);
  request.timeouts.first_token = 60s;
  auto completion = complete(request, &recorder, run.get_token());
  canceller.join();
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kCancelled) << completion.status().to_string();
  EXPECT_EQ(recorder.text(), "a");
  EXPECT_FALSE(recorder.usages().empty()) << "the received text is accounted on cancel too";
  EXPECT_TRUE(wait_until([&] { return server.connections_closed() == 1; }, kPatience))
      << "the connection stays open";
}

TEST_F(OpenAiPluginTest, AnObserverThatStopsEndsTheCallSuccessfullyAsStopped) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b", "c"});
  reply.stall_after = 2;  // the rest would never come: only stopping ends the call
  server.script({reply});
  start();
  Recorder recorder;
  recorder.stop_after(2);
  auto completion = complete(request_to(server), &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->finish_reason, "stopped");
  EXPECT_EQ(completion->content, "ab");
  EXPECT_TRUE(wait_until([&] { return server.connections_closed() == 1; }, kPatience));
}

// ---- JSON output -----------------------------------------------------------------------------------

json project_schema() {
  return json::parse(
      R"({"type": "object", "properties": {"name": {"type": "string"}, "files": {"type": "integer"}},
                         "required": ["name", "files"], "additionalProperties": false})");
}

TEST_F(OpenAiPluginTest, JsonOutputSendsResponseFormatWithTheStrictSchema) {
  ScriptedModelServer server;
  server.script({streamed({"{\"name\": ", "\"todo\", \"files\"", ": 3}"})});
  start();
  Recorder recorder;
  auto request = request_to(server);
  request.json_output = sdk::JsonOutput{"project_spec", project_schema()};
  auto completion = complete(request, &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(json::parse(completion->content), json::parse(R"({"name": "todo", "files": 3})"));
  EXPECT_EQ(recorder.text(), completion->content);

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  const json& body = calls[0].body;
  ASSERT_TRUE(body.contains("response_format"));
  EXPECT_EQ(
      body["response_format"],
      (json{{"type", "json_schema"},
            {"json_schema", {{"name", "project_spec"}, {"schema", project_schema()}, {"strict", true}}}}));
  EXPECT_EQ(body["messages"][0], (json{{"role", "system"}, {"content", "be brief"}}))
      << "the schema travels in response_format only";
}

TEST_F(OpenAiPluginTest, JsonModePromptPutsTheSchemaIntoTheSystemPromptInstead) {
  ScriptedModelServer server;
  server.script({streamed({"{}"}), streamed({"{}"})});
  start({{"json_mode", "prompt"}});
  auto request = request_to(server);
  request.json_output = sdk::JsonOutput{"project_spec", project_schema()};
  ASSERT_TRUE(complete(request, nullptr).ok());
  request.system.clear();
  ASSERT_TRUE(complete(request, nullptr).ok());

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 2u);
  for (const auto& call : calls) {
    EXPECT_FALSE(call.body.contains("response_format"));
    ASSERT_EQ(call.body["messages"][0]["role"], "system");
    EXPECT_THAT(call.body["messages"][0]["content"].get<std::string>(), HasSubstr(project_schema().dump()));
  }
  EXPECT_THAT(calls[0].body["messages"][0]["content"].get<std::string>(), ::testing::StartsWith("be brief"));
}

TEST_F(OpenAiPluginTest, JsonModeJsonObjectAsksForAnObjectAndNamesTheSchemaInThePrompt) {
  ScriptedModelServer server;
  server.script({streamed({"{}"})});
  start({{"json_mode", "json_object"}});
  auto request = request_to(server);
  request.json_output = sdk::JsonOutput{"project_spec", project_schema()};
  ASSERT_TRUE(complete(request, nullptr).ok());
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].body["response_format"], json::parse(R"({"type": "json_object"})"));
  EXPECT_THAT(calls[0].body["messages"][0]["content"].get<std::string>(), HasSubstr(project_schema().dump()));
}

TEST_F(OpenAiPluginTest, ABufferedAnswerIsDeliveredOnceWithItsUsage) {
  ScriptedModelServer server;
  ModelReply without_usage = streamed({"eight ch"});
  without_usage.usage.reset();
  server.script({streamed({"Hello, ", "world"}), without_usage});
  start();
  Recorder recorder;
  auto request = request_to(server);
  request.stream = false;
  auto completion = complete(request, &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "Hello, world");
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"Hello, world"}));
  EXPECT_EQ(completion->finish_reason, "stop");
  EXPECT_EQ(completion->model, "gpt-answered");
  expect_full_usage(completion->usage);
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].body["stream"], false);
  EXPECT_FALSE(calls[0].body.contains("stream_options"));

  auto estimated = complete(request, nullptr);
  ASSERT_TRUE(estimated.ok()) << estimated.status().to_string();
  EXPECT_TRUE(estimated->usage.estimated);
  EXPECT_EQ(estimated->usage.completion_tokens, 2u);
}

// ---- configuration ---------------------------------------------------------------------------------

TEST_F(OpenAiPluginTest, OpenAiBaseUrlFromTheEnvironmentIsTheDefaultEndpoint) {
  ScriptedModelServer server;
  server.script({streamed({"from env"})});
  ASSERT_EQ(::setenv("OPENAI_BASE_URL", (server.url("/v1") + "/").c_str(), 1), 0);
  const sdk::Status loaded = load();
  ::unsetenv("OPENAI_BASE_URL");
  ASSERT_TRUE(loaded.ok()) << loaded.to_string();
  auto request = request_to(server);
  request.base_url.clear();
  auto completion = complete(request, nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "from env");
  EXPECT_EQ(server.request_count(), 1u);
}

TEST_F(OpenAiPluginTest, TheConfiguredBaseUrlWinsOverTheEnvironmentAndTheRequestsOverBoth) {
  ScriptedModelServer configured;
  ScriptedModelServer requested;
  configured.script({streamed({"from config"})});
  requested.script({streamed({"from request"})});
  ASSERT_EQ(::setenv("OPENAI_BASE_URL", "http://127.0.0.1:1", 1), 0);
  const sdk::Status loaded = load({{"base_url", configured.url("/v1")}});
  ::unsetenv("OPENAI_BASE_URL");
  ASSERT_TRUE(loaded.ok()) << loaded.to_string();
  auto request = request_to(configured);
  request.base_url.clear();
  auto completion = complete(request, nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "from config");
  request.base_url = requested.url("/v1");
  completion = complete(request, nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "from request");
}

TEST_F(OpenAiPluginTest, InvalidConfigFailsInitAndSaysWhy) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"idle_timeout_ms", "soon"}}, "idle_timeout_ms"},
      {{{"total_timeout_ms", -1}}, "total_timeout_ms"},
      {{{"first_token_timeout_ms", 1.5}}, "first_token_timeout_ms"},
      {{{"base_url", "ftp://example.com"}}, "base_url"},
      {{{"stream_usage", "yes"}}, "stream_usage"},
      {{{"json_mode", "xml"}}, "json_mode"},
      {{{"temprature", 1}}, "unknown key \"temprature\""}};
  for (const auto& [config, complaint] : cases) {
    EXPECT_TRUE(load(config).ok()) << "an optional plugin that fails leaves the kernel running";
    const auto info = manager_->find(kPluginId);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->state, plugins::PluginState::kFailed) << config.dump();
    EXPECT_THAT(info->failure_message, HasSubstr(complaint)) << config.dump();
    manager_->stop();
    manager_.reset();
  }
}

// ---- the key stays secret --------------------------------------------------------------------------

TEST_F(OpenAiPluginTest, TheKeyAppearsInNoLogLineAndNoErrorMessage) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(5000);
  for (const char* name : {"plugin.llm.openai", "http_client", "plugins"})
    core::logger(name)->sinks().push_back(sink);
  config::LogConfig verbose;
  verbose.level = "trace";
  core::init_logging(verbose);

  ScriptedModelServer server;
  ModelReply echoes_key;  // an endpoint that quotes the key it refused, as OpenAI does (partly)
  echoes_key.status = 401;
  echoes_key.error_message = std::string("Incorrect API key provided: ") + kKey;
  ModelReply in_stream = streamed({"a"});
  in_stream.error_after = 0;
  in_stream.error_message = std::string("overloaded for key ") + kKey;
  server.script({streamed({"fine"}), echoes_key, in_stream});
  start();
  std::vector<std::string> messages;
  ASSERT_TRUE(complete(request_to(server), nullptr).ok());
  for (int i = 0; i < 2; ++i) {
    auto failed = complete(request_to(server), nullptr);
    ASSERT_FALSE(failed.ok());
    messages.push_back(failed.status().message());
  }
  auto unreachable = request_to(server);
  unreachable.base_url = "http://127.0.0.1:1";
  messages.push_back(complete(unreachable, nullptr).status().message());

  core::logger("plugin.llm.openai")->error("secret-test-marker");
  ASSERT_TRUE(wait_until(
      [&] {
        const auto lines = sink->last_formatted();
        return !lines.empty() && lines.back().find("secret-test-marker") != std::string::npos;
      },
      kPatience));
  std::string logged;
  for (const auto& line : sink->last_formatted())
    logged += line;
  core::init_logging(config::LogConfig{});

  EXPECT_THAT(logged, HasSubstr("completion with model gpt-test failed")) << "the plugin's lines are missing";
  EXPECT_THAT(logged, Not(HasSubstr(kKey)));
  EXPECT_THAT(messages[0], HasSubstr("Incorrect API key provided: ***"));
  EXPECT_THAT(messages[1], HasSubstr("overloaded for key ***"));
  for (const auto& message : messages)
    EXPECT_THAT(message, Not(HasSubstr(kKey)));
}

// ---- load --------------------------------------------------------------------------------------------

TEST_F(OpenAiPluginTest, ThirtyTwoConcurrentStreamsEachGetTheirOwnAnswer) {
  ScriptedModelServer server;
  server.respond_with([](const testing::ModelCall& call) {
    const std::string prompt = call.prompt_text();
    const std::string n = prompt.substr(prompt.rfind(' ') + 1);
    ModelReply reply = streamed({"answer ", "to ", n});
    reply.split_bytes = 3;
    return reply;
  });
  start();
  constexpr int kStreams = 32;
  std::vector<std::string> contents(kStreams);
  std::vector<std::string> observed(kStreams);
  std::vector<sdk::Status> statuses(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      Recorder recorder;
      auto request = request_to(server);
      request.messages = {{"user", "question " + std::to_string(i)}};
      auto completion = complete(request, &recorder);
      statuses[i] = completion.status();
      if (completion.ok()) contents[i] = completion->content;
      observed[i] = recorder.text();
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].to_string();
    EXPECT_EQ(contents[i], "answer to " + std::to_string(i));
    EXPECT_EQ(observed[i], contents[i]);
  }
  EXPECT_EQ(server.request_count(), static_cast<std::size_t>(kStreams));
}

// ---- models ------------------------------------------------------------------------------------------

TEST_F(OpenAiPluginTest, ListModelsReturnsTheEndpointsIdsAndRefusesAWrongKey) {
  ScriptedModelServer server({.tls = &pki_, .expected_key = kKey, .models = {"gpt-a", "gpt-b"}});
  start();
  auto models = list_models(server.url("/v1"), kKey);
  ASSERT_TRUE(models.ok()) << models.status().to_string();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].id, "gpt-a");
  EXPECT_EQ((*models)[1].id, "gpt-b");
  EXPECT_EQ((*models)[0].owned_by, "scripted");
  const auto calls = server.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().method, "GET");
  EXPECT_EQ(calls.back().path, "/v1/models");
  EXPECT_EQ(calls.back().headers.at("authorization"), std::string("Bearer ") + kKey);

  auto refused = list_models(server.url("/v1"), "sk-wrong-key-0123");
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kUnauthenticated) << refused.status().to_string();
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("sk-wrong-key-0123")));
}

TEST_F(OpenAiPluginTest, AnEndpointWithoutAModelListIsUnimplemented) {
  ScriptedModelServer server;
  start();
  auto models = list_models(server.url("/no-such-api"), kKey);
  EXPECT_EQ(models.status().code(), sdk::StatusCode::kUnimplemented) << models.status().to_string();
}

}  // namespace
}  // namespace samokoder::llm_openai
