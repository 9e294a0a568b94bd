// RunEngine: the orchestrator. It turns a description into a chain of committed steps by asking the
// agent plugins of the configured pipeline (config runs.pipeline) for each step, and it is what the
// runs API drives.
//
// A run's life: POST /runs creates it "queued" with a first step (the description) and a run.created
// event holding its options. A node claims it (RunStore::claim_run, a lease of runs.lease_seconds that
// the node renews while it works), marks it "running" and advances it one step at a time on the
// engine's workers: fold the user's new messages into the state, check the guards (steps, tokens,
// cost, wall clock), run pending fan-out branches in parallel or ask the pipeline's agents in order
// whether they want the state, run the first that does, and commit what it proposed: the step, its
// files (attributed to the step) and its events in one transaction that also checks the lease and
// that the run is still running. Only then are the events sent to watchers. A state nobody wants
// ends the run: "succeeded" when the state says "done": true, else "failed" naming the stall.
//
// Pauses hold no thread: a question (AgentContext::ask_user, or the loop detector's own) puts the run
// in "input_required" and gives the lease up; an answer makes it "queued" again, any node claims it,
// and the step runs again with every recorded exchange replayed (run_record.hpp). The same replay
// makes a crash cost no model call: after kill -9 the lease expires, a node claims the run and the
// unfinished step re-runs from its last commit, answered from the record.
//
// Cancellation: the API marks the run "cancelled" and stops its token on this node at once; a node
// working on a run notices a cancel made elsewhere within a second (the lease keeper polls the runs it
// holds). A model stream and a child process end as soon as the token stops.
//
// Ownership: the Application owns the engine; it references the config, plugin manager, gateway,
// process service, metrics registry and clock, which outlive it. Thread-safety: the public methods may
// be called from any thread except an HTTP I/O thread (they block on storage).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/run_store.hpp>

#include "api/workspace.hpp"
#include "config/config.hpp"
#include "core/clock.hpp"
#include "llm/gateway.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "processes/process_service.hpp"
#include "runs/event_hub.hpp"

namespace samokoder::runs {

// Run states, as stored.
inline constexpr const char* kQueued = "queued";
inline constexpr const char* kRunning = "running";
inline constexpr const char* kInputRequired = "input_required";
inline constexpr const char* kSucceeded = "succeeded";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kCancelled = "cancelled";

bool is_terminal_state(std::string_view state) noexcept;

// The longest description, answer and message the engine takes, in bytes (the routes check them too,
// so a client gets a field error).
inline constexpr std::size_t kMaxDescriptionBytes = 20000;
inline constexpr std::size_t kMaxMessageBytes = 8000;

// What POST /projects/{id}/runs may ask for; limits above the config's are lowered to them.
struct NewRunRequest {
  std::string project_id;
  std::string description;
  std::map<std::string, std::string> models;  // role -> "provider/model"
  std::optional<std::uint32_t> max_steps;
  std::optional<std::uint64_t> max_tokens;
  std::optional<std::int64_t> max_cost_micro_usd;
  std::optional<std::uint32_t> max_wall_seconds;
};

class RunEngine {
 public:
  struct Dependencies {
    const config::Config& config;
    plugins::PluginManager& plugins;
    llm::LlmGateway& llm;
    processes::ProcessService& processes;
    metrics::Registry& metrics;
    const core::Clock& clock;
    std::string node_id;  // unique per process among the nodes sharing the database
    // Told of every workspace file a step writes or deletes (live previews follow them).
    api::Workspaces::Observer workspace_changed;
    // Starts a project's live preview for its owner (AgentContext::start_preview); empty: no previews.
    std::function<sdk::Status(const std::string&, const std::string&)> start_preview;
  };

  explicit RunEngine(Dependencies dependencies);
  ~RunEngine();  // stop()
  RunEngine(const RunEngine&) = delete;
  RunEngine& operator=(const RunEngine&) = delete;

  // Starts claiming runs (and the event hub).
  void start();
  // Stops claiming, stops the runs this node works on without changing their state (they stay
  // "running"), gives their leases up so another node or the next start takes them at once, and joins
  // every thread. Idempotent.
  void stop();

  RunEventHub& events() noexcept;
  const std::string& node_id() const noexcept;

  sdk::Result<sdk::Run> create_run(const std::string& owner_id, const NewRunRequest& request);
  // kFailedPrecondition when the run already ended.
  sdk::Result<sdk::Run> cancel_run(const std::string& owner_id, const std::string& run_id);
  // A failed or cancelled run goes back to "queued" and continues from its last committed step.
  sdk::Result<sdk::Run> resume_run(const std::string& owner_id, const std::string& run_id);
  // Answers the open question `question_id` of a run in "input_required".
  sdk::Result<sdk::RunEvent> answer(const std::string& owner_id, const std::string& run_id,
                                    const std::string& question_id, const std::string& text);
  // Adds a user message to the run (folded into the state's "inbox" before its next step); a
  // succeeded run is queued again to take it.
  sdk::Result<sdk::RunEvent> send_message(const std::string& owner_id, const std::string& run_id,
                                          const std::string& text);
  // The question a run in "input_required" waits for (the question.asked payload), or null.
  sdk::Result<nlohmann::json> open_question(const std::string& owner_id, const sdk::Run& run);

  // Runs this node works on now (claimed and not yet paused or ended).
  std::size_t active_runs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace samokoder::runs
