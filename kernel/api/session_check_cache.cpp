#include "api/session_check_cache.hpp"

#include <iterator>
#include <utility>

namespace samokoder::api {

SessionCheckCache::SessionCheckCache(std::chrono::milliseconds ttl, std::size_t capacity)
    : ttl_(ttl), capacity_(capacity) {}

std::uint64_t SessionCheckCache::epoch() const {
  std::lock_guard lock(mutex_);
  return epoch_;
}

std::optional<SessionCheckCache::Verified> SessionCheckCache::find(std::string_view jti,
                                                                   Timestamp now) const {
  if (ttl_.count() == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(std::string(jti));
  if (it == entries_.end()) return std::nullopt;
  const Entry& entry = it->second;
  // A clock that moved backwards counts as expired too: better a storage read than a stale answer.
  if (now < entry.stored_at || now - entry.stored_at >= ttl_ || entry.verified.session_expires_at <= now) {
    return std::nullopt;
  }
  return entry.verified;
}

void SessionCheckCache::store(std::string_view jti, Verified verified, std::uint64_t epoch_before_check,
                              Timestamp checked_at) {
  if (ttl_.count() == 0 || capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  if (epoch_before_check != epoch_) return;
  if (entries_.size() >= capacity_ && entries_.find(std::string(jti)) == entries_.end()) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = checked_at - it->second.stored_at >= ttl_ ? entries_.erase(it) : std::next(it);
    }
    // Still nearly full of live entries: start over rather than sweep again on every insert.
    if (entries_.size() >= capacity_ - capacity_ / 10) entries_.clear();
  }
  entries_.insert_or_assign(std::string(jti), Entry{std::move(verified), checked_at});
}

void SessionCheckCache::invalidate_all() {
  std::lock_guard lock(mutex_);
  ++epoch_;
  entries_.clear();
}

std::size_t SessionCheckCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace samokoder::api
