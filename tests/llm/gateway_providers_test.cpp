// The gateway end to end against the real wire formats: LlmGateway -> llm.openai / llm.anthropic (the
// built plugins, through the kernel's plugin manager, outbound HTTP service and task scheduler) -> the
// scripted model server over TLS, with every attempt recorded by the SQLite storage plugin. What the
// gateway_test fixtures take on trust (a provider's status codes, Retry-After, usage, how a stalled or
// cancelled stream ends) is what the real plugins produce here. Waits poll with deadlines; durations are
// asserted only as the gateway decided them (LlmAnswer::backoffs).
#include <atomic>
#include <thread>

#include "core/logging.hpp"
#include "gateway_providers_fixture.hpp"
#include "wait_until.hpp"

namespace samokoder::llm {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::ModelReply;
using testing::ScriptedModelServer;
using testing::ScriptedUsage;
using testing::wait_until;

constexpr auto kPatience = 20s;

ModelReply streamed(std::vector<std::string> deltas, ScriptedUsage usage = {}) {
  ModelReply reply;
  reply.deltas = std::move(deltas);
  reply.usage = usage;
  return reply;
}

ModelReply http_error(unsigned status, std::string message = "scripted failure") {
  ModelReply reply;
  reply.status = status;
  reply.error_message = std::move(message);
  return reply;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Attaches a CaptureSink to loggers at trace level for a test's duration.
class LogCapture {
 public:
  explicit LogCapture(std::vector<std::string> names) : names_(std::move(names)) {
    for (const auto& name : names_) {
      auto logger = core::logger(name);
      levels_.push_back(logger->level());
      logger->set_level(spdlog::level::trace);
      logger->sinks().push_back(sink_);
    }
  }
  ~LogCapture() {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      auto logger = core::logger(names_[i]);
      auto& sinks = logger->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
      logger->set_level(levels_[i]);
    }
  }
  support::CaptureSink& sink() { return *sink_; }

 private:
  std::vector<std::string> names_;
  std::vector<spdlog::level::level_enum> levels_;
  std::shared_ptr<support::CaptureSink> sink_ = std::make_shared<support::CaptureSink>();
};

// ---- streamed answers, usage, keys ----------------------------------------------------------------

TEST_F(GatewayProvidersTest, StreamsThroughEachProviderWithUsageTimingsAndCostRecorded) {
  const ScriptedUsage usage{
      .prompt_tokens = 1000, .completion_tokens = 50, .cached_prompt_tokens = 400, .cache_write_tokens = 0};
  openai_server_.script({streamed({"Hel", "lo, ", "world"}, usage)});
  ScriptedUsage anthropic_usage = usage;
  anthropic_usage.cache_write_tokens = 100;
  anthropic_server_.script({streamed({"Bon", "jour"}, anthropic_usage)});
  start();

  Collect openai_seen;
  auto openai = complete(call(), &openai_seen);
  ASSERT_TRUE(openai.ok()) << openai.status().to_string();
  EXPECT_EQ(openai->provider, "openai");
  EXPECT_EQ(openai->completion.content, "Hello, world");
  EXPECT_EQ(openai_seen.deltas(), (std::vector<std::string>{"Hel", "lo, ", "world"}));
  Collect anthropic_seen;
  auto anthropic = complete(call("claude"), &anthropic_seen);
  ASSERT_TRUE(anthropic.ok()) << anthropic.status().to_string();
  EXPECT_EQ(anthropic->provider, "anthropic");
  EXPECT_EQ(anthropic_seen.deltas(), (std::vector<std::string>{"Bon", "jour"}));
  EXPECT_EQ(openai_server_.request_count(), 1u);
  EXPECT_EQ(anthropic_server_.request_count(), 1u);
  EXPECT_TRUE(openai_server_.calls().at(0).streamed());
  EXPECT_TRUE(anthropic_server_.calls().at(0).streamed());

  const auto rows = records();
  ASSERT_EQ(rows.size(), 2u);
  const auto& o = rows[0];
  EXPECT_EQ(o.id, openai->request_id);
  EXPECT_EQ(o.provider, "openai");
  EXPECT_EQ(o.model, "gpt-test");
  EXPECT_EQ(o.status, "ok");
  EXPECT_EQ(o.prompt_tokens, 1000);
  EXPECT_EQ(o.completion_tokens, 50);
  EXPECT_EQ(o.cached_prompt_tokens, 400);
  EXPECT_FALSE(o.usage_estimated);
  EXPECT_GE(o.time_to_first_token_ms, 0);
  EXPECT_GE(o.latency_ms, o.time_to_first_token_ms);
  EXPECT_EQ(o.cost_micro_usd, 600 * 2 + 400 / 2 + 50 * 8);
  const auto& a = rows[1];
  EXPECT_EQ(a.id, anthropic->request_id);
  EXPECT_EQ(a.provider, "anthropic");
  EXPECT_EQ(a.model, "claude-test");
  EXPECT_EQ(a.prompt_tokens, 1000) << "input_tokens plus what the cache read and wrote";
  EXPECT_EQ(a.cached_prompt_tokens, 400);
  EXPECT_EQ(a.cache_write_tokens, 100);
  EXPECT_EQ(a.completion_tokens, 50);
  EXPECT_FALSE(a.usage_estimated);
  EXPECT_GE(a.time_to_first_token_ms, 0);
  EXPECT_GE(a.latency_ms, a.time_to_first_token_ms);
  EXPECT_EQ(a.cost_micro_usd, 600 * 3 + 400 / 4 + 50 * 15);

  auto used = storage_call([&](sdk::Storage& s) {
    return s.store<sdk::LlmRequestStore>().usage_of_user(user_id_,
                                                         std::chrono::floor<std::chrono::days>(clock_.now()));
  });
  ASSERT_TRUE(used.ok()) << used.status().to_string();
  EXPECT_EQ(used->requests, 2);
  EXPECT_EQ(used->prompt_tokens, 2000);
  EXPECT_EQ(used->completion_tokens, 100);
  EXPECT_EQ(used->cost_micro_usd, o.cost_micro_usd + a.cost_micro_usd);
  const std::string exposition = metrics_.render();
  EXPECT_TRUE(contains(exposition,
                       R"(samokoder_llm_requests_total{provider="openai",model="gpt-test",outcome="ok"} 1)"));
  EXPECT_TRUE(
      contains(exposition,
               R"(samokoder_llm_tokens_total{provider="anthropic",model="claude-test",kind="cached"} 400)"))
      << exposition;
}

TEST_F(GatewayProvidersTest, TheUsersStoredKeyIsWhatTheServerGetsAndItLeaksNowhere) {
  LogCapture capture({"llm", "plugin.llm.openai", "plugin.llm.anthropic", "http_client", "plugins"});
  // Endpoints quote the key they refused, as OpenAI's "Incorrect API key provided: sk-..." does.
  openai_server_.script(
      {http_error(500, "upstream choked on key " + std::string(kOpenAiUserKey)), streamed({"fine"})});
  anthropic_server_.script({http_error(401, "invalid x-api-key " + std::string(kAnthropicUserKey))});
  start();

  auto answered = complete(call());
  ASSERT_TRUE(answered.ok()) << answered.status().to_string();
  auto refused = complete(call("claude"));
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kUnauthenticated);
  EXPECT_TRUE(contains(refused.status().message(), "anthropic refused your stored anthropic key"))
      << refused.status().message();
  EXPECT_FALSE(contains(refused.status().message(), kAnthropicUserKey)) << refused.status().message();

  for (const auto& c : openai_server_.calls())
    EXPECT_EQ(c.headers.at("authorization"), "Bearer " + std::string(kOpenAiUserKey));
  ASSERT_EQ(anthropic_server_.calls().size(), 1u);
  EXPECT_EQ(anthropic_server_.calls()[0].headers.at("x-api-key"), kAnthropicUserKey);

  const auto rows = records();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_TRUE(contains(rows[0].error, "upstream choked on key ***")) << rows[0].error;
  for (const auto& row : rows) {
    EXPECT_FALSE(contains(row.error, kOpenAiUserKey)) << row.error;
    EXPECT_FALSE(contains(row.error, kAnthropicUserKey)) << row.error;
  }
  // Logging is asynchronous: wait for the lines that quote the failures before checking every line.
  EXPECT_TRUE(wait_until([&] { return capture.sink().saw("retry 1"); }, kPatience));
  EXPECT_TRUE(wait_until([&] { return capture.sink().saw("plugin.llm.anthropic: completion with model"); },
                         kPatience));
  for (const auto& line : capture.sink().lines()) {
    EXPECT_FALSE(contains(line, kOpenAiUserKey)) << line;
    EXPECT_FALSE(contains(line, kAnthropicUserKey)) << line;
    EXPECT_FALSE(contains(line, kOpenAiServerKey)) << line;
  }
  EXPECT_FALSE(contains(metrics_.render(), kOpenAiUserKey));
}

// ---- retries and fallback -------------------------------------------------------------------------

TEST_F(GatewayProvidersTest, A429WithRetryAfterAndA500AreRetriedUntilTheAnswer) {
  ModelReply limited = http_error(429, "slow down");
  limited.retry_after_seconds = 1;
  openai_server_.script({limited, http_error(500), streamed({"third ", "time"})});
  start();

  Collect seen;
  auto answer = complete(call(), &seen);
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  EXPECT_EQ(seen.text(), "third time");
  EXPECT_EQ(answer->attempts, 3u);
  EXPECT_EQ(openai_server_.request_count(), 3u);
  ASSERT_EQ(answer->backoffs.size(), 2u);
  EXPECT_EQ(answer->backoffs[0], milliseconds(1000)) << "Retry-After: 1 beats a jitter of at most 1 ms";
  EXPECT_LE(answer->backoffs[1], milliseconds(2)) << "full jitter up to 1 ms * 2";
  const auto rows = records();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].attempt, 1);
  EXPECT_EQ(rows[0].status, "error");
  EXPECT_TRUE(contains(rows[0].error, "HTTP 429")) << rows[0].error;
  EXPECT_EQ(rows[1].attempt, 2);
  EXPECT_EQ(rows[1].status, "error");
  EXPECT_TRUE(contains(rows[1].error, "HTTP 500")) << rows[1].error;
  EXPECT_EQ(rows[2].attempt, 3);
  EXPECT_EQ(rows[2].status, "ok");
  EXPECT_EQ(rows[2].id, answer->request_id);
  const std::string exposition = metrics_.render();
  EXPECT_TRUE(
      contains(exposition, R"(samokoder_llm_retries_total{provider="openai",reason="rate_limited"} 1)"));
  EXPECT_TRUE(
      contains(exposition, R"(samokoder_llm_retries_total{provider="openai",reason="unavailable"} 1)"));
}

TEST_F(GatewayProvidersTest, ARetryAfterDateIsWaitedForLikeSeconds) {
  for (auto* server : {&openai_server_, &anthropic_server_}) {
    ModelReply limited = http_error(429);
    limited.retry_after_seconds = 2;
    limited.retry_after_as_date = true;
    server->script({limited, streamed({"later"})});
  }
  start();
  for (const char* role : {"default", "claude"}) {
    auto answer = complete(call(role));
    ASSERT_TRUE(answer.ok()) << role << ": " << answer.status().to_string();
    ASSERT_EQ(answer->backoffs.size(), 1u) << role;
    // A date in whole seconds two seconds ahead is between one and two seconds away (some slack for
    // the second boundary between the server writing it and the plugin reading it); without the date
    // the wait would be the jitter of at most 1 ms.
    EXPECT_GE(answer->backoffs[0], milliseconds(500)) << role;
    EXPECT_LE(answer->backoffs[0], milliseconds(2000)) << role;
  }
  EXPECT_EQ(openai_server_.request_count(), 2u);
  EXPECT_EQ(anthropic_server_.request_count(), 2u);
}

TEST_F(GatewayProvidersTest, FallsBackToAnthropicWhenTheOpenAiServerClosesBeforeAnswering) {
  ModelReply dropped;
  dropped.close_before_headers = true;
  openai_server_.script({dropped});
  anthropic_server_.script({streamed({"from ", "claude"})});
  start();

  Collect seen;
  auto answer = complete(call("fallback"), &seen);
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  EXPECT_EQ(answer->provider, "anthropic");
  EXPECT_EQ(seen.text(), "from claude");
  EXPECT_EQ(answer->attempts, 2u);
  EXPECT_TRUE(answer->backoffs.empty()) << "another provider is tried at once";
  EXPECT_EQ(openai_server_.request_count(), 1u);
  EXPECT_EQ(anthropic_server_.request_count(), 1u);
  const auto rows = records();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].provider, "openai");
  EXPECT_EQ(rows[0].status, "error");
  EXPECT_EQ(rows[1].provider, "anthropic");
  EXPECT_EQ(rows[1].status, "ok");
}

TEST_F(GatewayProvidersTest, FallsBackToAnthropicWhenTheOpenAiPortIsClosed) {
  {
    const ScriptedModelServer gone({.tls = &pki_, .expected_key = {}});
    openai_url_ = gone.url("/v1");
  }  // nothing listens on its port any more
  anthropic_server_.script({streamed({"still here"})});
  start();

  auto answer = complete(call("fallback"));
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  EXPECT_EQ(answer->provider, "anthropic");
  EXPECT_EQ(answer->completion.content, "still here");
  EXPECT_EQ(answer->attempts, 2u);
  const auto rows = records();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].provider, "openai");
  EXPECT_EQ(rows[0].status, "error");
  EXPECT_EQ(openai_server_.request_count(), 0u);
}

// The header: kDeadlineExceeded is retried, unless a delta already reached the caller.
TEST_F(GatewayProvidersTest, AStallPastTheIdleTimeoutIsRetriedOnlyBeforeTextReachedTheCaller) {
  config_.idle_timeout_ms = 300;
  ModelReply silent;  // the role chunk, then nothing
  silent.deltas = {"never"};
  silent.stall_after = 0;
  ModelReply partial;
  partial.deltas = {"partial ", "never"};
  partial.stall_after = 1;
  openai_server_.script({silent, streamed({"after ", "the stall"}), partial});
  start();

  Collect first;
  auto retried = complete(call(), &first);
  ASSERT_TRUE(retried.ok()) << retried.status().to_string();
  EXPECT_EQ(first.text(), "after the stall");
  EXPECT_EQ(retried->attempts, 2u);
  EXPECT_EQ(openai_server_.request_count(), 2u);

  Collect second;
  auto stalled = complete(call(), &second);
  EXPECT_EQ(stalled.status().code(), sdk::StatusCode::kDeadlineExceeded) << stalled.status().to_string();
  EXPECT_TRUE(contains(stalled.status().message(), "idle")) << stalled.status().message();
  EXPECT_EQ(second.text(), "partial ");
  EXPECT_EQ(openai_server_.request_count(), 3u) << "not retried: the caller saw text";

  const auto rows = records();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].status, "timeout");
  EXPECT_EQ(rows[1].status, "ok");
  EXPECT_EQ(rows[2].status, "timeout");
  EXPECT_GT(rows[2].completion_tokens, 0) << "the text received is accounted, estimated";
  EXPECT_TRUE(
      contains(metrics_.render(), R"(samokoder_llm_retries_total{provider="openai",reason="timeout"} 1)"));
}

TEST_F(GatewayProvidersTest, CancellingMidStreamEndsTheCallAndClosesTheUpstreamConnection) {
  // Long enough that only a closed connection, not the end of the answer, ends it within the wait.
  ModelReply endless;
  endless.deltas = std::vector<std::string>(600, "x");
  endless.delay_between_events = 50ms;
  openai_server_.script({endless});
  anthropic_server_.script({endless});
  start();

  const std::vector<std::pair<std::string, ScriptedModelServer*>> routes = {{"default", &openai_server_},
                                                                            {"claude", &anthropic_server_}};
  for (const auto& route : routes) {
    const std::string& role = route.first;
    ScriptedModelServer* server = route.second;
    sdk::CancelSource cancel;
    Collect seen;
    std::thread canceller([&] {
      EXPECT_TRUE(wait_until([&] { return seen.deltas().size() >= 2; }, kPatience)) << role;
      cancel.request_stop();
    });
    auto result = complete(call(role), &seen, cancel.get_token());
    canceller.join();
    EXPECT_EQ(result.status().code(), sdk::StatusCode::kCancelled)
        << role << ": " << result.status().to_string();
    EXPECT_LT(seen.deltas().size(), 600u) << role;
    EXPECT_EQ(server->request_count(), 1u) << role << ": a cancelled call is not retried";
    EXPECT_TRUE(
        wait_until([&] { return server->connections_closed() == server->connections_accepted(); }, 5s))
        << role << ": the server still holds "
        << server->connections_accepted() - server->connections_closed() << " connection(s)";
  }
  const auto rows = records();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].status, "cancelled");
  EXPECT_EQ(rows[1].status, "cancelled");
}

TEST_F(GatewayProvidersTest, ManyConcurrentStreamsEachGetTheirOwnAnswerAndRecord) {
  const auto echo = [](const testing::ModelCall& c) {
    ModelReply reply;
    reply.deltas = {"echo: ", c.prompt_text()};
    reply.delay_between_events = 5ms;
    return reply;
  };
  openai_server_.respond_with(echo);
  anthropic_server_.respond_with(echo);
  start();

  constexpr int kCalls = 32;
  std::vector<std::string> texts(kCalls);
  std::vector<std::string> providers(kCalls);
  std::vector<std::string> failures(kCalls);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      Collect seen;
      auto answer =
          complete(call(i % 2 == 0 ? "default" : "claude", "question #" + std::to_string(i)), &seen);
      if (!answer.ok()) {
        failures[i] = answer.status().to_string();
        return;
      }
      if (seen.text() != answer->completion.content) failures[i] = "the observer saw " + seen.text();
      texts[i] = answer->completion.content;
      providers[i] = answer->provider;
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(failures[i], "") << "call " << i;
    EXPECT_EQ(texts[i], "echo: question #" + std::to_string(i));
    EXPECT_EQ(providers[i], i % 2 == 0 ? "openai" : "anthropic");
  }
  EXPECT_EQ(openai_server_.request_count(), kCalls / 2u);
  EXPECT_EQ(anthropic_server_.request_count(), kCalls / 2u);
  const auto rows = records();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kCalls));
  std::size_t openai_rows = 0;
  for (const auto& row : rows) {
    EXPECT_EQ(row.status, "ok");
    EXPECT_EQ(row.attempt, 1);
    if (row.provider == "openai") ++openai_rows;
  }
  EXPECT_EQ(openai_rows, kCalls / 2u);
}

// ---- JSON answers ---------------------------------------------------------------------------------

TEST_F(GatewayProvidersTest, AnAnswerThatIsNotJsonIsAskedAgainThroughTheOpenAiPlugin) {
  openai_server_.script({streamed({"Sure! {\"title\": "}), streamed({R"({"title": )", R"("done"})"})});
  start();
  LlmCall task = call();
  task.json_output = sdk::JsonOutput{"task", json::parse(R"({"type": "object", "required": ["title"],
                                                             "properties": {"title": {"type": "string"}}})")};
  Collect seen;
  auto answer = complete(task, &seen);
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  ASSERT_TRUE(answer->json.has_value());
  EXPECT_EQ((*answer->json)["title"], "done");
  EXPECT_EQ(answer->attempts, 2u);
  EXPECT_TRUE(seen.deltas().empty()) << "a JSON call's deltas are not passed on";
  ASSERT_EQ(openai_server_.request_count(), 2u);
  const auto calls = openai_server_.calls();
  EXPECT_EQ(calls[0].body["response_format"]["type"], "json_schema");
  const json& reask = calls[1].body["messages"];
  ASSERT_EQ(reask.size(), 3u) << reask.dump();
  EXPECT_EQ(reask[1]["role"], "assistant");
  EXPECT_EQ(reask[1]["content"], "Sure! {\"title\": ");
  EXPECT_EQ(reask[2]["role"], "user");
  EXPECT_TRUE(contains(reask[2]["content"].get<std::string>(), "not valid JSON: [json.exception.parse_error"))
      << reask[2]["content"];
  EXPECT_EQ(records().size(), 2u);
}

// ---- what the scripted server's misbehaviours show of the providers -----------------------------------

TEST_F(GatewayProvidersTest, InStreamErrorsAreRetriedOrNotByTheirType) {
  ModelReply rate_limited;  // before any text: a retry is allowed
  rate_limited.error_after = 0;
  rate_limited.error_type = "rate_limit_exceeded";
  rate_limited.stream_error_status = 429;
  ModelReply broke_after_text;
  broke_after_text.deltas = {"half ", "never"};
  broke_after_text.error_after = 1;
  broke_after_text.error_type = "server_error";
  openai_server_.script({rate_limited, streamed({"ok now"}), broke_after_text});
  ModelReply overloaded;
  overloaded.error_after = 0;
  overloaded.error_type = "overloaded_error";
  ModelReply invalid;
  invalid.error_after = 0;
  invalid.error_type = "invalid_request_error";
  anthropic_server_.script({overloaded, streamed({"claude ok"}), invalid});
  start();

  auto openai = complete(call());
  ASSERT_TRUE(openai.ok()) << openai.status().to_string();
  EXPECT_EQ(openai->completion.content, "ok now");
  Collect half;
  auto broken = complete(call(), &half);
  EXPECT_EQ(broken.status().code(), sdk::StatusCode::kUnavailable) << broken.status().to_string();
  EXPECT_EQ(half.text(), "half ");
  EXPECT_EQ(openai_server_.request_count(), 3u) << "the error after text is not retried";

  auto anthropic = complete(call("claude"));
  ASSERT_TRUE(anthropic.ok()) << anthropic.status().to_string();
  EXPECT_EQ(anthropic->completion.content, "claude ok");
  auto refused = complete(call("claude"));
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kInvalidArgument) << refused.status().to_string();
  EXPECT_EQ(anthropic_server_.request_count(), 3u) << "invalid_request_error is not retried";

  const auto rows = records();
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_TRUE(contains(rows[0].error, "rate_limit_exceeded")) << rows[0].error;
  EXPECT_TRUE(contains(rows[3].error, "overloaded_error")) << rows[3].error;
  const std::string exposition = metrics_.render();
  EXPECT_TRUE(
      contains(exposition, R"(samokoder_llm_retries_total{provider="openai",reason="rate_limited"} 1)"));
  EXPECT_TRUE(
      contains(exposition, R"(samokoder_llm_retries_total{provider="anthropic",reason="unavailable"} 1)"));
}

TEST_F(GatewayProvidersTest, AnOpenAiStreamEndingWithoutDoneIsAWholeAnswer) {
  ModelReply reply = streamed({"no ", "done"}, {.prompt_tokens = 40, .completion_tokens = 2});
  reply.omit_done = true;
  openai_server_.script({reply});
  start();
  auto answer = complete(call());
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  EXPECT_EQ(answer->completion.content, "no done");
  EXPECT_EQ(answer->completion.finish_reason, "stop");
  EXPECT_EQ(answer->attempts, 1u);
  const auto rows = records();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].prompt_tokens, 40) << "the usage chunk after the finish reason was read";
  EXPECT_FALSE(rows[0].usage_estimated);
}

TEST_F(GatewayProvidersTest, AnAnthropicStreamWithCommentsAndPingsGivesOnlyItsText) {
  ModelReply reply = streamed({"kept ", "alive"});
  reply.keep_alives = true;
  anthropic_server_.script({reply});
  start();
  Collect seen;
  auto answer = complete(call("claude"), &seen);
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  EXPECT_EQ(seen.deltas(), (std::vector<std::string>{"kept ", "alive"}));
  EXPECT_EQ(records().at(0).completion_tokens, 5);
}

TEST_F(GatewayProvidersTest, TheAnthropicModelListFollowsEveryPage) {
  start();
  auto models = plugins_->acquire("llm.anthropic").call<sdk::LlmProvider>([&](sdk::LlmProvider& llm) {
    return llm.list_models({.api_key = std::string(kAnthropicUserKey), .base_url = {}},
                           sdk::never_cancelled());
  });
  ASSERT_TRUE(models.ok()) << models.status().to_string();
  std::vector<std::string> ids;
  for (const auto& model : *models)
    ids.push_back(model.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"claude-a", "claude-b", "claude-c", "claude-d", "claude-e"}));
  const auto calls = anthropic_server_.calls();
  ASSERT_EQ(calls.size(), 3u) << "pages of two";
  EXPECT_EQ(calls[0].query, "limit=1000");
  EXPECT_EQ(calls[1].query, "limit=1000&after_id=claude-b");
  EXPECT_EQ(calls[2].query, "limit=1000&after_id=claude-d");
}

}  // namespace
}  // namespace samokoder::llm
