// Lockout per account, throttling per source address, token-bucket rate limits per address and per
// principal: all answered with 429 and Retry-After, all expiring with the (injected) clock.
#include <gmock/gmock.h>

#include "security_fixture.hpp"

namespace samokoder::security_test {
namespace {

using boost::beast::http::verb;

constexpr const char* kWrong = "definitely-not-it-123";

TEST_F(SecurityApiTest, FiveFailuresLockTheAccountUntilTheWindowPasses) {
  start();
  ASSERT_EQ(register_user("locked@example.com").status, 202u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(login("locked@example.com", kWrong).status, 401u) << "attempt " << i;
  // Locked: even the right password is refused, with a Retry-After.
  const auto locked = login("locked@example.com");
  EXPECT_EQ(locked.status, 429u);
  EXPECT_EQ(locked.header("Retry-After"), "900");
  EXPECT_EQ(locked.json()["type"], "https://samokoder.dev/problems/account_locked");
  // Another account from the same address is not affected.
  ASSERT_EQ(register_user("other@example.com").status, 202u);
  EXPECT_EQ(login("other@example.com").status, 200u);

  // Attempts while locked count too, so the window restarts from the last one.
  clock_.advance(std::chrono::minutes(15) + std::chrono::seconds(1));
  const auto after = login("locked@example.com");
  EXPECT_EQ(after.status, 200u) << after.body;
}

TEST_F(SecurityApiTest, ASuccessfulLoginResetsTheFailureCount) {
  start();
  ASSERT_EQ(register_user("reset@example.com").status, 202u);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(login("reset@example.com", kWrong).status, 401u);
  clock_.advance(std::chrono::seconds(1));
  EXPECT_EQ(login("reset@example.com").status, 200u);
  clock_.advance(std::chrono::seconds(1));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(login("reset@example.com", kWrong).status, 401u);
  EXPECT_EQ(login("reset@example.com").status, 200u);  // 8 failures in the window, but 4 since the success
}

TEST_F(SecurityApiTest, AnUnknownEmailLocksExactlyLikeARealOne) {
  start();
  ASSERT_EQ(register_user("known@example.com").status, 202u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(login("known@example.com", kWrong).status, 401u);
    EXPECT_EQ(login("ghost@example.com", kWrong).status, 401u);
  }
  const auto real = login("known@example.com", kWrong);
  const auto ghost = login("ghost@example.com", kWrong);
  EXPECT_EQ(real.status, 429u);
  EXPECT_EQ(ghost.status, 429u);
  EXPECT_EQ(stable_problem(real), stable_problem(ghost));
  EXPECT_EQ(real.header("Retry-After"), ghost.header("Retry-After"));
}

TEST_F(SecurityApiTest, AnAddressFailingAgainstManyAccountsIsThrottled) {
  start();
  ASSERT_EQ(register_user("victim@example.com").status, 202u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(login("spray" + std::to_string(i) + "@example.com", kWrong).status, 401u) << i;
  }
  // The 21st failure-prone attempt from this address is refused whatever the account, even a right one.
  const auto throttled = login("victim@example.com");
  EXPECT_EQ(throttled.status, 429u);
  EXPECT_EQ(throttled.json()["type"], "https://samokoder.dev/problems/login_throttled");
  EXPECT_EQ(throttled.header("Retry-After"), "900");
  clock_.advance(std::chrono::minutes(15) + std::chrono::seconds(1));
  EXPECT_EQ(login("victim@example.com").status, 200u);
}

TEST_F(SecurityApiTest, AddressThrottleFollowsConfig) {
  start([](config::Config& c) { c.security.address_max_failures = 3; });
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(login("a" + std::to_string(i) + "@example.com", kWrong).status, 401u);
  EXPECT_EQ(login("a9@example.com", kWrong).status, 429u);
}

TEST_F(SecurityApiTest, TheAuthGroupAllowsFiveRequestsAMinutePerAddress) {
  start([](config::Config& c) { c.security.rate_limits["auth"] = {5, 5}; });
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(login("rl@example.com", kWrong).status, 401u) << "request " << i;
  }
  const auto limited = login("rl@example.com", kWrong);
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(limited.header("Retry-After"), "12");  // one token every 12 s
  EXPECT_EQ(limited.json()["type"], "https://samokoder.dev/problems/rate_limited");
  // Other groups are not charged by the auth group.
  EXPECT_EQ(get("/api/v1/auth/me").status, 401u);
  clock_.advance(std::chrono::seconds(12));
  EXPECT_EQ(register_user("later@example.com").status, 202u);
  EXPECT_EQ(register_user("later2@example.com").status, 429u);
}

TEST_F(SecurityApiTest, OpsRoutesAreNotRateLimited) {
  start([](config::Config& c) { c.security.rate_limits["default"] = {2, 2}; });
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(get("/healthz").status, 200u);
  EXPECT_EQ(get("/api/v1/auth/me").status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me").status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me").status, 429u);
  EXPECT_EQ(get("/no/such/path").status, 429u);  // unmatched paths count against "default"
}

TEST_F(SecurityApiTest, EachPrincipalHasItsOwnBucketWhateverItsAddress) {
  // Behind a trusted proxy every request here names another client address, so only the
  // principal's bucket can stop this caller.
  start([](config::Config& c) {
    c.security.trust_forwarded_for = true;
    c.security.rate_limits["default"] = {3, 3};
  });
  const Login busy = sign_up("busy@example.com");
  const Login calm = sign_up("calm@example.com");
  auto from = [](const std::string& token, int host) {
    auto headers = bearer(token);
    headers.emplace_back("X-Forwarded-For", "192.0.2.1, 198.51.100." + std::to_string(host));
    return headers;
  };
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(get("/api/v1/auth/me", from(busy.access_token, 10 + i)).status, 200u) << i;
  const auto limited = get("/api/v1/auth/me", from(busy.access_token, 99));
  EXPECT_EQ(limited.status, 429u);
  EXPECT_FALSE(limited.header("Retry-After").empty());
  EXPECT_EQ(get("/api/v1/auth/me", from(calm.access_token, 100)).status, 200u);
  clock_.advance(std::chrono::seconds(20));
  EXPECT_EQ(get("/api/v1/auth/me", from(busy.access_token, 101)).status, 200u);
}

TEST_F(SecurityApiTest, ForwardedForIsIgnoredUnlessTrusted) {
  start([](config::Config& c) { c.security.rate_limits["auth"] = {2, 2}; });
  EXPECT_EQ(login("x@example.com", kWrong, {{"X-Forwarded-For", "203.0.113.1"}}).status, 401u);
  EXPECT_EQ(login("x@example.com", kWrong, {{"X-Forwarded-For", "203.0.113.2"}}).status, 401u);
  EXPECT_EQ(login("x@example.com", kWrong, {{"X-Forwarded-For", "203.0.113.3"}}).status, 429u);
}

}  // namespace
}  // namespace samokoder::security_test
