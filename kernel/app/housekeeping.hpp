// Housekeeping: the periodic pass that keeps the database from growing without bound. It purges
// sessions past their absolute expiry (with their refresh tokens), revoked token ids past their expiry,
// login attempts older than the configured retention, and file content no version references any more
// (what a deleted project or a pruned history leaves behind).
//
// Schedule: every pass starts interval plus a random 0..jitter after the previous one ended (the first
// after construction), so nodes started together spread out, and a server started for a moment (a test,
// a CLI check) runs none. One node at a
// time: a pass first takes the storage lease "housekeeping" until now + interval (try_acquire_lease); a
// node that finds it held by another skips its pass, so a cluster on one database runs about one pass
// per interval, and when the node holding it dies another takes over after the lease expires.
//
// Every pass calls storage through a plugin lease (like a request), on the component's own thread,
// never an HTTP I/O thread. It counts samokoder_housekeeping_passes_total{outcome} and
// samokoder_housekeeping_rows_purged_total{kind} and writes one log line with the counts.
//
// Ownership: borrows the Clock and the Registry, which must outlive it; `storage` must stay callable for
// its lifetime. Thread-safety: owns one thread; the destructor wakes it (a condition variable, so
// it never sleeps out the interval), lets a running pass stop after its current storage call, and joins.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"

namespace samokoder::app {

class Housekeeping {
 public:
  // The name of the storage lease that makes passes exclusive across nodes.
  static constexpr std::string_view kLeaseName = "housekeeping";

  // `node_id` names this node as the lease holder (unique per process: host, pid and a random part).
  Housekeeping(const config::HousekeepingConfig& config, const core::Clock& clock, metrics::Registry& metrics,
               std::function<plugins::Lease()> storage, std::string node_id);
  ~Housekeeping();
  Housekeeping(const Housekeeping&) = delete;
  Housekeeping& operator=(const Housekeeping&) = delete;

  // A holder id for this process: "<hostname>/<pid>/<8 random hex digits>".
  static std::string make_node_id();

 private:
  enum class Outcome { kRan, kSkipped, kFailed };
  void run(std::stop_token stop);
  Outcome pass(const std::stop_token& stop);
  std::chrono::milliseconds next_wait();

  const config::HousekeepingConfig config_;
  const core::Clock& clock_;
  const std::function<plugins::Lease()> storage_;
  const std::string node_id_;
  metrics::Counter& passes_ran_;
  metrics::Counter& passes_skipped_;
  metrics::Counter& passes_failed_;
  metrics::Counter& purged_sessions_;
  metrics::Counter& purged_token_revocations_;
  metrics::Counter& purged_login_attempts_;
  metrics::Counter& purged_blobs_;
  std::mt19937_64 random_;  // jitter only; used by the thread alone
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: started after everything it uses
};

}  // namespace samokoder::app
