#include "processes/process_service.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "core/logging.hpp"
#include "processes/child.hpp"

namespace samokoder::processes {

struct ProcessService::Tracked {
  Tracked(std::uint64_t id_, Owner owner_, Child child_)
      : id(id_), owner(std::move(owner_)), child(std::move(child_)) {}

  // Waits for a started child's supervising thread, then destroys the plugin's callback while the
  // plugin's code is certainly still mapped.
  void join() {
    const std::lock_guard lock(join_mutex);
    if (thread.joinable()) thread.join();
    options.on_line = nullptr;
  }

  const std::uint64_t id;
  const Owner owner;
  Child child;
  Child::Options options;
  bool started = false;  // supervised by its own thread (start()), not by a caller (run())

  std::mutex mutex;
  std::condition_variable done;
  std::optional<sdk::ProcessResult> result;

  std::mutex join_mutex;
  std::thread thread;
};

// The handle start() returns.
class StartedChild final : public sdk::ChildProcess {
 public:
  StartedChild(ProcessService& service, std::shared_ptr<ProcessService::Tracked> tracked)
      : service_(service), tracked_(std::move(tracked)) {}
  ~StartedChild() override {
    tracked_->child.request_stop();
    tracked_->join();
    service_.forget(*tracked_);
  }

  int pid() const noexcept override { return tracked_->child.pid(); }
  std::optional<sdk::ProcessResult> wait_for(std::chrono::milliseconds timeout) noexcept override {
    std::unique_lock lock(tracked_->mutex);
    tracked_->done.wait_for(lock, timeout, [&] { return tracked_->result.has_value(); });
    return tracked_->result;
  }
  void terminate() noexcept override { tracked_->child.request_stop(); }

 private:
  ProcessService& service_;
  std::shared_ptr<ProcessService::Tracked> tracked_;
};

namespace {

std::uint64_t pick(const std::optional<std::uint64_t>& asked, std::uint64_t fallback) {
  return asked.value_or(fallback);
}

std::string_view outcome_of(const sdk::ProcessResult& result) {
  if (result.timed_out) return "timed_out";
  if (result.cancelled) return "cancelled";
  if (result.signal) return "signaled";
  return result.exit_code == 0 ? "ok" : "failed";
}

}  // namespace

ProcessService::ProcessService(config::ProcessesConfig config, metrics::Registry& registry)
    : config_(std::move(config)), registry_(registry), journal_(config_.state_dir) {}

ProcessService::~ProcessService() {
  shutdown();
}

ChildJournal::SweepReport ProcessService::sweep_orphans() {
  return journal_.sweep();
}

sdk::Result<std::shared_ptr<ProcessService::Tracked>> ProcessService::launch(const Owner& owner,
                                                                             const sdk::ProcessSpec& spec) {
  const auto& d = config_.default_limits;
  const ResolvedLimits limits{
      pick(spec.limits.cpu_seconds, d.cpu_seconds),
      pick(spec.limits.address_space_bytes, d.address_space_bytes), pick(spec.limits.processes, d.processes),
      pick(spec.limits.file_size_bytes, d.file_size_bytes), pick(spec.limits.open_files, d.open_files)};
  auto prepared = prepare_launch(spec, limits);
  if (!prepared.ok()) return prepared.status();
  {
    const std::lock_guard lock(mutex_);
    if (shut_down_) return sdk::Status::unavailable("the server is shutting down; no new child processes");
  }
  if (auto status = journal_.open(); !status.ok()) return status;
  auto spawned = spawn(*prepared);
  if (!spawned.ok()) return spawned.status();
  const int pid = spawned->pid();
  const std::uint64_t start_time = spawned->start_time();
  if (auto status = journal_.record(pid, start_time, owner.plugin + "#" + std::to_string(owner.generation));
      !status.ok()) {
    return status;  // ~Child kills and reaps the held child: nothing runs unrecorded
  }
  std::shared_ptr<Tracked> tracked;
  {
    const std::lock_guard lock(mutex_);
    if (shut_down_) {
      journal_.forget(pid, start_time);
      return sdk::Status::unavailable("the server is shutting down; no new child processes");
    }
    tracked = std::make_shared<Tracked>(next_id_++, owner, std::move(*spawned));
    children_.emplace(tracked->id, tracked);
  }
  if (auto status = tracked->child.release(*prepared); !status.ok()) {
    journal_.forget(pid, start_time);
    count_ended(owner.plugin, "spawn_error");
    forget(*tracked);
    return status;
  }
  const auto now = std::chrono::steady_clock::now();
  const auto timeout =
      spec.timeout.count() > 0 ? spec.timeout : std::chrono::milliseconds(config_.default_timeout_ms);
  tracked->options.started = now;
  tracked->options.deadline = now + timeout;
  tracked->options.kill_grace = std::chrono::milliseconds(config_.kill_grace_ms);
  const std::size_t cap = static_cast<std::size_t>(config_.output_limit_bytes);
  tracked->options.output_limit = spec.output_limit_bytes == 0 ? cap : std::min(spec.output_limit_bytes, cap);
  tracked->options.stdin_data = spec.stdin_data.value_or(std::string());
  tracked->options.on_line = spec.on_line;
  const metrics::Labels labels{{"plugin", owner.plugin}};
  registry_.counter("samokoder_processes_started_total", "Child processes started for plugins.", labels)
      .add();
  registry_.gauge("samokoder_processes_running", "Child processes running for plugins.", labels).add(1);
  core::logger("processes")
      ->debug("plugin {} generation {} started child {} ({})", owner.plugin, owner.generation, pid,
              prepared->program);
  return tracked;
}

void ProcessService::count_ended(const std::string& plugin, std::string_view outcome) {
  registry_
      .counter("samokoder_processes_ended_total", "Child processes of plugins that ended, by outcome.",
               {{"plugin", plugin}, {"outcome", std::string(outcome)}})
      .add();
}

void ProcessService::finished(Tracked& tracked, const sdk::ProcessResult& result) {
  journal_.forget(tracked.child.pid(), tracked.child.start_time());
  registry_
      .gauge("samokoder_processes_running", "Child processes running for plugins.",
             {{"plugin", tracked.owner.plugin}})
      .add(-1);
  count_ended(tracked.owner.plugin, outcome_of(result));
  const std::lock_guard lock(tracked.mutex);
  tracked.result = result;
  tracked.done.notify_all();
}

void ProcessService::forget(const Tracked& tracked) {
  const std::lock_guard lock(mutex_);
  children_.erase(tracked.id);
  changed_.notify_all();
}

sdk::Result<sdk::ProcessResult> ProcessService::run(const Owner& owner, const sdk::ProcessSpec& spec,
                                                    sdk::CancelToken cancel) noexcept {
  try {
    auto launched = launch(owner, spec);
    if (!launched.ok()) return launched.status();
    auto tracked = std::move(*launched);
    std::optional<sdk::ProcessResult> result;
    {
      const std::stop_callback on_cancel(cancel, [&tracked] { tracked->child.request_stop(); });
      result = tracked->child.supervise(tracked->options);
    }
    finished(*tracked, *result);
    forget(*tracked);
    return std::move(*result);
  } catch (const std::exception& e) {
    return sdk::Status::internal(std::string("child process: ") + e.what());
  }
}

sdk::Result<std::unique_ptr<sdk::ChildProcess>> ProcessService::start(const Owner& owner,
                                                                      const sdk::ProcessSpec& spec) noexcept {
  try {
    auto launched = launch(owner, spec);
    if (!launched.ok()) return launched.status();
    auto tracked = std::move(*launched);
    {
      const std::lock_guard lock(tracked->join_mutex);
      tracked->started = true;
      tracked->thread = std::thread([this, raw = tracked.get()] {
        const auto result = raw->child.supervise(raw->options);
        finished(*raw, result);
      });
    }
    return std::unique_ptr<sdk::ChildProcess>(std::make_unique<StartedChild>(*this, std::move(tracked)));
  } catch (const std::exception& e) {
    return sdk::Status::internal(std::string("child process: ") + e.what());
  }
}

void ProcessService::end_matching(const Owner* owner) noexcept {
  try {
    auto matches = [owner](const Tracked& t) {
      return owner == nullptr || (t.owner.plugin == owner->plugin && t.owner.generation == owner->generation);
    };
    std::vector<std::shared_ptr<Tracked>> ending;
    {
      const std::lock_guard lock(mutex_);
      for (const auto& [id, tracked] : children_) {
        if (matches(*tracked)) ending.push_back(tracked);
      }
    }
    for (const auto& tracked : ending)
      tracked->child.request_stop();
    for (const auto& tracked : ending) {
      if (!tracked->started) continue;
      tracked->join();
      forget(*tracked);
    }
    // Children supervised by callers (run()) leave the table when their caller's loop returns, which the
    // kill grace bounds; a caller stuck in its own callback is not waited for past that. A child whose
    // launch was under way when the table was read joins it later: it is stopped when it appears.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(2 * config_.kill_grace_ms) + std::chrono::seconds(5);
    std::set<const Tracked*> stopped;
    for (const auto& tracked : ending)
      stopped.insert(tracked.get());
    std::unique_lock lock(mutex_);
    bool gone = false;
    while (!gone && std::chrono::steady_clock::now() < deadline) {
      std::vector<std::shared_ptr<Tracked>> late;
      gone = true;
      for (const auto& [id, tracked] : children_) {
        if (!matches(*tracked)) continue;
        gone = false;
        if (stopped.insert(tracked.get()).second) late.push_back(tracked);
      }
      if (gone) break;
      lock.unlock();
      for (const auto& tracked : late)
        tracked->child.request_stop();
      for (const auto& tracked : late) {
        if (!tracked->started) continue;
        tracked->join();
        forget(*tracked);
      }
      lock.lock();
      changed_.wait_for(lock, std::chrono::milliseconds(50));
    }
    if (!gone)
      core::logger("processes")->error("child processes still supervised after their group was killed");
  } catch (...) {  // a destructor path: never throw
  }
}

void ProcessService::end_children_of(const Owner& owner) noexcept {
  end_matching(&owner);
}

void ProcessService::shutdown() noexcept {
  {
    const std::lock_guard lock(mutex_);
    shut_down_ = true;
  }
  end_matching(nullptr);
}

namespace {

class UnavailableProcessRunner final : public sdk::ProcessRunner {
 public:
  sdk::Result<sdk::ProcessResult> run(const sdk::ProcessSpec&, sdk::CancelToken) noexcept override {
    return refusal();
  }
  sdk::Result<std::unique_ptr<sdk::ChildProcess>> start(const sdk::ProcessSpec&) noexcept override {
    return refusal();
  }

 private:
  static sdk::Status refusal() { return sdk::Status::unavailable("this host runs no child processes"); }
};

}  // namespace

sdk::ProcessRunner& unavailable_process_runner() noexcept {
  static UnavailableProcessRunner runner;
  return runner;
}

std::size_t ProcessService::running() const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(std::count_if(children_.begin(), children_.end(), [](const auto& entry) {
    const std::lock_guard result_lock(entry.second->mutex);
    return !entry.second->result.has_value();
  }));
}

}  // namespace samokoder::processes
