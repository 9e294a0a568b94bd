// StepContext: the kernel's sdk::AgentContext for one attempt at one step (or one fan-out branch) of
// a run. It answers the agent from the run's record when the attempt is a re-run (run_record.hpp) and
// records every new model answer, question and command result in the run's event log before the agent
// sees it; file writes go to the workspace at once and are kept as the step's changes, which the
// engine stores with the step's commit (or undoes when the step fails). Commands run confined by the
// preview runner that runs.command_containment names (PreviewRunner::contain_command), never
// unconfined unless that setting says "none".
//
// Ownership: the engine owns the context for the duration of Agent::run_step; the services it refers
// to outlive it. Thread-safety: one thread at a time (the agent's); the model's deltas arrive on the
// gateway's thread and only touch the hub.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <samokoder/sdk/agent.hpp>

#include "api/workspace.hpp"
#include "core/clock.hpp"
#include "llm/gateway.hpp"
#include "plugins/plugin_manager.hpp"
#include "processes/process_service.hpp"
#include "runs/event_hub.hpp"
#include "runs/run_record.hpp"

namespace samokoder::runs {

// The engine's services a step uses.
struct StepServices {
  plugins::PluginManager& plugins;
  llm::LlmGateway& llm;
  processes::ProcessService& processes;
  const api::Workspaces& workspaces;
  RunEventHub& hub;
  const core::Clock& clock;
  std::chrono::milliseconds command_timeout;
  // The preview runner plugin that confines commands (runs.command_containment), or "none".
  std::string command_containment;
  // Starts the project's preview for its owner (owner id, project id); empty when the server has none.
  std::function<sdk::Status(const std::string&, const std::string&)> start_preview;
};

// Which step of which run this attempt builds.
struct StepIdentity {
  std::string run_id;
  std::string owner_id;
  std::string project_id;
  std::string agent_id;              // the plugin id, e.g. "agent.spec_writer"
  std::string role;                  // the agent's role, for the model chain
  std::optional<std::string> model;  // the run's model for the role ("provider/model"), if it set one
  std::int64_t base = 0;             // the sequence of the committed step the attempt starts from
  int branch = -1;                   // the fan-out task index; -1 for an ordinary step
};

class StepContext final : public sdk::AgentContext {
 public:
  StepContext(StepServices services, StepIdentity identity, const nlohmann::json& state, nlohmann::json task,
              const RunRecord& record, sdk::CancelToken cancel);

  std::string_view run_id() const noexcept override { return identity_.run_id; }
  std::string_view project_id() const noexcept override { return identity_.project_id; }
  const nlohmann::json& state() const noexcept override { return state_; }
  const nlohmann::json& task() const noexcept override { return task_; }
  sdk::Result<sdk::ModelAnswer> ask_model(const sdk::ModelRequest& request) override;
  sdk::Result<sdk::UserAnswer> ask_user(const sdk::UserQuestion& question) override;
  sdk::Result<sdk::CommandResult> run_command(const sdk::CommandRequest& request) override;
  sdk::Result<std::string> read_file(std::string_view path) override;
  sdk::Result<std::vector<std::string>> list_files() override;
  sdk::Status write_file(std::string_view path, std::string_view content) override;
  sdk::Status delete_file(std::string_view path) override;
  sdk::Status emit_event(std::string_view type, const nlohmann::json& payload) override;
  sdk::CancelToken cancel_token() const noexcept override { return cancel_; }
  sdk::Status start_preview() override;

  // What the step produced, for the engine's commit.
  struct Emitted {
    std::string type;
    nlohmann::json payload;
  };
  // Path -> new content, or nullopt for a deletion; in path order.
  const std::map<std::string, std::optional<std::string>>& changes() const noexcept { return changes_; }
  const std::vector<Emitted>& emitted() const noexcept { return emitted_; }
  // The question the step waits for (its public id), when it asked one nobody answered yet.
  const std::optional<std::string>& waiting_for() const noexcept { return waiting_for_; }
  // Puts the workspace files this step changed back to their stored versions (a failed step).
  void undo_changes();

 private:
  // Appends a recorded event to the run's log now (not with the step) and wakes its watchers.
  sdk::Status record(const char* type, nlohmann::json payload);
  sdk::Result<std::string> stored_content(const std::string& path);

  StepServices services_;
  StepIdentity identity_;
  const nlohmann::json& state_;
  nlohmann::json task_;
  const RunRecord& record_;
  sdk::CancelToken cancel_;
  int model_calls_ = 0;
  int commands_ = 0;
  std::map<std::string, std::optional<std::string>> changes_;
  std::vector<Emitted> emitted_;
  std::optional<std::string> waiting_for_;
};

// Puts the workspace files named in `changes` back to their stored versions (or removes them when
// storage has none): the undo of a step whose changes were not committed. Failures are logged.
void restore_workspace(const StepServices& services, const std::string& owner_id,
                       const std::string& project_id, const std::string& run_id,
                       const std::map<std::string, std::optional<std::string>>& changes);

// A public question id: "<base>.step.<id>" for an ordinary step, "<base>.b<n>.<id>" for fan-out task n,
// "<base>.kernel.<id>" for the kernel's own questions (branch -2, the loop detector's).
std::string question_id(std::int64_t base, int branch, std::string_view id);

}  // namespace samokoder::runs
