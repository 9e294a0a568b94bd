// Test support for agent plugins (plugins/agent/*/tests):
//
// ScriptedAgentContext: an sdk::AgentContext that behaves as the kernel's does for one step, with an
// in-memory workspace and everything from outside scripted by the test: model answers by the call's
// JSON output name (the agent's prompt name), the user's answers by question id (a question without one
// is recorded and gets kAborted, "waiting for the user", as the kernel pauses the step), command results
// by a function of the request. It records what the agent asked, ran, wrote and emitted, so a test
// asserts on behaviour. Replay is the kernel's business and is covered by the runs and e2e suites.
//
// AgentHarness: the agent's built .so loaded by the real plugin manager with a config section, and its
// wants() and run_step() called through a lease, as the runs engine calls them.
//
// Ownership: each object owns what it holds. Thread-safety: one thread (the test's).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/agent.hpp>

#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {

class ScriptedAgentContext final : public sdk::AgentContext {
 public:
  // The JSON the model answers a call with; the call's request is given for assertions.
  using ModelAnswerer = std::function<sdk::Result<nlohmann::json>(const sdk::ModelRequest&)>;
  using CommandAnswerer = std::function<sdk::Result<sdk::CommandResult>(const sdk::CommandRequest&)>;

  explicit ScriptedAgentContext(nlohmann::json state, nlohmann::json task = nullptr);

  // Scripting.
  // Answers every call whose json_output name is `call`, in order: the n-th call gets answers[n], the
  // last one repeats. A call nobody scripted fails with kUnavailable (and is recorded).
  void script_model(const std::string& call, std::vector<nlohmann::json> answers);
  void script_model(const std::string& call, ModelAnswerer answerer);
  void answer(const std::string& question_id, std::string text);
  void script_commands(CommandAnswerer answerer);
  std::map<std::string, std::string> files;  // the workspace, path -> content
  sdk::Status preview_result;                // what start_preview() returns (OK unless a test sets it)

  // What the step did.
  std::vector<sdk::ModelRequest> model_calls;
  std::vector<std::string> model_call_names;  // json_output names, in call order
  std::vector<sdk::UserQuestion> questions;   // every question asked, answered or not
  std::vector<sdk::CommandRequest> commands;
  std::vector<std::pair<std::string, nlohmann::json>> events;
  std::vector<std::string> written;  // paths written, in order (deletions as "-<path>")
  int previews_started = 0;
  std::size_t reads = 0;  // read_file calls
  // The calls named `call` so far.
  std::size_t calls_of(const std::string& call) const;

  // sdk::AgentContext
  std::string_view run_id() const noexcept override { return "run-1"; }
  std::string_view project_id() const noexcept override { return "project-1"; }
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
  sdk::CancelToken cancel_token() const noexcept override { return sdk::never_cancelled(); }
  sdk::Status start_preview() override;

 private:
  nlohmann::json state_;
  nlohmann::json task_;
  std::map<std::string, ModelAnswerer> model_;
  std::map<std::string, std::string> answers_;
  CommandAnswerer commands_answerer_;
};

// A command result that exited with `exit_code` and printed `out`.
sdk::CommandResult command_exited(int exit_code, std::string out = {}, std::string err = {});

class AgentHarness {
 public:
  // Loads `plugin_file` as `plugin_id` with `config` as its section; the load must succeed (asserted
  // by the constructor's caller through error()).
  AgentHarness(std::string plugin_id, const std::filesystem::path& plugin_file,
               nlohmann::json config = nlohmann::json::object());
  ~AgentHarness();
  AgentHarness(const AgentHarness&) = delete;
  AgentHarness& operator=(const AgentHarness&) = delete;

  // Why the plugin is not active (its init's message), or "" when it is.
  std::string error() const;
  bool wants(const nlohmann::json& state);
  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context);
  std::string role();

 private:
  std::string plugin_id_;
  TempDir dir_;
  metrics::Registry registry_;
  core::SystemClock clock_;
  std::unique_ptr<plugins::PluginManager> manager_;
};

}  // namespace samokoder::testing
