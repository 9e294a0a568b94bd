// SessionCheckCache on its own: expiry by TTL and by the session's end, the epoch that keeps a check
// made before a revocation out of the cache, the capacity bound, the disabled (0 ms) mode and a TTL
// changed by a config reload.
#include "api/session_check_cache.hpp"

#include <gtest/gtest.h>

namespace samokoder::api {
namespace {

using namespace std::chrono_literals;
using Timestamp = SessionCheckCache::Timestamp;

const Timestamp kStart = Timestamp(std::chrono::seconds(1'767'225'600));

SessionCheckCache::Verified verified_for(const std::string& user_id) {
  SessionCheckCache::Verified verified;
  verified.user_id = user_id;
  verified.email = user_id + "@example.com";
  verified.tier = "free";
  verified.session_id = "session-of-" + user_id;
  verified.session_expires_at = kStart + 1h;
  return verified;
}

TEST(SessionCheckCache, AnswersWithinTheTtlAndNotAfter) {
  SessionCheckCache cache(1000ms, 100);
  cache.store("jti-1", verified_for("ada"), cache.epoch(), kStart);
  const auto hit = cache.find("jti-1", kStart + 999ms);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->user_id, "ada");
  EXPECT_EQ(hit->session_id, "session-of-ada");
  EXPECT_FALSE(cache.find("jti-1", kStart + 1000ms).has_value());
  EXPECT_FALSE(cache.find("jti-2", kStart).has_value());
  EXPECT_FALSE(cache.find("jti-1", kStart - 1ms).has_value()) << "a clock that went back is a miss";
}

// A config reload changes the TTL of the running cache: entries already stored are judged by the new
// one, and 0 turns the cache off at once.
TEST(SessionCheckCache, ANewTtlAppliesToEntriesAlreadyStored) {
  SessionCheckCache cache(60'000ms, 100);
  cache.store("jti-1", verified_for("ada"), cache.epoch(), kStart);
  EXPECT_TRUE(cache.find("jti-1", kStart + 2s).has_value());
  cache.set_ttl(1000ms);
  EXPECT_FALSE(cache.find("jti-1", kStart + 2s).has_value());
  EXPECT_TRUE(cache.find("jti-1", kStart + 999ms).has_value());
  cache.set_ttl(0ms);
  EXPECT_FALSE(cache.find("jti-1", kStart).has_value());
  cache.store("jti-2", verified_for("bob"), cache.epoch(), kStart);
  cache.set_ttl(60'000ms);
  EXPECT_FALSE(cache.find("jti-2", kStart).has_value()) << "nothing is stored while the cache is off";
}

TEST(SessionCheckCache, NeverAnswersForASessionThatHasEnded) {
  SessionCheckCache cache(60'000ms, 100);
  auto verified = verified_for("ada");
  verified.session_expires_at = kStart + 10ms;
  cache.store("jti-1", verified, cache.epoch(), kStart);
  EXPECT_TRUE(cache.find("jti-1", kStart + 9ms).has_value());
  EXPECT_FALSE(cache.find("jti-1", kStart + 10ms).has_value());
}

TEST(SessionCheckCache, InvalidateAllForgetsEveryEntry) {
  SessionCheckCache cache(60'000ms, 100);
  cache.store("jti-1", verified_for("ada"), cache.epoch(), kStart);
  cache.store("jti-2", verified_for("bob"), cache.epoch(), kStart);
  cache.invalidate_all();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.find("jti-1", kStart).has_value());
  EXPECT_FALSE(cache.find("jti-2", kStart).has_value());
}

TEST(SessionCheckCache, ACheckThatStartedBeforeARevocationIsNotKept) {
  SessionCheckCache cache(60'000ms, 100);
  const auto epoch_before_check = cache.epoch();
  // ... storage said "valid", then a logout revoked the token and invalidated ...
  cache.invalidate_all();
  cache.store("jti-1", verified_for("ada"), epoch_before_check, kStart);
  EXPECT_FALSE(cache.find("jti-1", kStart).has_value());
  // A check that started after the revocation is kept.
  cache.store("jti-1", verified_for("ada"), cache.epoch(), kStart);
  EXPECT_TRUE(cache.find("jti-1", kStart).has_value());
}

TEST(SessionCheckCache, StaysWithinItsCapacity) {
  SessionCheckCache cache(1000ms, 3);
  for (int i = 0; i < 3; ++i)
    cache.store("old-" + std::to_string(i), verified_for("u"), cache.epoch(), kStart);
  // Full of live entries: room is made by forgetting them all rather than growing.
  cache.store("new-0", verified_for("u"), cache.epoch(), kStart + 10ms);
  EXPECT_LE(cache.size(), 3u);
  EXPECT_TRUE(cache.find("new-0", kStart + 10ms).has_value());
  // Expired entries are the first to go.
  cache.store("new-1", verified_for("u"), cache.epoch(), kStart + 10ms);
  cache.store("new-2", verified_for("u"), cache.epoch(), kStart + 2000ms);
  cache.store("new-3", verified_for("u"), cache.epoch(), kStart + 2000ms);
  EXPECT_LE(cache.size(), 3u);
  EXPECT_TRUE(cache.find("new-2", kStart + 2000ms).has_value());
  EXPECT_TRUE(cache.find("new-3", kStart + 2000ms).has_value());
}

TEST(SessionCheckCache, ZeroTtlKeepsNothing) {
  SessionCheckCache cache(0ms, 100);
  cache.store("jti-1", verified_for("ada"), cache.epoch(), kStart);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.find("jti-1", kStart).has_value());
}

TEST(SessionCheckCache, ShardsKeepTheBoundAndTheEpochAcrossEveryShard) {
  constexpr std::size_t kCapacity = 64 * SessionCheckCache::kMinShardCapacity;
  SessionCheckCache cache(60'000ms, kCapacity);
  const auto epoch_before_check = cache.epoch();
  for (std::size_t i = 0; i < 3 * kCapacity; ++i)
    cache.store("jti-" + std::to_string(i), verified_for("u"), cache.epoch(), kStart);
  EXPECT_LE(cache.size(), kCapacity);
  cache.store("late", verified_for("u"), cache.epoch(), kStart);
  EXPECT_TRUE(cache.find("late", kStart).has_value());
  cache.invalidate_all();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(cache.find("late", kStart).has_value());
  // A check begun before the invalidation is dropped whichever shard its jti falls in.
  for (int i = 0; i < 256; ++i)
    cache.store("stale-" + std::to_string(i), verified_for("u"), epoch_before_check, kStart);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace samokoder::api
