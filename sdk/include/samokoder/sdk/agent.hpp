// Agent: one step of the generation pipeline (spec writer, architect, tech lead, developer, ...).
//
// The kernel's orchestrator picks the next agent from the run's state, calls run_step with a context
// that gives the agent everything it may touch, and persists the state the agent proposes. Agents
// keep no state of their own between steps: whatever must survive goes into the proposed state, so
// a run resumes after a restart or on another node.
//
// Draft for SDK 1.0: the pipeline issue completes AgentContext; until SDK 1.0 is released, fields may
// still change. After release the interface is frozen (new capability comes as Agent2).
//
// Ownership: the context is owned by the kernel and valid only during run_step.
// Thread-safety: run_step may be called concurrently for different runs; an instance must not keep
// per-run state in members.
#pragma once

#include <string>
#include <string_view>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

// What an agent sees and may do during one step. Implemented by the kernel.
class AgentContext {
 public:
  virtual ~AgentContext() = default;

  // The run's current state (the last committed step), as JSON.
  virtual const nlohmann::json& state() const noexcept = 0;
  // Reads a file of the project's workspace; paths are relative and confined to the workspace.
  virtual Result<std::string> read_file(std::string_view path) = 0;
  // Writes a file of the project's workspace and records a new version of it.
  virtual Status write_file(std::string_view path, std::string_view content) = 0;
  // Appends an event to the run's event stream (persisted before it is sent to clients).
  virtual Status emit_event(std::string_view type, const nlohmann::json& payload) = 0;
  // The run's cancellation: stopped once the user or the kernel cancelled the run. Pass it to every
  // long call of the step (HTTP, child processes, the model), which then end early; a step that sees
  // stop_requested() returns kCancelled.
  virtual CancelToken cancel_token() const noexcept = 0;
};

struct AgentStepResult {
  nlohmann::json next_state;  // the state the agent proposes; the kernel commits it as the next step
  std::string summary;        // one line for the run's timeline
};

class Agent : public Plugin {
 public:
  // The pipeline role this agent fills, e.g. "spec_writer"; stable across versions.
  virtual std::string_view role() const noexcept = 0;
  virtual Result<AgentStepResult> run_step(AgentContext& context) = 0;
};

}  // namespace samokoder::sdk
