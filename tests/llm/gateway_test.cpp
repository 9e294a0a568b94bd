// The LLM gateway against real plugins: two scripted provider plugins (tests/llm/fixtures, answers
// from their plugin config) and the SQLite storage plugin, loaded by the kernel's plugin manager, with
// a real user whose provider key is sealed and stored as the key API stores it. Waits are asserted as
// the gateway decided them (LlmAnswer::backoffs), never as wall-clock time.
#include "llm/gateway.hpp"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include <samokoder/sdk/storage.hpp>

#include "core/logging.hpp"
#include "gateway_support.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::llm {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr std::string_view kUserKey = "sk-user-alpha-0123456789";
constexpr std::string_view kEnvKey = "sk-env-alpha-9876543210";

class GatewayTest : public ::testing::Test {
 protected:
  GatewayTest() {
    config_.providers.clear();
    config_.providers["alpha"] = {.plugin = "llm.scripted_alpha",
                                  .api_key_env = "ALPHA_API_KEY",
                                  .key_required = true,
                                  .base_url = {},
                                  .api_key = std::string(kEnvKey)};
    config_.providers["beta"] = {.plugin = "llm.scripted_beta",
                                 .api_key_env = "BETA_API_KEY",
                                 .key_required = true,
                                 .base_url = {},
                                 .api_key = {}};
    config_.roles = {{"default", {"alpha/a-default"}}};
    config_.retry_initial_backoff_ms = 1;
    config_.retry_max_backoff_ms = 40;
    EXPECT_TRUE(ring_.add("k1", std::string(32, 'k')).ok());
  }

  ~GatewayTest() override {
    gateway_.reset();
    if (plugins_) plugins_->stop();
  }

  template <typename F>
  auto storage_call(F&& fn) {
    return support::storage_call(*plugins_, std::forward<F>(fn));
  }

  // Loads storage and both providers, alpha and beta answering with `alpha` and `beta` replies.
  void start(json alpha, json beta = json::array({{{"deltas", {"beta answer"}}}})) {
    config::PluginsConfig plugins;
    plugins.plugin_dir = SAMOKODER_LLM_FIXTURE_DIR;
    plugins.runtime_dir = dir_.path() / "run";
    plugins.plugins.push_back(support::sqlite_storage_entry(dir_.path()));
    for (const auto& [name, replies] :
         {std::pair{std::string("alpha"), alpha}, std::pair{std::string("beta"), beta}}) {
      config::PluginEntry entry;
      entry.id = "llm.scripted_" + name;
      entry.file = "scripted_" + name + ".so";
      entry.required = true;
      entry.config = {{"journal", journal_path(name).string()}, {"replies", replies}};
      plugins.plugins.push_back(entry);
    }
    plugins_ = std::make_unique<plugins::PluginManager>(plugins, metrics_, clock_);
    const auto started = plugins_->start();
    ASSERT_TRUE(started.ok()) << started.to_string();
    user_id_ = support::create_user(*plugins_);
    ASSERT_FALSE(user_id_.empty());
    gateway_ =
        std::make_unique<LlmGateway>(LlmGateway::Dependencies{config_, *plugins_, ring_, metrics_, clock_});
  }

  void store_user_key(std::string_view provider, std::string_view key) {
    support::store_user_key(*plugins_, ring_, user_id_, provider, key);
  }

  std::filesystem::path journal_path(const std::string& name) const {
    return dir_.path() / (name + ".jsonl");
  }
  // The requests a provider received, in order.
  std::vector<json> journal(const std::string& name) const {
    std::vector<json> out;
    std::ifstream in(journal_path(name));
    for (std::string line; std::getline(in, line);)
      out.push_back(json::parse(line));
    return out;
  }
  // The user's recorded requests, oldest attempt first.
  std::vector<sdk::LlmRequest> records() { return support::records_of(*plugins_, user_id_); }

  LlmCall call(std::string role = "default") const {
    LlmCall c;
    c.user_id = user_id_;
    c.role = std::move(role);
    c.messages = {{"user", "hello", false}};
    return c;
  }

  config::LlmConfig config_ = config::default_llm_config();
  testing::TempDir dir_;
  metrics::Registry metrics_;
  core::SystemClock clock_;
  security::KeyRing ring_;
  std::unique_ptr<plugins::PluginManager> plugins_;
  std::unique_ptr<LlmGateway> gateway_;
  std::string user_id_;
};

json text(std::string answer, json usage = json::object()) {
  return {{"deltas", {std::move(answer)}}, {"usage", std::move(usage)}};
}
json failure(std::string code, std::int64_t retry_after_ms = -1) {
  json reply = {{"fail", std::move(code)}};
  if (retry_after_ms >= 0) reply["retry_after_ms"] = retry_after_ms;
  return reply;
}

TEST_F(GatewayTest, RoutesARoleToItsChainAndTriesAnOverrideFirst) {
  config_.roles["architect"] = {"beta/b-architect"};
  start(json::array({text("alpha answer")}));
  store_user_key("beta", "sk-user-beta-1");

  auto architect = gateway_->complete(call("architect"), nullptr, sdk::never_cancelled());
  ASSERT_TRUE(architect.ok()) << architect.status().to_string();
  EXPECT_EQ(architect->provider, "beta");
  EXPECT_EQ(architect->model, "b-architect");
  EXPECT_EQ(architect->completion.content, "beta answer");

  auto unknown_role = gateway_->complete(call("reviewer"), nullptr, sdk::never_cancelled());
  ASSERT_TRUE(unknown_role.ok()) << unknown_role.status().to_string();
  EXPECT_EQ(unknown_role->provider, "alpha");
  EXPECT_EQ(unknown_role->model, "a-default");

  LlmCall overridden = call("architect");
  overridden.model = "alpha/a-special";
  auto special = gateway_->complete(overridden, nullptr, sdk::never_cancelled());
  ASSERT_TRUE(special.ok()) << special.status().to_string();
  EXPECT_EQ(special->model, "a-special");
  ASSERT_EQ(journal("alpha").size(), 2U);
  EXPECT_EQ(journal("alpha")[1]["model"], "a-special");

  overridden.model = "gamma/x";
  EXPECT_EQ(gateway_->complete(overridden, nullptr, sdk::never_cancelled()).status().code(),
            sdk::StatusCode::kInvalidArgument);
}

TEST_F(GatewayTest, FallsBackToTheNextProviderWhenTheFirstIsUnavailable) {
  config_.roles["default"] = {"alpha/a1", "beta/b1"};
  config_.providers["beta"].api_key = "sk-env-beta";
  start(json::array({failure("unavailable")}));

  auto answer = gateway_->complete(call(), nullptr, sdk::never_cancelled());
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  EXPECT_EQ(answer->provider, "beta");
  EXPECT_EQ(answer->attempts, 2U);
  EXPECT_TRUE(answer->backoffs.empty());  // another provider is tried at once, not after a wait
  EXPECT_EQ(journal("alpha").size(), 1U);
  const auto rows = records();
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].provider, "alpha");
  EXPECT_EQ(rows[0].status, "error");
  EXPECT_EQ(rows[0].attempt, 1);
  EXPECT_EQ(rows[1].provider, "beta");
  EXPECT_EQ(rows[1].status, "ok");
  EXPECT_EQ(rows[1].attempt, 2);
  EXPECT_EQ(rows[1].id, answer->request_id);
}

TEST_F(GatewayTest, RetriesTransientFailuresWaitingForRetryAfter) {
  start(json::array({failure("resource_exhausted", 30), failure("deadline_exceeded"), text("third time")}));

  auto answer = gateway_->complete(call(), nullptr, sdk::never_cancelled());
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  EXPECT_EQ(answer->completion.content, "third time");
  EXPECT_EQ(answer->attempts, 3U);
  ASSERT_EQ(answer->backoffs.size(), 2U);
  EXPECT_EQ(answer->backoffs[0], milliseconds(30));  // Retry-After beats a jitter of at most 1 ms
  EXPECT_LE(answer->backoffs[1], milliseconds(2));   // full jitter up to 1 ms * 2
  const auto rows = records();
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(rows[0].attempt, 1);
  EXPECT_EQ(rows[0].status, "error");
  EXPECT_EQ(rows[1].attempt, 2);
  EXPECT_EQ(rows[1].status, "timeout");
  EXPECT_EQ(rows[2].attempt, 3);
  EXPECT_EQ(rows[2].status, "ok");
  const std::string exposition = metrics_.render();
  EXPECT_NE(exposition.find(R"(samokoder_llm_retries_total{provider="alpha",reason="rate_limited"} 1)"),
            std::string::npos);
  EXPECT_NE(exposition.find(R"(samokoder_llm_retries_total{provider="alpha",reason="timeout"} 1)"),
            std::string::npos);
  EXPECT_NE(
      exposition.find(R"(samokoder_llm_requests_total{provider="alpha",model="a-default",outcome="ok"} 1)"),
      std::string::npos);
}

TEST_F(GatewayTest, RetryAfterIsCappedAndAttemptsAreBounded) {
  config_.retry_max_attempts = 3;
  start(json::array({failure("resource_exhausted", 100000)}));

  auto result = gateway_->complete(call(), nullptr, sdk::never_cancelled());
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kResourceExhausted);
  EXPECT_EQ(journal("alpha").size(), 3U);
  EXPECT_EQ(records().size(), 3U);
}

TEST_F(GatewayTest, NothingIsRetriedOnceADeltaReachedTheCaller) {
  start(json::array({{{"deltas", {"partial "}}, {"fail", "unavailable"}}, text("whole")}));
  struct Collect : sdk::CompletionObserver {
    std::string text;
    bool on_delta(std::string_view delta) override {
      text += delta;
      return true;
    }
  } observer;

  auto result = gateway_->complete(call(), &observer, sdk::never_cancelled());
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_EQ(observer.text, "partial ");
  EXPECT_EQ(journal("alpha").size(), 1U);
}

TEST_F(GatewayTest, CancellingEndsTheBackoffWaitAtOnce) {
  config_.retry_max_backoff_ms = 120000;
  start(json::array({failure("resource_exhausted", 120000)}));
  sdk::CancelSource cancel;
  std::thread canceller([&] {
    EXPECT_TRUE(testing::wait_until([&] { return journal("alpha").size() == 1; }, std::chrono::seconds(30)));
    cancel.request_stop();
  });

  auto result = gateway_->complete(call(), nullptr, cancel.get_token());
  canceller.join();
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kCancelled);
  EXPECT_EQ(journal("alpha").size(), 1U);
}

TEST_F(GatewayTest, TheUsersOwnKeyIsPreferredAndTheServerKeyUsedWithoutOne) {
  start(json::array({text("a")}));
  ASSERT_TRUE(gateway_->complete(call(), nullptr, sdk::never_cancelled()).ok());
  store_user_key("alpha", kUserKey);
  ASSERT_TRUE(gateway_->complete(call(), nullptr, sdk::never_cancelled()).ok());
  const auto requests = journal("alpha");
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0]["api_key"], kEnvKey);
  EXPECT_EQ(requests[1]["api_key"], kUserKey);
}

TEST_F(GatewayTest, AMissingKeySaysHowToAddOneAndIsNotSkippedSilently) {
  config_.roles["default"] = {"beta/b1"};
  config_.roles["fallback"] = {"alpha/a1", "beta/b1"};
  start(json::array({failure("unavailable")}));

  auto missing = gateway_->complete(call(), nullptr, sdk::never_cancelled());
  EXPECT_EQ(missing.status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(missing.status().message(),
            "no API key for provider beta: store a key with PUT /api/v1/keys/beta or set BETA_API_KEY on the "
            "server");
  EXPECT_TRUE(journal("beta").empty());

  auto skipped = gateway_->complete(call("fallback"), nullptr, sdk::never_cancelled());
  EXPECT_EQ(skipped.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_NE(skipped.status().message().find("skipped for want of a key: beta/b1"), std::string::npos)
      << skipped.status().message();
  EXPECT_TRUE(journal("beta").empty());
}

TEST_F(GatewayTest, AProviderWithoutKeysIsCalledWithNone) {
  config_.roles["default"] = {"beta/local"};
  config_.providers["beta"].key_required = false;
  start(json::array({text("a")}));
  ASSERT_TRUE(gateway_->complete(call(), nullptr, sdk::never_cancelled()).ok());
  ASSERT_EQ(journal("beta").size(), 1U);
  EXPECT_EQ(journal("beta")[0]["api_key"], "");
}

LlmCall with_json(LlmCall c) {
  c.json_output = sdk::JsonOutput{"task", json::parse(R"({"type": "object", "required": ["title"],
                                                          "properties": {"title": {"type": "string"}}})")};
  return c;
}

TEST_F(GatewayTest, AnInvalidJsonAnswerIsAskedAgainQuotingTheError) {
  start(json::array({text(R"({"name": 1})"), text(R"({"title": "done"})")}));

  auto answer = gateway_->complete(with_json(call()), nullptr, sdk::never_cancelled());
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  ASSERT_TRUE(answer->json.has_value());
  EXPECT_EQ((*answer->json)["title"], "done");
  EXPECT_EQ(answer->attempts, 2U);
  const auto requests = journal("alpha");
  ASSERT_EQ(requests.size(), 2U);
  const auto& reask = requests[1]["messages"];
  ASSERT_EQ(reask.size(), 3U);
  EXPECT_EQ(reask[1]["role"], "assistant");
  EXPECT_EQ(reask[1]["content"], R"({"name": 1})");
  EXPECT_NE(reask[2]["content"].get<std::string>().find("/title: required property missing"),
            std::string::npos);
}

TEST_F(GatewayTest, AnAnswerStillInvalidAfterTheReasksFails) {
  start(json::array({text("not json at all")}));

  auto result = gateway_->complete(with_json(call()), nullptr, sdk::never_cancelled());
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kInternal);
  EXPECT_NE(result.status().message().find("after 2 asks: not valid JSON"), std::string::npos)
      << result.status().message();
  EXPECT_EQ(journal("alpha").size(), 2U);  // json_reasks = 1
  EXPECT_EQ(records().size(), 2U);
}

TEST_F(GatewayTest, CostComesFromThePriceTableWithCachedTokensAtTheirPrice) {
  config_.prices["alpha/a-default"] = {
      .prompt_usd_per_mtok = 1.0, .completion_usd_per_mtok = 2.0, .cached_prompt_usd_per_mtok = 0.5};
  start(json::array({text("a", {{"prompt", 1000}, {"completion", 500}, {"cached", 400}})}));

  ASSERT_TRUE(gateway_->complete(call(), nullptr, sdk::never_cancelled()).ok());
  const auto rows = records();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].cost_micro_usd, 600 * 1 + 400 / 2 + 500 * 2);
  EXPECT_EQ(rows[0].cached_prompt_tokens, 400);
  EXPECT_EQ(rows[0].prompt_tokens, 1000);
}

TEST_F(GatewayTest, AUserOverTheDailyTokenBudgetIsRefused) {
  config_.user_daily_tokens = 100;
  start(json::array({text("a", {{"prompt", 100}, {"completion", 50}})}));

  ASSERT_TRUE(gateway_->complete(call(), nullptr, sdk::never_cancelled()).ok());
  auto refused = gateway_->complete(call(), nullptr, sdk::never_cancelled());
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(),
            "the daily (UTC) token budget is used up: limit 100 tokens, used 150");
  EXPECT_EQ(journal("alpha").size(), 1U);
}

TEST_F(GatewayTest, ARunOverItsCostBudgetIsRefused) {
  config_.run_cost_usd = 0.001;
  config_.prices["alpha/a-default"] = {
      .prompt_usd_per_mtok = 1.0, .completion_usd_per_mtok = 1.0, .cached_prompt_usd_per_mtok = 1.0};
  start(json::array({text("a", {{"prompt", 1500}, {"completion", 0}})}));
  auto project = storage_call([&](sdk::Storage& s) {
    return s.store<sdk::ProjectStore>().create_project(
        {.owner_id = user_id_, .name = "p", .description = ""});
  });
  ASSERT_TRUE(project.ok()) << project.status().to_string();
  auto run = storage_call([&](sdk::Storage& s) {
    return s.store<sdk::RunStore>().create_run(
        user_id_, {.project_id = project->id, .description = "", .state = "running"});
  });
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  LlmCall in_run = call();
  in_run.project_id = project->id;
  in_run.run_id = run->id;

  ASSERT_TRUE(gateway_->complete(in_run, nullptr, sdk::never_cancelled()).ok());
  auto refused = gateway_->complete(in_run, nullptr, sdk::never_cancelled());
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(), "the run cost budget is used up: limit $0.001000, used $0.001500");
  EXPECT_TRUE(gateway_->complete(call(), nullptr, sdk::never_cancelled()).ok());  // outside the run: no limit
}

TEST_F(GatewayTest, TheKeyIsInNoLogLineErrorRecordOrMetric) {
  auto sink = std::make_shared<support::CaptureSink>();
  core::logger("llm")->sinks().push_back(sink);
  const std::string leaky = "upstream says key " + std::string(kUserKey) + " is invalid";
  start(json::array({failure("unavailable"), {{"fail", "unauthenticated"}, {"message", leaky}}}));
  store_user_key("alpha", kUserKey);

  auto refused = gateway_->complete(call(), nullptr, sdk::never_cancelled());
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("alpha refused your stored alpha key"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(refused.status().message().find(kUserKey), std::string::npos);
  EXPECT_TRUE(testing::wait_until(
      [&] {
        for (const auto& line : sink->lines()) {
          if (line.find("retry 1") != std::string::npos) return true;
        }
        return false;
      },
      std::chrono::seconds(10)));
  for (const auto& line : sink->lines())
    EXPECT_EQ(line.find(kUserKey), std::string::npos) << line;
  for (const auto& row : records())
    EXPECT_EQ(row.error.find(kUserKey), std::string::npos) << row.error;
  EXPECT_EQ(metrics_.render().find(kUserKey), std::string::npos);
  auto& sinks = core::logger("llm")->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
}

}  // namespace
}  // namespace samokoder::llm
