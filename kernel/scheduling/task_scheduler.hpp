// TaskScheduler: the kernel side of sdk::Scheduler (sdk/scheduler.hpp). One task pool (a WorkPool
// named "task", server.task_pool) and one timer thread serve every plugin; each plugin generation gets
// its own PluginScheduler view, which tags its tasks with the plugin id and can be closed on its own.
//
// Why a separate pool: plugin background work must neither starve request work (storage, hashing)
// nor long plugin calls, and it gets its own deadline, after which its token is cancelled and the
// thread is counted stuck and replaced (WorkPool's rules).
//
// Why the timer thread never runs plugin code: it only hands due runs to the pool and requests stops,
// so a slow task can delay only itself. Cancellation of a timed-out task is also handed to the timer
// thread, because the pool reports deadlines under its own lock and a task's cancel callback may post
// again.
//
// Metrics: samokoder_plugin_tasks_total{plugin, outcome} with outcome done, failed (threw), rejected
// (queue full or closed), timed_out, skipped (a timer run dropped on a full queue); plus the task
// pool's samokoder_work_pool_* series (pool="task").
//
// Ownership: the Application owns the TaskScheduler; it must outlive every PluginScheduler it handed
// out (the plugin manager closes them at teardown). Work still running after close() keeps the state
// it needs alive by itself.
// Thread-safety: every method may be called from any thread; stop() from one controlling thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <samokoder/sdk/scheduler.hpp>

#include "config/config.hpp"
#include "http/work_pool.hpp"
#include "metrics/registry.hpp"

namespace samokoder::scheduling {

class PluginScheduler;

class TaskScheduler {
 public:
  // `close_timeout`: how long PluginScheduler::close() waits for a closing plugin's running tasks.
  TaskScheduler(const config::WorkPoolConfig& pool, std::chrono::milliseconds close_timeout,
                metrics::Registry& registry);
  ~TaskScheduler();
  TaskScheduler(const TaskScheduler&) = delete;
  TaskScheduler& operator=(const TaskScheduler&) = delete;

  // A view for one plugin generation; close it before the plugin's code goes away.
  std::unique_ptr<PluginScheduler> for_plugin(std::string plugin_id);

  // A config reload: the deadline of tasks that start from now on, and how long a closing plugin's
  // tasks are waited for.
  void apply_live(std::chrono::milliseconds task_timeout, std::chrono::milliseconds close_timeout);

  // Stops the timer thread, then the pool (bounded by `deadline`); returns what was still running.
  // Idempotent.
  std::vector<http::WorkPool::Unfinished> stop(std::chrono::steady_clock::time_point deadline);

 private:
  friend class PluginScheduler;
  struct View;
  struct Timer;

  // Queues one run of `task` for `view`; `after` runs on the pool thread once the task returned.
  // When `cancelled` is set by the time a pool thread takes the run, the task is skipped: a timer
  // cancelled while its run waited in the queue does not run again.
  sdk::Status submit(const std::shared_ptr<View>& view, std::shared_ptr<sdk::Scheduler::Task> task,
                     std::function<void()> after,
                     std::shared_ptr<const std::atomic<bool>> cancelled = nullptr);
  void arm(std::shared_ptr<Timer> timer, std::chrono::steady_clock::time_point due);
  void fire(const std::shared_ptr<Timer>& timer);
  // Runs `action` on the timer thread soon (never under the pool's lock).
  void defer(std::function<void()> action);
  void timer_loop();
  metrics::Counter& outcome(const std::string& plugin_id, const char* outcome);

  std::atomic<std::chrono::milliseconds::rep> close_timeout_ms_;
  metrics::Registry& registry_;
  http::WorkPool pool_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::multimap<std::chrono::steady_clock::time_point, std::shared_ptr<Timer>> due_;  // guarded
  std::vector<std::function<void()>> deferred_;                                       // guarded
  bool stopping_ = false;                                                             // guarded
  std::uint64_t next_timer_id_ = 1;                                                   // guarded
  std::thread timer_thread_;
};

// One plugin generation's sdk::Scheduler (see TaskScheduler).
class PluginScheduler final : public sdk::Scheduler {
 public:
  ~PluginScheduler() override;

  sdk::Status post(Task task) override;
  sdk::Result<TimerId> run_after(std::chrono::milliseconds delay, Task task) override;
  sdk::Result<TimerId> run_every(std::chrono::milliseconds period, Task task) override;
  bool cancel_timer(TimerId id) noexcept override;

  // Refuses new work, cancels the plugin's timers and the tokens of its running tasks, and waits until
  // those tasks returned, at most the scheduler's close timeout. True when none is left running (the
  // plugin's code may then be unloaded). Idempotent.
  bool close() noexcept;

 private:
  friend class TaskScheduler;
  PluginScheduler(TaskScheduler& scheduler, std::shared_ptr<TaskScheduler::View> view)
      : scheduler_(scheduler), view_(std::move(view)) {}
  sdk::Result<TimerId> add_timer(std::chrono::milliseconds delay, std::chrono::milliseconds period,
                                 Task task);

  TaskScheduler& scheduler_;
  std::shared_ptr<TaskScheduler::View> view_;
};

// The scheduler of a host built without the kernel's task pool (offline plugin checks, test hosts):
// every call fails with kUnavailable.
sdk::Scheduler& unavailable_scheduler() noexcept;

}  // namespace samokoder::scheduling
