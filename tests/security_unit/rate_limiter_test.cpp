#include "security/rate_limiter.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace samokoder::security {
namespace {

using std::chrono::seconds;
using TimePoint = RateLimiter::TimePoint;

const TimePoint kStart = TimePoint(std::chrono::hours(1));

std::unique_ptr<RateLimiter> make(double capacity, double per_minute, std::size_t max_keys = 100'000,
                                  std::size_t shards = 16) {
  auto limiter = RateLimiter::create({capacity, per_minute, max_keys, shards});
  EXPECT_TRUE(limiter.ok()) << limiter.status().to_string();
  return std::move(limiter).value();
}

TEST(RateLimiter, AllowsABurstThenRefusesWithRetryAfter) {
  auto limiter = make(5, 5);  // 5 per minute: one token every 12 s
  for (int i = 0; i < 5; ++i) {
    const RateDecision d = limiter->try_acquire("ip:1.2.3.4", kStart);
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, static_cast<std::uint64_t>(4 - i));
  }
  const RateDecision refused = limiter->try_acquire("ip:1.2.3.4", kStart);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(12));
  const RateDecision later = limiter->try_acquire("ip:1.2.3.4", kStart + seconds(5));
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.retry_after, seconds(7));
}

TEST(RateLimiter, RefillsWithInjectedTime) {
  auto limiter = make(2, 60);  // one token per second
  EXPECT_TRUE(limiter->try_acquire("k", kStart).allowed);
  EXPECT_TRUE(limiter->try_acquire("k", kStart).allowed);
  EXPECT_FALSE(limiter->try_acquire("k", kStart).allowed);
  EXPECT_FALSE(limiter->try_acquire("k", kStart + std::chrono::milliseconds(999)).allowed);
  EXPECT_TRUE(limiter->try_acquire("k", kStart + seconds(1)).allowed);
  EXPECT_FALSE(limiter->try_acquire("k", kStart + seconds(1)).allowed);
  // A long idle period refills to capacity, never beyond.
  EXPECT_TRUE(limiter->try_acquire("k", kStart + seconds(1000)).allowed);
  EXPECT_TRUE(limiter->try_acquire("k", kStart + seconds(1000)).allowed);
  EXPECT_FALSE(limiter->try_acquire("k", kStart + seconds(1000)).allowed);
  // Time going backwards adds nothing.
  EXPECT_FALSE(limiter->try_acquire("k", kStart).allowed);
}

TEST(RateLimiter, KeysAreIndependent) {
  auto limiter = make(1, 1);
  EXPECT_TRUE(limiter->try_acquire("user:1", kStart).allowed);
  EXPECT_FALSE(limiter->try_acquire("user:1", kStart).allowed);
  EXPECT_TRUE(limiter->try_acquire("user:2", kStart).allowed);
  EXPECT_TRUE(limiter->try_acquire("ip:10.0.0.1", kStart).allowed);
  EXPECT_FALSE(limiter->try_acquire("user:2", kStart).allowed);
}

TEST(RateLimiter, CostAboveCapacityIsNeverAllowed) {
  auto limiter = make(3, 60);
  const RateDecision d = limiter->try_acquire("k", kStart, 4);
  EXPECT_FALSE(d.allowed);
  EXPECT_GE(d.retry_after, seconds(1));
  EXPECT_TRUE(limiter->try_acquire("k", kStart, 3).allowed);
  const RateDecision empty = limiter->try_acquire("k", kStart, 10);
  EXPECT_EQ(empty.retry_after, seconds(3));  // a full refill, not an impossible 10
}

TEST(RateLimiter, ConcurrentAcquiresNeverExceedCapacity) {
  auto limiter = make(100, 1);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (limiter->try_acquire("shared", kStart).allowed) allowed.fetch_add(1);
        limiter->try_acquire("own:" + std::to_string(i % 50), kStart);
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(allowed.load(), 100);
}

TEST(RateLimiter, MemoryStaysBoundedUnderKeyFlooding) {
  auto limiter = make(5, 60, 1000, 4);
  for (int i = 0; i < 50'000; ++i)
    limiter->try_acquire("ip:" + std::to_string(i), kStart);
  EXPECT_LE(limiter->size(), 1000U);
}

TEST(RateLimiter, IdleFullBucketsAreDropped) {
  auto limiter = make(2, 60, 1000, 1);
  for (int i = 0; i < 100; ++i)
    limiter->try_acquire("ip:" + std::to_string(i), kStart);
  EXPECT_EQ(limiter->size(), 100U);
  // Two seconds later every bucket is full again: later traffic sweeps them away a few per call.
  for (int i = 0; i < 50; ++i)
    limiter->try_acquire("active", kStart + seconds(2));
  EXPECT_LT(limiter->size(), 10U);
}

TEST(RateLimiter, EvictionDoesNotResetRecentlyUsedKeys) {
  auto limiter = make(1, 1, 4, 1);
  EXPECT_TRUE(limiter->try_acquire("victim", kStart).allowed);
  for (int i = 0; i < 3; ++i)
    limiter->try_acquire("other:" + std::to_string(i), kStart);
  EXPECT_FALSE(limiter->try_acquire("victim", kStart).allowed);  // touched last among 4: still tracked
}

TEST(RateLimiter, ValidatesOptions) {
  EXPECT_FALSE(RateLimiter::create({0, 60, 100, 1}).ok());
  EXPECT_FALSE(RateLimiter::create({10, 0, 100, 1}).ok());
  EXPECT_FALSE(RateLimiter::create({10, -1, 100, 1}).ok());
  EXPECT_FALSE(RateLimiter::create({10, 60, 100, 0}).ok());
  EXPECT_FALSE(RateLimiter::create({10, 60, 2, 4}).ok());
}

}  // namespace
}  // namespace samokoder::security
