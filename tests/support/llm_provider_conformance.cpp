// The provider conformance suite (see llm_provider_conformance.hpp): each TEST_P runs once for every
// profile a provider's test program instantiates it with. Waits poll with deadlines; nothing asserts
// a duration.
#include "llm_provider_conformance.hpp"

#include <cstdlib>
#include <thread>

#include <gmock/gmock.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "core/logging.hpp"
#include "wait_until.hpp"

namespace samokoder::testing {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

sdk::CompletionRequest ProviderTest::request_to(const ScriptedModelServer& server) const {
  sdk::CompletionRequest request;
  request.model = kModel;
  request.system = "be brief";
  request.messages = {{"user", "say hello"}};
  request.api_key = profile_.key;
  request.base_url = base_url(server);
  return request;
}

sdk::Status ProviderTest::load_with_base_url_env(const std::string& value, nlohmann::json config) {
  const char* env = profile_.base_url_env.c_str();
  if (::setenv(env, value.c_str(), 1) != 0) return sdk::Status::internal("setenv failed");
  sdk::Status loaded = load(std::move(config));
  ::unsetenv(env);
  return loaded;
}

ProviderTest::Call ProviderTest::call_answered_by(ModelReply reply,
                                                  const std::function<void(sdk::CompletionRequest&)>& edit,
                                                  nlohmann::json config) {
  auto server = std::make_unique<ScriptedModelServer>();
  server->script({std::move(reply)});
  start(std::move(config));
  auto recorder = std::make_unique<CompletionRecorder>();
  auto request = request_to(*server);
  if (edit) edit(request);
  auto completion = complete(request, recorder.get());
  return {std::move(server), std::move(recorder), std::move(completion)};
}

ModelReply ProviderTest::http_error(unsigned status, std::string message,
                                    std::optional<int> retry_after_seconds) {
  ModelReply reply;
  reply.status = status;
  reply.error_message = std::move(message);
  reply.retry_after_seconds = retry_after_seconds;
  return reply;
}

ModelReply ProviderTest::streamed(std::vector<std::string> deltas) const {
  ModelReply reply;
  reply.deltas = std::move(deltas);
  reply.model = kAnsweredModel;
  reply.usage = profile_.usage;
  return reply;
}

void ProviderTest::expect_full_usage(const sdk::TokenUsage& usage) const {
  const sdk::TokenUsage& expected = profile_.expected_usage;
  EXPECT_EQ(usage.prompt_tokens, expected.prompt_tokens) << profile_.usage_mapping;
  EXPECT_EQ(usage.completion_tokens, expected.completion_tokens) << profile_.usage_mapping;
  EXPECT_EQ(usage.cached_prompt_tokens, expected.cached_prompt_tokens) << profile_.usage_mapping;
  EXPECT_EQ(usage.cache_write_tokens, expected.cache_write_tokens) << profile_.usage_mapping;
  EXPECT_FALSE(usage.estimated);
}

void ProviderTest::expect_headers(const ModelCall& call, const std::string& key) const {
  for (const auto& [name, value] : profile_.headers_for(key)) {
    const auto header = call.headers.find(name);
    ASSERT_NE(header, call.headers.end()) << name << " is missing";
    EXPECT_EQ(header->second, value) << name;
  }
}

namespace {

// ---- a streamed answer ---------------------------------------------------------------------------

TEST_P(ProviderConformance, StreamsAnAnswerOverTlsWithDeltasAndUsage) {
  ScriptedModelServer server({.tls = &pki(), .expected_key = profile().key});
  server.script({streamed({"Hel", "lo, ", "world"})});
  start();
  CompletionRecorder recorder;
  auto request = request_to(server);
  request.temperature = 0.25;
  request.max_tokens = 321;
  ASSERT_THAT(request.base_url, HasSubstr("https://"));

  auto completion = complete(request, &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "Hello, world");
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"Hel", "lo, ", "world"}));
  EXPECT_EQ(completion->finish_reason, "stop");
  EXPECT_EQ(completion->model, kAnsweredModel);
  expect_full_usage(completion->usage);
  ASSERT_FALSE(recorder.usages().empty());
  expect_full_usage(recorder.usages().back());

  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].format, profile().format);
  EXPECT_EQ(calls[0].method, "POST");
  EXPECT_EQ(calls[0].path, profile().completion_path);
  expect_headers(calls[0], profile().key);
  EXPECT_THAT(calls[0].headers.at("content-type"), HasSubstr("application/json"));
  const json& body = calls[0].body;
  EXPECT_EQ(body["model"], kModel);
  EXPECT_EQ(body["max_tokens"], 321);
  EXPECT_EQ(body["temperature"], 0.25);
  EXPECT_EQ(body["stream"], true);
  profile().expect_request_body(body);
}

TEST_P(ProviderConformance, AStreamSplitIntoSingleBytesGivesTheSameAnswer) {
  ModelReply reply = streamed({"h\xC3\xA9llo ", "w\xE2\x9C\x93rld"});  // UTF-8 split mid-sequence too
  reply.split_bytes = 1;
  const auto call = call_answered_by(reply);
  ASSERT_TRUE(call.completion.ok()) << call.completion.status().to_string();
  EXPECT_EQ(call.completion->content, "h\xC3\xA9llo w\xE2\x9C\x93rld");
  EXPECT_EQ(call.recorder->deltas(), (std::vector<std::string>{"h\xC3\xA9llo ", "w\xE2\x9C\x93rld"}));
  EXPECT_EQ(call.recorder->text(), call.completion->content);
  EXPECT_EQ(call.completion->finish_reason, "stop");
  expect_full_usage(call.completion->usage);
}

TEST_P(ProviderConformance, EventsMergedIntoOneReadAllArrive) {
  ModelReply reply = streamed({"one ", "two ", "three"});
  reply.merge_events = true;
  const auto call = call_answered_by(reply);
  ASSERT_TRUE(call.completion.ok()) << call.completion.status().to_string();
  EXPECT_EQ(call.completion->content, "one two three");
  EXPECT_EQ(call.recorder->deltas(), (std::vector<std::string>{"one ", "two ", "three"}));
  expect_full_usage(call.completion->usage);
}

// SSE comment lines, and for Anthropic ping events too.
TEST_P(ProviderConformance, KeepAlivesBetweenEventsAreIgnored) {
  ModelReply reply = streamed({"a", "b"});
  reply.keep_alives = true;
  const auto call = call_answered_by(reply);
  ASSERT_TRUE(call.completion.ok()) << call.completion.status().to_string();
  EXPECT_EQ(call.completion->content, "ab");
  EXPECT_EQ(call.recorder->deltas(), (std::vector<std::string>{"a", "b"}));
  expect_full_usage(call.completion->usage);
}

TEST_P(ProviderConformance, FinishReasonsAreNormalised) {
  ASSERT_FALSE(profile().finish_reasons.empty());
  ScriptedModelServer server;
  for (const auto& [sent, reported] : profile().finish_reasons) {
    ModelReply reply = streamed({"cut"});
    reply.finish_reason = sent;
    server.script({reply});
  }
  start();
  for (const auto& [sent, reported] : profile().finish_reasons) {
    auto completion = complete(request_to(server), nullptr);
    ASSERT_TRUE(completion.ok()) << completion.status().to_string();
    EXPECT_EQ(completion->finish_reason, reported) << "sent as " << sent;
  }
}

TEST_P(ProviderConformance, AnAnswerWithoutUsageIsEstimated) {
  ModelReply reply = streamed({"twelve chars"});
  reply.usage.reset();
  const auto call = call_answered_by(reply);
  ASSERT_TRUE(call.completion.ok()) << call.completion.status().to_string();
  const sdk::TokenUsage& usage = call.completion->usage;
  EXPECT_TRUE(usage.estimated);
  EXPECT_EQ(usage.completion_tokens, 3u);
  EXPECT_EQ(usage.prompt_tokens, 5u) << "\"be brief\" and \"say hello\": 17 characters";
  ASSERT_FALSE(call.recorder->usages().empty());
  EXPECT_TRUE(call.recorder->usages().back().estimated);
}

// ---- failures inside the stream --------------------------------------------------------------------

TEST_P(ProviderConformance, AMalformedEventFailsInternalAndTheSpentUsageIsStillReported) {
  ModelReply reply = streamed({"abcd", "b", "c"});
  reply.malformed_after = 1;
  const auto call = call_answered_by(reply);
  EXPECT_EQ(call.completion.status().code(), sdk::StatusCode::kInternal)
      << call.completion.status().to_string();
  EXPECT_EQ(call.recorder->deltas(), (std::vector<std::string>{"abcd"}));
  ASSERT_FALSE(call.recorder->usages().empty()) << "the received text is accounted";
  const sdk::TokenUsage spent = call.recorder->usages().back();
  if (profile().usage_before_content) {
    EXPECT_EQ(spent.prompt_tokens, profile().expected_usage.prompt_tokens)
        << "the usage before content was known";
  } else {
    EXPECT_TRUE(spent.estimated);
    EXPECT_EQ(spent.completion_tokens, 1u);
  }
}

TEST_P(ProviderConformance, AnErrorEventInTheStreamIsUnavailableAndNamesItsType) {
  ModelReply reply = streamed({"a", "b"});
  reply.error_after = 1;
  reply.error_message = "The server had an error while processing your request";
  const auto call = call_answered_by(reply);
  const sdk::Status& status = call.completion.status();
  EXPECT_EQ(status.code(), sdk::StatusCode::kUnavailable) << status.to_string();
  EXPECT_THAT(status.message(), HasSubstr(profile().stream_error_type));
  EXPECT_THAT(status.message(), HasSubstr("had an error while processing"));
  EXPECT_EQ(call.recorder->text(), "a");
  EXPECT_FALSE(call.recorder->usages().empty());
}

TEST_P(ProviderConformance, AConnectionClosedMidStreamIsUnavailable) {
  ModelReply reply = streamed({"a", "b", "c"});
  reply.close_after = 2;
  const auto call = call_answered_by(reply);
  EXPECT_EQ(call.completion.status().code(), sdk::StatusCode::kUnavailable)
      << call.completion.status().to_string();
  EXPECT_EQ(call.recorder->text(), "ab");
  ASSERT_FALSE(call.recorder->usages().empty());
  EXPECT_GE(call.recorder->usages().back().completion_tokens, 1u) << "the received text is accounted";
}

TEST_P(ProviderConformance, AConnectionClosedBeforeAnyAnswerIsUnavailable) {
  ModelReply reply;
  reply.close_before_headers = true;
  const auto call = call_answered_by(reply);
  EXPECT_EQ(call.completion.status().code(), sdk::StatusCode::kUnavailable)
      << call.completion.status().to_string();
}

// ---- HTTP errors -----------------------------------------------------------------------------------

TEST_P(ProviderConformance, RateLimitedIsResourceExhaustedWithTheRetryAfterDelay) {
  const auto call = call_answered_by(
      http_error(429, "Rate limit reached: the number of requests has exceeded your rate limit", 7));
  const sdk::Status& status = call.completion.status();
  EXPECT_EQ(status.code(), sdk::StatusCode::kResourceExhausted) << status.to_string();
  EXPECT_THAT(status.message(), HasSubstr("exceeded your rate limit"));
  EXPECT_EQ(call.recorder->retry_after(), std::chrono::milliseconds(7000));
}

TEST_P(ProviderConformance, AnOverloadedEndpointIsUnavailableWithItsRetryAfter) {
  const unsigned overloaded = profile().overloaded_status;
  const auto call = call_answered_by(http_error(overloaded, "The engine is currently overloaded", 3));
  const sdk::Status& status = call.completion.status();
  EXPECT_EQ(status.code(), sdk::StatusCode::kUnavailable) << status.to_string();
  EXPECT_THAT(status.message(), HasSubstr(std::to_string(overloaded)));
  EXPECT_THAT(status.message(), HasSubstr("currently overloaded"));
  EXPECT_EQ(call.recorder->retry_after(), std::chrono::milliseconds(3000));
}

TEST_P(ProviderConformance, ARefusedKeyIsUnauthenticatedAndNotQuoted) {
  ScriptedModelServer server({.expected_key = "sk-the-right-one"});
  start();
  auto completion = complete(request_to(server), nullptr);
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kUnauthenticated) << completion.status().to_string();
  EXPECT_THAT(completion.status().message(), Not(HasSubstr(profile().key)));
}

TEST_P(ProviderConformance, EveryHttpErrorMapsToTheGatewaysStatus) {
  const std::vector<std::pair<unsigned, sdk::StatusCode>> cases = {
      {400, sdk::StatusCode::kInvalidArgument},  {401, sdk::StatusCode::kUnauthenticated},
      {403, sdk::StatusCode::kPermissionDenied}, {404, sdk::StatusCode::kInvalidArgument},
      {413, sdk::StatusCode::kInvalidArgument},  {422, sdk::StatusCode::kInvalidArgument},
      {500, sdk::StatusCode::kUnavailable},      {502, sdk::StatusCode::kUnavailable},
      {503, sdk::StatusCode::kUnavailable}};
  ScriptedModelServer server;
  for (const auto& [status, code] : cases) {
    ModelReply reply;
    reply.status = status;
    reply.error_message = "scripted " + std::to_string(status);
    server.script({reply});
  }
  start();
  for (const auto& [status, code] : cases) {
    CompletionRecorder recorder;
    auto completion = complete(request_to(server), &recorder);
    EXPECT_EQ(completion.status().code(), code) << status << ": " << completion.status().to_string();
    EXPECT_THAT(completion.status().message(), HasSubstr("scripted " + std::to_string(status)));
    EXPECT_TRUE(recorder.deltas().empty());
  }
}

TEST_P(ProviderConformance, AQuotedEndpointMessageIsTruncated) {
  const auto call = call_answered_by(http_error(400, std::string(5000, 'x')));
  EXPECT_EQ(call.completion.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_LT(call.completion.status().message().size(), 500u);
  EXPECT_THAT(call.completion.status().message(), HasSubstr("xxx"));
}

// ---- timeouts and cancellation ---------------------------------------------------------------------

TEST_P(ProviderConformance, AStallMidStreamPastTheIdleTimeoutIsDeadlineExceeded) {
  ModelReply reply = streamed({"a", "b"});
  reply.stall_after = 1;
  const auto call =
      call_answered_by(reply, [](sdk::CompletionRequest& request) { request.timeouts.idle = 300ms; });
  const sdk::Status& status = call.completion.status();
  EXPECT_EQ(status.code(), sdk::StatusCode::kDeadlineExceeded) << status.to_string();
  EXPECT_THAT(status.message(), HasSubstr("idle"));
  EXPECT_THAT(status.message(), Not(HasSubstr("first_token")));
  EXPECT_EQ(call.recorder->text(), "a");
}

// Headers and what the format sends before content (OpenAI's role chunk with empty content, Anthropic's
// message_start), keep-alives (Anthropic: pings too), then silence.
TEST_P(ProviderConformance, NoContentInTimeIsAFirstTokenTimeoutThoughKeepAlivesKeepComing) {
  ModelReply reply = streamed({"late"});
  reply.keep_alives = true;
  reply.stall_after = 0;
  const auto call = call_answered_by(reply, [](sdk::CompletionRequest& request) {
    request.timeouts.first_token = 300ms;
    request.timeouts.idle = 60s;
  });
  const sdk::Status& status = call.completion.status();
  EXPECT_EQ(status.code(), sdk::StatusCode::kDeadlineExceeded) << status.to_string();
  EXPECT_THAT(status.message(), HasSubstr("first_token"));
  EXPECT_TRUE(call.recorder->deltas().empty());
  EXPECT_TRUE(wait_until([&] { return call.server->connections_closed() == 1; }, kPatience))
      << "the stalled connection stays open";
}

TEST_P(ProviderConformance, NoAnswerAtAllInTimeIsAFirstTokenTimeoutToo) {
  ModelReply reply;
  reply.stall_before_headers = true;
  const auto call = call_answered_by(reply, {}, {{"first_token_timeout_ms", 300}});
  const sdk::Status& status = call.completion.status();
  EXPECT_EQ(status.code(), sdk::StatusCode::kDeadlineExceeded) << status.to_string();
  EXPECT_THAT(status.message(), HasSubstr("first_token"));
}

TEST_P(ProviderConformance, AFinishedCallCancelsItsFirstTokenTimer) {
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
    EXPECT_EQ(harness()
                  .registry()
                  .counter("samokoder_plugin_tasks_total", "",
                           {{"plugin", profile().plugin_id}, {"outcome", outcome}})
                  .value(),
              0)
        << outcome;
  }
}

TEST_P(ProviderConformance, CancellingFromAnotherThreadMidStreamIsCancelledAndClosesTheConnection) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b"});
  reply.stall_after = 1;
  server.script({reply});
  start();
  CompletionRecorder recorder;
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

TEST_P(ProviderConformance, AnObserverThatStopsEndsTheCallSuccessfullyAsStopped) {
  ScriptedModelServer server;
  ModelReply reply = streamed({"a", "b", "c"});
  reply.stall_after = 2;  // the rest would never come: only stopping ends the call
  server.script({reply});
  start();
  CompletionRecorder recorder;
  recorder.stop_after(2);
  auto completion = complete(request_to(server), &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->finish_reason, "stopped");
  EXPECT_EQ(completion->content, "ab");
  EXPECT_TRUE(wait_until([&] { return server.connections_closed() == 1; }, kPatience));
}

// ---- a buffered answer -----------------------------------------------------------------------------

TEST_P(ProviderConformance, ABufferedAnswerIsDeliveredOnceWithItsUsage) {
  ScriptedModelServer server;
  ModelReply without_usage = streamed({"eight ch"});
  without_usage.usage.reset();
  server.script({streamed({"Hello, ", "world"}), without_usage});
  start();
  CompletionRecorder recorder;
  auto request = request_to(server);
  request.stream = false;
  auto completion = complete(request, &recorder);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "Hello, world");
  EXPECT_EQ(recorder.deltas(), (std::vector<std::string>{"Hello, world"}));
  EXPECT_EQ(completion->finish_reason, "stop");
  EXPECT_EQ(completion->model, kAnsweredModel);
  expect_full_usage(completion->usage);
  const auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].body["stream"], false);
  profile().expect_request_body(calls[0].body);

  auto estimated = complete(request, nullptr);
  ASSERT_TRUE(estimated.ok()) << estimated.status().to_string();
  EXPECT_TRUE(estimated->usage.estimated);
  EXPECT_EQ(estimated->usage.completion_tokens, 2u);
}

// ---- configuration ---------------------------------------------------------------------------------

TEST_P(ProviderConformance, TheBaseUrlFromTheEnvironmentIsTheDefaultEndpoint) {
  ScriptedModelServer server;
  server.script({streamed({"from env"})});
  const sdk::Status loaded = load_with_base_url_env(base_url(server) + "/");
  ASSERT_TRUE(loaded.ok()) << loaded.to_string();
  auto request = request_to(server);
  request.base_url.clear();
  auto completion = complete(request, nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "from env");
  EXPECT_EQ(server.request_count(), 1u);
}

TEST_P(ProviderConformance, TheConfiguredBaseUrlWinsOverTheEnvironmentAndTheRequestsOverBoth) {
  ScriptedModelServer configured;
  ScriptedModelServer requested;
  configured.script({streamed({"from config"})});
  requested.script({streamed({"from request"})});
  const sdk::Status loaded =
      load_with_base_url_env("http://127.0.0.1:1", {{"base_url", base_url(configured)}});
  ASSERT_TRUE(loaded.ok()) << loaded.to_string();
  auto request = request_to(configured);
  request.base_url.clear();
  auto completion = complete(request, nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "from config");
  request.base_url = base_url(requested);
  completion = complete(request, nullptr);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "from request");
}

TEST_P(ProviderConformance, InvalidConfigFailsInitAndSaysWhy) {
  std::vector<std::pair<json, std::string>> cases = {
      {{{"idle_timeout_ms", "soon"}}, "idle_timeout_ms"},
      {{{"total_timeout_ms", -1}}, "total_timeout_ms"},
      {{{"first_token_timeout_ms", 1.5}}, "first_token_timeout_ms"},
      {{{"base_url", "ftp://example.com"}}, "base_url"},
      {{{"temprature", 1}}, "unknown key \"temprature\""}};
  cases.insert(cases.end(), profile().invalid_configs.begin(), profile().invalid_configs.end());
  for (const auto& [config, complaint] : cases) {
    EXPECT_TRUE(load(config).ok()) << "an optional plugin that fails leaves the kernel running";
    const auto info = harness().info();
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->state, plugins::PluginState::kFailed) << config.dump();
    EXPECT_THAT(info->failure_message, HasSubstr(complaint)) << config.dump();
    harness().unload();
  }
}

// ---- the key stays secret --------------------------------------------------------------------------

TEST_P(ProviderConformance, TheKeyAppearsInNoLogLineAndNoErrorMessage) {
  const std::string key = profile().key;
  const std::string plugin_logger = "plugin." + profile().plugin_id;
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(5000);
  for (const std::string& name : {plugin_logger, std::string("http_client"), std::string("plugins")})
    core::logger(name)->sinks().push_back(sink);
  config::LogConfig verbose;
  verbose.level = "trace";
  core::init_logging(verbose);

  ScriptedModelServer server;
  ModelReply echoes_key;  // an endpoint that quotes the key it refused, as OpenAI does (partly)
  echoes_key.status = 401;
  echoes_key.error_message = "Incorrect API key provided: " + key;
  ModelReply in_stream = streamed({"a"});
  in_stream.error_after = 0;
  in_stream.error_message = "overloaded for key " + key;
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

  core::logger(plugin_logger)->error("secret-test-marker");
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

  EXPECT_THAT(logged, HasSubstr(std::string("completion with model ") + kModel + " failed"))
      << "the plugin's lines are missing";
  EXPECT_THAT(logged, Not(HasSubstr(key)));
  EXPECT_THAT(messages[0], HasSubstr("Incorrect API key provided: ***"));
  EXPECT_THAT(messages[1], HasSubstr("overloaded for key ***"));
  for (const auto& message : messages)
    EXPECT_THAT(message, Not(HasSubstr(key)));
}

// ---- load --------------------------------------------------------------------------------------------

TEST_P(ProviderConformance, ThirtyTwoConcurrentStreamsEachGetTheirOwnAnswer) {
  ScriptedModelServer server;
  server.respond_with([this](const ModelCall& call) {
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
      CompletionRecorder recorder;
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

TEST_P(ProviderConformance, ListModelsReturnsTheEndpointsIdsAndRefusesAWrongKey) {
  ScriptedModelServer server(
      {.tls = &pki(), .expected_key = profile().key, .models = {"model-a", "model-b"}});
  start();
  auto models = list_models(base_url(server), profile().key);
  ASSERT_TRUE(models.ok()) << models.status().to_string();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].id, "model-a");
  EXPECT_EQ((*models)[1].id, "model-b");
  EXPECT_EQ((*models)[0].owned_by, profile().model_owner);
  const auto calls = server.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().method, "GET");
  EXPECT_EQ(calls.back().path, "/v1/models");
  expect_headers(calls.back(), profile().key);

  auto refused = list_models(base_url(server), "sk-wrong-key-0123");
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kUnauthenticated) << refused.status().to_string();
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("sk-wrong-key-0123")));
}

TEST_P(ProviderConformance, AnEndpointWithoutAModelListIsUnimplemented) {
  ScriptedModelServer server;
  start();
  auto models = list_models(server.url("/no-such-api"), profile().key);
  EXPECT_EQ(models.status().code(), sdk::StatusCode::kUnimplemented) << models.status().to_string();
}

}  // namespace
}  // namespace samokoder::testing
