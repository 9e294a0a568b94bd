// agent.tech_writer: documents the app once a task passed its check (docs/pipeline.md). README.md is
// rewritten (one `readme` model call) only when the reviewed task is the last open one of its epic:
// the app is then in a state worth describing, and writing it after every task would cost a model
// call each time for a text the next task changes again. Either way the task moves on to `documented`.
#include <exception>
#include <string>
#include <utility>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>
#include <samokoder/agent_common/workspace_view.hpp>

namespace {

using samokoder::agent_common::string_of;

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;
using nlohmann::json;

constexpr std::string_view kReadme = "README.md";

bool finished(const json& task) {
  const std::string status = string_of(task, "status");
  return status == common::task_status::kDone || status == common::task_status::kSkipped;
}

// Whether every other task of the epic of tasks[index] is done or skipped.
bool last_of_epic(const json& tasks, std::size_t index) {
  const json epic_id = tasks[index].value("epic_id", json());
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (i != index && tasks[i].is_object() && tasks[i].value("epic_id", json()) == epic_id &&
        !finished(tasks[i]))
      return false;
  return true;
}

class TechWriter final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "tech_writer"; }

  bool wants(const json& state) const override {
    return common::current_task_status(state) == common::task_status::kReviewed;
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return step(context);
    } catch (const std::exception& error) {
      return sdk::Status::internal(std::string("agent.tech_writer: ") + error.what());
    }
  }

 private:
  sdk::Result<sdk::AgentStepResult> step(sdk::AgentContext& context) const {
    json next = context.state();
    const auto index = common::current_task(next);
    if (!index || common::current_task_status(next) != common::task_status::kReviewed)
      return sdk::Status::failed_precondition("the current task is not reviewed");
    auto& tasks = next["tasks"];
    std::string summary = "documented: " + string_of(tasks[*index], "description");
    if (last_of_epic(tasks, *index)) {
      auto wrote = write_readme(context, next);
      if (!wrote.ok()) return wrote;
      summary = "wrote README.md; " + summary;
    }
    tasks[*index]["status"] = common::task_status::kDocumented;
    return sdk::AgentStepResult{std::move(next), std::move(summary)};
  }

  sdk::Status write_readme(sdk::AgentContext& context, const json& state) const {
    auto files = common::describe_workspace(context);
    if (!files.ok()) return files.status();
    auto current = context.read_file(kReadme);
    if (!current.ok() && current.status().code() != sdk::StatusCode::kNotFound) return current.status();
    std::string spec = common::text_at(state, "/spec/description");
    if (spec.empty()) spec = common::text_at(state, "/description");
    std::string run_command = common::text_at(state, "/app/run_command");
    if (run_command.empty()) run_command = common::text_at(state, "/template/run_command");
    if (run_command.empty()) run_command = "(not known)";
    const json values = {{"spec", spec},
                         {"files", *files},
                         {"run_command", run_command},
                         {"readme", current.ok() ? *current : std::string("(none)")}};
    common::AskOptions options;
    options.max_tokens = 8192;  // a whole document
    auto answer = ask(context, "readme", values, options);
    if (!answer.ok()) return answer.status();
    const std::string readme = string_of(*answer, "readme");
    if (readme.find_first_not_of(" \t\r\n") == std::string::npos)
      return sdk::Status::invalid_argument("readme: the answer's README is empty");
    if (auto wrote = context.write_file(kReadme, readme); !wrote.ok()) return wrote;
    return context.emit_event("docs.written", {{"path", kReadme}});
  }
};

}  // namespace

SAMOKODER_PLUGIN(TechWriter, "agent.tech_writer", "1.0.0",
                 "Writes README.md at the end of each epic and marks the reviewed task documented")
