// TokenMemo: what verifying a bearer token produced, remembered per thread for the same token bytes.
//
// A client presents the same access token on every request for its whole lifetime (15 minutes), and
// verifying it (three base64url decodes, two strict JSON parses, an HMAC) costs more than the rest of
// authentication. For the same bytes under the same key ring the outcome cannot change, except for
// the time claims, which the caller checks again on every hit. Only successes are remembered: a bad
// token is verified in full every time and never pushes a good one out.
//
// Each thread has its own small direct-mapped table (no lock, no sharing between cores); a slot is
// tagged with the memo that filled it, by an id no other memo in the process ever gets, so two
// key rings (two servers in one process, or a memo destroyed and another built at its address)
// never answer for each other. Tokens are compared in constant time: the comparison must not tell
// an attacker how much of a cached token a guess matched.
//
// Ownership: the slots belong to the thread; the memo owns nothing but its id. Thread-safety: find
// and remember may be called from any thread; each thread sees only its own slots.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "security/encoding.hpp"

namespace samokoder::api {

// A process-unique, never reused, non-zero id.
std::uint64_t next_token_memo_id() noexcept;

template <typename Value>
class TokenMemo {
 public:
  static constexpr std::size_t kSlotsPerThread = 256;
  // Longer tokens are not remembered, so a thread's slots stay within a few hundred KiB.
  static constexpr std::size_t kMaxTokenBytes = 1024;

  TokenMemo() : id_(next_token_memo_id()) {}

  // What remember() stored for exactly these bytes on this thread, unless another token took the slot.
  std::optional<Value> find(std::string_view token) const {
    const Slot& slot = slot_for(token);
    if (slot.owner != id_ || slot.token.size() != token.size() ||
        !security::constant_time_equals(slot.token, token)) {
      return std::nullopt;
    }
    return slot.value;
  }

  void remember(std::string_view token, const Value& value) const {
    if (token.size() > kMaxTokenBytes) return;
    Slot& slot = slot_for(token);
    slot.owner = id_;
    slot.token.assign(token);
    slot.value = value;
  }

 private:
  struct Slot {
    std::uint64_t owner = 0;
    std::string token;
    Value value{};
  };

  static Slot& slot_for(std::string_view token) {
    thread_local std::array<Slot, kSlotsPerThread> slots;
    return slots[std::hash<std::string_view>{}(token) % kSlotsPerThread];
  }

  std::uint64_t id_;
};

}  // namespace samokoder::api
