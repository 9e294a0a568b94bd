#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <samokoder/preview_common/runner.hpp>

#include "detect.hpp"
#include "log_ring.hpp"
#include "probe.hpp"

namespace samokoder::preview_common {
namespace {

using namespace std::chrono_literals;
using internal::LogRing;
using internal::Plan;
using TimePoint = std::chrono::steady_clock::time_point;

// Where one preview is. kPending: nothing runs and the next tick decides what to start (the next
// install step, or the app); kRestarting: waiting for the app it terminated (files changed) to end.
enum class Phase { kPending, kInstalling, kProbing, kRunning, kBackoff, kRestarting, kFailed, kStopped };

constexpr std::size_t kTailLines = 20;
// The kernel keeps the captured output of every child in memory as well; the engine reads every line
// through on_line into its own ring, so the capture only needs to be small.
constexpr std::size_t kCaptureBytes = 16 * 1024;
constexpr std::chrono::milliseconds kProbeTimeout = 500ms;
// How long shutdown waits for the children it terminated (the kernel's kill grace is 5 s by default).
constexpr std::chrono::milliseconds kShutdownWait = 15s;

struct Child {
  std::shared_ptr<sdk::ChildProcess> process;
  std::function<void()> cleanup;
  bool app = false;
  sdk::PreviewEndpoint endpoint;
};

struct Preview {
  sdk::PreviewSpec spec;
  Plan plan;
  std::shared_ptr<LogRing> log;
  Phase phase = Phase::kPending;
  std::string detail;
  std::optional<Child> child;
  std::size_t install_step = 0;
  bool stamp_due = false;  // the install finished; write its stamp before the app starts
  TimePoint started{};
  TimePoint deadline{};  // of the readiness probe, or of the crash backoff
  std::uint32_t restarts = 0;
  std::deque<TimePoint> crashes;  // within restart_window
  bool ever_running = false;
  bool restart_pending = false;  // files changed: restart the app at the next tick
  bool redetect = false;         // the next launch reads the workspace again
  bool force_install = false;    // ... and re-runs the install (a manifest changed)
  bool stopping = false;         // stopped or replaced: only reaping its child is left
  bool arming = false;
  sdk::PreviewEndpoint endpoint;
  std::optional<sdk::Scheduler::TimerId> timer;
  // The preview this one replaced: its app must be gone before this one's binds the same port.
  std::shared_ptr<Preview> predecessor;
};

std::string describe(const sdk::ProcessResult& result) {
  if (result.timed_out) return "ran out of time";
  if (result.cancelled) return "was terminated";
  if (result.signal) return "was killed by signal " + std::to_string(*result.signal);
  if (result.exit_code) return "exited with code " + std::to_string(*result.exit_code);
  return "ended";
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv)
    out += (out.empty() ? "" : " ") + arg;
  return out;
}

std::string endpoint_text(const sdk::PreviewEndpoint& endpoint) {
  if (!endpoint.socket_path.empty()) return "unix:" + endpoint.socket_path;
  return "127.0.0.1:" + std::to_string(endpoint.port);
}

bool is_manifest(const std::string& path) {
  return path == "package.json" || path == "package-lock.json" || path == "requirements.txt";
}

class PlainContainment final : public Containment {
 public:
  sdk::Status check_machine() override { return {}; }
  sdk::Result<Launch> contain(const sdk::ProcessSpec& child, std::string_view /*project_id*/,
                              std::uint16_t port, Step step) override {
    Launch launch;
    launch.spec = child;
    if (step == Step::kApp) {
      if (port == 0)
        return sdk::Status::invalid_argument("the process runner needs the port the kernel allocated");
      launch.endpoint.port = port;
    }
    return launch;
  }
};

}  // namespace

std::unique_ptr<Containment> make_plain_containment() {
  return std::make_unique<PlainContainment>();
}

class EngineRunner::Engine {
 public:
  sdk::HostServices* host = nullptr;
  RunnerOptions options;
  std::unique_ptr<Containment> containment;

  sdk::Result<sdk::PreviewStatus> start(const sdk::PreviewSpec& spec);
  sdk::Status stop(std::string_view project_id);
  sdk::Result<sdk::PreviewStatus> status(std::string_view project_id);
  sdk::Result<sdk::PreviewLog> logs(std::string_view project_id, std::uint64_t after, std::size_t max_bytes);
  sdk::Status files_changed(std::string_view project_id, const std::vector<std::string>& paths);
  void shutdown() noexcept;

 private:
  enum class Action { kNone, kRedetect, kInstall, kLaunch, kProbe };

  void tick(const std::shared_ptr<Preview>& p);
  void reap(const std::shared_ptr<Preview>& p);
  void child_ended(Preview& p, const Child& child, const sdk::ProcessResult& result);  // under mutex_
  void redetect(const std::shared_ptr<Preview>& p);
  void start_child(const std::shared_ptr<Preview>& p, bool app);
  void probe(const std::shared_ptr<Preview>& p, const sdk::PreviewEndpoint& endpoint,
             const std::shared_ptr<sdk::ChildProcess>& process);
  sdk::Status arm(const std::shared_ptr<Preview>& p);
  void disarm(const std::shared_ptr<Preview>& p);
  // Takes `p` out of service: it stops answering for its project and its child is terminated.
  // Returns the child to terminate outside the lock. Under mutex_.
  std::shared_ptr<sdk::ChildProcess> retire(const std::shared_ptr<Preview>& p);
  void fail(Preview& p, const std::string& reason);  // under mutex_
  // Turns a pending files_changed restart into one under way; returns the app to terminate outside the
  // lock. Under mutex_.
  std::shared_ptr<sdk::ChildProcess> begin_restart(Preview& p);
  void set_phase(Preview& p, Phase phase);              // under mutex_
  sdk::PreviewStatus snapshot(const Preview& p) const;  // under mutex_
  void publish();
  void count_restart(std::string_view reason);  // "crash" or "files_changed"
  void count_install_failure();

  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Preview>, std::less<>> previews_;
  std::vector<std::shared_ptr<Preview>> retiring_;  // stopped or replaced, their child not yet reaped
  bool shut_ = false;
  bool dirty_ = true;  // a phase changed since the gauges were last published
};

void EngineRunner::Engine::set_phase(Preview& p, Phase phase) {
  if (p.phase != phase) dirty_ = true;
  p.phase = phase;
}

void EngineRunner::Engine::fail(Preview& p, const std::string& reason) {
  set_phase(p, Phase::kFailed);
  p.restart_pending = false;
  const std::string tail = p.log->tail(kTailLines);
  p.detail = reason;
  if (!tail.empty()) p.detail += "\nlast log lines:\n" + tail;
  p.log->append_line("[preview] failed: " + reason);
}

std::shared_ptr<sdk::ChildProcess> EngineRunner::Engine::begin_restart(Preview& p) {
  p.restart_pending = false;
  p.redetect = true;
  p.restarts += 1;
  count_restart("files_changed");
  if (p.phase == Phase::kFailed || p.phase == Phase::kStopped) p.crashes.clear();
  p.log->append_line("[preview] files changed: restarting the app");
  p.detail = "restarting after files changed";
  if (!p.child) {
    set_phase(p, Phase::kPending);
    return nullptr;
  }
  set_phase(p, Phase::kRestarting);
  return p.child->process;
}

void EngineRunner::Engine::count_restart(std::string_view reason) {
  const std::array<sdk::MetricLabel, 1> labels = {sdk::MetricLabel{"reason", reason}};
  host->counter_add("restarts_total", labels, 1);
}

void EngineRunner::Engine::count_install_failure() {
  host->counter_add("install_failures_total", {}, 1);
}

void EngineRunner::Engine::publish() {
  std::array<double, 4> counts{};  // starting, running, failed, stopped
  {
    std::lock_guard lock(mutex_);
    if (!dirty_) return;
    dirty_ = false;
    for (const auto& [id, p] : previews_) {
      switch (p->phase) {
        case Phase::kRunning:
          counts[1] += 1;
          break;
        case Phase::kFailed:
          counts[2] += 1;
          break;
        case Phase::kStopped:
          counts[3] += 1;
          break;
        default:
          counts[0] += 1;
          break;
      }
    }
  }
  static constexpr std::array<std::string_view, 4> kStates = {"starting", "running", "failed", "stopped"};
  for (std::size_t i = 0; i < kStates.size(); ++i) {
    const std::array<sdk::MetricLabel, 1> labels = {sdk::MetricLabel{"state", kStates[i]}};
    host->gauge_set("previews", labels, counts[i]);
  }
}

sdk::PreviewStatus EngineRunner::Engine::snapshot(const Preview& p) const {
  sdk::PreviewStatus out;
  switch (p.phase) {
    case Phase::kRunning:
      out.state = sdk::PreviewState::kRunning;
      break;
    case Phase::kFailed:
      out.state = sdk::PreviewState::kFailed;
      break;
    case Phase::kStopped:
      out.state = sdk::PreviewState::kStopped;
      break;
    default:
      out.state = sdk::PreviewState::kStarting;
      break;
  }
  if (p.phase == Phase::kRunning) out.endpoint = p.endpoint;
  out.detail = p.detail;
  if (p.child && p.child->app) out.pid = p.child->process->pid();
  out.restarts = p.restarts;
  return out;
}

sdk::Status EngineRunner::Engine::arm(const std::shared_ptr<Preview>& p) {
  {
    std::lock_guard lock(mutex_);
    if (p->timer || p->arming) return {};
    p->arming = true;
  }
  auto id = host->scheduler().run_every(options.probe_interval,
                                        [this, weak = std::weak_ptr<Preview>(p)](const sdk::CancelToken&) {
                                          if (auto strong = weak.lock()) tick(strong);
                                        });
  std::lock_guard lock(mutex_);
  p->arming = false;
  if (!id.ok()) return id.status();
  p->timer = *id;
  return {};
}

void EngineRunner::Engine::disarm(const std::shared_ptr<Preview>& p) {
  std::optional<sdk::Scheduler::TimerId> id;
  {
    std::lock_guard lock(mutex_);
    id = std::exchange(p->timer, std::nullopt);
  }
  if (id) host->scheduler().cancel_timer(*id);
}

std::shared_ptr<sdk::ChildProcess> EngineRunner::Engine::retire(const std::shared_ptr<Preview>& p) {
  p->stopping = true;
  p->predecessor.reset();
  dirty_ = true;
  if (!p->child) return nullptr;
  retiring_.push_back(p);
  return p->child->process;
}

sdk::Result<sdk::PreviewStatus> EngineRunner::Engine::start(const sdk::PreviewSpec& spec) {
  if (!containment) return sdk::Status::failed_precondition("the preview runner is not initialised");
  if (spec.project_id.empty()) return sdk::Status::invalid_argument("the preview spec has no project id");
  const std::filesystem::path workspace(spec.workspace_dir);
  std::error_code ec;
  if (!workspace.is_absolute() || !std::filesystem::is_directory(workspace, ec))
    return sdk::Status::invalid_argument("the workspace `" + spec.workspace_dir +
                                         "` is not an absolute path of a directory");
  auto plan = internal::detect(spec, options, false);
  if (!plan.ok()) return plan.status();

  auto p = std::make_shared<Preview>();
  p->spec = spec;
  p->plan = std::move(*plan);
  p->log = std::make_shared<LogRing>(options.log_buffer_bytes);
  p->started = host->monotonic_now();
  p->detail = p->plan.install.empty() ? "starting " + p->plan.description
                                      : "installing dependencies for " + p->plan.description;
  p->log->append_line("[preview] " + p->detail);

  std::shared_ptr<sdk::ChildProcess> replaced;
  std::shared_ptr<Preview> old;
  {
    std::lock_guard lock(mutex_);
    if (shut_) return sdk::Status::failed_precondition("the preview runner is shutting down");
    auto it = previews_.find(spec.project_id);
    if (it != previews_.end()) {
      old = it->second;
      replaced = retire(old);
      if (replaced) p->predecessor = old;
      it->second = p;
    } else {
      previews_.emplace(spec.project_id, p);
    }
    dirty_ = true;
  }
  if (replaced) replaced->terminate();
  if (old && !replaced) disarm(old);
  if (auto armed = arm(p); !armed.ok()) {
    {
      std::lock_guard lock(mutex_);
      auto it = previews_.find(spec.project_id);
      if (it != previews_.end() && it->second == p) previews_.erase(it);
    }
    return sdk::Status::resource_exhausted("cannot schedule the preview's work: " + armed.to_string());
  }
  publish();
  std::lock_guard lock(mutex_);
  return snapshot(*p);
}

sdk::Status EngineRunner::Engine::stop(std::string_view project_id) {
  std::shared_ptr<Preview> p;
  std::shared_ptr<sdk::ChildProcess> process;
  {
    std::lock_guard lock(mutex_);
    auto it = previews_.find(project_id);
    if (it == previews_.end()) return {};
    p = it->second;
    previews_.erase(it);
    process = retire(p);
  }
  if (process) {
    process->terminate();
    // Its timer reaps it; a preview without one (failed earlier) gets one back for that.
    if (!arm(p).ok())
      host->log(sdk::LogLevel::kWarn, "cannot schedule reaping a stopped preview; shutdown will");
  } else {
    disarm(p);
  }
  publish();
  return {};
}

sdk::Result<sdk::PreviewStatus> EngineRunner::Engine::status(std::string_view project_id) {
  std::lock_guard lock(mutex_);
  auto it = previews_.find(project_id);
  if (it == previews_.end())
    return sdk::Status::not_found("no preview of project " + std::string(project_id) + " in this runner");
  return snapshot(*it->second);
}

sdk::Result<sdk::PreviewLog> EngineRunner::Engine::logs(std::string_view project_id, std::uint64_t after,
                                                        std::size_t max_bytes) {
  std::shared_ptr<LogRing> log;
  {
    std::lock_guard lock(mutex_);
    auto it = previews_.find(project_id);
    if (it == previews_.end())
      return sdk::Status::not_found("no preview of project " + std::string(project_id) + " in this runner");
    log = it->second->log;
  }
  return log->read(after, max_bytes);
}

sdk::Status EngineRunner::Engine::files_changed(std::string_view project_id,
                                                const std::vector<std::string>& paths) {
  std::shared_ptr<Preview> p;
  std::shared_ptr<sdk::ChildProcess> terminate;
  {
    std::lock_guard lock(mutex_);
    auto it = previews_.find(project_id);
    if (it == previews_.end()) return {};
    p = it->second;
    const bool manifest = std::any_of(paths.begin(), paths.end(), is_manifest);
    const bool idle = p->phase == Phase::kFailed || p->phase == Phase::kStopped;
    // A dev server reloads the code itself, but installs nothing: a changed manifest still restarts.
    if (p->plan.reloads_itself && !manifest && !idle) return {};
    p->restart_pending = true;  // coalesces: one restart however many calls arrive before it
    p->force_install = p->force_install || manifest;
    // Nothing serves the old files any more: say `starting` from now on, not only from the next tick.
    if (idle) terminate = begin_restart(*p);
  }
  if (terminate) terminate->terminate();
  auto armed = arm(p);
  publish();
  return armed;
}

void EngineRunner::Engine::tick(const std::shared_ptr<Preview>& p) {
  reap(p);
  Action action = Action::kNone;
  std::shared_ptr<sdk::ChildProcess> terminate;
  std::shared_ptr<sdk::ChildProcess> probed;
  sdk::PreviewEndpoint endpoint;
  // Taken under the lock with the decision to stop ticking, so a files_changed() arriving just after it
  // finds no timer and arms a new one rather than trusting this one.
  std::optional<sdk::Scheduler::TimerId> cancel;
  {
    std::lock_guard lock(mutex_);
    const auto now = host->monotonic_now();
    if (p->stopping) {
      if (!p->child) {
        retiring_.erase(std::remove(retiring_.begin(), retiring_.end(), p), retiring_.end());
        cancel = std::exchange(p->timer, std::nullopt);
      }
    } else {
      if (p->restart_pending && p->phase != Phase::kPending && p->phase != Phase::kInstalling &&
          p->phase != Phase::kRestarting)
        terminate = begin_restart(*p);
      switch (p->phase) {
        case Phase::kPending:
          if (p->predecessor && p->predecessor->child) break;  // its app still holds the port
          p->predecessor.reset();
          if (p->redetect) {
            action = Action::kRedetect;
          } else {
            action = p->install_step < p->plan.install.size() ? Action::kInstall : Action::kLaunch;
          }
          break;
        case Phase::kProbing:
          if (!p->child) break;
          if (now >= p->deadline) {
            fail(*p, "the app did not answer HTTP on " + endpoint_text(p->child->endpoint) + " within " +
                         std::to_string(options.ready_timeout.count()) + " ms");
            terminate = p->child->process;
          } else {
            action = Action::kProbe;
            endpoint = p->child->endpoint;
            probed = p->child->process;
          }
          break;
        case Phase::kBackoff:
          if (now >= p->deadline) action = Action::kLaunch;
          break;
        case Phase::kFailed:
        case Phase::kStopped:
          if (!p->child && !p->restart_pending) cancel = std::exchange(p->timer, std::nullopt);
          break;
        default:
          break;
      }
    }
  }
  if (terminate) terminate->terminate();
  switch (action) {
    case Action::kRedetect:
      redetect(p);
      break;
    case Action::kInstall:
      start_child(p, false);
      break;
    case Action::kLaunch:
      start_child(p, true);
      break;
    case Action::kProbe:
      probe(p, endpoint, probed);
      break;
    case Action::kNone:
      break;
  }
  if (cancel) host->scheduler().cancel_timer(*cancel);
  publish();
}

void EngineRunner::Engine::reap(const std::shared_ptr<Preview>& p) {
  std::shared_ptr<sdk::ChildProcess> process;
  {
    std::lock_guard lock(mutex_);
    if (p->child) process = p->child->process;
  }
  if (!process) return;
  const auto result = process->wait_for(0ms);
  if (!result) return;
  std::optional<Child> ended;
  {
    std::lock_guard lock(mutex_);
    if (p->child && p->child->process == process) ended = std::exchange(p->child, std::nullopt);
  }
  if (!ended) return;
  if (ended->cleanup) ended->cleanup();
  std::lock_guard lock(mutex_);
  child_ended(*p, *ended, *result);
}

void EngineRunner::Engine::child_ended(Preview& p, const Child& child, const sdk::ProcessResult& result) {
  if (p.stopping) return;
  const auto now = host->monotonic_now();
  switch (p.phase) {
    case Phase::kInstalling: {
      const std::string step = joined(p.plan.install[p.install_step]);
      if (!result.succeeded()) {
        count_install_failure();
        fail(p, "installing dependencies failed: `" + step + "` " +
                    (result.timed_out
                         ? "took longer than " + std::to_string(options.install_timeout.count()) + " ms"
                         : describe(result)));
        return;
      }
      p.log->append_line("[preview] done: " + step);
      p.install_step += 1;
      if (p.install_step == p.plan.install.size()) p.stamp_due = true;
      set_phase(p, Phase::kPending);
      return;
    }
    case Phase::kRestarting:
      set_phase(p, Phase::kPending);
      return;
    case Phase::kProbing:
    case Phase::kRunning:
      break;
    default:
      return;  // kFailed: the app that missed its readiness deadline, terminated on purpose
  }
  if (!child.app) return;
  if (result.timed_out) {
    set_phase(p, Phase::kStopped);
    p.detail = "the preview's time to live (" + std::to_string(p.spec.ttl.count()) + " s) passed";
    p.log->append_line("[preview] " + p.detail);
    return;
  }
  if (!p.ever_running) {
    fail(p, "the app " + describe(result) + " before it answered HTTP");
    return;
  }
  while (!p.crashes.empty() && now - p.crashes.front() > options.restart_window)
    p.crashes.pop_front();
  if (p.crashes.size() >= options.max_restarts) {
    fail(p, "the app " + describe(result) + " and was restarted " + std::to_string(p.crashes.size()) +
                " times within " + std::to_string(options.restart_window.count() / 1000) + " s; giving up");
    return;
  }
  p.crashes.push_back(now);
  p.restarts += 1;
  count_restart("crash");
  auto backoff = options.restart_backoff;
  for (std::size_t i = 1; i < p.crashes.size() && backoff < options.restart_backoff_max; ++i)
    backoff *= 2;
  backoff = std::min(backoff, options.restart_backoff_max);
  set_phase(p, Phase::kBackoff);
  p.deadline = now + backoff;
  p.detail = "the app " + describe(result) + "; restarting in " + std::to_string(backoff.count()) + " ms";
  p.log->append_line("[preview] " + p.detail);
}

void EngineRunner::Engine::redetect(const std::shared_ptr<Preview>& p) {
  sdk::PreviewSpec spec;
  bool force = false;
  {
    std::lock_guard lock(mutex_);
    spec = p->spec;
    force = p->force_install;
  }
  auto plan = internal::detect(spec, options, force);
  std::lock_guard lock(mutex_);
  if (p->stopping || p->phase != Phase::kPending) return;
  p->redetect = false;
  p->force_install = false;
  if (!plan.ok()) {
    fail(*p, "cannot run the workspace any more: " + plan.status().message());
    return;
  }
  p->plan = std::move(*plan);
  p->install_step = 0;
  p->stamp_due = false;
  p->detail = p->plan.install.empty() ? "starting " + p->plan.description
                                      : "installing dependencies for " + p->plan.description;
}

void EngineRunner::Engine::start_child(const std::shared_ptr<Preview>& p, bool app) {
  sdk::ProcessSpec spec;
  Plan plan;
  bool stamp_due = false;
  {
    std::lock_guard lock(mutex_);
    if (p->stopping) return;
    plan = p->plan;
    stamp_due = std::exchange(p->stamp_due, false);
    spec.working_directory = p->spec.workspace_dir;
    spec.limits = options.limits;
    spec.output_limit_bytes = kCaptureBytes;
    spec.on_line = [log = p->log](sdk::OutputStream, std::string_view line) { log->append_line(line); };
    if (app) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          p->started + std::chrono::duration_cast<std::chrono::milliseconds>(p->spec.ttl) -
          host->monotonic_now());
      if (left <= 0ms) {
        set_phase(*p, Phase::kStopped);
        p->detail = "the preview's time to live (" + std::to_string(p->spec.ttl.count()) + " s) passed";
        return;
      }
      spec.argv = plan.app;
      spec.timeout = left;
    } else {
      spec.argv = plan.install[p->install_step];
      spec.timeout = options.install_timeout;
    }
  }
  spec.environment = plan.environment;
  if (stamp_due && !internal::write_stamp(plan))
    host->log(sdk::LogLevel::kWarn, "cannot write the install stamp " + plan.stamp_path);

  const std::string what = joined(spec.argv);
  auto launch =
      containment->contain(spec, p->spec.project_id, p->spec.port, app ? Step::kApp : Step::kInstall);
  sdk::Result<std::unique_ptr<sdk::ChildProcess>> started =
      launch.ok() ? host->processes().start(launch->spec)
                  : sdk::Result<std::unique_ptr<sdk::ChildProcess>>(launch.status());
  if (!started.ok()) {
    if (launch.ok() && launch->cleanup) launch->cleanup();
    std::lock_guard lock(mutex_);
    if (!app) count_install_failure();
    if (!p->stopping) fail(*p, "cannot start `" + what + "`: " + started.status().to_string());
    return;
  }
  Child child{std::shared_ptr<sdk::ChildProcess>(std::move(*started)), std::move(launch->cleanup), app,
              launch->endpoint};
  std::shared_ptr<sdk::ChildProcess> orphan;
  {
    std::lock_guard lock(mutex_);
    p->log->append_line("[preview] " + std::string(app ? "starting: " : "installing: ") + what);
    if (p->stopping) orphan = child.process;  // stopped while it was starting: the reaper takes it
    if (!p->stopping) {
      if (app) {
        set_phase(*p, Phase::kProbing);
        p->deadline = host->monotonic_now() + options.ready_timeout;
        p->detail = "waiting for " + plan.description + " to answer on " + endpoint_text(child.endpoint);
      } else {
        set_phase(*p, Phase::kInstalling);
        p->detail = "installing: " + what;
      }
    }
    p->child = std::move(child);
  }
  if (orphan) orphan->terminate();
}

void EngineRunner::Engine::probe(const std::shared_ptr<Preview>& p, const sdk::PreviewEndpoint& endpoint,
                                 const std::shared_ptr<sdk::ChildProcess>& process) {
  if (!internal::http_answers(endpoint, kProbeTimeout)) return;
  std::lock_guard lock(mutex_);
  if (p->stopping || p->phase != Phase::kProbing || !p->child || p->child->process != process) return;
  set_phase(*p, Phase::kRunning);
  p->endpoint = endpoint;
  p->ever_running = true;
  p->detail = "running " + p->plan.description + " on " + endpoint_text(endpoint);
  p->log->append_line("[preview] answering on " + endpoint_text(endpoint));
}

void EngineRunner::Engine::shutdown() noexcept {
  std::vector<std::shared_ptr<Preview>> all;
  {
    std::lock_guard lock(mutex_);
    shut_ = true;
    for (auto& [id, p] : previews_)
      all.push_back(p);
    all.insert(all.end(), retiring_.begin(), retiring_.end());
    previews_.clear();
    retiring_.clear();
  }
  std::vector<Child> children;
  for (const auto& p : all) {
    disarm(p);
    std::lock_guard lock(mutex_);
    p->stopping = true;
    p->predecessor.reset();
    if (p->child) children.push_back(std::move(*std::exchange(p->child, std::nullopt)));
  }
  for (auto& child : children)
    child.process->terminate();
  const auto deadline = std::chrono::steady_clock::now() + kShutdownWait;
  for (auto& child : children) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (child.process->wait_for(std::max(left, 0ms)) && child.cleanup) child.cleanup();
  }
  children.clear();
  if (host != nullptr) {
    dirty_ = true;
    publish();
  }
}

EngineRunner::EngineRunner() : engine_(std::make_unique<Engine>()) {}
EngineRunner::~EngineRunner() = default;

sdk::Status EngineRunner::init(sdk::HostServices& host) {
  engine_->host = &host;
  auto options = parse_runner_options(host.config(), containment_config_keys());
  if (!options.ok()) return options.status();
  engine_->options = std::move(*options);
  auto containment = make_containment(host, host.config());
  if (!containment.ok()) return containment.status();
  if (!*containment) return sdk::Status::internal("make_containment returned no containment");
  SAMOKODER_RETURN_IF_ERROR((*containment)->check_machine());
  engine_->containment = std::move(*containment);
  return {};
}

void EngineRunner::shutdown() noexcept {
  engine_->shutdown();
}

sdk::Result<sdk::PreviewStatus> EngineRunner::start(const sdk::PreviewSpec& spec) {
  return engine_->start(spec);
}

sdk::Status EngineRunner::stop(std::string_view project_id) {
  return engine_->stop(project_id);
}

sdk::Result<sdk::PreviewStatus> EngineRunner::status(std::string_view project_id) {
  return engine_->status(project_id);
}

sdk::Result<sdk::PreviewLog> EngineRunner::logs(std::string_view project_id, std::uint64_t after,
                                                std::size_t max_bytes) {
  return engine_->logs(project_id, after, max_bytes);
}

sdk::Status EngineRunner::files_changed(std::string_view project_id, const std::vector<std::string>& paths) {
  return engine_->files_changed(project_id, paths);
}

sdk::Result<sdk::ContainedCommand> EngineRunner::contain_command(const sdk::ProcessSpec& command,
                                                                 std::string_view project_id) {
  if (!engine_->containment) return sdk::Status::failed_precondition("the preview runner is not initialised");
  auto launch = engine_->containment->contain(command, project_id, 0, Step::kInstall);
  if (!launch.ok()) return launch.status();
  return sdk::ContainedCommand{std::move(launch->spec), std::move(launch->cleanup)};
}

}  // namespace samokoder::preview_common
