// wait_until: polls a condition until it holds or a deadline passes, for tests that wait on another
// thread, process or server. Every wait in the tests has a deadline, so a regression fails the test with
// a message instead of hanging the suite; the caller turns `false` into that failure.
//
// Ownership: none (a function template). Thread-safety: reentrant; `condition` runs on the calling thread
// only.
#pragma once

#include <chrono>
#include <thread>

namespace samokoder::testing {

// True as soon as `condition()` returns true (checked at once, then every `interval`); false when it
// still does not after `deadline`, checked one last time at the deadline.
template <typename Condition>
bool wait_until(Condition&& condition, std::chrono::steady_clock::duration deadline,
                std::chrono::steady_clock::duration interval = std::chrono::milliseconds(10)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return static_cast<bool>(condition());
    std::this_thread::sleep_for(interval);
  }
  return true;
}

}  // namespace samokoder::testing
