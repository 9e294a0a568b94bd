#include "app/housekeeping.hpp"

#include <array>
#include <climits>
#include <cstdio>

#include <unistd.h>

#include <samokoder/sdk/storage.hpp>

#include "core/logging.hpp"

namespace samokoder::app {
namespace {

constexpr std::string_view kPassesHelp =
    "Housekeeping passes by outcome: ran (this node purged), skipped (another node holds the lease, or "
    "no storage is active), failed (a storage call failed)";
constexpr std::string_view kPurgedHelp = "Rows the housekeeping passes of this node deleted, by kind";

metrics::Counter& passes(metrics::Registry& metrics, const char* outcome) {
  return metrics.counter("samokoder_housekeeping_passes_total", kPassesHelp, {{"outcome", outcome}});
}

metrics::Counter& purged(metrics::Registry& metrics, const char* kind) {
  return metrics.counter("samokoder_housekeeping_rows_purged_total", kPurgedHelp, {{"kind", kind}});
}

}  // namespace

Housekeeping::Housekeeping(const config::HousekeepingConfig& config, const core::Clock& clock,
                           metrics::Registry& metrics, std::function<plugins::Lease()> storage,
                           std::string node_id)
    : config_(config),
      clock_(clock),
      storage_(std::move(storage)),
      node_id_(std::move(node_id)),
      passes_ran_(passes(metrics, "ran")),
      passes_skipped_(passes(metrics, "skipped")),
      passes_failed_(passes(metrics, "failed")),
      purged_sessions_(purged(metrics, "sessions")),
      purged_token_revocations_(purged(metrics, "token_revocations")),
      purged_login_attempts_(purged(metrics, "login_attempts")),
      purged_blobs_(purged(metrics, "blobs")),
      random_(std::random_device{}()),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

Housekeeping::~Housekeeping() {
  thread_.request_stop();
  wake_.notify_all();
}

std::string Housekeeping::make_node_id() {
  std::array<char, HOST_NAME_MAX + 1> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  std::uniform_int_distribution<std::uint32_t> hex;
  std::random_device device;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", hex(device));
  return std::string(host.data()) + "/" + std::to_string(::getpid()) + "/" + suffix;
}

std::chrono::milliseconds Housekeeping::next_wait() {
  const std::chrono::milliseconds jitter_ms = std::chrono::seconds(config_.jitter_seconds);
  std::uniform_int_distribution<std::int64_t> jitter(0, jitter_ms.count());
  return std::chrono::seconds(config_.interval_seconds) + std::chrono::milliseconds(jitter(random_));
}

void Housekeeping::run(std::stop_token stop) {
  core::logger("housekeeping")
      ->info("housekeeping every {} s (+0..{} s jitter) as {}", config_.interval_seconds,
             config_.jitter_seconds, node_id_);
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    wake_.wait_for(lock, stop, next_wait(), [] { return false; });
    if (stop.stop_requested()) break;
    lock.unlock();  // the pass holds no lock of ours: the destructor only needs to reach request_stop
    switch (pass(stop)) {
      case Outcome::kRan:
        passes_ran_.add();
        break;
      case Outcome::kSkipped:
        passes_skipped_.add();
        break;
      case Outcome::kFailed:
        passes_failed_.add();
        break;
    }
    lock.lock();
  }
}

Housekeeping::Outcome Housekeeping::pass(const std::stop_token& stop) {
  auto log = core::logger("housekeeping");
  const plugins::Lease lease = storage_();
  if (!lease) {
    log->warn("housekeeping pass skipped: no storage plugin is active");
    return Outcome::kSkipped;
  }
  const auto started = std::chrono::steady_clock::now();
  const auto until = clock_.now() + std::chrono::seconds(config_.interval_seconds);
  auto taken = lease.call<sdk::Storage>(
      [&](sdk::Storage& s) { return s.leases().try_acquire_lease(kLeaseName, node_id_, until); });
  if (!taken.ok()) {
    log->error("housekeeping pass failed: cannot take the lease: {}", taken.status().to_string());
    return Outcome::kFailed;
  }
  if (!*taken) {
    log->info("housekeeping pass skipped: another node holds the lease");
    return Outcome::kSkipped;
  }

  const auto login_cutoff = clock_.now() - std::chrono::seconds(config_.login_attempt_retention_seconds);
  struct Step {
    const char* kind;
    metrics::Counter& counter;
    std::function<sdk::Result<std::int64_t>(sdk::Storage&)> purge;
    std::int64_t rows = 0;
  };
  std::array<Step, 4> steps = {{
      {"sessions", purged_sessions_, [](sdk::Storage& s) { return s.sessions().purge_expired_sessions(); }},
      {"token_revocations", purged_token_revocations_,
       [](sdk::Storage& s) { return s.token_revocations().purge_expired_token_revocations(); }},
      {"login_attempts", purged_login_attempts_,
       [&](sdk::Storage& s) { return s.login_attempts().purge_login_attempts(login_cutoff); }},
      // Last, so that content of whatever the steps above removed is not missed.
      {"blobs", purged_blobs_, [](sdk::Storage& s) { return s.files().purge_unreferenced_blobs(); }},
  }};
  std::string failures;
  bool stopped = false;
  for (Step& step : steps) {
    if (stop.stop_requested()) {
      stopped = true;
      break;
    }
    auto rows = lease.call<sdk::Storage>(step.purge);
    if (!rows.ok()) {
      failures += std::string(failures.empty() ? "" : "; ") + step.kind + ": " + rows.status().to_string();
      continue;
    }
    step.rows = *rows;
    step.counter.add(static_cast<double>(*rows));
  }
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  if (!failures.empty()) {
    log->error(
        "housekeeping pass failed after {} ms: purged sessions={} token_revocations={} "
        "login_attempts={} blobs={}; {}",
        elapsed.count(), steps[0].rows, steps[1].rows, steps[2].rows, steps[3].rows, failures);
    return Outcome::kFailed;
  }
  log->info(
      "housekeeping pass {} in {} ms: purged sessions={} token_revocations={} login_attempts={} blobs={}",
      stopped ? "cut short by shutdown" : "done", elapsed.count(), steps[0].rows, steps[1].rows,
      steps[2].rows, steps[3].rows);
  return Outcome::kRan;
}

}  // namespace samokoder::app
