// RateLimits as a config reload rebuilds them: a group whose limit changed starts over at its new
// limit, a group whose limit did not keeps its buckets, so a reload is no way to reset a throttle.
#include <gtest/gtest.h>

#include "api/rate_limit.hpp"

namespace samokoder::api {
namespace {

TEST(RateLimits, ARebuildKeepsTheBucketsOfUnchangedGroupsOnly) {
  const auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  std::map<std::string, config::RateLimitConfig> groups = {{"auth", {2, 1}}, {"default", {2, 1}}};
  auto before = RateLimits::create(groups);
  ASSERT_TRUE(before.ok()) << before.status().to_string();
  for (const std::string_view group : {"auth", "default"}) {
    EXPECT_TRUE((*before)->acquire_address(group, "192.0.2.1", now).allowed);
    EXPECT_TRUE((*before)->acquire_address(group, "192.0.2.1", now).allowed);
    EXPECT_FALSE((*before)->acquire_address(group, "192.0.2.1", now).allowed) << group;
  }

  groups["auth"] = {3, 1};
  auto after = RateLimits::create(groups, before->get());
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_FALSE((*after)->acquire_address("default", "192.0.2.1", now).allowed) << "default kept its bucket";
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE((*after)->acquire_address("auth", "192.0.2.1", now).allowed) << "auth starts over at 3";
  EXPECT_FALSE((*after)->acquire_address("auth", "192.0.2.1", now).allowed);
}

}  // namespace
}  // namespace samokoder::api
