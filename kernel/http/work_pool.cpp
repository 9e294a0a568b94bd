#include "http/work_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <list>
#include <mutex>
#include <thread>

#include "core/call_note.hpp"
#include "core/logging.hpp"

namespace samokoder::http {

using Clock = std::chrono::steady_clock;

struct WorkPool::State : std::enable_shared_from_this<WorkPool::State> {
  struct Job {
    std::string what;
    Work work;
    Finish finish;
  };
  // One per thread, in a list so addresses stay put. Touched under `mutex`, except `note`.
  struct Worker {
    std::thread thread;
    core::CallNote note;
    bool busy = false;
    bool timed_out = false;
    bool replaced = false;  // a replacement thread took its place: exit once the call returns
    std::string what;
    Clock::time_point started;
    Clock::time_point deadline;
    Finish finish;
  };
  using WorkerIt = std::list<Worker>::iterator;

  State(std::string name_in, const config::WorkPoolConfig& config, metrics::Registry& registry)
      : name(std::move(name_in)),
        threads(std::max(1U, config.threads)),
        queue_limit(config.queue_limit),
        timeout(std::max<std::uint32_t>(config.call_timeout_ms, 1)),
        log(core::logger("http")),
        queue_depth(registry.gauge("samokoder_work_pool_queue_depth", "Jobs waiting for a pool thread.",
                                   {{"pool", name}})),
        busy_threads(registry.gauge("samokoder_work_pool_busy_threads", "Pool threads inside a call.",
                                    {{"pool", name}})),
        stuck_threads(registry.gauge("samokoder_work_pool_stuck_threads",
                                     "Pool threads still inside a call that overran call_timeout_ms.",
                                     {{"pool", name}})),
        rejected(registry.counter(
            "samokoder_work_pool_rejected_total",
            "Requests answered 503 because the pool's queue was full or it was stopping.", {{"pool", name}})),
        timeouts(registry.counter("samokoder_work_pool_timeouts_total",
                                  "Calls answered 504 because they overran call_timeout_ms.",
                                  {{"pool", name}})) {}

  void spawn();
  void run_worker(WorkerIt worker);
  void run_watchdog();
  void time_out(Worker& worker, Clock::time_point now);
  std::string plugin_of(const Worker& worker) const {
    const std::string* plugin = worker.note.plugin.load(std::memory_order_relaxed);
    return plugin == nullptr ? std::string() : *plugin;
  }

  const std::string name;
  const unsigned threads;
  const std::size_t queue_limit;
  std::chrono::milliseconds timeout;  // guarded by mutex: set_call_timeout changes it
  const std::shared_ptr<spdlog::logger> log;
  // Registry objects: not touched once `stopped` is set, since the registry may be gone by then.
  metrics::Gauge& queue_depth;
  metrics::Gauge& busy_threads;
  metrics::Gauge& stuck_threads;
  metrics::Counter& rejected;
  metrics::Counter& timeouts;

  std::mutex mutex;
  std::condition_variable work_ready;  // workers wait here for a job
  std::condition_variable watch;       // the watchdog waits here for the next deadline
  std::condition_variable idle;        // stop() waits here for the queue and the calls to end
  std::deque<Job> queue;
  std::list<Worker> workers;
  std::thread watchdog;
  // When the watchdog wakes next (guarded by mutex). A call whose deadline is later needs no wake-up:
  // the watchdog sees it then. Waking it for every call would cost a context switch per request.
  Clock::time_point watchdog_wakes_at = Clock::time_point::min();
  unsigned busy = 0;
  unsigned stuck = 0;
  unsigned replaced = 0;  // stuck threads that have a replacement; capped at `threads`
  bool stopping = false;  // refuse new jobs; workers exit once the queue is empty
  bool stopped = false;   // stop() is over: no finish, no registry
};

void WorkPool::State::spawn() {
  const WorkerIt worker = workers.emplace(workers.end());
  worker->thread = std::thread([self = shared_from_this(), worker] { self->run_worker(worker); });
}

void WorkPool::State::run_worker(WorkerIt it) {
  Worker& w = *it;
  core::current_call_note = &w.note;
  std::unique_lock lock(mutex);
  for (;;) {
    work_ready.wait(lock, [&] { return stopping || !queue.empty(); });
    if (queue.empty()) break;  // stopping, nothing left to do
    Job job = std::move(queue.front());
    queue.pop_front();
    queue_depth.set(static_cast<double>(queue.size()));
    w.busy = true;
    w.timed_out = false;
    w.what = std::move(job.what);
    w.finish = std::move(job.finish);
    w.started = Clock::now();
    w.deadline = w.started + timeout;
    ++busy;
    busy_threads.set(busy);
    if (w.deadline < watchdog_wakes_at) watch.notify_one();
    lock.unlock();
    try {
      job.work();
    } catch (const std::exception& e) {
      log->error("{} pool: {} threw: {}", name, w.what, e.what());
    } catch (...) {
      log->error("{} pool: {} threw a non-standard exception", name, w.what);
    }
    job.work = nullptr;  // what the job holds goes before its caller hears it is done
    lock.lock();
    w.busy = false;
    if (stopped) break;  // stop() reported and abandoned this call; nobody is listening
    --busy;
    busy_threads.set(busy);
    if (w.finish) {
      Finish finish = std::move(w.finish);
      w.finish = nullptr;
      finish(Outcome::kDone);
    }
    if (w.timed_out) {
      --stuck;
      stuck_threads.set(stuck);
      log->warn("{} pool: {} returned after {} ms, past its deadline of {} ms", name, w.what,
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - w.started).count(),
                std::chrono::duration_cast<std::chrono::milliseconds>(w.deadline - w.started).count());
      if (w.replaced) {
        --replaced;
        // Detached by the watchdog when it started the replacement; nobody else refers to the record.
        core::current_call_note = nullptr;
        workers.erase(it);
        return;
      }
    }
    if (stopping) idle.notify_all();
  }
  core::current_call_note = nullptr;
  idle.notify_all();
}

void WorkPool::State::time_out(Worker& w, Clock::time_point now) {
  w.timed_out = true;
  ++stuck;
  stuck_threads.set(stuck);
  timeouts.add();
  const std::string plugin = plugin_of(w);
  log->error(
      "{} pool: {}{} still running after call_timeout_ms={} ({} ms); answered 504, its thread is "
      "stuck ({} stuck now)",
      name, w.what, plugin.empty() ? std::string() : " (plugin " + plugin + ")",
      std::chrono::duration_cast<std::chrono::milliseconds>(w.deadline - w.started).count(),
      std::chrono::duration_cast<std::chrono::milliseconds>(now - w.started).count(), stuck);
  if (w.finish) {
    Finish finish = std::move(w.finish);
    w.finish = nullptr;
    finish(Outcome::kTimedOut);
  }
}

void WorkPool::State::run_watchdog() {
  std::unique_lock lock(mutex);
  while (!stopped) {
    const auto now = Clock::now();
    auto next = Clock::time_point::max();
    std::vector<Worker*> expired;
    for (Worker& w : workers) {
      if (!w.busy || w.timed_out) continue;
      if (w.deadline <= now) {
        expired.push_back(&w);
      } else {
        next = std::min(next, w.deadline);
      }
    }
    for (Worker* w : expired) {
      time_out(*w, now);
      if (replaced < threads && !stopping) {
        // Capacity is kept: a new thread serves the queue, the stuck one exits when it returns.
        ++replaced;
        w->replaced = true;
        w->thread.detach();
        spawn();
      }
    }
    // With no call running it still wakes one timeout from now: every call that starts before then has
    // a later deadline, so none is missed, and none needs to wake it.
    watchdog_wakes_at = std::min(next, now + timeout);
    watch.wait_until(lock, watchdog_wakes_at);
  }
}

WorkPool::WorkPool(std::string name, const config::WorkPoolConfig& config, metrics::Registry& registry)
    : state_(std::make_shared<State>(std::move(name), config, registry)) {
  std::lock_guard lock(state_->mutex);
  for (unsigned i = 0; i < state_->threads; ++i)
    state_->spawn();
  state_->watchdog = std::thread([state = state_] { state->run_watchdog(); });
}

WorkPool::~WorkPool() {
  stop(Clock::now());
}

void WorkPool::set_call_timeout(std::chrono::milliseconds timeout) {
  std::lock_guard lock(state_->mutex);
  state_->timeout = std::max(timeout, std::chrono::milliseconds(1));
}

const std::string& WorkPool::name() const noexcept {
  return state_->name;
}

bool WorkPool::submit(std::string what, Work work, Finish finish) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  // A job is refused once every serving thread has one and queue_limit more are waiting. Serving
  // threads: `threads`, since each stuck thread with a replacement (`replaced`) no longer counts.
  const std::size_t taken = s.queue.size() + (s.busy - s.replaced);
  if (s.stopping || taken >= s.threads + s.queue_limit) {
    if (!s.stopped) s.rejected.add();
    return false;
  }
  s.queue.push_back({std::move(what), std::move(work), std::move(finish)});
  s.queue_depth.set(static_cast<double>(s.queue.size()));
  s.work_ready.notify_one();
  return true;
}

std::vector<WorkPool::Unfinished> WorkPool::stop(Clock::time_point deadline) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (s.stopping) return {};
  s.stopping = true;
  s.work_ready.notify_all();
  s.idle.wait_until(lock, deadline, [&] { return s.queue.empty() && s.busy == 0; });

  const auto now = Clock::now();
  std::deque<State::Job> never_started = std::move(s.queue);
  s.queue.clear();
  for (State::Job& job : never_started) {
    if (job.finish) job.finish(Outcome::kAbandoned);
  }
  std::vector<Unfinished> left;
  std::vector<std::thread> finished_threads;
  for (State::Worker& w : s.workers) {
    if (w.busy) {
      left.push_back({s.name, w.what, s.plugin_of(w),
                      std::chrono::duration_cast<std::chrono::milliseconds>(now - w.started), w.timed_out});
      if (w.finish) {
        Finish finish = std::move(w.finish);
        w.finish = nullptr;
        finish(Outcome::kAbandoned);
      }
      // It cannot be joined without waiting for the call; it exits by itself if the call ever returns.
      if (w.thread.joinable()) w.thread.detach();
    } else if (w.thread.joinable()) {
      finished_threads.push_back(std::move(w.thread));
    }
  }
  s.queue_depth.set(0);
  s.stopped = true;
  s.work_ready.notify_all();
  s.watch.notify_all();
  lock.unlock();

  never_started.clear();
  for (std::thread& thread : finished_threads)
    thread.join();
  s.watchdog.join();
  for (const Unfinished& call : left) {
    s.log->error("{} pool: {}{} still running at shutdown, for {} ms{}; its thread is left behind", s.name,
                 call.what, call.plugin.empty() ? std::string() : " (plugin " + call.plugin + ")",
                 call.running.count(), call.timed_out ? " (already answered 504)" : "");
  }
  return left;
}

}  // namespace samokoder::http
