// agent.tech_writer through the real plugin manager: it takes a reviewed task, writes README.md only
// at the end of an epic, and always moves the task on to documented.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

using nlohmann::json;

// Epic 1 has tasks 1 (done) and 2 (`second`); epic 2 has task 3 (todo).
json state_with(const std::string& current, const std::string& second = "done") {
  return {{"spec", {{"description", "A to-do list with a JSON API."}}},
          {"template", {{"name", "node_http"}, {"run_command", "node server.js"}}},
          {"tasks",
           {{{"id", 1}, {"epic_id", 1}, {"description", "Serve the page"}, {"status", "done"}},
            {{"id", 2}, {"epic_id", 1}, {"description", "Add the items API"}, {"status", current}},
            {{"id", 3}, {"epic_id", 1}, {"description", "Delete items"}, {"status", second}},
            {{"id", 4}, {"epic_id", 2}, {"description", "Dark mode"}, {"status", "todo"}}}}};
}

std::string prompt_of(const sdk::ModelRequest& request) {
  return request.messages.empty() ? std::string() : request.messages.front().content;
}

TEST(TechWriter, WantsOnlyAReviewedCurrentTask) {
  AgentHarness agent("agent.tech_writer", SAMOKODER_AGENT_TECH_WRITER_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "tech_writer");
  EXPECT_TRUE(agent.wants(state_with("reviewed")));
  for (const char* status : {"todo", "in_progress", "documented", "skipped"})
    EXPECT_FALSE(agent.wants(state_with(status))) << status;
  EXPECT_FALSE(agent.wants(json::object()));
}

TEST(TechWriter, ATaskWithOthersOpenInItsEpicIsDocumentedWithoutAModelCall) {
  AgentHarness agent("agent.tech_writer", SAMOKODER_AGENT_TECH_WRITER_PLUGIN);
  ScriptedAgentContext context(state_with("reviewed", "todo"));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["tasks"][1]["status"], "documented");
  EXPECT_EQ(step->next_state["tasks"][2]["status"], "todo");
  EXPECT_TRUE(context.model_calls.empty());
  EXPECT_TRUE(context.written.empty());
  EXPECT_TRUE(context.events.empty());
  // The task completer's now.
  EXPECT_FALSE(agent.wants(step->next_state));
}

TEST(TechWriter, TheLastTaskOfAnEpicGetsTheReadmeWritten) {
  AgentHarness agent("agent.tech_writer", SAMOKODER_AGENT_TECH_WRITER_PLUGIN);
  // Task 3 skipped counts as finished; task 4 of the next epic does not matter.
  ScriptedAgentContext context(state_with("reviewed", "skipped"));
  context.files["server.js"] = "http.createServer(handler).listen(process.env.PORT || 3000);\n";
  context.script_model("readme", std::vector<json>{{{"readme", "# To-do\n\nRun `node server.js`.\n"}}});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["tasks"][1]["status"], "documented");
  EXPECT_EQ(context.written, std::vector<std::string>{"README.md"});
  EXPECT_EQ(context.files["README.md"], "# To-do\n\nRun `node server.js`.\n");
  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"readme"});
  const std::string prompt = prompt_of(context.model_calls[0]);
  for (const char* expected :
       {"A to-do list with a JSON API.", "node server.js", "(none)", "--- server.js ---"})
    EXPECT_NE(prompt.find(expected), std::string::npos) << expected << "\n" << prompt;
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "docs.written");
}

TEST(TechWriter, TheCurrentReadmeAndTheAppsRunCommandReachThePrompt) {
  AgentHarness agent("agent.tech_writer", SAMOKODER_AGENT_TECH_WRITER_PLUGIN);
  json state = state_with("reviewed");
  state["app"] = {{"run_command", "npm start"}};
  ScriptedAgentContext context(state);
  context.files["README.md"] = "# Old readme\n";
  context.script_model("readme", std::vector<json>{{{"readme", "# New readme\n"}}});
  ASSERT_TRUE(agent.run_step(context).ok());
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_NE(prompt.find("# Old readme"), std::string::npos);
  EXPECT_NE(prompt.find("npm start"), std::string::npos);
  EXPECT_EQ(prompt.find("(none)"), std::string::npos);
  EXPECT_EQ(context.files["README.md"], "# New readme\n");
}

TEST(TechWriter, AnEmptyReadmeFailsAndWritesNothing) {
  AgentHarness agent("agent.tech_writer", SAMOKODER_AGENT_TECH_WRITER_PLUGIN);
  ScriptedAgentContext context(state_with("reviewed"));
  context.script_model("readme", std::vector<json>{{{"readme", "  \n"}}});
  auto step = agent.run_step(context);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(context.written.empty());
  EXPECT_TRUE(context.events.empty());
}

TEST(TechWriter, APromptFolderInConfigReplacesTheReadmePrompt) {
  TempDir dir("samokoder-tech-writer");
  dir.write("readme.md", "Document {{spec}}");
  AgentHarness agent("agent.tech_writer", SAMOKODER_AGENT_TECH_WRITER_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(state_with("reviewed"));
  context.script_model("readme", std::vector<json>{{{"readme", "# x\n"}}});
  ASSERT_TRUE(agent.run_step(context).ok());
  EXPECT_EQ(prompt_of(context.model_calls[0]), "Document A to-do list with a JSON API.");
}

}  // namespace
}  // namespace samokoder::testing
