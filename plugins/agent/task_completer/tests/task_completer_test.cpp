// agent.task_completer through the real plugin manager: which states it takes and what it leaves.
#include <gtest/gtest.h>

#include "agent_harness.hpp"

namespace samokoder::testing {
namespace {

nlohmann::json state_with_task(const std::string& status) {
  return {{"tasks",
           {{{"id", 1}, {"description", "the list"}, {"status", "done"}},
            {{"id", 2}, {"description", "the page"}, {"status", status}},
            {{"id", 3}, {"description", "the styles"}, {"status", "todo"}}}},
          {"steps", {{{"id", 1}, {"type", "save_file"}, {"completed", true}}}},
          {"iterations", {{{"id", 1}, {"status", "done"}}}}};
}

TEST(TaskCompleter, TakesOnlyADocumentedCurrentTask) {
  AgentHarness agent("agent.task_completer", SAMOKODER_AGENT_TASK_COMPLETER_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "task_completer");
  EXPECT_TRUE(agent.wants(state_with_task("documented")));
  // A skipped task is finished already: the next one is current, and it is not documented.
  EXPECT_FALSE(agent.wants(state_with_task("skipped")));
  EXPECT_FALSE(agent.wants(state_with_task("reviewed")));
  EXPECT_FALSE(agent.wants(state_with_task("in_progress")));
  EXPECT_FALSE(agent.wants(nlohmann::json::object()));
}

TEST(TaskCompleter, MarksTheTaskDoneAndClearsItsStepsAndIterations) {
  AgentHarness agent("agent.task_completer", SAMOKODER_AGENT_TASK_COMPLETER_PLUGIN);
  ScriptedAgentContext context(state_with_task("documented"));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const auto& next = step->next_state;
  EXPECT_EQ(next["tasks"][1]["status"], "done");
  EXPECT_EQ(next["tasks"][2]["status"], "todo");
  EXPECT_TRUE(next["steps"].empty());
  EXPECT_TRUE(next["iterations"].empty());
  EXPECT_EQ(step->summary, "completed: the page");
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "task.completed");
  EXPECT_EQ(context.events[0].second["task"], 2);
  EXPECT_TRUE(context.model_calls.empty());
  // The next state is the next task's: the completer does not want it again.
  EXPECT_FALSE(agent.wants(next));
}

}  // namespace
}  // namespace samokoder::testing
