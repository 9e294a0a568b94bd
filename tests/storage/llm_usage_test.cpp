// Conformance: what the LLM gateway accounts per request (step, cache use, estimated usage, time to
// first token, cost, attempt) and the usage totals budgets and GET /api/v1/usage read: per model, per
// UTC day, per run and per user.
#include <algorithm>
#include <string>
#include <vector>

#include "storage_fixture.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;
using sdk::Status;
using sdk::StatusCode;

class LlmUsageTest : public StorageTest {
 protected:
  // A request with every accounting field at its "nothing special" value; tests set what they check.
  static sdk::NewLlmRequest request(const sdk::User& user, const std::string& provider = "openai",
                                    const std::string& model = "gpt-4o") {
    sdk::NewLlmRequest r;
    r.user_id = user.id;
    r.provider = provider;
    r.model = model;
    r.agent = "architect";
    return r;
  }

  // Records `r` or fails the test.
  sdk::LlmRequest record(const sdk::NewLlmRequest& r) {
    auto recorded = storage().llm_requests().record_llm_request(r);
    EXPECT_TRUE(recorded.ok()) << recorded.status().to_string();
    return recorded.value_or(sdk::LlmRequest{});
  }

  // Records a request of `user` with the given counts at the host's current time.
  void spend(const sdk::User& user, const std::string& provider, const std::string& model,
             std::int64_t prompt, std::int64_t completion, std::int64_t cached, std::int64_t cost,
             const std::string& run_id = "") {
    sdk::NewLlmRequest r = request(user, provider, model);
    r.run_id = run_id;
    r.prompt_tokens = prompt;
    r.completion_tokens = completion;
    r.cached_prompt_tokens = cached;
    r.cost_micro_usd = cost;
    record(r);
  }

  // The two users in id order, which is the order usage_by_day lists users of one day in.
  std::pair<sdk::User, sdk::User> two_users_in_id_order() {
    sdk::User a = make_user("usage-a@example.com");
    sdk::User b = make_user("usage-b@example.com");
    if (b.id < a.id) std::swap(a, b);
    return {a, b};
  }
};
SAMOKODER_STORAGE_TEST_SUITE(LlmUsageTest);

void expect_same_accounting(const sdk::LlmRequest& got, const sdk::NewLlmRequest& want) {
  EXPECT_EQ(got.step_id, want.step_id);
  EXPECT_EQ(got.cached_prompt_tokens, want.cached_prompt_tokens);
  EXPECT_EQ(got.cache_write_tokens, want.cache_write_tokens);
  EXPECT_EQ(got.usage_estimated, want.usage_estimated);
  EXPECT_EQ(got.time_to_first_token_ms, want.time_to_first_token_ms);
  EXPECT_EQ(got.cost_micro_usd, want.cost_micro_usd);
  EXPECT_EQ(got.attempt, want.attempt);
  EXPECT_EQ(got.agent, want.agent);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.prompt_tokens, want.prompt_tokens);
}

TEST_P(LlmUsageTest, AccountingFieldsRoundTripAndDefaultToNothingKnown) {
  const sdk::User user = make_user("acct@example.com");
  const sdk::Project project = make_project(user);
  const sdk::Run run = make_run(project);

  sdk::NewLlmRequest full = request(user, "anthropic", "claude-sonnet");
  full.project_id = project.id;
  full.run_id = run.id;
  full.step_id = "step/7 — ревью";  // opaque text, not an id
  full.prompt_tokens = 1000;
  full.completion_tokens = 200;
  full.cached_prompt_tokens = 1000;  // the whole prompt may come from the cache
  full.cache_write_tokens = 300;
  full.usage_estimated = true;
  full.time_to_first_token_ms = 0;
  full.cost_micro_usd = 4'200'000'000'000;  // beyond 32 bits
  full.attempt = 3;
  full.status = "timeout";
  full.error = "no answer in 60s";
  const sdk::LlmRequest recorded = record(full);
  expect_same_accounting(recorded, full);
  EXPECT_EQ(recorded.run_id, run.id);
  EXPECT_EQ(recorded.error, "no answer in 60s");

  host().advance(1s);
  const sdk::NewLlmRequest plain = request(user);
  const sdk::LlmRequest defaulted = record(plain);
  EXPECT_EQ(defaulted.step_id, "");
  EXPECT_EQ(defaulted.cached_prompt_tokens, 0);
  EXPECT_EQ(defaulted.cache_write_tokens, 0);
  EXPECT_FALSE(defaulted.usage_estimated);
  EXPECT_EQ(defaulted.time_to_first_token_ms, -1);
  EXPECT_EQ(defaulted.cost_micro_usd, 0);
  EXPECT_EQ(defaulted.attempt, 1);
  EXPECT_EQ(defaulted.status, "ok");

  // Read back from the database, not only echoed: newest first.
  ASSERT_OK_AND_ASSIGN(auto page, storage().llm_requests().list_llm_requests(user.id, {10, ""}));
  ASSERT_EQ(page.items.size(), 2u);
  expect_same_accounting(page.items[0], plain);
  expect_same_accounting(page.items[1], full);
  EXPECT_EQ(page.items[1].id, recorded.id);
  EXPECT_EQ(page.items[1].step_id, "step/7 — ревью");

  // The same through a transaction's stores (a second later, so it is listed first).
  host().advance(1s);
  sdk::NewLlmRequest in_tx = request(user, "openai", "o3");
  in_tx.step_id = "s-9";
  in_tx.usage_estimated = true;
  in_tx.time_to_first_token_ms = 850;
  in_tx.attempt = 2;
  in_tx.status = "cancelled";
  ASSERT_OK(storage().transaction([&](sdk::Stores& stores) -> Status {
    auto r = stores.llm_requests().record_llm_request(in_tx);
    if (!r.ok()) return r.status();
    expect_same_accounting(*r, in_tx);
    return Status();
  }));
  ASSERT_OK_AND_ASSIGN(auto after, storage().llm_requests().list_llm_requests(user.id, {1, ""}));
  ASSERT_EQ(after.items.size(), 1u);
  expect_same_accounting(after.items[0], in_tx);
}

TEST_P(LlmUsageTest, AccountingFieldsOutOfRangeAreInvalidAndStoreNothing) {
  const sdk::User user = make_user("invalid@example.com");
  const auto invalid = [&](auto change) {
    sdk::NewLlmRequest r = request(user);
    r.prompt_tokens = 100;
    change(r);
    return storage().llm_requests().record_llm_request(r);
  };
  EXPECT_CODE(invalid([](auto& r) { r.cached_prompt_tokens = -1; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.cached_prompt_tokens = 101; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.cache_write_tokens = -1; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.time_to_first_token_ms = -2; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.cost_micro_usd = -1; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.attempt = 0; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.attempt = -3; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.completion_tokens = -1; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.status = "failed"; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.status = "OK"; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.status = ""; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.step_id = "bad\xff"; }), kInvalidArgument);
  EXPECT_CODE(invalid([](auto& r) { r.step_id = std::string("a\0b", 3); }), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum none, storage().llm_requests().usage_of_user(user.id, {}));
  EXPECT_EQ(none.requests, 0);

  // The edges of each range are accepted.
  for (const char* status : {"ok", "error", "timeout", "cancelled"}) {
    EXPECT_OK(invalid([&](auto& r) {
      r.status = status;
      r.cached_prompt_tokens = 100;
      r.time_to_first_token_ms = 0;
      r.attempt = 1;
    }));
  }
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum four, storage().llm_requests().usage_of_user(user.id, {}));
  EXPECT_EQ(four.requests, 4);
}

TEST_P(LlmUsageTest, UsageByModelSumsCachedTokensAndCost) {
  const auto [alice, bob] = two_users_in_id_order();
  spend(alice, "openai", "gpt-4o", 100, 10, 40, 1500);
  spend(alice, "openai", "gpt-4o", 50, 5, 50, 700);
  spend(alice, "anthropic", "claude", 10, 1, 0, 30);
  spend(bob, "openai", "gpt-4o", 9999, 9999, 9999, 9999);

  ASSERT_OK_AND_ASSIGN(auto totals, storage().llm_requests().usage_by_model(alice.id, {}, {}));
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(totals[0].provider, "anthropic");
  EXPECT_EQ(totals[0].cached_prompt_tokens, 0);
  EXPECT_EQ(totals[0].cost_micro_usd, 30);
  EXPECT_EQ(totals[1].model, "gpt-4o");
  EXPECT_EQ(totals[1].requests, 2);
  EXPECT_EQ(totals[1].prompt_tokens, 150);
  EXPECT_EQ(totals[1].completion_tokens, 15);
  EXPECT_EQ(totals[1].cached_prompt_tokens, 90);
  EXPECT_EQ(totals[1].cost_micro_usd, 2200);
}

TEST_P(LlmUsageTest, UsageByDaySplitsAtUtcMidnightAndByUserProviderModel) {
  const auto [alice, bob] = two_users_in_id_order();
  const auto midnight = TestHost::kStart;  // 2030-01-01T00:00:00Z
  // Recorded in an order that is not the listed order.
  host().set_now(midnight);
  spend(bob, "openai", "gpt-4o", 7, 7, 0, 70);
  spend(alice, "openai", "gpt-4o-mini", 3, 3, 1, 30);
  spend(alice, "anthropic", "claude", 2, 2, 2, 20);
  host().set_now(midnight - 1us);  // the last microsecond of 2029-12-31
  spend(alice, "openai", "gpt-4o", 100, 10, 40, 1000);
  spend(alice, "openai", "gpt-4o", 50, 5, 10, 500);
  host().set_now(midnight + 24h - 1us);  // the last microsecond of 2030-01-01
  spend(alice, "anthropic", "claude", 1, 1, 0, 10);
  host().set_now(midnight + 24h);
  spend(bob, "openai", "gpt-4o", 1, 1, 1, 1);

  ASSERT_OK_AND_ASSIGN(auto all, storage().llm_requests().usage_by_day(std::nullopt, {}, {}));
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].day, "2029-12-31");
  EXPECT_EQ(all[0].user_id, alice.id);
  EXPECT_EQ(all[0].provider, "openai");
  EXPECT_EQ(all[0].model, "gpt-4o");
  EXPECT_EQ(all[0].requests, 2);
  EXPECT_EQ(all[0].prompt_tokens, 150);
  EXPECT_EQ(all[0].completion_tokens, 15);
  EXPECT_EQ(all[0].cached_prompt_tokens, 50);
  EXPECT_EQ(all[0].cost_micro_usd, 1500);
  // 2030-01-01: alice before bob, then provider, then model.
  EXPECT_EQ(all[1].day, "2030-01-01");
  EXPECT_EQ(all[1].user_id, alice.id);
  EXPECT_EQ(all[1].provider, "anthropic");
  EXPECT_EQ(all[1].requests, 2);
  EXPECT_EQ(all[1].prompt_tokens, 3);
  EXPECT_EQ(all[1].cached_prompt_tokens, 2);
  EXPECT_EQ(all[1].cost_micro_usd, 30);
  EXPECT_EQ(all[2].day, "2030-01-01");
  EXPECT_EQ(all[2].user_id, alice.id);
  EXPECT_EQ(all[2].model, "gpt-4o-mini");
  EXPECT_EQ(all[2].requests, 1);
  EXPECT_EQ(all[3].day, "2030-01-01");
  EXPECT_EQ(all[3].user_id, bob.id);
  EXPECT_EQ(all[3].cost_micro_usd, 70);
  EXPECT_EQ(all[4].day, "2030-01-02");
  EXPECT_EQ(all[4].user_id, bob.id);
  EXPECT_EQ(all[4].requests, 1);

  ASSERT_OK_AND_ASSIGN(auto alices, storage().llm_requests().usage_by_day(alice.id, {}, {}));
  ASSERT_EQ(alices.size(), 3u);
  for (const auto& row : alices)
    EXPECT_EQ(row.user_id, alice.id);
  EXPECT_EQ(alices[0].day, "2029-12-31");
  EXPECT_EQ(alices[2].model, "gpt-4o-mini");
  ASSERT_OK_AND_ASSIGN(auto bobs, storage().llm_requests().usage_by_day(bob.id, {}, {}));
  ASSERT_EQ(bobs.size(), 2u);
  EXPECT_EQ(bobs[0].day, "2030-01-01");
  EXPECT_EQ(bobs[1].day, "2030-01-02");

  ASSERT_OK_AND_ASSIGN(auto nobody, storage().llm_requests().usage_by_day(kUnknownId, {}, {}));
  EXPECT_TRUE(nobody.empty());
}

TEST_P(LlmUsageTest, UsageByDayBoundsAreSinceInclusiveUntilExclusive) {
  const auto [alice, bob] = two_users_in_id_order();
  const auto midnight = TestHost::kStart;
  host().set_now(midnight - 1us);
  spend(alice, "openai", "gpt-4o", 1, 0, 0, 1);
  host().set_now(midnight);
  spend(alice, "openai", "gpt-4o", 10, 0, 0, 10);
  spend(bob, "openai", "gpt-4o", 20, 0, 0, 20);
  host().set_now(midnight + 1h);
  spend(alice, "openai", "gpt-4o", 100, 0, 0, 100);

  const auto days = [&](std::optional<std::string_view> user, std::optional<sdk::Timestamp> since,
                        std::optional<sdk::Timestamp> until) {
    auto rows = storage().llm_requests().usage_by_day(user, since, until);
    EXPECT_TRUE(rows.ok()) << rows.status().to_string();
    std::vector<std::pair<std::string, std::int64_t>> out;  // (day, prompt tokens)
    for (const auto& row : rows.value_or(std::vector<sdk::DailyUsage>{}))
      out.emplace_back(row.day, row.prompt_tokens);
    return out;
  };
  using Days = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(days(alice.id, midnight, {}), (Days{{"2030-01-01", 110}}));
  EXPECT_EQ(days(alice.id, {}, midnight), (Days{{"2029-12-31", 1}}));
  EXPECT_EQ(days(alice.id, midnight - 1us, midnight + 1us), (Days{{"2029-12-31", 1}, {"2030-01-01", 10}}));
  EXPECT_EQ(days(alice.id, midnight + 1h, midnight + 1h + 1us), (Days{{"2030-01-01", 100}}));
  EXPECT_EQ(days(alice.id, midnight + 1h + 1us, {}), Days{});
  EXPECT_EQ(days(std::nullopt, midnight, midnight + 1h), (Days{{"2030-01-01", 10}, {"2030-01-01", 20}}));
  EXPECT_EQ(days(std::nullopt, midnight, midnight), Days{});
}

// The day is the UTC day of the stored microseconds, computed alike by every backend: a time before
// 1970 falls on its own day, not on the next one (integer division truncates toward zero).
TEST_P(LlmUsageTest, UsageByDayFloorsTimesBefore1970ToTheirOwnDay) {
  const sdk::User user = make_user("epoch@example.com");
  const sdk::Timestamp epoch{};
  host().set_now(epoch - 1us);
  spend(user, "openai", "gpt-4o", 1, 0, 0, 0);
  host().set_now(epoch - 24h);  // the first microsecond of 1969-12-31
  spend(user, "openai", "gpt-4o", 2, 0, 0, 0);
  host().set_now(epoch - 24h - 1us);
  spend(user, "openai", "gpt-4o", 16, 0, 0, 0);
  host().set_now(epoch);
  spend(user, "openai", "gpt-4o", 4, 0, 0, 0);
  host().set_now(epoch + 24h * 59);  // 1970 is no leap year: day 59 is March 1st
  spend(user, "openai", "gpt-4o", 8, 0, 0, 0);

  ASSERT_OK_AND_ASSIGN(auto rows, storage().llm_requests().usage_by_day(user.id, {}, {}));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].day, "1969-12-30");
  EXPECT_EQ(rows[0].prompt_tokens, 16);
  EXPECT_EQ(rows[1].day, "1969-12-31");
  EXPECT_EQ(rows[1].prompt_tokens, 3);
  EXPECT_EQ(rows[2].day, "1970-01-01");
  EXPECT_EQ(rows[2].prompt_tokens, 4);
  EXPECT_EQ(rows[3].day, "1970-03-01");
  EXPECT_EQ(rows[3].prompt_tokens, 8);
}

TEST_P(LlmUsageTest, UsageOfRunSumsTheRunsRequestsOnly) {
  const sdk::User user = make_user("run-usage@example.com");
  const sdk::Project project = make_project(user);
  const sdk::Run run = make_run(project);
  const sdk::Run other_run = make_run(project);
  spend(user, "openai", "gpt-4o", 100, 20, 50, 3000, run.id);
  host().advance(1h);
  spend(user, "anthropic", "claude", 10, 2, 0, 400, run.id);
  spend(user, "openai", "gpt-4o", 1000, 1000, 0, 99999, other_run.id);
  spend(user, "openai", "gpt-4o", 1000, 1000, 0, 99999);  // for no run

  ASSERT_OK_AND_ASSIGN(sdk::UsageSum sum, storage().llm_requests().usage_of_run(run.id));
  EXPECT_EQ(sum.requests, 2);
  EXPECT_EQ(sum.prompt_tokens, 110);
  EXPECT_EQ(sum.completion_tokens, 22);
  EXPECT_EQ(sum.cost_micro_usd, 3400);

  const sdk::Run idle = make_run(project);
  for (const std::string& id : {idle.id, std::string(kUnknownId), std::string("not-an-id"), std::string()}) {
    ASSERT_OK_AND_ASSIGN(sdk::UsageSum zero, storage().llm_requests().usage_of_run(id));
    EXPECT_EQ(zero.requests, 0) << id;
    EXPECT_EQ(zero.prompt_tokens, 0) << id;
    EXPECT_EQ(zero.completion_tokens, 0) << id;
    EXPECT_EQ(zero.cost_micro_usd, 0) << id;
  }

  // Deleting the project empties run_id of its records: the run is gone, and so is its total.
  ASSERT_OK(storage().projects().delete_project(user.id, project.id));
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum gone, storage().llm_requests().usage_of_run(run.id));
  EXPECT_EQ(gone.requests, 0);
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum user_total, storage().llm_requests().usage_of_user(user.id, {}));
  EXPECT_EQ(user_total.requests, 4);
}

TEST_P(LlmUsageTest, UsageOfUserSinceIsInclusiveAndOptional) {
  const auto [alice, bob] = two_users_in_id_order();
  const auto t0 = host().now();
  spend(alice, "openai", "gpt-4o", 100, 10, 0, 1000);
  host().advance(1h);
  spend(alice, "anthropic", "claude", 20, 2, 0, 200);
  spend(bob, "openai", "gpt-4o", 5000, 5000, 0, 50000);
  host().advance(1h);
  spend(alice, "openai", "gpt-4o-mini", 3, 1, 0, 30);

  ASSERT_OK_AND_ASSIGN(sdk::UsageSum all_time, storage().llm_requests().usage_of_user(alice.id, {}));
  EXPECT_EQ(all_time.requests, 3);
  EXPECT_EQ(all_time.prompt_tokens, 123);
  EXPECT_EQ(all_time.completion_tokens, 13);
  EXPECT_EQ(all_time.cost_micro_usd, 1230);
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum from_t0, storage().llm_requests().usage_of_user(alice.id, t0));
  EXPECT_EQ(from_t0.requests, 3);
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum last_two,
                       storage().llm_requests().usage_of_user(alice.id, t0 + 1h));  // inclusive
  EXPECT_EQ(last_two.requests, 2);
  EXPECT_EQ(last_two.prompt_tokens, 23);
  EXPECT_EQ(last_two.completion_tokens, 3);
  EXPECT_EQ(last_two.cost_micro_usd, 230);
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum just_after,
                       storage().llm_requests().usage_of_user(alice.id, t0 + 1h + 1us));
  EXPECT_EQ(just_after.requests, 1);
  EXPECT_EQ(just_after.cost_micro_usd, 30);
  ASSERT_OK_AND_ASSIGN(sdk::UsageSum future, storage().llm_requests().usage_of_user(alice.id, t0 + 3h));
  EXPECT_EQ(future.requests, 0);
  EXPECT_EQ(future.cost_micro_usd, 0);

  ASSERT_OK_AND_ASSIGN(sdk::UsageSum bobs, storage().llm_requests().usage_of_user(bob.id, {}));
  EXPECT_EQ(bobs.requests, 1);
  EXPECT_EQ(bobs.cost_micro_usd, 50000);
  for (const std::string& id : {std::string(kUnknownId), std::string("nobody")}) {
    ASSERT_OK_AND_ASSIGN(sdk::UsageSum none, storage().llm_requests().usage_of_user(id, {}));
    EXPECT_EQ(none.requests, 0) << id;
    EXPECT_EQ(none.prompt_tokens, 0) << id;
  }
}

}  // namespace
}  // namespace samokoder::testing
