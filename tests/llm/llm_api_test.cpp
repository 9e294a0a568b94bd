// The LLM layer as users and operators reach it: a real kernel (the Application with storage.sqlite,
// auth.local and the real llm.openai and llm.anthropic plugins) on an ephemeral port, its providers
// pointed at the scripted model server, driven over HTTP (usage, models, key verification) and by the
// `samokoder llm ping` command. Calls are made through the kernel's own gateway (Application::llm()),
// the one way agents will reach models.
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <samokoder/sdk/storage.hpp>

#include "api/context.hpp"
#include "app/cli.hpp"
#include "model_server.hpp"
#include "resources_fixture.hpp"

namespace samokoder::resources_test {
namespace {

using boost::beast::http::verb;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::ModelReply;
using ::testing::Not;
using testing::ScriptedModelServer;
using testing::ScriptedUsage;

constexpr const char* kServerKey = "sk-server-0123456789abcdef";
constexpr const char* kUserKey = "sk-user-fedcba9876543210";

ModelReply answer(std::string text, std::uint64_t prompt, std::uint64_t completion,
                  std::uint64_t cached = 0) {
  ModelReply reply;
  reply.deltas = {std::move(text)};
  reply.usage =
      ScriptedUsage{.prompt_tokens = prompt, .completion_tokens = completion, .cached_prompt_tokens = cached};
  return reply;
}

// Sets an environment variable for one scope: the CLI reads its secrets from the environment, as the
// server does.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { ::setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

class LlmApiTest : public ResourcesApiTest {
 protected:
  // Both providers on the one scripted server; openai has the server-wide key, anthropic none.
  void configure(config::Config& config) override {
    // Storage dates records by the real clock: so must the routes that pick today's records.
    clock_.advance(std::chrono::system_clock::now() - clock_.now());
    config.plugins.plugins.push_back(entry("llm.openai", "llm_openai.so"));
    config.plugins.plugins.push_back(entry("llm.anthropic", "llm_anthropic.so"));
    config.llm.providers["openai"].base_url = openai_.url("/v1");
    config.llm.providers["openai"].api_key = kServerKey;
    config.llm.providers["anthropic"].base_url = openai_.url("");
    config.llm.providers["anthropic"].api_key.clear();
    config.llm.roles["default"] = {"openai/gpt-cheap"};
    config.llm.roles["architect"] = {"anthropic/claude-strong", "openai/gpt-cheap"};
    config.llm.prices["openai/gpt-cheap"] = {
        .prompt_usd_per_mtok = 1.0, .completion_usd_per_mtok = 4.0, .cached_prompt_usd_per_mtok = 0.5};
    config.llm.retry_initial_backoff_ms = 1;
    config.llm.retry_max_backoff_ms = 5;
    budget(config.llm);
  }
  virtual void budget(config::LlmConfig& /*llm*/) {}

  static config::PluginEntry entry(std::string id, std::string file) {
    config::PluginEntry plugin;
    plugin.id = std::move(id);
    plugin.file = std::move(file);
    plugin.required = true;
    return plugin;
  }

  // One call through the kernel's gateway on `user`'s behalf.
  sdk::Result<llm::LlmAnswer> ask(const User& user, std::string role = "default",
                                  std::optional<std::string> model = std::nullopt) {
    llm::LlmCall call;
    call.user_id = user.id;
    call.role = std::move(role);
    call.model = std::move(model);
    call.messages = {{"user", "hello", false}};
    return app_->llm()->complete(call, nullptr, sdk::never_cancelled());
  }

  void make_admin(const std::string& user_id) {
    sdk::UserUpdate update;
    update.is_admin = true;
    auto updated = with_storage([&](sdk::Storage& s) { return s.users().update_user(user_id, update); });
    ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  }

  std::size_t model_list_calls() const {
    std::size_t count = 0;
    for (const auto& call : openai_.calls())
      count += call.method == "GET" && call.path == "/v1/models";
    return count;
  }

  ScriptedModelServer openai_{{.tls = nullptr, .expected_key = "", .models = {"gpt-cheap", "gpt-other"}}};
};

// ---- usage ------------------------------------------------------------------------------------------

TEST_F(LlmApiTest, UsageShowsEveryRequestByProviderModelAndDayForTheCallerOnly) {
  const User ada = sign_up("ada@example.com");
  const User bob = sign_up("bob@example.com");
  // A 500 that is retried: both attempts are requests and both must show.
  ModelReply failure;
  failure.status = 500;
  openai_.script({failure, answer("one", 1000, 100, 400), answer("two", 2000, 200)});
  ASSERT_TRUE(ask(ada).ok());
  ASSERT_TRUE(ask(bob).ok());

  const auto response = get("/api/v1/usage", ada);
  ASSERT_EQ(response.status, 200u) << response.body;
  const json usage = response.json();
  EXPECT_EQ(usage["scope"], json({{"user_id", ada.id}}));
  EXPECT_EQ(usage["totals"]["requests"], 2) << "the failed attempt and the answered one";
  EXPECT_EQ(usage["totals"]["prompt_tokens"], 1000);
  EXPECT_EQ(usage["totals"]["completion_tokens"], 100);
  EXPECT_EQ(usage["totals"]["cached_prompt_tokens"], 400);
  // 600 prompt at $1, 400 cached at $0.5, 100 completion at $4 per million tokens.
  EXPECT_EQ(usage["totals"]["cost_micro_usd"], 600 + 200 + 400);
  ASSERT_EQ(usage["by_model"].size(), 1u);
  EXPECT_EQ(usage["by_model"][0]["provider"], "openai");
  EXPECT_EQ(usage["by_model"][0]["model"], "gpt-cheap");
  ASSERT_EQ(usage["by_provider"].size(), 1u);
  ASSERT_EQ(usage["by_day"].size(), 1u);
  EXPECT_EQ(usage["by_day"][0]["day"], usage["until"]);
  EXPECT_FALSE(usage["by_day"][0].contains("user_id"));

  const auto requests = get("/api/v1/usage/requests", ada);
  ASSERT_EQ(requests.status, 200u) << requests.body;
  json items = requests.json()["items"];
  ASSERT_EQ(items.size(), 2u);
  // Both were recorded within a millisecond or so; the attempt number tells them apart.
  if (items[0]["attempt"] == 2) std::swap(items[0], items[1]);
  EXPECT_EQ(items[0]["status"], "error");
  EXPECT_EQ(items[0]["attempt"], 1);
  EXPECT_EQ(items[1]["status"], "ok");
  EXPECT_EQ(items[1]["attempt"], 2);
  EXPECT_EQ(items[1]["role"], "default");
  EXPECT_EQ(items[1]["prompt_tokens"], 1000);
  EXPECT_EQ(items[1]["cost_micro_usd"], 1200);
  for (const auto& item : items)
    EXPECT_EQ(item["user_id"], ada.id);

  EXPECT_EQ(get("/api/v1/usage", bob).json()["totals"]["prompt_tokens"], 2000);
}

TEST_F(LlmApiTest, AnotherUsersUsageIsForAdminsOnly) {
  const User ada = sign_up("ada@example.com");
  const User bob = sign_up("bob@example.com");
  openai_.script({answer("a", 10, 1), answer("b", 20, 2)});
  ASSERT_TRUE(ask(ada).ok());
  ASSERT_TRUE(ask(bob).ok());

  EXPECT_EQ(get("/api/v1/usage?user_id=" + ada.id, bob).status, 403u);
  EXPECT_EQ(get("/api/v1/usage?all_users=true", bob).status, 403u);
  EXPECT_EQ(get("/api/v1/usage/requests?user_id=" + ada.id, bob).status, 403u);

  make_admin(bob.id);
  const User admin = log_in("bob@example.com");
  const auto all = get("/api/v1/usage?all_users=true", admin);
  ASSERT_EQ(all.status, 200u) << all.body;
  EXPECT_EQ(all.json()["totals"]["requests"], 2);
  const json by_day = all.json()["by_day"];
  EXPECT_EQ(by_day.size(), 2u);
  for (const auto& row : by_day)
    EXPECT_TRUE(row.contains("user_id"));
  const auto one = get("/api/v1/usage?user_id=" + ada.id, admin);
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(one.json()["totals"]["prompt_tokens"], 10);
  const auto listed = get("/api/v1/usage/requests?user_id=" + ada.id, admin);
  ASSERT_EQ(listed.status, 200u);
  EXPECT_EQ(listed.json()["items"].size(), 1u);
}

TEST_F(LlmApiTest, ARangeOfDaysIsCheckedAndBounded) {
  const User ada = sign_up("ada@example.com");
  const auto bad_day = get("/api/v1/usage?since=2026-02-30", ada);
  EXPECT_EQ(bad_day.status, 400u);
  EXPECT_THAT(bad_day.body, HasSubstr("/since"));
  EXPECT_EQ(get("/api/v1/usage?since=2026-05-02&until=2026-05-01", ada).status, 400u);
  EXPECT_EQ(get("/api/v1/usage?since=2024-01-01&until=2026-01-01", ada).status, 400u);
  EXPECT_EQ(get("/api/v1/usage?all_users=maybe", ada).status, 400u);
  const auto empty = get("/api/v1/usage?since=2020-01-01&until=2020-01-31", ada);
  ASSERT_EQ(empty.status, 200u) << empty.body;
  EXPECT_EQ(empty.json()["since"], "2020-01-01");
  EXPECT_EQ(empty.json()["until"], "2020-01-31");
  EXPECT_EQ(empty.json()["totals"]["requests"], 0);
}

class LlmBudgetApiTest : public LlmApiTest {
 protected:
  void budget(config::LlmConfig& llm) override { llm.user_daily_tokens = 1000; }
};

TEST_F(LlmBudgetApiTest, AUserOverTheDailyBudgetIsRefusedClearlyAndUsageShowsIt) {
  const User ada = sign_up("ada@example.com");
  openai_.script({answer("big", 900, 150)});
  ASSERT_TRUE(ask(ada).ok());
  const std::size_t requests = openai_.request_count();

  auto refused = ask(ada);
  ASSERT_EQ(refused.status().code(), sdk::StatusCode::kResourceExhausted) << refused.status().to_string();
  EXPECT_EQ(openai_.request_count(), requests) << "a call over budget reaches no model";
  const auto problem = api::problem_from_status(refused.status());
  EXPECT_EQ(problem.status, 429u);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("daily (UTC) token budget is used up: limit 1000 tokens, used 1050"));

  const json budgets = get("/api/v1/usage", ada).json()["budgets"];
  EXPECT_EQ(budgets["user_daily_tokens"]["limit"], 1000);
  EXPECT_EQ(budgets["user_daily_tokens"]["used"], 1050);
  EXPECT_EQ(budgets["user_daily_tokens"]["remaining"], 0);
  EXPECT_TRUE(budgets.contains("resets_at"));
}

// ---- models -----------------------------------------------------------------------------------------

TEST_F(LlmApiTest, ModelsAreLiveWhereAKeyCanAskAndConfiguredOtherwiseAndTheListIsCached) {
  const User ada = sign_up("ada@example.com");
  const auto response = get("/api/v1/models", ada);
  ASSERT_EQ(response.status, 200u) << response.body;
  const json items = response.json()["items"];
  ASSERT_EQ(items.size(), 2u);
  const json& anthropic = items[0];
  const json& openai = items[1];
  EXPECT_EQ(anthropic["provider"], "anthropic");
  EXPECT_FALSE(anthropic["live"]);
  EXPECT_THAT(anthropic["error"].get<std::string>(), HasSubstr("no API key for provider anthropic"));
  ASSERT_EQ(anthropic["models"].size(), 1u);
  EXPECT_EQ(anthropic["models"][0]["id"], "claude-strong");
  EXPECT_EQ(anthropic["models"][0]["roles"], json({"architect"}));

  EXPECT_EQ(openai["provider"], "openai");
  EXPECT_TRUE(openai["live"]) << openai.dump();
  EXPECT_TRUE(openai["error"].is_null());
  ASSERT_EQ(openai["models"].size(), 2u);
  EXPECT_EQ(openai["models"][0]["id"], "gpt-cheap");
  EXPECT_EQ(openai["models"][0]["roles"], json({"architect", "default"}));
  EXPECT_EQ(openai["models"][0]["price"]["completion_usd_per_mtok"], 4.0);
  EXPECT_TRUE(openai["models"][1]["price"].is_null());
  EXPECT_EQ(openai["configured_models"], json({"gpt-cheap"}));
  EXPECT_EQ(model_list_calls(), 1u);
  const auto calls = openai_.calls();
  EXPECT_EQ(calls.back().headers.at("authorization"), std::string("Bearer ") + kServerKey);

  ASSERT_EQ(get("/api/v1/models", ada).status, 200u);
  EXPECT_EQ(model_list_calls(), 1u) << "the live list is kept for llm.models_cache_seconds";

  // A user's own key is asked with separately: the cache is per key.
  const auto stored = call(verb::put, "/api/v1/keys/openai", ada, json{{"api_key", kUserKey}}.dump());
  ASSERT_EQ(stored.status, 200u) << stored.body;
  ASSERT_EQ(get("/api/v1/models", ada).status, 200u);
  EXPECT_EQ(model_list_calls(), 2u);
  EXPECT_EQ(openai_.calls().back().headers.at("authorization"), std::string("Bearer ") + kUserKey);
}

// ---- key verification --------------------------------------------------------------------------------

class LlmKeyVerifyTest : public LlmApiTest {
 protected:
  ScriptedModelServer keyed_{{.tls = nullptr, .expected_key = kUserKey, .models = {"gpt-cheap"}}};
  void configure(config::Config& config) override {
    LlmApiTest::configure(config);
    config.llm.providers["openai"].base_url = keyed_.url("/v1");
  }
};

TEST_F(LlmKeyVerifyTest, AKeyTheProviderAcceptsIsStoredAndOneItRefusesIsNot) {
  const User ada = sign_up("ada@example.com");
  const auto accepted =
      call(verb::put, "/api/v1/keys/openai", ada, json{{"api_key", kUserKey}, {"verify", true}}.dump());
  ASSERT_EQ(accepted.status, 200u) << accepted.body;
  EXPECT_EQ(accepted.json()["verified"], true);

  const std::string wrong = "sk-wrong-00000000000000";
  const auto refused =
      call(verb::put, "/api/v1/keys/openai", ada, json{{"api_key", wrong}, {"verify", true}}.dump());
  EXPECT_EQ(refused.status, 422u) << refused.body;
  EXPECT_EQ(refused.json()["type"].get<std::string>().ends_with("key_rejected"), true) << refused.body;
  EXPECT_THAT(refused.body, Not(HasSubstr(wrong)));
  // The accepted key is still the stored one.
  const auto kept = get("/api/v1/keys/openai", ada);
  ASSERT_EQ(kept.status, 200u);
  EXPECT_EQ(kept.json()["masked_key"], accepted.json()["masked_key"]);

  // Without verify the server does not ask.
  const std::size_t asked = keyed_.calls().size();
  const auto unchecked = call(verb::put, "/api/v1/keys/openai", ada, json{{"api_key", wrong}}.dump());
  EXPECT_EQ(unchecked.status, 200u);
  EXPECT_EQ(unchecked.json()["verified"], false);
  EXPECT_EQ(keyed_.calls().size(), asked);

  const auto unknown =
      call(verb::put, "/api/v1/keys/mistral", ada, json{{"api_key", kUserKey}, {"verify", true}}.dump());
  EXPECT_EQ(unknown.status, 404u) << unknown.body;
  EXPECT_EQ(get("/api/v1/keys/mistral", ada).status, 404u);
}

class LlmKeyUnreachableTest : public LlmApiTest {
 protected:
  void configure(config::Config& config) override {
    LlmApiTest::configure(config);
    // A port nobody listens on: the connection is refused.
    config.llm.providers["openai"].base_url = "http://127.0.0.1:1/v1";
  }
};

TEST_F(LlmKeyUnreachableTest, AProviderThatCannotBeReachedStoresNothingAndSaysSo) {
  const User ada = sign_up("ada@example.com");
  const auto response =
      call(verb::put, "/api/v1/keys/openai", ada, json{{"api_key", kUserKey}, {"verify", true}}.dump());
  EXPECT_EQ(response.status, 502u) << response.body;
  EXPECT_THAT(response.json()["detail"].get<std::string>(), HasSubstr("the key was not stored"));
  EXPECT_EQ(get("/api/v1/keys/openai", ada).status, 404u);

  // The models page says why there is no live list instead of failing.
  const auto models = get("/api/v1/models", ada);
  ASSERT_EQ(models.status, 200u) << models.body;
  const json openai = models.json()["items"][1];
  EXPECT_FALSE(openai["live"]);
  EXPECT_THAT(openai["error"].get<std::string>(), HasSubstr("unavailable"));
  EXPECT_EQ(openai["models"][0]["id"], "gpt-cheap");
}

// ---- samokoder llm ping --------------------------------------------------------------------------------

TEST_F(LlmApiTest, LlmPingAnswersThroughTheGatewayAndIsRecordedUnderTheOperatorAccount) {
  openai_.script({answer("pong from the model", 12, 4)});
  const auto config_file = dir() / "ping.json";
  std::ofstream(config_file) << json{
      {"plugin_dir", SAMOKODER_PLUGIN_DIR},
      {"runtime_dir", (dir() / "ping-run").string()},
      {"workspace_root", workspace_root().string()},
      {"plugins",
       {{{"id", "storage.sqlite"},
         {"file", "storage_sqlite.so"},
         {"required", true},
         {"config", {{"path", database().string()}}}},
        {{"id", "auth.local"}, {"file", "auth_local.so"}, {"required", true}},
        {{"id", "llm.openai"}, {"file", "llm_openai.so"}, {"required", true}}}},
      {"llm", {{"providers", {{"openai", {{"api_key_env", "SAMOKODER_TEST_PING_KEY"}}}}}}}};
  const ScopedEnv secret("SAMOKODER_SECRET_KEY", secret_key());
  std::optional<ScopedEnv> key(std::in_place, "SAMOKODER_TEST_PING_KEY", kServerKey);
  std::ostringstream out;
  std::ostringstream err;
  const std::string base_url = openai_.url("/v1");
  const std::string file = config_file.string();
  const std::vector<std::string_view> args = {"llm",        "ping",       "--provider", "openai",   "--model",
                                              "gpt-pinged", "--base-url", base_url,     "--config", file};
  const int code = app::run_cli(args, out, err);
  key.reset();
  ASSERT_EQ(code, 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("pong from the model"));
  EXPECT_THAT(out.str(), HasSubstr("openai/gpt-pinged"));
  EXPECT_THAT(out.str(), HasSubstr("tokens: prompt 12 (cached 0), completion 4"));
  EXPECT_THAT(out.str() + err.str(), Not(HasSubstr(kServerKey)));
  ASSERT_EQ(openai_.request_count(), 1u);
  EXPECT_EQ(openai_.calls().back().model(), "gpt-pinged");

  // The request is on record, under the operator's disabled account, and an admin sees it.
  const User admin_user = sign_up("root@example.com");
  make_admin(admin_user.id);
  const User admin = log_in("root@example.com");
  const json all = get("/api/v1/usage?all_users=true", admin).json();
  ASSERT_EQ(all["by_day"].size(), 1u) << all.dump();
  EXPECT_EQ(all["by_day"][0]["model"], "gpt-pinged");
  auto operator_user = with_storage([](sdk::Storage& s) {
    return s.store<sdk::UserStore>().find_user_by_email("operator@samokoder.invalid");
  });
  ASSERT_TRUE(operator_user.ok());
  EXPECT_TRUE(operator_user->disabled);
  EXPECT_EQ(all["by_day"][0]["user_id"], operator_user->id);
}

TEST_F(LlmApiTest, LlmPingNamesAnUnknownProviderAndAFailedCall) {
  const ScopedEnv secret("SAMOKODER_SECRET_KEY", secret_key());
  std::ostringstream out;
  std::ostringstream err;
  const auto config_file = dir() / "ping.json";
  std::ofstream(config_file) << json{
      {"plugin_dir", SAMOKODER_PLUGIN_DIR},
      {"runtime_dir", (dir() / "ping-run").string()},
      {"plugins",
       {{{"id", "storage.sqlite"},
         {"file", "storage_sqlite.so"},
         {"required", true},
         {"config", {{"path", database().string()}}}},
        {{"id", "llm.openai"}, {"file", "llm_openai.so"}, {"required", true}}}}};
  const std::string file = config_file.string();
  std::vector<std::string_view> args = {"llm",     "ping", "--provider", "nobody",
                                        "--model", "m",    "--config",   file};
  EXPECT_EQ(app::run_cli(args, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("provider \"nobody\" is not configured"));

  ModelReply refused;
  refused.status = 401;
  refused.error_message = "invalid api key";
  openai_.script({refused});
  const std::string base_url = openai_.url("/v1");
  args = {"llm", "ping", "--provider", "openai", "--model", "m", "--base-url", base_url, "--config", file};
  err.str("");
  {
    const ScopedEnv key("OPENAI_API_KEY", "sk-refused-123456789");
    EXPECT_EQ(app::run_cli(args, out, err), 1);
  }
  EXPECT_THAT(err.str(), HasSubstr("unauthenticated"));
  EXPECT_THAT(err.str(), HasSubstr("OPENAI_API_KEY"));
  EXPECT_THAT(err.str(), Not(HasSubstr("sk-refused-123456789")));
}

}  // namespace
}  // namespace samokoder::resources_test
