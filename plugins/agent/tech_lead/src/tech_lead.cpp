// agent.tech_lead: owns the run's epics. Once a template is in place and no task is open, it creates
// the first epic from the spec, plans the current epic into small tasks (one `task_plan` model call),
// completes an epic whose tasks are all finished, and ends the run with a summary when no epic is left
// (docs/pipeline.md). The summary is built from the state, not by a model: it must say exactly what
// was built and how to run it, and a step without a model call is free to replay.
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

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;
using nlohmann::json;

constexpr std::int64_t kDefaultMaxTasks = 12;
constexpr std::int64_t kLargestMaxTasks = 100;

bool is_true(const json& object, const char* member) {
  const auto it = object.find(member);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

bool finished(const json& task) {
  const std::string status = string_of(task, "status");
  return status == common::task_status::kDone || status == common::task_status::kSkipped;
}

// The command that starts the app: the one the troubleshooter settled on, else the template's.
std::string run_command_of(const json& state) {
  std::string command = common::text_at(state, "/app/run_command");
  if (command.empty()) command = common::text_at(state, "/template/run_command");
  return command;
}

std::string build_summary(const json& state) {
  std::string text = "The app is finished.\n\nWhat was built:\n";
  const auto epics = state.find("epics");
  const auto tasks = state.find("tasks");
  if (epics != state.end() && epics->is_array()) {
    for (const auto& epic : *epics) {
      if (!epic.is_object()) continue;
      text += "\n" + string_of(epic, "name") + "\n";
      if (tasks == state.end() || !tasks->is_array()) continue;
      int number = 0;
      for (const auto& task : *tasks) {
        if (!task.is_object() || task.value("epic_id", json()) != epic.value("id", json())) continue;
        text += "  " + std::to_string(++number) + ". " + string_of(task, "description");
        if (string_of(task, "status") == common::task_status::kSkipped) text += " (skipped)";
        text += "\n";
      }
      if (number == 0) text += "  (no tasks)\n";
    }
  }
  const std::string command = run_command_of(state);
  text += command.empty() ? "\nNo run command is known; README.md says how to start the app.\n"
                          : "\nRun it with: " + command + "\n";
  text +=
      "See it in the project's preview, which runs the app and follows every change to its files; "
      "README.md describes the app and its API.\n";
  return text;
}

class TechLead final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "tech_lead"; }

  bool wants(const json& state) const override {
    if (!state.is_object()) return false;
    const auto tmpl = state.find("template");
    if (tmpl == state.end() || tmpl->is_null()) return false;
    return !common::current_task(state) && !is_true(state, "done");
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return step(context);
    } catch (const std::exception& error) {
      return sdk::Status::internal(std::string("agent.tech_lead: ") + error.what());
    }
  }

 protected:
  sdk::Status configure(const json& config) override {
    const auto it = config.find("max_tasks");
    if (it == config.end() || it->is_null()) return {};
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > kLargestMaxTasks)
      return sdk::Status::invalid_argument("max_tasks must be an integer from 1 to " +
                                           std::to_string(kLargestMaxTasks));
    max_tasks_ = it->get<std::int64_t>();
    return {};
  }

 private:
  sdk::Result<sdk::AgentStepResult> step(sdk::AgentContext& context) const {
    json next = context.state();
    auto& epics = common::array_member(next, "epics");
    if (epics.empty()) {
      std::string description = common::text_at(next, "/spec/description");
      if (description.empty()) description = common::text_at(next, "/description");
      epics.push_back({{"id", 1},
                       {"name", "Initial project"},
                       {"source", "app"},
                       {"description", description},
                       {"planned", false},
                       {"completed", false}});
    }
    // Completing an epic needs no model call, so one step walks past every finished epic to the next
    // one that needs a plan (or to the end): a step per epic would only lengthen the timeline.
    while (const auto index = common::current_epic(next)) {
      auto& epic = next["epics"][*index];
      if (!is_true(epic, "planned")) return plan(context, std::move(next), *index);
      const json epic_id = epic.value("id", json());
      for (const auto& task : common::array_member(next, "tasks"))
        if (task.is_object() && task.value("epic_id", json()) == epic_id && !finished(task))
          return sdk::Status::failed_precondition("epic " + epic_id.dump() + " still has an open task");
      epic["completed"] = true;
    }
    next["done"] = true;
    next["summary"] = build_summary(next);
    if (auto emitted = context.emit_event("app.finished", {{"summary", next["summary"]}}); !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), "every epic is complete: the app is finished"};
  }

  sdk::Result<sdk::AgentStepResult> plan(sdk::AgentContext& context, json next, std::size_t index) const {
    const json epic = next["epics"][index];
    auto files = common::describe_workspace(context);
    if (!files.ok()) return files.status();
    json finished_tasks = json::array();
    for (const auto& task : common::array_member(next, "tasks"))
      if (task.is_object() && finished(task)) finished_tasks.push_back(string_of(task, "description"));
    std::string spec = common::text_at(next, "/spec/description");
    if (spec.empty()) spec = common::text_at(next, "/description");
    const json values = {
        {"spec", spec},
        {"epic", {{"name", string_of(epic, "name")}, {"description", string_of(epic, "description")}}},
        {"files", *files},
        {"template", next.value("template", json())},
        {"finished_tasks", finished_tasks},
        {"max_tasks", max_tasks_}};
    auto answer = ask(context, "task_plan", values);
    if (!answer.ok()) return answer.status();

    const auto planned = answer->find("tasks");
    if (planned == answer->end() || !planned->is_array() || planned->empty())
      return sdk::Status::invalid_argument("task_plan: the plan has no tasks");
    json tasks = json::array();
    for (std::size_t i = 0; i < planned->size(); ++i) {
      const auto& task = (*planned)[i];
      std::string description = trimmed(string_of(task, "description"));
      if (description.empty())
        return sdk::Status::invalid_argument("task_plan: task " + std::to_string(i + 1) +
                                             " has no description");
      // A longer plan than allowed is cut, not refused: its first tasks are the foundation and still
      // make sense alone, and the epic's check at its end catches whatever the cut left out.
      if (static_cast<std::int64_t>(tasks.size()) >= max_tasks_) break;
      tasks.push_back({{"description", std::move(description)},
                       {"testing_instructions", trimmed(string_of(task, "testing_instructions"))}});
    }

    auto& state_tasks = common::array_member(next, "tasks");
    json descriptions = json::array();
    for (auto& task : tasks) {
      descriptions.push_back(task["description"]);
      state_tasks.push_back({{"id", common::next_id(state_tasks)},
                             {"epic_id", epic.value("id", json())},
                             {"description", std::move(task["description"])},
                             {"status", common::task_status::kTodo},
                             {"testing_instructions", std::move(task["testing_instructions"])},
                             {"instructions", nullptr}});
    }
    next["epics"][index]["planned"] = true;
    if (auto emitted = context.emit_event(
            "plan.made",
            {{"epic", epic.value("id", json())}, {"name", string_of(epic, "name")}, {"tasks", descriptions}});
        !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), "planned " + string_of(epic, "name") + " in " +
                                                     std::to_string(descriptions.size()) + " tasks"};
  }

  std::int64_t max_tasks_ = kDefaultMaxTasks;
};

}  // namespace

SAMOKODER_PLUGIN(TechLead, "agent.tech_lead", "1.0.0",
                 "Plans each epic into small testable tasks and ends the run with a summary")
