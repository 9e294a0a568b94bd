// SessionCheckCache: the outcome of checking an access JWT against storage (its jti not revoked, its
// session neither revoked nor expired, its user present and enabled), kept briefly per jti so that a
// client's next requests skip those three storage reads. The JWT's signature and expiry are still
// verified on every request; only the storage part is reused.
//
// Staleness: whatever this process changes that could fail a check or change what it found (logout,
// a refresh-token reuse revoking a family, an admin changing a user) calls invalidate_all() before it
// returns, so on one node a revocation takes effect at once. A change made by another node (or
// directly in the database) is seen here within the TTL (config security.session_check_cache_ms; 0
// turns the cache off and every request reads storage again).
//
// An epoch guards the race between a check and a revocation: take epoch() before reading storage and
// pass it to store(), which drops the entry when invalidate_all() ran in between, so a check that read
// the pre-revocation state can never be cached after the revocation.
//
// Sharding: every authenticated request looks here, so there is no process-wide lock: entries are
// spread over shards by the jti's hash, each shard with its own mutex on its own cache line, and the
// epoch is an atomic. invalidate_all() bumps the epoch first and then clears every shard, so a store()
// that passed its epoch check before the bump is cleared after it.
//
// Ownership: owned by the ApiContext. Thread-safety: every method may be called concurrently; they
// lock one shard's mutex for a map lookup or insert only, never across I/O.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace samokoder::api {

// Entries the ApiContext keeps at most (a few hundred bytes each).
inline constexpr std::size_t kSessionCheckCacheCapacity = 50'000;

class SessionCheckCache {
 public:
  static constexpr std::size_t kMaxShards = 64;
  static constexpr std::size_t kMinShardCapacity = 512;
  using Timestamp = std::chrono::system_clock::time_point;

  // What the storage check established about the caller.
  struct Verified {
    std::string user_id;
    std::string email;
    std::string tier;
    bool is_admin = false;
    std::string session_id;
    Timestamp session_expires_at;
  };

  // ttl 0: disabled (find never hits, store keeps nothing). At most `capacity` entries, split evenly
  // over up to kMaxShards shards of at least kMinShardCapacity entries each; when a shard is full,
  // its expired entries are dropped and, if that frees less than a tenth, all of them (a flood of
  // distinct tokens costs storage reads, never memory, and at most one sweep per tenth of a shard).
  SessionCheckCache(std::chrono::milliseconds ttl, std::size_t capacity);

  std::uint64_t epoch() const;
  // The entry for `jti` stored less than ttl before `now` whose session is still live at `now`.
  std::optional<Verified> find(std::string_view jti, Timestamp now) const;
  // Keeps `verified` for `jti`, unless invalidate_all() ran since `epoch_before_check` was taken.
  // `checked_at` is when the storage check began (taken with the epoch), so a slow check is not
  // trusted for longer than the TTL.
  void store(std::string_view jti, Verified verified, std::uint64_t epoch_before_check, Timestamp checked_at);
  // Forgets every entry: something that can fail a check changed.
  void invalidate_all();
  // A new TTL (config reload) for the lookups and stores that follow; 0 turns the cache off. Entries
  // already stored are judged by it too, so a shorter TTL takes effect at once.
  void set_ttl(std::chrono::milliseconds ttl) noexcept;

  std::size_t size() const;

 private:
  struct Entry {
    Verified verified;
    Timestamp stored_at;
  };

  struct alignas(64) Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Entry> entries;
  };
  Shard& shard_of(std::string_view jti) const noexcept;

  std::chrono::milliseconds ttl() const noexcept {
    return std::chrono::milliseconds(ttl_ms_.load(std::memory_order_relaxed));
  }

  // Atomic rather than const: a config reload changes it (set_ttl) while requests read it.
  std::atomic<std::chrono::milliseconds::rep> ttl_ms_;
  std::size_t shard_count_;     // a power of two, so a hash picks its shard with a mask
  std::size_t shard_capacity_;  // capacity / shard_count_: the whole cache never exceeds capacity
  std::unique_ptr<Shard[]> shards_;
  std::atomic<std::uint64_t> epoch_{0};
};

}  // namespace samokoder::api
