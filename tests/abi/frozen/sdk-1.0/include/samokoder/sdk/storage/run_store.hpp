// RunStore: runs of the agent pipeline with their committed steps, their event log and the lease a node holds
// while it works on one.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::runs(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

// State names are the orchestrator's ("queued", "running", "input_required", "succeeded", "failed",
// "cancelled"); storage stores and compares them, never interprets them.
struct Run {
  std::string id;
  std::string project_id;
  std::string owner_id;  // the project's owner, for scoped follow-up calls
  std::string state;
  std::string description;
  std::string error;  // why it failed; empty otherwise
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  std::string lease_owner;  // node id holding the run; empty when unclaimed
  std::optional<Timestamp> lease_expires_at;
  std::int64_t last_event_seq = 0;  // seq of the newest event; 0 before the first
};

struct NewRun {
  std::string project_id;  // kNotFound if not a project of the owner
  std::string description;
  std::string state = "queued";  // required
};

struct RunUpdate {
  // When set, the update applies only if the run is in this state; else kFailedPrecondition and
  // nothing changes (compare-and-set, e.g. "cancel only if still running").
  std::optional<std::string> expected_state;
  std::optional<std::string> state;  // must not be empty when set
  std::optional<std::string> error;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
};

// Claiming is how a node takes a run to work on (several kernel nodes may share a database).
struct RunClaim {
  std::string node_id;              // required
  std::vector<std::string> states;  // claimable states, e.g. {"queued", "running"}; required
  Timestamp lease_until;            // the lease ends then unless renewed
};

// One committed step of a run: the state the agent proposed, as the orchestrator committed it.
struct RunStep {
  std::string id;
  std::string run_id;
  std::int64_t sequence = 0;  // 1, 2, 3, ... per run
  std::string agent;          // the agent role or plugin id that produced it
  nlohmann::json state;       // the state snapshot
  std::string summary;
  Timestamp created_at;
};

struct NewRunStep {
  std::string agent;  // required
  nlohmann::json state = nlohmann::json::object();
  std::string summary;
};

struct RunEvent {
  std::string run_id;
  std::int64_t seq = 0;  // 1, 2, 3, ... per run: strictly increasing and gapless among committed events
  std::string type;      // e.g. "step.started", "question.asked", "file.written"
  nlohmann::json payload;
  Timestamp created_at;
};

class RunStore {
 public:
  RunStore() = default;
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;
  virtual ~RunStore() = default;

  virtual Result<Run> create_run(std::string_view owner_id, const NewRun& run) = 0;
  virtual Result<Run> get_run(std::string_view owner_id, std::string_view run_id) = 0;
  // Order: created_at descending, then id descending.
  virtual Result<Page<Run>> list_runs(std::string_view owner_id, std::string_view project_id,
                                      const PageRequest& page) = 0;
  virtual Result<Run> update_run(std::string_view owner_id, std::string_view run_id,
                                 const RunUpdate& update) = 0;
  // Takes the oldest run (created_at, then id) whose state is one of claim.states and that has no
  // lease or an expired one (lease_expires_at <= now()); sets lease_owner and lease_expires_at and
  // returns it, or returns an empty optional if there is none. Safe across nodes: one run is given
  // to one claimant at a time.
  virtual Result<std::optional<Run>> claim_run(const RunClaim& claim) = 0;
  // Extends the lease; kFailedPrecondition if `node_id` does not hold an unexpired lease on the run.
  virtual Result<Run> renew_run_lease(std::string_view run_id, std::string_view node_id,
                                      Timestamp lease_until) = 0;
  // Gives the run up; kFailedPrecondition if `node_id` does not hold the lease.
  virtual Status release_run_lease(std::string_view run_id, std::string_view node_id) = 0;
  virtual Result<RunStep> append_run_step(std::string_view owner_id, std::string_view run_id,
                                          const NewRunStep& step) = 0;
  virtual Result<RunStep> get_run_step(std::string_view owner_id, std::string_view step_id) = 0;
  // The step with the highest sequence; kNotFound if the run has none.
  virtual Result<RunStep> latest_run_step(std::string_view owner_id, std::string_view run_id) = 0;
  // Order: sequence ascending.
  virtual Result<Page<RunStep>> list_run_steps(std::string_view owner_id, std::string_view run_id,
                                               const PageRequest& page) = 0;
  // Appends with seq = last_event_seq + 1. Concurrent appends to one run are serialised: each gets
  // its own seq and, once committed, no event with a lower seq can appear later.
  virtual Result<RunEvent> append_run_event(std::string_view owner_id, std::string_view run_id,
                                            std::string_view type, const nlohmann::json& payload) = 0;
  // Events with seq > after_seq, ascending, at most `limit` (1..kMaxPageLimit). The seq is the cursor.
  virtual Result<std::vector<RunEvent>> list_run_events(std::string_view owner_id, std::string_view run_id,
                                                        std::int64_t after_seq, std::uint32_t limit) = 0;
};

}  // namespace samokoder::sdk
