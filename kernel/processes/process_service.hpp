// ProcessService: the kernel's supervisor of every child process started for a plugin, and
// PluginProcesses, the sdk::ProcessRunner view one plugin generation gets through its HostServices.
//
// The service applies the config's defaults (timeout, kill grace, output cap, rlimits) to each spec,
// records each child in the ChildJournal before it runs, and keeps every live child in a table keyed by
// the plugin generation that started it, so that: ending a generation (reload, disable, unload) ends
// that generation's children (PluginProcesses::close, which Generation::teardown calls after the
// plugin's shutdown and before its destroy, refusing new children from then on); shutdown() ends
// every child; and
// sweep_orphans() at startup ends the children an earlier run of the server left behind. run()
// supervises on the caller's thread; start() runs one supervising thread per long-lived child.
// Metrics: samokoder_processes_started_total{plugin}, samokoder_processes_running{plugin},
// samokoder_processes_ended_total{plugin,outcome}.
//
// Ownership: Application owns the service and keeps it alive until every plugin generation is gone;
// PluginProcesses borrows it. Thread-safety: every method may be called concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <samokoder/sdk/process.hpp>

#include "config/config.hpp"
#include "metrics/registry.hpp"
#include "processes/journal.hpp"

namespace samokoder::processes {

// Which plugin generation a child belongs to.
struct Owner {
  std::string plugin;
  std::uint64_t generation = 0;
};

class ProcessService {
 public:
  ProcessService(config::ProcessesConfig config, metrics::Registry& registry);
  ~ProcessService();  // shutdown()
  ProcessService(const ProcessService&) = delete;
  ProcessService& operator=(const ProcessService&) = delete;

  // Ends the children an earlier run of the server recorded (call once, before any child starts).
  ChildJournal::SweepReport sweep_orphans();

  sdk::Result<sdk::ProcessResult> run(const Owner& owner, const sdk::ProcessSpec& spec,
                                      sdk::CancelToken cancel) noexcept;
  sdk::Result<std::unique_ptr<sdk::ChildProcess>> start(const Owner& owner,
                                                        const sdk::ProcessSpec& spec) noexcept;

  // Ends every child of one generation and waits until they are gone and their callbacks destroyed.
  void end_children_of(const Owner& owner) noexcept;
  // Refuses new children, then ends every child and waits for them. Idempotent.
  void shutdown() noexcept;

  // Children started and not yet ended, over all plugins.
  std::size_t running() const;

  struct Tracked;  // one child in the table (process_service.cpp)

 private:
  friend class StartedChild;
  sdk::Result<std::shared_ptr<Tracked>> launch(const Owner& owner, const sdk::ProcessSpec& spec);
  void finished(Tracked& tracked, const sdk::ProcessResult& result);
  // Removes an entry once nothing runs for it any more.
  void forget(const Tracked& tracked);
  void end_matching(const Owner* owner) noexcept;
  void count_ended(const std::string& plugin, std::string_view outcome);

  const config::ProcessesConfig config_;
  metrics::Registry& registry_;
  ChildJournal journal_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // an entry left the table
  std::map<std::uint64_t, std::shared_ptr<Tracked>> children_;
  std::uint64_t next_id_ = 1;
  bool shut_down_ = false;
};

// The ProcessRunner of one plugin generation. close() (after the plugin's shutdown, before its
// instance is destroyed) refuses new children and ends the generation's children, so no on_line
// callback (plugin code) runs once the instance is gone; the destructor does the same if close()
// was never called.
class PluginProcesses final : public sdk::ProcessRunner {
 public:
  PluginProcesses(ProcessService& service, Owner owner) : service_(service), owner_(std::move(owner)) {}
  ~PluginProcesses() override { close(); }
  PluginProcesses(const PluginProcesses&) = delete;
  PluginProcesses& operator=(const PluginProcesses&) = delete;

  void close() noexcept {
    closed_.store(true);
    service_.end_children_of(owner_);
  }

  sdk::Result<sdk::ProcessResult> run(const sdk::ProcessSpec& spec,
                                      sdk::CancelToken cancel) noexcept override {
    if (closed_.load()) return refused();
    return service_.run(owner_, spec, std::move(cancel));
  }
  sdk::Result<std::unique_ptr<sdk::ChildProcess>> start(const sdk::ProcessSpec& spec) noexcept override {
    if (closed_.load()) return refused();
    return service_.start(owner_, spec);
  }

 private:
  static sdk::Status refused() {
    return sdk::Status::unavailable("child processes are closed: the plugin is shutting down");
  }

  ProcessService& service_;
  const Owner owner_;
  // A call that read false just before close() may still start its child: end_children_of stops
  // children that join the table while it waits.
  std::atomic<bool> closed_{false};
};

// The ProcessRunner of a host without a process service (tests of one plugin): every call is refused
// with kUnavailable.
sdk::ProcessRunner& unavailable_process_runner() noexcept;

}  // namespace samokoder::processes
