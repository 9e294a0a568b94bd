// Agent: one step of the generation pipeline (spec writer, architect, tech lead, developer, ...).
//
// A run's state is a chain of immutable JSON snapshots, one per committed step. For each step the
// kernel's orchestrator asks the agents of the configured pipeline, in order, whether they want the
// current state (wants()); the first that does runs the step (run_step) with a context that gives it
// everything a step may touch, and the kernel commits the state it proposes, together with the files
// it wrote and the events it emitted, in one transaction. A state no agent wants ends the run.
//
// Steps are replayed, never resumed half-way: a step that paused for the user's answer, or whose
// server died, runs again from the start. Every model answer, user answer and command result a step
// got is recorded before the agent sees it, and the re-run gets the recorded value back instead of
// calling the model or the command again. So an agent must be deterministic given its inputs (the
// state, the task, what the context answers) and keep no state of its own between calls: it asks the
// context in the same order each time, and whatever must survive goes into the proposed state.
//
// Pausing: ask_user() without a recorded answer returns kAborted ("waiting for the user"); the agent
// returns that status at once (or anything: the kernel knows the step paused). The run then holds no
// thread until the answer arrives, across restarts of the server.
//
// Independent work: a state whose "fan_out" member is {"agent": "<plugin id>", "tasks": [...],
// "results": {...}} makes the orchestrator run that agent once per task without a result, in
// parallel (bounded per run and globally), each seeing the task through task(); each branch's
// proposed state is taken as that task's result and committed as its own step in task order. Once
// every task has a result, the pipeline routes the state as usual (typically to the agent that made
// the fan-out, which folds the results in and removes the member).
//
// Compatibility: frozen since SDK 1.0 (new capability comes as a new interface).
//
// Ownership: the context is owned by the kernel and valid only during run_step.
// Thread-safety: wants() and run_step() are called concurrently for different runs and for the
// branches of one fan-out; an instance must not keep per-run state in members. A context is used by
// one thread at a time.
// Exceptions: none should cross the interface; the kernel turns a throw into a failed step.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/llm.hpp>
#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

// One call to the model of the agent's role (the run's model for that role, else the config's chain).
struct ModelRequest {
  std::string system;
  std::vector<ChatMessage> messages;
  std::optional<JsonOutput> json_output;  // the answer is then validated against the schema
  std::uint32_t max_tokens = 4096;
  std::optional<double> temperature;
};

struct ModelAnswer {
  std::string content;                 // the text, or the JSON text
  std::optional<nlohmann::json> json;  // parsed and validated, when json_output was asked
  std::string model;                   // "provider/model" that answered
  TokenUsage usage;
  bool replayed = false;  // true when the answer came from the run's record, not from the model
};

// A question to the user. The id names it within the step; the kernel scopes it to the run and step.
struct UserQuestion {
  std::string id;                    // [a-z0-9_.-]{1,64}, unique within the step
  std::string text;                  // what the user reads
  std::vector<std::string> options;  // buttons; empty: free text
};

struct UserAnswer {
  std::string text;  // the answer (one of the options when there were some)
  bool replayed = false;
};

// A command run in the project's workspace through the host's child-process service: no shell unless
// asked, a clean environment (PATH, HOME=<workspace>, LANG plus `environment`), the kernel's limits,
// the run's cancellation. Output lines stream to the run's watchers as they come.
struct CommandRequest {
  std::vector<std::string> argv;  // with shell: exactly one string, run as /bin/sh -c
  bool shell = false;
  std::string working_directory;  // relative to the workspace; empty: its root
  std::vector<std::pair<std::string, std::string>> environment;
  std::chrono::milliseconds timeout{0};  // 0: the kernel's default
};

struct CommandResult {
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool timed_out = false;
  std::string stdout_tail;  // the last bytes of each stream (up to 16 KiB)
  std::string stderr_tail;
  bool replayed = false;

  bool succeeded() const noexcept { return exit_code == 0 && !timed_out; }
};

// What an agent sees and may do during one step. Implemented by the kernel.
class AgentContext {
 public:
  virtual ~AgentContext() = default;

  virtual std::string_view run_id() const noexcept = 0;
  virtual std::string_view project_id() const noexcept = 0;
  // The run's current state (the last committed step), as JSON.
  virtual const nlohmann::json& state() const noexcept = 0;
  // The branch's task in a fan-out (see above); null otherwise.
  virtual const nlohmann::json& task() const noexcept = 0;

  // Asks the model of the agent's role through the kernel's LLM gateway (the user's key, retries,
  // budgets, accounting). Text streams to the run's watchers as it arrives. The exchange is recorded
  // before it is returned; a re-run of the step gets it back (replayed) without a model call.
  virtual Result<ModelAnswer> ask_model(const ModelRequest& request) = 0;
  // Asks the user and pauses the run until they answer (kAborted "waiting for the user"); a re-run of
  // the step gets the answer. Other failures: kInvalidArgument for a bad question.
  virtual Result<UserAnswer> ask_user(const UserQuestion& question) = 0;
  // Runs a command in the workspace (see CommandRequest); the result is recorded like a model answer.
  // A command that ran returns its result whatever its exit; errors are for commands that could not
  // start (kNotFound, kInvalidArgument) and for cancellation (kCancelled).
  virtual Result<CommandResult> run_command(const CommandRequest& request) = 0;

  // Reads a file of the project's workspace as this step sees it (its own writes included); paths are
  // relative and confined to the workspace. kNotFound when there is no such file.
  virtual Result<std::string> read_file(std::string_view path) = 0;
  // Every file path of the workspace as this step sees it, sorted.
  virtual Result<std::vector<std::string>> list_files() = 0;
  // Writes a file of the workspace. It is on disk at once (for commands of this step) and stored as a
  // new version attributed to this step when the step commits; a failed step's writes are undone.
  virtual Status write_file(std::string_view path, std::string_view content) = 0;
  virtual Status delete_file(std::string_view path) = 0;

  // Adds an event to the step; it is stored with the step's commit and only then sent to watchers.
  // `type` is [a-z0-9_.]{1,64} and must not start with one of the kernel's prefixes: "run.", "step.",
  // "llm.", "question.", "command.", "message.", "file.", "budget." (kInvalidArgument). The payload is
  // at most 64 KiB (kResourceExhausted); the kernel adds a "step" member to an object payload.
  virtual Status emit_event(std::string_view type, const nlohmann::json& payload) = 0;
  // The run's cancellation: stopped once the user or the kernel cancelled the run. Pass it to every
  // long call of the step that is not made through this context; a step that sees stop_requested()
  // returns kCancelled.
  virtual CancelToken cancel_token() const noexcept = 0;

  // Starts the project's live preview for the run's owner, as POST /projects/{id}/preview does, or
  // keeps the one that already runs; the preview then follows the files later steps write. Not
  // recorded: starting is idempotent, so a re-run of the step may call it again. Errors are the
  // preview API's (kFailedPrecondition when no runner can run the workspace, kResourceExhausted at a
  // limit, kUnavailable when the server has no previews); a run goes on without a preview.
  virtual Status start_preview() = 0;
};

struct AgentStepResult {
  nlohmann::json next_state;  // the state the agent proposes; the kernel commits it as the next step
  std::string summary;        // one line for the run's timeline
};

class Agent : public Plugin {
 public:
  // The pipeline role this agent fills, e.g. "spec_writer"; stable across versions. It picks the
  // model chain (config llm.roles.<role>, or the run's models.<role>).
  virtual std::string_view role() const noexcept = 0;
  // Whether this agent takes the step for `state`. Cheap and pure: called for every step on the
  // orchestrator's thread, in pipeline order, until one agent says yes.
  virtual bool wants(const nlohmann::json& state) const = 0;
  virtual Result<AgentStepResult> run_step(AgentContext& context) = 0;
};

}  // namespace samokoder::sdk
