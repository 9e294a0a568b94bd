// Clock: the kernel's source of time, injectable so tests can move time (lockout expiry, token TTL,
// drain timeouts) without sleeping.
//
// Ownership: callers hold a reference to a Clock that outlives them (the Application owns one).
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <atomic>
#include <chrono>

namespace samokoder::core {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const noexcept = 0;
  virtual std::chrono::steady_clock::time_point monotonic_now() const noexcept = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const noexcept override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point monotonic_now() const noexcept override {
    return std::chrono::steady_clock::now();
  }
};

// A clock that only moves when told to; both time lines advance together.
class ManualClock final : public Clock {
 public:
  ManualClock() : offset_(0) {}
  std::chrono::system_clock::time_point now() const noexcept override {
    return std::chrono::system_clock::time_point(kEpochOffset + offset());
  }
  std::chrono::steady_clock::time_point monotonic_now() const noexcept override {
    return std::chrono::steady_clock::time_point(offset());
  }
  void advance(std::chrono::nanoseconds by) noexcept { offset_.fetch_add(by.count()); }

 private:
  std::chrono::nanoseconds offset() const noexcept { return std::chrono::nanoseconds(offset_.load()); }
  // 2026-01-01T00:00:00Z, so timestamps look like real ones.
  static constexpr std::chrono::seconds kEpochOffset{1767225600};
  std::atomic<std::int64_t> offset_;
};

}  // namespace samokoder::core
