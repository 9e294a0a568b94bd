// agent.developer: turns the current task, or a fix the troubleshooter or the error handler asked
// for, into steps the code monkey (save_file) and the executor (command) carry out one by one
// (docs/pipeline.md). One model call per step: `task_steps` for a new task, `iteration_steps` for an
// open iteration. The model's steps are checked before they reach the state, so a bad path or an
// empty command fails here with the step named instead of later in another agent.
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>
#include <samokoder/agent_common/workspace_view.hpp>

namespace {

using samokoder::agent_common::string_of;
using samokoder::agent_common::trimmed;
using samokoder::agent_common::workspace_path;

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;
using nlohmann::json;

std::string run_command_of(const json& state) {
  std::string command = common::text_at(state, "/app/run_command");
  if (command.empty()) command = common::text_at(state, "/template/run_command");
  return command.empty() ? std::string("(not known yet)") : command;
}

std::string spec_of(const json& state) {
  std::string spec = common::text_at(state, "/spec/description");
  return spec.empty() ? common::text_at(state, "/description") : spec;
}

json task_view(const json& task) {
  return {{"description", string_of(task, "description")},
          {"testing_instructions", string_of(task, "testing_instructions")}};
}

// The model's steps as state steps with ids from `first_id`, or the first problem found.
sdk::Result<json> to_steps(const json& answer, const std::string& call, std::int64_t first_id) {
  const auto steps = answer.find("steps");
  if (steps == answer.end() || !steps->is_array() || steps->empty())
    return sdk::Status::invalid_argument(call + ": the answer has no steps");
  json out = json::array();
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const auto& step = (*steps)[i];
    const std::string name = call + ": step " + std::to_string(i + 1);
    const std::string type = string_of(step, "type");
    const std::string description = trimmed(string_of(step, "description"));
    json made = {{"id", first_id + static_cast<std::int64_t>(i)}, {"type", type}};
    if (type == "save_file") {
      const std::string path = workspace_path(trimmed(string_of(step, "path")));
      if (path.empty())
        return sdk::Status::invalid_argument(
            name + " (save_file) needs a relative path inside the workspace, not \"" +
            string_of(step, "path") + "\"");
      made["path"] = path;
      made["description"] = description;
    } else if (type == "command") {
      const std::string command = trimmed(string_of(step, "command"));
      if (command.empty()) return sdk::Status::invalid_argument(name + " (command) has no command");
      json timeout = nullptr;
      if (const auto it = step.find("timeout_s"); it != step.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<std::int64_t>() < 1)
          return sdk::Status::invalid_argument(name +
                                               " (command) has a timeout_s that is not a positive integer");
        timeout = *it;
      }
      made["command"] = command;
      made["description"] = description;
      made["timeout_s"] = timeout;
    } else {
      return sdk::Status::invalid_argument(name + " has the unknown type \"" + type + "\"");
    }
    made["completed"] = false;
    out.push_back(std::move(made));
  }
  return out;
}

class Developer final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "developer"; }

  bool wants(const json& state) const override {
    if (!state.is_object() || !common::current_task(state) || common::current_step(state)) return false;
    if (common::current_task_status(state) == common::task_status::kTodo) return true;
    const auto iteration = common::open_iteration(state);
    return iteration && string_of(state["iterations"][*iteration], "status") ==
                            common::iteration_status::kImplementSolution;
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return step(context);
    } catch (const std::exception& error) {
      return sdk::Status::internal(std::string("agent.developer: ") + error.what());
    }
  }

 private:
  sdk::Result<sdk::AgentStepResult> step(sdk::AgentContext& context) const {
    json next = context.state();
    const auto task_index = common::current_task(next);
    if (!task_index) return sdk::Status::failed_precondition("there is no current task to break into steps");
    if (common::current_task_status(next) == common::task_status::kTodo)
      return start_task(context, std::move(next), *task_index);
    const auto iteration = common::open_iteration(next);
    if (!iteration ||
        string_of(next["iterations"][*iteration], "status") != common::iteration_status::kImplementSolution)
      return sdk::Status::failed_precondition("the current task is started and no iteration waits for a fix");
    return start_iteration(context, std::move(next), *task_index, *iteration);
  }

  sdk::Result<sdk::AgentStepResult> start_task(sdk::AgentContext& context, json next,
                                               std::size_t task_index) const {
    auto files = common::describe_workspace(context);
    if (!files.ok()) return files.status();
    auto& task = next["tasks"][task_index];
    const json values = {{"spec", spec_of(next)},
                         {"architecture", next.value("architecture", json())},
                         {"template", next.value("template", json())},
                         {"task", task_view(task)},
                         {"files", *files},
                         {"run_command", run_command_of(next)}};
    auto answer = ask(context, "task_steps", values);
    if (!answer.ok()) return answer.status();
    auto& steps = common::array_member(next, "steps");
    auto made = to_steps(*answer, "task_steps", common::next_id(steps));
    if (!made.ok()) return made.status();
    const auto count = made->size();
    for (auto& step : *made)
      steps.push_back(std::move(step));
    task["status"] = common::task_status::kInProgress;
    task["instructions"] = string_of(*answer, "instructions");
    const std::string description = string_of(task, "description");
    if (auto emitted = context.emit_event(
            "task.started",
            {{"task", task.value("id", json())}, {"description", description}, {"steps", count}});
        !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next),
                                "started the task in " + std::to_string(count) + " steps: " + description};
  }

  sdk::Result<sdk::AgentStepResult> start_iteration(sdk::AgentContext& context, json next,
                                                    std::size_t task_index,
                                                    std::size_t iteration_index) const {
    auto files = common::describe_workspace(context);
    if (!files.ok()) return files.status();
    auto& iteration = next["iterations"][iteration_index];
    // The whole iteration: its description, and whatever diagnosis the agent that opened it kept
    // (the failed command's output, the failed check, the user's report).
    json shown = iteration;
    shown.erase("status");
    const json values = {{"spec", spec_of(next)},
                         {"task", task_view(next["tasks"][task_index])},
                         {"iteration", shown},
                         {"files", *files},
                         {"run_command", run_command_of(next)}};
    auto answer = ask(context, "iteration_steps", values);
    if (!answer.ok()) return answer.status();
    auto& steps = common::array_member(next, "steps");
    auto made = to_steps(*answer, "iteration_steps", common::next_id(steps));
    if (!made.ok()) return made.status();
    const auto count = made->size();
    for (auto& step : *made)
      steps.push_back(std::move(step));
    iteration["status"] = common::iteration_status::kChecking;
    // The code monkey writes each file with the fix's plan beside the task's.
    iteration["instructions"] = string_of(*answer, "instructions");
    if (auto emitted = context.emit_event("iteration.started",
                                          {{"iteration", iteration.value("id", json())}, {"steps", count}});
        !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), "planned the fix in " + std::to_string(count) + " steps"};
  }
};

}  // namespace

SAMOKODER_PLUGIN(Developer, "agent.developer", "1.0.0",
                 "Breaks the current task or fix into file and command steps")
