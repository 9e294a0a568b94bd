// Scheduler: background work and timers for plugins, on the kernel's task pool.
//
// A plugin that needs work done outside a call (refresh a cache every minute, retry later, fan out a
// job) posts it here instead of starting threads of its own: the kernel bounds the pool, gives every
// task a deadline, counts it in metrics, and stops it when the plugin generation goes away, so a
// reload or shutdown never leaves plugin code running in an unloaded library.
//
//   post(task)                 runs task once, as soon as a pool thread is free
//   run_after(delay, task)     runs task once, `delay` from now
//   run_every(period, task)    runs task `period` from now, then `period` after each run ends (runs
//                              of one timer never overlap, a slow run delays the next)
//   cancel_timer(id)           no further runs of that timer (also none already waiting for a pool
//                              thread); a run in progress finishes
//
// Every task gets a CancelToken (cancel.hpp). It is cancelled when the task overruns the pool's
// deadline (server.task_pool.call_timeout_ms) and when the plugin generation shuts down; a task
// passes it on to every long call it makes (HTTP, child processes) and returns soon after it fires.
// At shutdown the kernel cancels the plugin's timers and tokens, then waits (plugins.drain_timeout_ms)
// for its running tasks before calling Plugin::shutdown(); a task that does not return keeps the
// generation's library mapped for the rest of the process (it is counted as pinned).
//
// Errors: post and the timers return kResourceExhausted when the pool's queue is full (at the time a
// timer fires, a full queue skips that run and counts it; a repeating timer tries again a period
// later), kFailedPrecondition once the plugin is shutting down, kInvalidArgument for an empty task or
// a negative delay or a period under 1 ms. A task that throws is caught, logged and counted; the
// exception goes no further (a repeating timer keeps running).
//
// Ownership: the kernel owns the Scheduler; it stays valid until the plugin's shutdown() returned.
// The task (and what it captures) is destroyed on a pool thread after its last run.
// Thread-safety: every method may be called from any thread, also from inside a task.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::sdk {

class Scheduler {
 public:
  using Task = std::function<void(CancelToken)>;
  using TimerId = std::uint64_t;

  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  virtual ~Scheduler() = default;

  virtual Status post(Task task) = 0;
  virtual Result<TimerId> run_after(std::chrono::milliseconds delay, Task task) = 0;
  virtual Result<TimerId> run_every(std::chrono::milliseconds period, Task task) = 0;
  // True when the timer existed and will not run again; false for an unknown or finished timer.
  virtual bool cancel_timer(TimerId id) noexcept = 0;
};

}  // namespace samokoder::sdk
