// agent.task_completer: the last agent of a task's life. A task the tech writer documented (or one an
// integrator's agent skipped) is marked done, and the steps and iterations that belonged to it are
// cleared, so the next task starts from a clean slate (docs/pipeline.md). No model call: nothing here
// needs judgement, and a step without one costs nothing to replay.
#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>

namespace {

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;

class TaskCompleter final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "task_completer"; }

  bool wants(const nlohmann::json& state) const override {
    const std::string status = common::current_task_status(state);
    return status == common::task_status::kDocumented || status == common::task_status::kSkipped;
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    nlohmann::json next = context.state();
    const auto index = common::current_task(next);
    if (!index) return sdk::Status::failed_precondition("there is no current task to complete");
    auto& task = next["tasks"][*index];
    const bool skipped = task.value("status", std::string()) == common::task_status::kSkipped;
    if (!skipped) task["status"] = common::task_status::kDone;
    next["steps"] = nlohmann::json::array();
    next["iterations"] = nlohmann::json::array();
    const std::string description = task.value("description", std::string());
    if (auto emitted = context.emit_event("task.completed", {{"task", task.value("id", 0)},
                                                             {"description", description},
                                                             {"skipped", skipped}});
        !emitted.ok())
      return emitted;
    // A skipped task stays "skipped" in the list; both count as finished (common::current_task).
    return sdk::AgentStepResult{std::move(next), (skipped ? "skipped: " : "completed: ") + description};
  }
};

}  // namespace

SAMOKODER_PLUGIN(TaskCompleter, "agent.task_completer", "1.0.0",
                 "Marks the documented task done and clears its steps and iterations")
