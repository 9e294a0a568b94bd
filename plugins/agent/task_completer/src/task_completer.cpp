// agent.task_completer: the last agent of a task's life. A task the tech writer documented is marked
// done, and the steps and iterations that belonged to it are cleared, so the next task starts from a
// clean slate (docs/pipeline.md). (A task an integrator's agent skips is finished already: it is never
// the current task.) No model call: nothing here
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
    return common::current_task_status(state) == common::task_status::kDocumented;
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    nlohmann::json next = context.state();
    const auto index = common::current_task(next);
    if (!index) return sdk::Status::failed_precondition("there is no current task to complete");
    auto& task = next["tasks"][*index];
    task["status"] = common::task_status::kDone;
    next["steps"] = nlohmann::json::array();
    next["iterations"] = nlohmann::json::array();
    const std::string description = task.value("description", std::string());
    if (auto emitted = context.emit_event("task.completed",
                                          {{"task", task.value("id", 0)}, {"description", description}});
        !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), "completed: " + description};
  }
};

}  // namespace

SAMOKODER_PLUGIN(TaskCompleter, "agent.task_completer", "1.0.0",
                 "Marks the documented task done and clears its steps and iterations")
