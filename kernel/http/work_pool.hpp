// WorkPool: a fixed number of threads with a bounded queue and a deadline per call, for handlers that
// may block. The server runs one per kind of work (request work, plugin calls) so a stuck plugin call
// cannot starve storage requests, and neither can hang shutdown.
//
//   submit()   queues a job, or refuses at once (queue full or pool stopping) so the I/O thread can
//              answer 503 without waiting.
//   deadline   a watchdog thread finishes a call that runs past call_timeout_ms with kTimedOut (the
//              caller answers 504). The thread cannot be killed: it is counted as stuck, and while
//              fewer than `threads` threads are stuck a replacement thread is started, so capacity
//              survives a few stuck calls; a replaced thread exits when its call finally returns. Past
//              that cap the pool runs with fewer threads, which the stuck-thread gauge shows.
//   stop()     lets queued and running jobs finish until a deadline, then finishes what is left with
//              kAbandoned, detaches the threads still inside a call and returns what they were doing.
//
// Every job's `finish` is called exactly once, on a pool thread, under the pool's lock (so it must only
// hand the outcome on, e.g. post to an event loop): kDone after `work` returned, kTimedOut from the
// watchdog, kAbandoned from stop(). Once stop() returns, no `finish` runs any more, and a thread that
// returns from a call later touches only state it co-owns (never the registry or the caller).
//
// Metrics, per pool (label pool): samokoder_work_pool_queue_depth, samokoder_work_pool_busy_threads,
// samokoder_work_pool_stuck_threads (gauges), samokoder_work_pool_rejected_total,
// samokoder_work_pool_timeouts_total (counters).
//
// Ownership: the pool shares its state with its threads, so a detached thread never outlives it.
// Thread-safety: submit() and set_call_timeout() from any thread; stop() and the destructor from one
// controlling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "metrics/registry.hpp"

namespace samokoder::http {

class WorkPool {
 public:
  enum class Outcome { kDone, kTimedOut, kAbandoned };
  using Work = std::function<void()>;
  using Finish = std::function<void(Outcome)>;

  // A call still running when stop() gave up on it.
  struct Unfinished {
    std::string pool;
    std::string what;    // as given to submit(), e.g. "POST /api/v1/plugins/{id}/reload"
    std::string plugin;  // the plugin it was inside (core::CallNote), or empty
    std::chrono::milliseconds running{0};
    bool timed_out = false;  // already answered because of its deadline
  };

  WorkPool(std::string name, const config::WorkPoolConfig& config, metrics::Registry& registry);
  ~WorkPool();  // stop(now)
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // False (and `finish` is dropped uncalled) when every thread is busy and queue_limit jobs already
  // wait, or when the pool stops.
  bool submit(std::string what, Work work, Finish finish);

  // Idempotent; see above. Logs one line per unfinished call.
  std::vector<Unfinished> stop(std::chrono::steady_clock::time_point deadline);

  // The deadline of the calls that start from now on (a config reload); calls already running keep
  // theirs. Safe from any thread.
  void set_call_timeout(std::chrono::milliseconds timeout);

  const std::string& name() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace samokoder::http
