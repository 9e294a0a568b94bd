#include "scheduling/task_scheduler.hpp"

#include <atomic>
#include <exception>
#include <utility>

#include "core/call_note.hpp"
#include "core/logging.hpp"

namespace samokoder::scheduling {

using Clock = std::chrono::steady_clock;

struct TaskScheduler::View {
  View(std::string id, TaskScheduler& owner)
      : plugin_id(std::move(id)),
        log(core::logger("plugin." + plugin_id)),
        done(owner.outcome(plugin_id, "done")),
        failed(owner.outcome(plugin_id, "failed")),
        rejected(owner.outcome(plugin_id, "rejected")),
        timed_out(owner.outcome(plugin_id, "timed_out")),
        skipped(owner.outcome(plugin_id, "skipped")) {}

  // One task left plugin code (or was dropped unrun): close() may be waiting for the last one.
  void leave() {
    std::lock_guard lock(mutex);
    if (--running == 0) idle.notify_all();
  }

  const std::string plugin_id;
  const std::shared_ptr<spdlog::logger> log;
  metrics::Counter& done;
  metrics::Counter& failed;
  metrics::Counter& rejected;
  metrics::Counter& timed_out;
  metrics::Counter& skipped;
  std::stop_source stop;  // requested by close(): every running task's token follows it

  std::mutex mutex;
  std::condition_variable idle;
  std::size_t running = 0;  // queued or running tasks; guarded by mutex
  bool closed = false;      // guarded by mutex
  std::map<sdk::Scheduler::TimerId, std::shared_ptr<Timer>> timers;  // guarded by mutex
};

struct TaskScheduler::Timer {
  sdk::Scheduler::TimerId id = 0;
  std::weak_ptr<View> view;
  std::shared_ptr<sdk::Scheduler::Task> task;
  std::chrono::milliseconds period{0};  // zero: runs once
  std::atomic<bool> cancelled{false};
};

TaskScheduler::TaskScheduler(const config::WorkPoolConfig& pool, std::chrono::milliseconds close_timeout,
                             metrics::Registry& registry)
    : close_timeout_ms_(close_timeout.count()), registry_(registry), pool_("task", pool, registry) {
  timer_thread_ = std::thread([this] { timer_loop(); });
}

TaskScheduler::~TaskScheduler() {
  stop(Clock::now());
}

metrics::Counter& TaskScheduler::outcome(const std::string& plugin_id, const char* outcome) {
  return registry_.counter(
      "samokoder_plugin_tasks_total",
      "Plugin background tasks (HostServices::scheduler) by how they ended: done, failed "
      "(threw), rejected (queue full or plugin closing), timed_out, skipped (a timer run "
      "dropped on a full queue).",
      {{"plugin", plugin_id}, {"outcome", outcome}});
}

std::unique_ptr<PluginScheduler> TaskScheduler::for_plugin(std::string plugin_id) {
  return std::unique_ptr<PluginScheduler>(
      new PluginScheduler(*this, std::make_shared<View>(std::move(plugin_id), *this)));
}

void TaskScheduler::apply_live(std::chrono::milliseconds task_timeout,
                               std::chrono::milliseconds close_timeout) {
  pool_.set_call_timeout(task_timeout);
  close_timeout_ms_.store(close_timeout.count());
}

std::vector<http::WorkPool::Unfinished> TaskScheduler::stop(Clock::time_point deadline) {
  std::multimap<Clock::time_point, std::shared_ptr<Timer>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    dropped.swap(due_);
  }
  changed_.notify_all();
  if (timer_thread_.joinable()) timer_thread_.join();
  dropped.clear();
  return pool_.stop(deadline);
}

sdk::Status TaskScheduler::submit(const std::shared_ptr<View>& view,
                                  std::shared_ptr<sdk::Scheduler::Task> task, std::function<void()> after,
                                  std::shared_ptr<const std::atomic<bool>> cancelled) {
  {
    std::lock_guard lock(view->mutex);
    if (view->closed) {
      view->rejected.add();
      return sdk::Status::failed_precondition("plugin " + view->plugin_id + " is shutting down");
    }
    ++view->running;
  }
  // The task's own token: stopped by the pool's deadline or by the plugin's close().
  auto task_stop = std::make_shared<std::stop_source>();
  auto work = [view, task = std::move(task), after = std::move(after), task_stop,
               cancelled = std::move(cancelled)]() mutable {
    {
      const core::PluginCallScope note(view->plugin_id);
      const sdk::CancelToken closing = view->stop.get_token();
      const std::stop_callback follow_close(closing, [&task_stop] { task_stop->request_stop(); });
      bool closed_before_start = false;
      {
        std::lock_guard lock(view->mutex);
        closed_before_start = view->closed;
      }
      if (!closed_before_start && !(cancelled && cancelled->load())) {
        try {
          (*task)(task_stop->get_token());
          view->done.add();
        } catch (const std::exception& e) {
          view->failed.add();
          view->log->error("background task threw: {}", e.what());
        } catch (...) {
          view->failed.add();
          view->log->error("background task threw a non-standard exception");
        }
      }
    }
    // Plugin code (the task's captures) is destroyed before the plugin may be told it is idle.
    task.reset();
    if (after) after();
    after = nullptr;
    view->leave();
  };
  auto finish = [this, view, task_stop](http::WorkPool::Outcome outcome) {
    if (outcome != http::WorkPool::Outcome::kTimedOut) return;
    view->timed_out.add();
    defer([task_stop] { task_stop->request_stop(); });
  };
  if (!pool_.submit("task of " + view->plugin_id, std::move(work), std::move(finish))) {
    view->rejected.add();
    view->leave();
    return sdk::Status::resource_exhausted("the task pool's queue is full; try again later");
  }
  return {};
}

void TaskScheduler::arm(std::shared_ptr<Timer> timer, Clock::time_point due) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || timer->cancelled.load()) return;
    due_.emplace(due, std::move(timer));
  }
  changed_.notify_one();
}

void TaskScheduler::fire(const std::shared_ptr<Timer>& timer) {
  const std::shared_ptr<View> view = timer->view.lock();
  if (!view || timer->cancelled.load()) return;
  // After a run (or a skipped one): a repeating timer is armed again, a one-shot one forgotten.
  auto next = [this, timer, weak_view = timer->view] {
    if (timer->period.count() > 0 && !timer->cancelled.load()) {
      arm(timer, Clock::now() + timer->period);
      return;
    }
    // The timer runs no more: its task (plugin code) goes here, on the pool thread before the run
    // tells the plugin it is idle, not with the last reference to the timer, which the timer thread
    // may drop after the plugin was unloaded (a SIGSEGV in the task's destructor).
    timer->task.reset();
    if (const auto owner = weak_view.lock()) {
      std::lock_guard lock(owner->mutex);
      owner->timers.erase(timer->id);
    }
  };
  const sdk::Status submitted =
      submit(view, timer->task, next, std::shared_ptr<const std::atomic<bool>>(timer, &timer->cancelled));
  if (submitted.ok()) return;
  if (submitted.code() == sdk::StatusCode::kResourceExhausted) view->skipped.add();
  next();
}

void TaskScheduler::defer(std::function<void()> action) {
  {
    std::lock_guard lock(mutex_);
    deferred_.push_back(std::move(action));
  }
  changed_.notify_one();
}

void TaskScheduler::timer_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (!deferred_.empty()) {
      auto actions = std::move(deferred_);
      deferred_.clear();
      lock.unlock();
      for (auto& action : actions)
        action();
      lock.lock();
      continue;
    }
    if (stopping_) return;
    if (due_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto first = due_.begin();
    if (first->first > Clock::now()) {
      // A copy: wait_until reads the deadline again after waking, when cancel_timer may have erased
      // the entry it lives in (AddressSanitizer: heap-use-after-free).
      const Clock::time_point deadline = first->first;
      changed_.wait_until(lock, deadline);
      continue;
    }
    std::shared_ptr<Timer> timer = std::move(first->second);
    due_.erase(first);
    lock.unlock();
    fire(timer);
    timer.reset();  // a cancelled timer's task goes here, outside the lock
    lock.lock();
  }
}

// ---- PluginScheduler ------------------------------------------------------------------------------

PluginScheduler::~PluginScheduler() {
  close();
}

sdk::Status PluginScheduler::post(Task task) {
  if (!task) return sdk::Status::invalid_argument("post needs a task");
  return scheduler_.submit(view_, std::make_shared<Task>(std::move(task)), nullptr);
}

sdk::Result<PluginScheduler::TimerId> PluginScheduler::run_after(std::chrono::milliseconds delay, Task task) {
  if (delay.count() < 0) return sdk::Status::invalid_argument("run_after needs a delay of 0 ms or more");
  return add_timer(delay, std::chrono::milliseconds(0), std::move(task));
}

sdk::Result<PluginScheduler::TimerId> PluginScheduler::run_every(std::chrono::milliseconds period,
                                                                 Task task) {
  if (period.count() < 1) return sdk::Status::invalid_argument("run_every needs a period of 1 ms or more");
  return add_timer(period, period, std::move(task));
}

sdk::Result<PluginScheduler::TimerId> PluginScheduler::add_timer(std::chrono::milliseconds delay,
                                                                 std::chrono::milliseconds period,
                                                                 Task task) {
  if (!task) return sdk::Status::invalid_argument("a timer needs a task");
  auto timer = std::make_shared<TaskScheduler::Timer>();
  timer->view = view_;
  timer->task = std::make_shared<Task>(std::move(task));
  timer->period = period;
  {
    std::lock_guard lock(scheduler_.mutex_);
    if (scheduler_.stopping_) return sdk::Status::failed_precondition("the server is shutting down");
    timer->id = scheduler_.next_timer_id_++;
  }
  {
    std::lock_guard lock(view_->mutex);
    if (view_->closed) {
      view_->rejected.add();
      return sdk::Status::failed_precondition("plugin " + view_->plugin_id + " is shutting down");
    }
    view_->timers.emplace(timer->id, timer);
  }
  const TimerId id = timer->id;
  scheduler_.arm(std::move(timer), Clock::now() + delay);
  return id;
}

bool PluginScheduler::cancel_timer(TimerId id) noexcept {
  std::shared_ptr<TaskScheduler::Timer> timer;
  {
    std::lock_guard lock(view_->mutex);
    const auto it = view_->timers.find(id);
    if (it == view_->timers.end()) return false;
    timer = std::move(it->second);
    view_->timers.erase(it);
  }
  timer->cancelled.store(true);
  // Out of the due list now, so its task (plugin code) is released while the plugin is still loaded.
  std::vector<std::shared_ptr<TaskScheduler::Timer>> released;
  {
    std::lock_guard lock(scheduler_.mutex_);
    for (auto it = scheduler_.due_.begin(); it != scheduler_.due_.end();) {
      if (it->second == timer) {
        released.push_back(std::move(it->second));
        it = scheduler_.due_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return true;
}

bool PluginScheduler::close() noexcept {
  std::vector<TimerId> ids;
  {
    std::lock_guard lock(view_->mutex);
    view_->closed = true;
    for (const auto& entry : view_->timers)
      ids.push_back(entry.first);
  }
  for (const TimerId id : ids)
    cancel_timer(id);
  view_->stop.request_stop();
  std::unique_lock lock(view_->mutex);
  const bool idle = view_->idle.wait_for(lock, std::chrono::milliseconds(scheduler_.close_timeout_ms_.load()),
                                         [&] { return view_->running == 0; });
  if (!idle) {
    view_->log->error("{} background task(s) still running after the plugin was asked to stop",
                      view_->running);
  }
  return idle;
}

namespace {

class UnavailableScheduler final : public sdk::Scheduler {
 public:
  sdk::Status post(Task) override { return refused(); }
  sdk::Result<TimerId> run_after(std::chrono::milliseconds, Task) override { return refused(); }
  sdk::Result<TimerId> run_every(std::chrono::milliseconds, Task) override { return refused(); }
  bool cancel_timer(TimerId) noexcept override { return false; }

 private:
  static sdk::Status refused() {
    return sdk::Status::unavailable("background tasks are not available here (no task pool in this process)");
  }
};

}  // namespace

sdk::Scheduler& unavailable_scheduler() noexcept {
  static UnavailableScheduler scheduler;
  return scheduler;
}

}  // namespace samokoder::scheduling
