// Token-bucket rate limiting keyed by a string (a client address, "user:<id>", "login:<email>").
//
// Each key owns a bucket of `capacity` tokens that refills continuously at refill_per_minute; a request
// takes one token (or `cost`) or is refused with the seconds until enough tokens are back, which the
// HTTP layer sends as 429 + Retry-After. Time is a steady_clock::time_point passed in by the caller,
// so tests move it by hand.
//
// Memory is bounded: buckets live in shards of an LRU list; a bucket that has refilled to capacity is
// indistinguishable from a fresh one, so idle full buckets at the cold end are dropped as keys are
// touched, and when a shard is still at its share of max_keys the least recently used bucket is
// evicted. That eviction is the price of the bound: an attacker cycling through more than max_keys
// addresses can reset buckets of keys idle longer than all of those; per-account lockout (stored login
// attempts) does not depend on this limiter.
//
// Ownership: the limiter owns its buckets.
// Thread-safety: try_acquire and size may be called concurrently; keys are spread over independent
// shards, each with its own mutex, so unrelated keys rarely contend.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

struct RateLimiterOptions {
  double capacity = 60;           // burst size, tokens; > 0
  double refill_per_minute = 60;  // sustained rate; > 0
  std::size_t max_keys = 100'000;
  std::size_t shards = 16;
};

struct RateDecision {
  bool allowed = false;
  // Whole seconds until the request would be allowed (0 when allowed; at least 1 when refused).
  std::chrono::seconds retry_after{0};
  // Tokens left after this request (rounded down), for X-RateLimit-Remaining.
  std::uint64_t remaining = 0;
};

class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Checks the options: capacity and refill > 0, shards 1..1024, max_keys >= shards.
  static sdk::Result<std::unique_ptr<RateLimiter>> create(const RateLimiterOptions& options);

  // Takes `cost` tokens from `key`'s bucket if it has them. A cost above capacity is never allowed
  // (retry_after then says how long a full refill takes).
  RateDecision try_acquire(std::string_view key, TimePoint now, double cost = 1);

  // Number of buckets held, over all shards.
  std::size_t size() const;

  const RateLimiterOptions& options() const noexcept { return options_; }

 private:
  explicit RateLimiter(const RateLimiterOptions& options);

  struct Bucket {
    std::string key;
    double tokens;
    TimePoint updated;
  };
  struct Shard {
    std::mutex mutex;
    std::list<Bucket> lru;  // most recently used first
    // Keys view Bucket::key: list nodes never move, so the views stay valid until the node is erased.
    std::unordered_map<std::string_view, std::list<Bucket>::iterator> index;
  };

  double refilled(const Bucket& bucket, TimePoint now) const;
  // Drops full buckets from the cold end of the shard (bounded work per call).
  void drop_idle(Shard& shard, TimePoint now);

  RateLimiterOptions options_;
  double tokens_per_second_;
  std::size_t max_keys_per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace samokoder::security
