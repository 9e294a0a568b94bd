// agent.error_handler: turns a failed command (the run state's `error`, set by the executor) into a fix
// iteration of the current task (docs/pipeline.md). The model diagnoses the failure from the command's
// output and the workspace and says what to change; the task's steps after the failure are dropped,
// because the developer plans the fix's steps afresh. A task that keeps failing stops the run with a
// clear reason after `max_iterations` attempts instead of looping on the user's budget.
#include <cstdint>
#include <string>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>
#include <samokoder/agent_common/workspace_view.hpp>

namespace {

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;

std::string text_of(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// At most `max` bytes of `text`, cut between characters: an event is a short line of the timeline.
std::string clipped(const std::string& text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U)
    --end;
  return text.substr(0, end) + "...";
}

bool blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

bool completed(const nlohmann::json& step) {
  const auto it = step.find("completed");
  return it != step.end() && it->is_boolean() && it->get<bool>();
}

class ErrorHandler final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "error_handler"; }

  bool wants(const nlohmann::json& state) const override {
    const auto error = state.find("error");
    return error != state.end() && error->is_object();
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return handle(context);
    } catch (const std::exception& e) {
      return sdk::Status::internal(std::string("agent.error_handler: ") + e.what());
    }
  }

 protected:
  sdk::Status configure(const nlohmann::json& config) override {
    const auto it = config.find("max_iterations");
    if (it == config.end()) return {};
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > 100)
      return sdk::Status::invalid_argument("max_iterations must be a whole number from 1 to 100");
    max_iterations_ = it->get<std::int64_t>();
    return {};
  }

 private:
  sdk::Result<sdk::AgentStepResult> handle(sdk::AgentContext& context) const {
    nlohmann::json next = context.state();
    const nlohmann::json error = next["error"];
    std::string message = text_of(error, "message");
    if (blank(message)) message = "a command failed";
    const auto index = common::current_task(next);
    if (!index) return sdk::Status::failed_precondition("an error outside any task: " + message);
    const nlohmann::json task = next["tasks"][*index];
    const std::string task_id = task.value("id", nlohmann::json(nullptr)).dump();

    const nlohmann::json iterations = next.value("iterations", nlohmann::json::array());
    const auto attempts = static_cast<std::int64_t>(iterations.is_array() ? iterations.size() : 0);
    if (attempts >= max_iterations_)
      return sdk::Status::failed_precondition("task " + task_id + " still fails after " +
                                              std::to_string(attempts) + " attempts: " + message);

    auto files = common::describe_workspace(context);
    if (!files.ok()) return files.status();
    auto plan = ask(context, "fix_plan",
                    {{"spec", common::text_at(next, "/spec/description")},
                     {"task", task},
                     {"error", error},
                     {"files", *files},
                     {"iterations", iterations.is_array() ? iterations : nlohmann::json::array()}});
    if (!plan.ok()) return plan.status();
    const std::string fix = text_of(*plan, "fix");
    const std::string diagnosis = text_of(*plan, "diagnosis");
    if (blank(fix))
      return sdk::Status::invalid_argument("the model's fix_plan for `" + message + "` has no fix");

    auto& list = common::array_member(next, "iterations");
    list.push_back({{"id", common::next_id(list)},
                    {"status", common::iteration_status::kImplementSolution},
                    {"description", fix},
                    {"diagnosis", diagnosis},
                    {"source", "command"},
                    {"error", message}});
    // The failed command and the steps after it were planned for code that did not work; the
    // developer breaks the fix into new steps, after the ones that are done.
    nlohmann::json kept = nlohmann::json::array();
    if (const auto steps = next.find("steps"); steps != next.end() && steps->is_array()) {
      for (const auto& step : *steps)
        if (step.is_object() && completed(step)) kept.push_back(step);
    }
    next["steps"] = std::move(kept);
    next.erase("error");
    if (auto emitted = context.emit_event("error.diagnosed", {{"diagnosis", clipped(diagnosis, 2000)}});
        !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), "diagnosed: " + message};
  }

  std::int64_t max_iterations_ = 5;  // set once at init
};

}  // namespace

SAMOKODER_PLUGIN(ErrorHandler, "agent.error_handler", "1.0.0",
                 "Turns a failed command into a fix iteration of the current task")
