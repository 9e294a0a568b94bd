#include "security/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace samokoder::security {
namespace {

// How many idle buckets one call may drop: enough to keep up with traffic, small enough to bound latency.
constexpr int kMaxIdleDropsPerCall = 4;

}  // namespace

sdk::Result<std::unique_ptr<RateLimiter>> RateLimiter::create(const RateLimiterOptions& options) {
  if (!(options.capacity > 0) || !std::isfinite(options.capacity)) {
    return sdk::Status::invalid_argument("rate limit capacity must be a positive number");
  }
  if (!(options.refill_per_minute > 0) || !std::isfinite(options.refill_per_minute)) {
    return sdk::Status::invalid_argument("rate limit refill_per_minute must be a positive number");
  }
  if (options.shards < 1 || options.shards > 1024) {
    return sdk::Status::invalid_argument("rate limiter shards must be 1..1024");
  }
  if (options.max_keys < options.shards) {
    return sdk::Status::invalid_argument("rate limiter max_keys must be at least the number of shards");
  }
  return std::unique_ptr<RateLimiter>(new RateLimiter(options));
}

RateLimiter::RateLimiter(const RateLimiterOptions& options)
    : options_(options),
      tokens_per_second_(options.refill_per_minute / 60.0),
      max_keys_per_shard_(options.max_keys / options.shards) {
  shards_.reserve(options.shards);
  for (std::size_t i = 0; i < options.shards; ++i)
    shards_.push_back(std::make_unique<Shard>());
}

double RateLimiter::refilled(const Bucket& bucket, TimePoint now) const {
  if (now <= bucket.updated) return bucket.tokens;  // a clock that does not advance adds nothing
  const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  return std::min(options_.capacity, bucket.tokens + elapsed * tokens_per_second_);
}

void RateLimiter::drop_idle(Shard& shard, TimePoint now) {
  for (int i = 0; i < kMaxIdleDropsPerCall && !shard.lru.empty(); ++i) {
    const Bucket& coldest = shard.lru.back();
    if (refilled(coldest, now) < options_.capacity) return;
    shard.index.erase(coldest.key);
    shard.lru.pop_back();
  }
}

RateDecision RateLimiter::try_acquire(std::string_view key, TimePoint now, double cost) {
  Shard& shard = *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
  std::lock_guard lock(shard.mutex);
  drop_idle(shard, now);

  auto found = shard.index.find(key);
  if (found == shard.index.end()) {
    if (shard.index.size() >= max_keys_per_shard_) {
      shard.index.erase(shard.lru.back().key);
      shard.lru.pop_back();
    }
    shard.lru.push_front(Bucket{std::string(key), options_.capacity, now});
    found = shard.index.emplace(shard.lru.front().key, shard.lru.begin()).first;
  } else {
    shard.lru.splice(shard.lru.begin(), shard.lru, found->second);
  }

  Bucket& bucket = *found->second;
  const double tokens = refilled(bucket, now);
  bucket.tokens = tokens;
  bucket.updated = std::max(bucket.updated, now);
  const double need = std::max(cost, 0.0);
  RateDecision decision;
  if (need <= tokens) {
    bucket.tokens = tokens - need;
    decision.allowed = true;
  } else {
    // Never promise a retry that cannot succeed: a cost above capacity waits for a full bucket.
    const double missing = std::min(need, options_.capacity) - tokens;
    // The epsilon keeps rounding noise (7.0000000001 s) from adding a whole second.
    const double wait = std::max(missing, 0.0) / tokens_per_second_ - 1e-9;
    decision.retry_after =
        std::chrono::seconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait))));
  }
  decision.remaining = static_cast<std::uint64_t>(std::floor(bucket.tokens));
  return decision;
}

std::size_t RateLimiter::size() const {
  std::size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    total += shard->index.size();
  }
  return total;
}

}  // namespace samokoder::security
