#include "api/session_check_cache.hpp"

#include <functional>
#include <iterator>
#include <utility>

namespace samokoder::api {

SessionCheckCache::SessionCheckCache(std::chrono::milliseconds ttl, std::size_t capacity)
    : ttl_ms_(ttl.count()) {
  shard_count_ = 1;
  while (shard_count_ < kMaxShards && capacity / (shard_count_ * 2) >= kMinShardCapacity)
    shard_count_ *= 2;
  shard_capacity_ = capacity / shard_count_;
  shards_ = std::make_unique<Shard[]>(shard_count_);
}

SessionCheckCache::Shard& SessionCheckCache::shard_of(std::string_view jti) const noexcept {
  return shards_[std::hash<std::string_view>{}(jti) & (shard_count_ - 1)];
}

std::uint64_t SessionCheckCache::epoch() const {
  return epoch_.load();
}

std::optional<SessionCheckCache::Verified> SessionCheckCache::find(std::string_view jti,
                                                                   Timestamp now) const {
  const auto ttl = this->ttl();
  if (ttl.count() == 0) return std::nullopt;
  const Shard& shard = shard_of(jti);
  std::lock_guard lock(shard.mutex);
  const auto it = shard.entries.find(std::string(jti));
  if (it == shard.entries.end()) return std::nullopt;
  const Entry& entry = it->second;
  // A clock that moved backwards counts as expired too: better a storage read than a stale answer.
  if (now < entry.stored_at || now - entry.stored_at >= ttl || entry.verified.session_expires_at <= now) {
    return std::nullopt;
  }
  return entry.verified;
}

void SessionCheckCache::store(std::string_view jti, Verified verified, std::uint64_t epoch_before_check,
                              Timestamp checked_at) {
  const auto ttl = this->ttl();
  if (ttl.count() == 0 || shard_capacity_ == 0) return;
  Shard& shard = shard_of(jti);
  std::lock_guard lock(shard.mutex);
  // Checked under the shard's lock: an invalidate_all() that bumps the epoch after this check clears
  // this shard only after the insert below.
  if (epoch_before_check != epoch_.load()) return;
  auto& entries = shard.entries;
  if (entries.size() >= shard_capacity_ && entries.find(std::string(jti)) == entries.end()) {
    for (auto it = entries.begin(); it != entries.end();) {
      it = checked_at - it->second.stored_at >= ttl ? entries.erase(it) : std::next(it);
    }
    // Still nearly full of live entries: start over rather than sweep again on every insert.
    if (entries.size() >= shard_capacity_ - shard_capacity_ / 10) entries.clear();
  }
  entries.insert_or_assign(std::string(jti), Entry{std::move(verified), checked_at});
}

void SessionCheckCache::set_ttl(std::chrono::milliseconds ttl) noexcept {
  ttl_ms_.store(ttl.count(), std::memory_order_relaxed);
}

void SessionCheckCache::invalidate_all() {
  ++epoch_;  // first: a store() racing with the clears below sees the new epoch or is cleared
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    shards_[i].entries.clear();
  }
}

std::size_t SessionCheckCache::size() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    total += shards_[i].entries.size();
  }
  return total;
}

}  // namespace samokoder::api
