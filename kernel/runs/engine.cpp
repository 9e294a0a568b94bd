#include "runs/engine.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include <samokoder/sdk/storage.hpp>

#include "api/workspace.hpp"
#include "core/logging.hpp"
#include "runs/run_record.hpp"
#include "runs/step_context.hpp"

namespace samokoder::runs {

namespace {

// What a finished run says it did: the state's own "summary" when the pipeline wrote one (the tech
// lead's account of the app), else the last step's one-liner.
std::string final_summary(const nlohmann::json& state, const std::string& last_step) {
  const auto it = state.find("summary");
  return it != state.end() && it->is_string() && !it->get<std::string>().empty() ? it->get<std::string>()
                                                                                 : last_step;
}

using Clock = std::chrono::system_clock;
constexpr std::uint32_t kScanBatch = 500;
// A budget.warning event goes out once a run has used this share of a limit.
constexpr double kWarnShare = 0.8;
// A transaction the backend could not serialise against another (kAborted) is run again this many
// times in all, after a short random wait that grows with each attempt.
constexpr int kTransactionAttempts = 8;
constexpr std::chrono::milliseconds kRetryWait{10};

std::uint64_t state_hash(const nlohmann::json& state) {
  // FNV-1a over the canonical dump (object keys are sorted): equal states hash equal.
  const std::string text = state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::uint64_t hash = 1469598103934665603ULL;
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::string hex64(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

// A fixed set of threads running jobs in order of submission.
class JobPool {
 public:
  explicit JobPool(std::size_t threads) {
    for (std::size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this] { work(); });
  }
  ~JobPool() { stop(); }
  JobPool(const JobPool&) = delete;
  JobPool& operator=(const JobPool&) = delete;

  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }
  // Runs what is queued, then joins.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// What a step (or one fan-out branch) came to.
struct StepOutcome {
  enum class Kind { kProposed, kPaused, kFailed, kCancelled } kind = Kind::kFailed;
  std::string agent_id;
  nlohmann::json next_state;
  std::string summary;
  std::map<std::string, std::optional<std::string>> changes;
  std::vector<StepContext::Emitted> emitted;
  std::string question_id;  // kPaused
  std::string error;        // kFailed
};

}  // namespace

bool is_terminal_state(std::string_view state) noexcept {
  return state == kSucceeded || state == kFailed || state == kCancelled;
}

// One run this node works on. The driver touches the step fields from one job at a time; the lease
// keeper touches only the atomics and lease_until (under the engine's mutex).
struct ActiveRun {
  std::string run_id;
  std::string owner_id;
  std::string project_id;
  std::map<std::string, std::string> models;
  config::RunLimitsConfig limits;
  std::optional<Clock::time_point> started_at;
  sdk::CancelSource cancel;
  std::atomic<bool> lost{false};  // another node holds the lease now, or the engine stops
  Clock::time_point lease_until;
  Clock::time_point checked_at;

  sdk::RunStep current;  // the last committed step
  std::int64_t scanned = 0;
  RunRecord record;
  std::map<std::uint64_t, std::uint32_t> seen;  // state hash -> commits that reached it
  std::vector<sdk::RunEvent> messages;          // not yet folded into the state
  std::optional<std::string> loop_answer;       // the user's answer to the loop question of `current`
  bool warned_tokens = false;
  bool warned_cost = false;
};

struct RunEngine::Impl {
  Impl(Dependencies d)
      : deps(std::move(d)),
        config(deps.config.runs),
        workspaces(deps.config.workspace_root, deps.workspace_changed),
        hub(
            [this](const std::string& owner, const std::string& run, std::int64_t after,
                   std::uint32_t limit) {
              return storage<sdk::Result<std::vector<sdk::RunEvent>>>(
                  [&](sdk::Stores& s) { return s.runs().list_run_events(owner, run, after, limit); });
            },
            deps.clock, deps.metrics,
            std::chrono::milliseconds(std::max<std::uint32_t>(config.poll_interval_ms, 100))),
        log(core::logger("runs")),
        steps_total(deps.metrics.counter("samokoder_run_steps_total", "Steps committed by this node")),
        active_gauge(deps.metrics.gauge("samokoder_runs_active", "Runs this node works on now")) {
    for (const char* outcome : {"succeeded", "failed", "cancelled", "paused"}) {
      finished[outcome] =
          &deps.metrics.counter("samokoder_runs_ended_total",
                                "Runs that ended or paused on this node, by outcome", {{"outcome", outcome}});
    }
  }

  template <typename R, typename F>
  R storage(F&& fn) {
    return deps.plugins.acquire_storage().call<sdk::Storage>([&](sdk::Storage& s) -> R { return fn(s); });
  }
  // A serializable backend (PostgreSQL) fails a transaction it cannot order against a concurrent one
  // with kAborted, rolled back, and leaves running it again to the caller (sdk::Storage::transaction).
  // Runs committing at once on one node or several conflict so routinely; without the retry a step's
  // commit failed its run. Every function given here may run again: it rebuilds what it returns.
  sdk::Status transaction(const std::function<sdk::Status(sdk::Stores&)>& fn) {
    thread_local std::minstd_rand random{std::random_device{}()};
    for (int attempt = 1;; ++attempt) {
      auto status = deps.plugins.acquire_storage().call<sdk::Storage>(
          [&](sdk::Storage& s) { return s.transaction(fn); });
      if (status.code() != sdk::StatusCode::kAborted || attempt == kTransactionAttempts) return status;
      std::uniform_int_distribution<std::int64_t> wait(kRetryWait.count(), kRetryWait.count() * 2 * attempt);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait(random)));
    }
  }
  Clock::time_point now() const { return deps.clock.now(); }
  std::chrono::seconds lease() const { return std::chrono::seconds(config.lease_seconds); }

  // --- the control thread: claiming and lease keeping ---
  void control_loop();
  void claim_some();
  void keep_leases();
  bool active_runs_contains(const std::string& run_id) const {
    std::lock_guard lock(mutex);
    return active.contains(run_id);
  }
  void wake() {
    {
      std::lock_guard lock(mutex);
      woken = true;
    }
    changed.notify_all();
  }

  // --- drivers (on the job pool) ---
  void schedule(const std::shared_ptr<ActiveRun>& run) {
    pool->submit([this, run] { advance(run); });
  }
  sdk::Status load(ActiveRun& run, const sdk::Run& stored);
  sdk::Status scan(ActiveRun& run);
  void take_event(ActiveRun& run, const sdk::RunEvent& event);
  void advance(const std::shared_ptr<ActiveRun>& run);
  std::optional<std::string> guard(ActiveRun& run);
  StepOutcome run_agent(ActiveRun& run, const std::string& agent_id, const nlohmann::json& state,
                        nlohmann::json task, int branch);
  void run_fan_out(const std::shared_ptr<ActiveRun>& run, const nlohmann::json& fan_out);
  sdk::Status commit(ActiveRun& run, std::vector<StepOutcome>& steps);
  void after_commit(const std::shared_ptr<ActiveRun>& run);
  void pause(ActiveRun& run, const std::string& question_id);
  void end(ActiveRun& run, const char* state, const std::string& reason, const char* event,
           nlohmann::json detail, const std::string& expected = kRunning);
  void drop(ActiveRun& run, bool give_lease_up);
  void append_now(ActiveRun& run, const char* type, const nlohmann::json& payload);
  StepServices services() {
    return StepServices{deps.plugins,
                        deps.llm,
                        deps.processes,
                        workspaces,
                        hub,
                        deps.clock,
                        std::chrono::milliseconds(config.command_timeout_ms),
                        config.command_containment,
                        deps.start_preview};
  }

  sdk::Result<nlohmann::json> find_question(const std::string& owner, const sdk::Run& run,
                                            const std::string& question_id, bool* answered);

  Dependencies deps;
  const config::RunsConfig& config;
  api::Workspaces workspaces;
  RunEventHub hub;
  std::shared_ptr<spdlog::logger> log;
  metrics::Counter& steps_total;
  metrics::Gauge& active_gauge;
  std::map<std::string, metrics::Counter*> finished;

  std::unique_ptr<JobPool> pool;
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, std::shared_ptr<ActiveRun>> active;
  bool woken = false;
  bool stopping = false;
  bool started = false;
  std::thread control;
  // Fan-out branches running now, over all runs (bounded by the worker count).
  std::atomic<std::size_t> branches_running{0};
};

// ---------------------------------------------------------------------------------------------------
// Control thread

void RunEngine::Impl::control_loop() {
  std::unique_lock lock(mutex);
  while (!stopping) {
    changed.wait_for(lock, std::chrono::milliseconds(std::min<std::uint32_t>(config.poll_interval_ms, 1000)),
                     [&] { return stopping || woken; });
    if (stopping) break;
    woken = false;
    lock.unlock();
    claim_some();
    keep_leases();
    lock.lock();
  }
}

void RunEngine::Impl::claim_some() {
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (stopping || active.size() >= config.workers) return;
    }
    sdk::RunClaim claim;
    claim.node_id = deps.node_id;
    claim.states = {kQueued, kRunning};
    claim.lease_until = now() + lease();
    auto claimed = storage<sdk::Result<std::optional<sdk::Run>>>(
        [&](sdk::Stores& s) { return s.runs().claim_run(claim); });
    if (!claimed.ok()) {
      log->warn("runs: claiming failed: {}", claimed.status().to_string());
      return;
    }
    if (!claimed->has_value()) return;
    const sdk::Run stored = **claimed;
    auto run = std::make_shared<ActiveRun>();
    run->run_id = stored.id;
    run->owner_id = stored.owner_id;
    run->project_id = stored.project_id;
    run->lease_until = claim.lease_until;
    run->checked_at = now();
    run->limits = config.limits;
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        active[run->run_id] = run;
        active_gauge.set(static_cast<double>(active.size()));
      }
    }
    if (!active_runs_contains(run->run_id)) {
      drop(*run, true);  // claimed while the engine began to stop
      return;
    }
    log->info("run {}: claimed by {} (was {})", stored.id, deps.node_id, stored.state);
    // Loading reads the run's whole log: on a worker, so the control thread keeps claiming and renewing.
    pool->submit([this, run, stored] {
      if (run->lost) {
        drop(*run, false);
        return;
      }
      if (auto loaded = load(*run, stored); !loaded.ok()) {
        log->error("run {}: cannot be loaded: {}", stored.id, loaded.to_string());
        end(*run, kFailed, "the run could not be loaded: " + loaded.message(), event_type::kRunFailed, {},
            stored.state);
        return;
      }
      advance(run);
    });
  }
}

void RunEngine::Impl::keep_leases() {
  std::vector<std::shared_ptr<ActiveRun>> runs;
  {
    std::lock_guard lock(mutex);
    for (const auto& [id, run] : active)
      runs.push_back(run);
  }
  const auto t = now();
  for (const auto& run : runs) {
    if (run->lost) continue;
    std::optional<std::string> state;
    if (run->lease_until - t < lease() * 2 / 3) {
      auto renewed = storage<sdk::Result<sdk::Run>>(
          [&](sdk::Stores& s) { return s.runs().renew_run_lease(run->run_id, deps.node_id, t + lease()); });
      if (!renewed.ok()) {
        if (renewed.status().code() == sdk::StatusCode::kFailedPrecondition) {
          // A run that ended or paused since the list was taken gave its lease up itself (drop() takes
          // it off the list before it releases the lease): nothing was lost. Many runs ending at once
          // made this warn about finished runs.
          if (!active_runs_contains(run->run_id)) continue;
          log->warn("run {}: lease lost ({}); stopping work on it", run->run_id, renewed.status().message());
          run->lost = true;
          run->cancel.request_stop();
        }
        continue;
      }
      run->lease_until = t + lease();
      state = renewed->state;
    } else if (t - run->checked_at >= std::chrono::milliseconds(900)) {
      auto got = storage<sdk::Result<sdk::Run>>(
          [&](sdk::Stores& s) { return s.runs().get_run(run->owner_id, run->run_id); });
      if (got.ok()) state = got->state;
    }
    if (state) {
      run->checked_at = t;
      if (*state != kRunning && *state != kQueued) run->cancel.request_stop();
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Loading and scanning a run's log

sdk::Status RunEngine::Impl::load(ActiveRun& run, const sdk::Run& stored) {
  run.started_at = stored.started_at;
  auto latest = storage<sdk::Result<sdk::RunStep>>(
      [&](sdk::Stores& s) { return s.runs().latest_run_step(run.owner_id, run.run_id); });
  if (!latest.ok()) return latest.status();
  run.current = std::move(latest).value();
  run.record.reset(run.current.sequence);
  run.scanned = 0;
  if (auto scanned = scan(run); !scanned.ok()) return scanned;
  if (auto created = workspaces.create(run.project_id); !created.ok()) return created;
  const bool first_start = stored.state == std::string(kQueued) && !stored.started_at;
  sdk::RunUpdate update;
  update.expected_state = stored.state;
  update.state = kRunning;
  if (!stored.started_at) update.started_at = now();
  return transaction([&](sdk::Stores& s) -> sdk::Status {
    if (stored.state != std::string(kRunning)) {
      auto updated = s.runs().update_run(run.owner_id, run.run_id, update);
      if (!updated.ok()) return updated.status();
      run.started_at = updated->started_at;
    }
    auto appended = s.runs().append_run_event(
        run.owner_id, run.run_id, first_start ? event_type::kRunStarted : event_type::kRunResumed,
        {{"node", deps.node_id}, {"step", run.current.sequence}, {"was", stored.state}});
    return appended.status();
  });
}

void RunEngine::Impl::take_event(ActiveRun& run, const sdk::RunEvent& event) {
  run.record.add(event);
  const auto& p = event.payload;
  if (event.type == event_type::kRunCreated) {
    if (const auto it = p.find("models"); it != p.end() && it->is_object()) {
      for (const auto& [role, model] : it->items()) {
        if (model.is_string()) run.models[role] = model.get<std::string>();
      }
    }
    if (const auto it = p.find("limits"); it != p.end() && it->is_object()) {
      run.limits.max_steps = it->value("max_steps", run.limits.max_steps);
      run.limits.max_tokens = it->value("max_tokens", run.limits.max_tokens);
      run.limits.max_cost_micro_usd = it->value("max_cost_micro_usd", run.limits.max_cost_micro_usd);
      run.limits.max_wall_seconds = it->value("max_wall_seconds", run.limits.max_wall_seconds);
    }
  } else if (event.type == event_type::kStepCommitted) {
    if (const auto it = p.find("state_hash"); it != p.end() && it->is_string()) {
      ++run.seen[std::stoull(it->get<std::string>(), nullptr, 16)];
    }
    run.messages.erase(std::remove_if(run.messages.begin(), run.messages.end(),
                                      [&](const sdk::RunEvent& m) {
                                        return m.seq <= p.value("inbox_seq", std::int64_t{0});
                                      }),
                       run.messages.end());
  } else if (event.type == event_type::kMessageReceived) {
    if (event.seq > run.current.state.value("inbox_seq", std::int64_t{0})) run.messages.push_back(event);
  } else if (event.type == event_type::kQuestionAnswered) {
    if (p.value("branch", 0) == -2) {
      const std::string answer = p.value("answer", std::string());
      if (answer == "continue") run.seen.clear();
      if (p.value("base", std::int64_t{-1}) == run.current.sequence) run.loop_answer = answer;
    }
  } else if (event.type == event_type::kBudgetWarning) {
    (p.value("limit", std::string()) == "tokens" ? run.warned_tokens : run.warned_cost) = true;
  }
}

sdk::Status RunEngine::Impl::scan(ActiveRun& run) {
  for (;;) {
    auto events = storage<sdk::Result<std::vector<sdk::RunEvent>>>([&](sdk::Stores& s) {
      return s.runs().list_run_events(run.owner_id, run.run_id, run.scanned, kScanBatch);
    });
    if (!events.ok()) return events.status();
    for (const auto& event : *events)
      take_event(run, event);
    if (!events->empty()) run.scanned = events->back().seq;
    if (events->size() < kScanBatch) return {};
  }
}

void RunEngine::Impl::append_now(ActiveRun& run, const char* type, const nlohmann::json& payload) {
  auto appended = storage<sdk::Result<sdk::RunEvent>>(
      [&](sdk::Stores& s) { return s.runs().append_run_event(run.owner_id, run.run_id, type, payload); });
  if (!appended.ok()) {
    log->warn("run {}: event {} not stored: {}", run.run_id, type, appended.status().to_string());
    return;
  }
  hub.committed(run.run_id);
}

// ---------------------------------------------------------------------------------------------------
// Advancing a run

std::optional<std::string> RunEngine::Impl::guard(ActiveRun& run) {
  const auto& limits = run.limits;
  if (run.current.sequence >= static_cast<std::int64_t>(limits.max_steps))
    return "the run reached its limit of " + std::to_string(limits.max_steps) + " steps";
  if (limits.max_wall_seconds > 0 && run.started_at &&
      now() - *run.started_at > std::chrono::seconds(limits.max_wall_seconds))
    return "the run exceeded its wall-clock limit of " + std::to_string(limits.max_wall_seconds) + " s";
  if (limits.max_tokens == 0 && limits.max_cost_micro_usd == 0) return std::nullopt;
  auto used = storage<sdk::Result<sdk::UsageSum>>(
      [&](sdk::Stores& s) { return s.llm_requests().usage_of_run(run.run_id); });
  if (!used.ok()) return "the run's usage cannot be read: " + used.status().message();
  const auto tokens = static_cast<std::uint64_t>(used->prompt_tokens + used->completion_tokens);
  if (limits.max_tokens > 0) {
    if (tokens >= limits.max_tokens)
      return "the run used " + std::to_string(tokens) + " tokens, its limit is " +
             std::to_string(limits.max_tokens);
    if (!run.warned_tokens &&
        static_cast<double>(tokens) >= kWarnShare * static_cast<double>(limits.max_tokens)) {
      run.warned_tokens = true;
      append_now(run, event_type::kBudgetWarning,
                 {{"limit", "tokens"}, {"used", tokens}, {"max", limits.max_tokens}});
    }
  }
  if (limits.max_cost_micro_usd > 0) {
    if (used->cost_micro_usd >= limits.max_cost_micro_usd)
      return "the run cost " + std::to_string(used->cost_micro_usd) + " micro-USD, its limit is " +
             std::to_string(limits.max_cost_micro_usd);
    if (!run.warned_cost && static_cast<double>(used->cost_micro_usd) >=
                                kWarnShare * static_cast<double>(limits.max_cost_micro_usd)) {
      run.warned_cost = true;
      append_now(
          run, event_type::kBudgetWarning,
          {{"limit", "cost_micro_usd"}, {"used", used->cost_micro_usd}, {"max", limits.max_cost_micro_usd}});
    }
  }
  return std::nullopt;
}

void RunEngine::Impl::advance(const std::shared_ptr<ActiveRun>& run_ptr) {
  ActiveRun& run = *run_ptr;
  if (run.lost || run.cancel.stop_requested()) {
    drop(run, !run.lost);
    return;
  }
  if (auto scanned = scan(run); !scanned.ok()) {
    log->warn("run {}: reading its events failed ({}); retrying at the next claim", run.run_id,
              scanned.to_string());
    drop(run, true);
    return;
  }
  // The loop detector's question, answered.
  if (run.loop_answer && *run.loop_answer != "continue") {
    end(run, kCancelled, "stopped by the user at the loop detector's question", event_type::kRunCancelled,
        {{"by", "user"}});
    return;
  }
  if (!run.messages.empty()) {
    // The user's messages become part of the state in a step of their own, so the chain shows them.
    StepOutcome folded;
    folded.kind = StepOutcome::Kind::kProposed;
    folded.agent_id = "user";
    folded.next_state = run.current.state;
    auto& inbox = folded.next_state["inbox"];
    if (!inbox.is_array()) inbox = nlohmann::json::array();
    std::int64_t last = 0;
    for (const auto& m : run.messages) {
      inbox.push_back({{"seq", m.seq}, {"text", m.payload.value("text", std::string())}});
      last = std::max(last, m.seq);
    }
    folded.next_state["inbox_seq"] = last;
    folded.summary = std::to_string(run.messages.size()) + " message(s) from the user";
    std::vector<StepOutcome> steps;
    steps.push_back(std::move(folded));
    if (auto committed = commit(run, steps); !committed.ok()) {
      drop(run, true);
      return;
    }
    run.messages.clear();
    after_commit(run_ptr);
    return;
  }
  if (auto reason = guard(run)) {
    end(run, kFailed, *reason, event_type::kRunFailed, {{"limit", true}});
    return;
  }
  const nlohmann::json& state = run.current.state;
  if (const auto it = state.find("fan_out"); it != state.end() && it->is_object()) {
    const auto& tasks = it->value("tasks", nlohmann::json::array());
    const auto& results = it->value("results", nlohmann::json::object());
    bool pending = false;
    for (std::size_t i = 0; i < tasks.size(); ++i)
      pending = pending || !results.contains(std::to_string(i));
    if (pending) {
      run_fan_out(run_ptr, *it);
      return;
    }
  }
  // Routing: the first agent of the pipeline that wants the state.
  std::string chosen;
  std::vector<std::string> asked;
  for (const auto& id : config.pipeline) {
    const plugins::Lease lease = deps.plugins.acquire(id);
    if (!lease) continue;  // disabled or failed: the pipeline goes on without it
    asked.push_back(id);
    auto wants =
        lease.call<sdk::Agent>([&](sdk::Agent& agent) -> sdk::Result<bool> { return agent.wants(state); });
    if (!wants.ok()) {
      end(run, kFailed, id + " failed to say whether it wants the state: " + wants.status().message(),
          event_type::kRunFailed, {{"agent", id}});
      return;
    }
    if (*wants) {
      chosen = id;
      break;
    }
  }
  if (chosen.empty()) {
    if (state.value("done", false)) {
      end(run, kSucceeded, "", event_type::kRunFinished,
          {{"steps", run.current.sequence}, {"summary", final_summary(state, run.current.summary)}});
    } else if (asked.empty()) {
      end(run, kFailed,
          config.pipeline.empty() ? "the pipeline is empty: config runs.pipeline names no agent plugin"
                                  : "no agent of the pipeline is active (runs.pipeline names only plugins "
                                    "that are disabled or failed to load)",
          event_type::kRunFailed, {{"stalled", true}, {"asked", asked}});
    } else {
      std::string names;
      for (const auto& id : asked)
        names += (names.empty() ? "" : ", ") + id;
      end(run, kFailed,
          "no agent of the pipeline (" + names + ") wants the state of step " +
              std::to_string(run.current.sequence) + ", and it does not say \"done\": true",
          event_type::kRunFailed, {{"stalled", true}, {"asked", asked}});
    }
    return;
  }
  append_now(run, event_type::kStepStarted, {{"sequence", run.current.sequence + 1}, {"agent", chosen}});
  std::vector<StepOutcome> steps;
  steps.push_back(run_agent(run, chosen, state, nullptr, -1));
  StepOutcome& outcome = steps.front();
  switch (outcome.kind) {
    case StepOutcome::Kind::kProposed:
      if (auto committed = commit(run, steps); !committed.ok()) {
        if (committed.code() == sdk::StatusCode::kFailedPrecondition) {
          drop(run, false);  // cancelled or taken over meanwhile
        } else {
          end(run, kFailed,
              "committing step " + std::to_string(run.current.sequence + 1) +
                  " failed: " + committed.message(),
              event_type::kRunFailed, {});
        }
        return;
      }
      after_commit(run_ptr);
      return;
    case StepOutcome::Kind::kPaused:
      pause(run, outcome.question_id);
      return;
    case StepOutcome::Kind::kCancelled:
      drop(run, !run.lost);
      return;
    case StepOutcome::Kind::kFailed:
      end(run, kFailed, outcome.error, event_type::kRunFailed, {{"agent", chosen}});
      return;
  }
}

StepOutcome RunEngine::Impl::run_agent(ActiveRun& run, const std::string& agent_id,
                                       const nlohmann::json& state, nlohmann::json task, int branch) {
  StepOutcome outcome;
  outcome.agent_id = agent_id;
  const plugins::Lease lease = deps.plugins.acquire(agent_id);
  sdk::Agent* agent = lease.as<sdk::Agent>();
  if (agent == nullptr) {
    outcome.error = agent_id + " is not an active agent plugin";
    return outcome;
  }
  StepIdentity identity;
  identity.run_id = run.run_id;
  identity.owner_id = run.owner_id;
  identity.project_id = run.project_id;
  identity.agent_id = agent_id;
  identity.role = std::string(agent->role());
  if (const auto it = run.models.find(identity.role); it != run.models.end()) identity.model = it->second;
  identity.base = run.current.sequence;
  identity.branch = branch;
  StepContext context(services(), std::move(identity), state, std::move(task), run.record,
                      run.cancel.get_token());
  auto result = lease.call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); });
  if (context.waiting_for()) {
    outcome.kind = StepOutcome::Kind::kPaused;
    outcome.question_id = *context.waiting_for();
    return outcome;
  }
  if (run.cancel.stop_requested()) {
    context.undo_changes();
    outcome.kind = StepOutcome::Kind::kCancelled;
    return outcome;
  }
  if (!result.ok()) {
    context.undo_changes();
    outcome.error = agent_id + " failed step " + std::to_string(run.current.sequence + 1) + ": " +
                    result.status().to_string();
    return outcome;
  }
  if (!result->next_state.is_object()) {
    context.undo_changes();
    outcome.error = agent_id + " proposed a state that is not a JSON object";
    return outcome;
  }
  outcome.kind = StepOutcome::Kind::kProposed;
  outcome.next_state = std::move(result->next_state);
  outcome.summary = std::move(result->summary);
  outcome.changes = context.changes();
  outcome.emitted = context.emitted();
  return outcome;
}

void RunEngine::Impl::run_fan_out(const std::shared_ptr<ActiveRun>& run_ptr, const nlohmann::json& fan_out) {
  ActiveRun& run = *run_ptr;
  const std::string agent_id = fan_out.value("agent", std::string());
  const auto tasks = fan_out.value("tasks", nlohmann::json::array());
  const auto results = fan_out.value("results", nlohmann::json::object());
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (!results.contains(std::to_string(i))) missing.push_back(i);
  }
  append_now(run, event_type::kStepStarted,
             {{"sequence", run.current.sequence + 1}, {"agent", agent_id}, {"branches", missing.size()}});
  // Branches run on the job pool, at most max_parallel_per_run at once; this job waits for them, which
  // is why the pool has a thread more per branch slot than the runs it can hold (see start()).
  struct Join {
    std::mutex mutex;
    std::condition_variable done;
    std::size_t next = 0;
    std::size_t running = 0;
    std::size_t finished = 0;
  } join;
  std::vector<StepOutcome> outcomes(missing.size());
  const std::size_t width = std::min<std::size_t>(config.max_parallel_per_run, missing.size());
  std::function<void()> launch_next;
  launch_next = [&] {
    // Called with join.mutex held.
    while (join.running < width && join.next < missing.size()) {
      const std::size_t slot = join.next++;
      ++join.running;
      pool->submit([&, slot] {
        const std::size_t index = missing[slot];
        outcomes[slot] = run_agent(run, agent_id, run.current.state, tasks[index], static_cast<int>(index));
        std::lock_guard lock(join.mutex);
        --join.running;
        ++join.finished;
        launch_next();
        join.done.notify_all();
      });
    }
  };
  {
    std::unique_lock lock(join.mutex);
    launch_next();
    join.done.wait(lock, [&] { return join.finished == missing.size(); });
  }
  // Outcomes in task order: the first failure, pause or cancellation decides; otherwise every result is
  // committed, one step per task, in task order, whatever order they finished in.
  nlohmann::json state = run.current.state;
  std::vector<StepOutcome> steps;
  for (std::size_t slot = 0; slot < missing.size(); ++slot) {
    StepOutcome& o = outcomes[slot];
    if (o.kind == StepOutcome::Kind::kProposed) {
      state["fan_out"]["results"][std::to_string(missing[slot])] = std::move(o.next_state);
      o.next_state = state;
      steps.push_back(std::move(o));
      continue;
    }
    if (o.kind == StepOutcome::Kind::kPaused) {
      pause(run, o.question_id);
    } else if (o.kind == StepOutcome::Kind::kCancelled) {
      drop(run, !run.lost);
    } else {
      end(run, kFailed, o.error, event_type::kRunFailed, {{"agent", agent_id}, {"branch", missing[slot]}});
    }
    return;
  }
  if (auto committed = commit(run, steps); !committed.ok()) {
    if (committed.code() == sdk::StatusCode::kFailedPrecondition) {
      drop(run, false);
    } else {
      end(run, kFailed, "committing the fan-out failed: " + committed.message(), event_type::kRunFailed, {});
    }
    return;
  }
  after_commit(run_ptr);
}

sdk::Status RunEngine::Impl::commit(ActiveRun& run, std::vector<StepOutcome>& steps) {
  std::vector<sdk::RunStep> committed;
  const std::int64_t inbox_seq = run.current.state.value("inbox_seq", std::int64_t{0});
  auto status = transaction([&](sdk::Stores& s) -> sdk::Status {
    committed.clear();
    // The lease and the state are checked in the same transaction: a node that lost the run, or a run
    // cancelled meanwhile, commits nothing.
    auto renewed = s.runs().renew_run_lease(run.run_id, deps.node_id, now() + lease());
    if (!renewed.ok()) return renewed.status();
    if (renewed->state != kRunning)
      return sdk::Status::failed_precondition("the run is " + renewed->state + ", not running");
    for (auto& step : steps) {
      // inbox_seq belongs to the kernel: an agent cannot make the kernel forget or replay messages.
      if (step.agent_id != "user") step.next_state["inbox_seq"] = inbox_seq;
      sdk::NewRunStep next;
      next.agent = step.agent_id;
      next.state = step.next_state;
      next.summary = step.summary;
      auto appended = s.runs().append_run_step(run.owner_id, run.run_id, next);
      if (!appended.ok()) return appended.status();
      nlohmann::json files = nlohmann::json::array();
      for (const auto& [path, content] : step.changes) {
        sdk::Result<sdk::FileVersion> version =
            content ? s.files().put_file(run.owner_id, run.project_id, path, *content, appended->id)
                    : s.files().delete_file(run.owner_id, run.project_id, path, appended->id);
        if (!version.ok()) {
          if (!content && version.status().code() == sdk::StatusCode::kNotFound) continue;  // never stored
          return version.status();
        }
        files.push_back({{"path", path},
                         {"version", version->version},
                         {"deleted", version->deleted},
                         {"size", version->size}});
        auto written = s.runs().append_run_event(run.owner_id, run.run_id, event_type::kFileWritten,
                                                 {{"step", appended->sequence},
                                                  {"path", path},
                                                  {"version", version->version},
                                                  {"deleted", version->deleted},
                                                  {"size", version->size}});
        if (!written.ok()) return written.status();
      }
      for (const auto& emitted : step.emitted) {
        nlohmann::json payload = emitted.payload;
        if (payload.is_object()) payload["step"] = appended->sequence;
        auto added = s.runs().append_run_event(run.owner_id, run.run_id, emitted.type, payload);
        if (!added.ok()) return added.status();
      }
      auto event =
          s.runs().append_run_event(run.owner_id, run.run_id, event_type::kStepCommitted,
                                    {{"sequence", appended->sequence},
                                     {"step_id", appended->id},
                                     {"agent", step.agent_id},
                                     {"summary", step.summary},
                                     {"files", files},
                                     {"state_hash", hex64(state_hash(step.next_state))},
                                     {"inbox_seq", step.next_state.value("inbox_seq", std::int64_t{0})}});
      if (!event.ok()) return event.status();
      committed.push_back(std::move(appended).value());
    }
    // The user's quotas hold for what agents write as for the files API, checked on the committed
    // totals inside the transaction, so a step that would pass them stores nothing.
    if (std::any_of(steps.begin(), steps.end(), [](const StepOutcome& o) { return !o.changes.empty(); })) {
      auto usage = s.files().usage_of_owner(run.owner_id);
      if (!usage.ok()) return usage.status();
      const auto& limits = deps.config.limits;
      if (static_cast<std::uint64_t>(usage->files) > limits.files_per_user ||
          static_cast<std::uint64_t>(usage->bytes) > limits.workspace_bytes_per_user) {
        return sdk::Status::resource_exhausted("the step's files would take the owner's projects to " +
                                               std::to_string(usage->files) + " files and " +
                                               std::to_string(usage->bytes) + " bytes, over the limits of " +
                                               std::to_string(limits.files_per_user) + " files and " +
                                               std::to_string(limits.workspace_bytes_per_user) + " bytes");
      }
    }
    return {};
  });
  if (!status.ok()) {
    // The workspace got the writes at once; storage did not take them, so put it back.
    for (const auto& step : steps)
      restore_workspace(services(), run.owner_id, run.project_id, run.run_id, step.changes);
    log->warn("run {}: commit failed: {}", run.run_id, status.to_string());
    return status;
  }
  steps_total.add(static_cast<double>(committed.size()));
  run.current = std::move(committed.back());
  run.record.reset(run.current.sequence);
  run.loop_answer.reset();
  hub.committed(run.run_id);
  return {};
}

void RunEngine::Impl::after_commit(const std::shared_ptr<ActiveRun>& run_ptr) {
  ActiveRun& run = *run_ptr;
  // The commit's step.committed event is read back by the next scan, which counts its state; a state
  // reached loop_repeats times means the pipeline goes round in circles: ask before burning tokens.
  if (auto scanned = scan(run); !scanned.ok()) {
    drop(run, true);
    return;
  }
  const auto repeats = run.seen[state_hash(run.current.state)];
  if (repeats >= run.limits.loop_repeats) {
    const std::string id = question_id(run.current.sequence, -2, "loop");
    append_now(run, event_type::kQuestionAsked,
               {{"base", run.current.sequence},
                {"branch", -2},
                {"id", "loop"},
                {"question_id", id},
                {"agent", "kernel"},
                {"text", "The run reached the same state " + std::to_string(repeats) + " times (last by " +
                             run.current.agent + "). Continue anyway?"},
                {"options", {"continue", "stop"}}});
    pause(run, id);
    return;
  }
  schedule(run_ptr);
}

// ---------------------------------------------------------------------------------------------------
// Leaving a run: pause, end, drop

void RunEngine::Impl::pause(ActiveRun& run, const std::string& question_id) {
  sdk::RunUpdate update;
  update.expected_state = kRunning;
  update.state = kInputRequired;
  auto status = transaction([&](sdk::Stores& s) -> sdk::Status {
    auto updated = s.runs().update_run(run.owner_id, run.run_id, update);
    if (!updated.ok()) return updated.status();
    return s.runs()
        .append_run_event(run.owner_id, run.run_id, event_type::kRunPaused,
                          {{"question_id", question_id}, {"step", run.current.sequence}})
        .status();
  });
  if (!status.ok()) log->warn("run {}: pausing failed: {}", run.run_id, status.to_string());
  finished["paused"]->add(1);
  hub.committed(run.run_id);
  drop(run, true);
}

void RunEngine::Impl::end(ActiveRun& run, const char* state, const std::string& reason, const char* event,
                          nlohmann::json detail, const std::string& expected) {
  sdk::RunUpdate update;
  update.expected_state = expected;
  update.state = state;
  update.finished_at = now();
  update.error = reason;
  if (!detail.is_object()) detail = nlohmann::json::object();
  if (!reason.empty()) detail["reason"] = reason;
  detail["step"] = run.current.sequence;
  auto status = transaction([&](sdk::Stores& s) -> sdk::Status {
    auto updated = s.runs().update_run(run.owner_id, run.run_id, update);
    if (!updated.ok()) return updated.status();
    return s.runs().append_run_event(run.owner_id, run.run_id, event, detail).status();
  });
  if (!status.ok()) {
    log->warn("run {}: ending it as {} failed: {}", run.run_id, state, status.to_string());
  } else {
    log->info("run {}: {}{}{}", run.run_id, state, reason.empty() ? "" : ": ", reason);
    if (const auto it = finished.find(state); it != finished.end()) it->second->add(1);
  }
  hub.committed(run.run_id);
  drop(run, true);
}

void RunEngine::Impl::drop(ActiveRun& run, bool give_lease_up) {
  // Off the list first: the lease keeper then never sees a lease this node gave up on a run it still
  // lists (keep_leases tells a lost lease from a released one by the list).
  {
    std::lock_guard lock(mutex);
    active.erase(run.run_id);
    active_gauge.set(static_cast<double>(active.size()));
  }
  if (give_lease_up) {
    auto released = storage<sdk::Status>(
        [&](sdk::Stores& s) { return s.runs().release_run_lease(run.run_id, deps.node_id); });
    if (!released.ok() && released.code() != sdk::StatusCode::kFailedPrecondition)
      log->warn("run {}: releasing its lease failed: {}", run.run_id, released.to_string());
  }
  changed.notify_all();
}

// ---------------------------------------------------------------------------------------------------
// API operations

sdk::Result<nlohmann::json> RunEngine::Impl::find_question(const std::string& owner, const sdk::Run& run,
                                                           const std::string& question_id, bool* answered) {
  // Questions are near the end of the log: look at the newest events first, then further back.
  nlohmann::json found;
  *answered = false;
  std::int64_t window = 256;
  for (;;) {
    const std::int64_t from = std::max<std::int64_t>(0, run.last_event_seq - window);
    std::int64_t after = from;
    for (;;) {
      auto events = storage<sdk::Result<std::vector<sdk::RunEvent>>>(
          [&](sdk::Stores& s) { return s.runs().list_run_events(owner, run.id, after, kScanBatch); });
      if (!events.ok()) return events.status();
      for (const auto& e : *events) {
        if (e.payload.value("question_id", std::string()) != question_id) continue;
        if (e.type == event_type::kQuestionAsked) found = e.payload;
        if (e.type == event_type::kQuestionAnswered) *answered = true;
      }
      if (events->size() < kScanBatch) break;
      after = events->back().seq;
    }
    if (!found.is_null() || from == 0) return found;
    window *= 8;
  }
}

RunEngine::RunEngine(Dependencies dependencies) : impl_(std::make_unique<Impl>(std::move(dependencies))) {}

RunEngine::~RunEngine() {
  stop();
}

void RunEngine::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) return;
  impl_->started = true;
  // Each run holds one job while it advances and a fan-out adds up to max_parallel_per_run branch jobs
  // (its driver waits for them), so branches get threads of their own beyond the runs' share.
  impl_->pool = std::make_unique<JobPool>(impl_->config.workers + impl_->config.max_parallel_per_run * 4);
  impl_->hub.start();
  impl_->control = std::thread([impl = impl_.get()] { impl->control_loop(); });
  impl_->woken = true;
  impl_->changed.notify_all();
}

void RunEngine::stop() {
  std::vector<std::shared_ptr<ActiveRun>> held;
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->started || impl_->stopping) return;
    impl_->stopping = true;
    for (auto& [id, run] : impl_->active) {
      held.push_back(run);
      run->lost = true;  // stopping: leave the state as it is, give the lease up
      run->cancel.request_stop();
    }
  }
  impl_->changed.notify_all();
  if (impl_->control.joinable()) impl_->control.join();
  impl_->pool->stop();
  // Drivers ended by the stop released nothing (lost): give the leases up so the runs move on at once.
  // Runs claimed after the list was taken cannot exist: the control thread had stopped claiming.
  {
    std::lock_guard lock(impl_->mutex);
    impl_->active.clear();
  }
  for (const auto& run : held) {
    static_cast<void>(impl_->storage<sdk::Status>(
        [&](sdk::Stores& s) { return s.runs().release_run_lease(run->run_id, impl_->deps.node_id); }));
  }
  impl_->hub.stop();
}

RunEventHub& RunEngine::events() noexcept {
  return impl_->hub;
}

const std::string& RunEngine::node_id() const noexcept {
  return impl_->deps.node_id;
}

std::size_t RunEngine::active_runs() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->active.size();
}

sdk::Result<sdk::Run> RunEngine::create_run(const std::string& owner_id, const NewRunRequest& request) {
  if (request.description.empty() || request.description.size() > kMaxDescriptionBytes)
    return sdk::Status::invalid_argument("the description is 1.." + std::to_string(kMaxDescriptionBytes) +
                                         " bytes");
  const auto& defaults = impl_->config.limits;
  nlohmann::json limits = {
      {"max_steps", std::min(request.max_steps.value_or(defaults.max_steps), defaults.max_steps)},
      {"max_wall_seconds", defaults.max_wall_seconds == 0
                               ? request.max_wall_seconds.value_or(0)
                               : std::min(request.max_wall_seconds.value_or(defaults.max_wall_seconds),
                                          defaults.max_wall_seconds)},
      {"max_tokens", defaults.max_tokens == 0
                         ? request.max_tokens.value_or(0)
                         : std::min(request.max_tokens.value_or(defaults.max_tokens), defaults.max_tokens)},
      {"max_cost_micro_usd", defaults.max_cost_micro_usd == 0
                                 ? request.max_cost_micro_usd.value_or(0)
                                 : std::min(request.max_cost_micro_usd.value_or(defaults.max_cost_micro_usd),
                                            defaults.max_cost_micro_usd)}};
  sdk::Run created;
  auto status = impl_->transaction([&](sdk::Stores& s) -> sdk::Status {
    sdk::NewRun run;
    run.project_id = request.project_id;
    run.description = request.description;
    run.state = kQueued;
    auto made = s.runs().create_run(owner_id, run);
    if (!made.ok()) return made.status();
    sdk::NewRunStep first;
    first.agent = "user";
    first.state = {
        {"description", request.description}, {"inbox", nlohmann::json::array()}, {"inbox_seq", 0}};
    first.summary = "the run's description";
    if (auto step = s.runs().append_run_step(owner_id, made->id, first); !step.ok()) return step.status();
    auto event = s.runs().append_run_event(owner_id, made->id, event_type::kRunCreated,
                                           {{"description", request.description},
                                            {"models", request.models},
                                            {"limits", limits},
                                            {"pipeline", impl_->config.pipeline}});
    if (!event.ok()) return event.status();
    auto reread = s.runs().get_run(owner_id, made->id);
    if (!reread.ok()) return reread.status();
    created = std::move(reread).value();
    return {};
  });
  if (!status.ok()) return status;
  if (auto made = impl_->workspaces.create(request.project_id); !made.ok()) return made;
  impl_->wake();
  return created;
}

sdk::Result<sdk::Run> RunEngine::cancel_run(const std::string& owner_id, const std::string& run_id) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto run = impl_->storage<sdk::Result<sdk::Run>>(
        [&](sdk::Stores& s) { return s.runs().get_run(owner_id, run_id); });
    if (!run.ok()) return run.status();
    if (is_terminal_state(run->state))
      return sdk::Status::failed_precondition("the run already ended (" + run->state + ")");
    sdk::Run updated;
    auto status = impl_->transaction([&](sdk::Stores& s) -> sdk::Status {
      sdk::RunUpdate update;
      update.expected_state = run->state;
      update.state = kCancelled;
      update.finished_at = impl_->now();
      auto changed = s.runs().update_run(owner_id, run_id, update);
      if (!changed.ok()) return changed.status();
      updated = std::move(changed).value();
      return s.runs()
          .append_run_event(owner_id, run_id, event_type::kRunCancelled,
                            {{"by", "user"}, {"was", run->state}})
          .status();
    });
    if (status.code() == sdk::StatusCode::kFailedPrecondition) continue;  // its state moved meanwhile
    if (!status.ok()) return status;
    {
      std::lock_guard lock(impl_->mutex);
      if (const auto it = impl_->active.find(run_id); it != impl_->active.end())
        it->second->cancel.request_stop();
    }
    impl_->finished[kCancelled]->add(1);
    impl_->hub.committed(run_id);
    return updated;
  }
  return sdk::Status::aborted("the run changed state while it was being cancelled; try again");
}

sdk::Result<sdk::Run> RunEngine::resume_run(const std::string& owner_id, const std::string& run_id) {
  auto run = impl_->storage<sdk::Result<sdk::Run>>(
      [&](sdk::Stores& s) { return s.runs().get_run(owner_id, run_id); });
  if (!run.ok()) return run.status();
  if (run->state != kFailed && run->state != kCancelled)
    return sdk::Status::failed_precondition("only a failed or cancelled run can be resumed; this one is " +
                                            run->state);
  sdk::Run updated;
  auto status = impl_->transaction([&](sdk::Stores& s) -> sdk::Status {
    sdk::RunUpdate update;
    update.expected_state = run->state;
    update.state = kQueued;
    update.error = "";
    auto changed = s.runs().update_run(owner_id, run_id, update);
    if (!changed.ok()) return changed.status();
    updated = std::move(changed).value();
    return s.runs()
        .append_run_event(owner_id, run_id, event_type::kRunResumed, {{"by", "user"}, {"was", run->state}})
        .status();
  });
  if (!status.ok()) return status;
  impl_->hub.committed(run_id);
  impl_->wake();
  return updated;
}

sdk::Result<sdk::RunEvent> RunEngine::answer(const std::string& owner_id, const std::string& run_id,
                                             const std::string& question_id, const std::string& text) {
  if (text.size() > kMaxMessageBytes)
    return sdk::Status::invalid_argument("an answer is at most " + std::to_string(kMaxMessageBytes) +
                                         " bytes");
  auto run = impl_->storage<sdk::Result<sdk::Run>>(
      [&](sdk::Stores& s) { return s.runs().get_run(owner_id, run_id); });
  if (!run.ok()) return run.status();
  bool answered = false;
  auto question = impl_->find_question(owner_id, *run, question_id, &answered);
  if (!question.ok()) return question.status();
  if (question->is_null()) return sdk::Status::not_found("the run has no question " + question_id);
  if (answered) return sdk::Status::already_exists("question " + question_id + " was already answered");
  if (run->state != kInputRequired)
    return sdk::Status::failed_precondition("the run is " + run->state + ", not waiting for an answer");
  const auto options = question->value("options", nlohmann::json::array());
  if (!options.empty() && std::find(options.begin(), options.end(), nlohmann::json(text)) == options.end())
    return sdk::Status::invalid_argument("the answer must be one of the question's options: " +
                                         options.dump());
  sdk::RunEvent event;
  auto status = impl_->transaction([&](sdk::Stores& s) -> sdk::Status {
    sdk::RunUpdate update;
    update.expected_state = kInputRequired;
    update.state = kQueued;
    if (auto changed = s.runs().update_run(owner_id, run_id, update); !changed.ok()) return changed.status();
    auto added = s.runs().append_run_event(owner_id, run_id, event_type::kQuestionAnswered,
                                           {{"base", question->value("base", std::int64_t{0})},
                                            {"branch", question->value("branch", -1)},
                                            {"id", question->value("id", std::string())},
                                            {"question_id", question_id},
                                            {"answer", text}});
    if (!added.ok()) return added.status();
    event = std::move(added).value();
    return {};
  });
  if (!status.ok()) return status;
  impl_->hub.committed(run_id);
  impl_->wake();
  return event;
}

sdk::Result<sdk::RunEvent> RunEngine::send_message(const std::string& owner_id, const std::string& run_id,
                                                   const std::string& text) {
  if (text.empty() || text.size() > kMaxMessageBytes)
    return sdk::Status::invalid_argument("a message is 1.." + std::to_string(kMaxMessageBytes) + " bytes");
  auto run = impl_->storage<sdk::Result<sdk::Run>>(
      [&](sdk::Stores& s) { return s.runs().get_run(owner_id, run_id); });
  if (!run.ok()) return run.status();
  if (run->state == kCancelled || run->state == kFailed)
    return sdk::Status::failed_precondition("the run is " + run->state +
                                            "; resume it before sending messages");
  sdk::RunEvent event;
  auto status = impl_->transaction([&](sdk::Stores& s) -> sdk::Status {
    auto added = s.runs().append_run_event(owner_id, run_id, event_type::kMessageReceived, {{"text", text}});
    if (!added.ok()) return added.status();
    event = std::move(added).value();
    if (run->state == kSucceeded) {
      // A finished run takes the message as new work: it continues from its last step.
      sdk::RunUpdate update;
      update.expected_state = kSucceeded;
      update.state = kQueued;
      if (auto changed = s.runs().update_run(owner_id, run_id, update); !changed.ok())
        return changed.status();
      return s.runs()
          .append_run_event(owner_id, run_id, event_type::kRunResumed,
                            {{"by", "message"}, {"was", kSucceeded}})
          .status();
    }
    return {};
  });
  if (!status.ok()) return status;
  impl_->hub.committed(run_id);
  impl_->wake();
  return event;
}

sdk::Result<nlohmann::json> RunEngine::open_question(const std::string& owner_id, const sdk::Run& run) {
  if (run.state != kInputRequired) return nlohmann::json(nullptr);
  // The newest run.paused event names the question.
  std::string id;
  const std::int64_t from = std::max<std::int64_t>(0, run.last_event_seq - 64);
  auto events = impl_->storage<sdk::Result<std::vector<sdk::RunEvent>>>(
      [&](sdk::Stores& s) { return s.runs().list_run_events(owner_id, run.id, from, 64); });
  if (!events.ok()) return events.status();
  for (const auto& e : *events) {
    if (e.type == event_type::kRunPaused) id = e.payload.value("question_id", std::string());
  }
  if (id.empty()) return nlohmann::json(nullptr);
  bool answered = false;
  auto question = impl_->find_question(owner_id, run, id, &answered);
  if (!question.ok()) return question.status();
  if (answered) return nlohmann::json(nullptr);
  return question;
}

}  // namespace samokoder::runs
