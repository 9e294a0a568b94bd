// agent.tech_lead through the real plugin manager: when it takes the state, the first epic and its
// plan, completing epics, and the run's end with its summary.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

using nlohmann::json;

const json kTemplate = {
    {"name", "node_http"}, {"summary", "a Node http server"}, {"run_command", "node server.js"}};

json fresh_state() {
  return {{"description", "a to-do list"},
          {"spec", {{"description", "A to-do list where a user adds, ticks and deletes items."}}},
          {"architecture", {{"app_type", "web-app"}}},
          {"template", kTemplate}};
}

json two_tasks() {
  return {
      {"tasks",
       {{{"description", "Serve the page"}, {"testing_instructions", "Open / and see the title"}},
        {{"description", "Add items"}, {"testing_instructions", "Type an item, press Add, see it listed"}}}}};
}

std::string prompt_of(const sdk::ModelRequest& request) {
  return request.messages.empty() ? std::string() : request.messages.front().content;
}

TEST(TechLead, WantsATemplateWithNoOpenTaskUntilTheRunIsDone) {
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "tech_lead");
  json state = fresh_state();
  EXPECT_TRUE(agent.wants(state));

  json no_template = state;
  no_template.erase("template");
  EXPECT_FALSE(agent.wants(no_template));  // the bootstrap's
  no_template["template"] = nullptr;
  EXPECT_FALSE(agent.wants(no_template));

  json open = state;
  open["tasks"] = {{{"id", 1}, {"epic_id", 1}, {"status", "done"}},
                   {{"id", 2}, {"epic_id", 1}, {"status", "todo"}}};
  EXPECT_FALSE(agent.wants(open));  // the developer's
  for (const char* status : {"in_progress", "reviewed", "documented"}) {
    open["tasks"][1]["status"] = status;
    EXPECT_FALSE(agent.wants(open)) << status;
  }
  open["tasks"][1]["status"] = "skipped";
  EXPECT_TRUE(agent.wants(open));

  json done = state;
  done["done"] = true;
  EXPECT_FALSE(agent.wants(done));
  done["done"] = false;
  EXPECT_TRUE(agent.wants(done));
  EXPECT_FALSE(agent.wants(json::array()));
}

TEST(TechLead, CreatesTheFirstEpicAndPlansIt) {
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN);
  ScriptedAgentContext context(fresh_state());
  context.files["server.js"] = "require('http').createServer().listen(process.env.PORT);\n";
  context.script_model("task_plan", std::vector<json>{two_tasks()});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const json& next = step->next_state;

  ASSERT_EQ(next["epics"].size(), 1U);
  EXPECT_EQ(next["epics"][0],
            json({{"id", 1},
                  {"name", "Initial project"},
                  {"source", "app"},
                  {"description", "A to-do list where a user adds, ticks and deletes items."},
                  {"planned", true},
                  {"completed", false}}));
  ASSERT_EQ(next["tasks"].size(), 2U);
  EXPECT_EQ(next["tasks"][0], json({{"id", 1},
                                    {"epic_id", 1},
                                    {"description", "Serve the page"},
                                    {"status", "todo"},
                                    {"testing_instructions", "Open / and see the title"},
                                    {"instructions", nullptr}}));
  EXPECT_EQ(next["tasks"][1]["id"], 2);
  EXPECT_FALSE(next.contains("done"));

  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"task_plan"});
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_NE(prompt.find("adds, ticks and deletes"), std::string::npos) << prompt;  // the spec
  EXPECT_NE(prompt.find("Initial project"), std::string::npos);                    // the epic
  EXPECT_NE(prompt.find("--- server.js ---"), std::string::npos);                  // the files
  EXPECT_NE(prompt.find("node_http"), std::string::npos);                          // the template
  EXPECT_NE(prompt.find("between 1 and 12 tasks"), std::string::npos);             // the default max
  EXPECT_FALSE(context.model_calls[0].system.empty());

  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "plan.made");
  EXPECT_EQ(context.events[0].second["epic"], 1);
  EXPECT_EQ(context.events[0].second["tasks"], json({"Serve the page", "Add items"}));
  EXPECT_TRUE(context.written.empty());
  // The plan's first task is open now: the tech lead leaves the state to the developer.
  EXPECT_FALSE(agent.wants(next));
}

TEST(TechLead, TheSameStateAndAnswersGiveTheSameNextState) {
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN);
  json results[2];
  for (auto& result : results) {
    ScriptedAgentContext context(fresh_state());
    context.script_model("task_plan", std::vector<json>{two_tasks()});
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    result = step->next_state;
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST(TechLead, APlanLongerThanMaxTasksIsCut) {
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN, {{"max_tasks", 1}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(fresh_state());
  context.script_model("task_plan", std::vector<json>{two_tasks()});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  ASSERT_EQ(step->next_state["tasks"].size(), 1U);
  EXPECT_EQ(step->next_state["tasks"][0]["description"], "Serve the page");
  EXPECT_NE(prompt_of(context.model_calls[0]).find("between 1 and 1 tasks"), std::string::npos);
}

TEST(TechLead, ABadMaxTasksFailsTheInit) {
  AgentHarness zero("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN, {{"max_tasks", 0}});
  EXPECT_NE(zero.error().find("max_tasks"), std::string::npos) << zero.error();
  AgentHarness text("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN, {{"max_tasks", "many"}});
  EXPECT_NE(text.error().find("max_tasks"), std::string::npos) << text.error();
}

TEST(TechLead, APlanWithAnEmptyTaskOrNoTaskFailsAndChangesNothing) {
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN);
  ScriptedAgentContext blank(fresh_state());
  blank.script_model("task_plan",
                     std::vector<json>{{{"tasks",
                                         {{{"description", "Serve the page"}, {"testing_instructions", "x"}},
                                          {{"description", "   "}, {"testing_instructions", "y"}}}}}});
  auto step = agent.run_step(blank);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(step.status().message().find("task 2"), std::string::npos) << step.status().message();
  EXPECT_TRUE(blank.events.empty());

  ScriptedAgentContext none(fresh_state());
  none.script_model("task_plan", std::vector<json>{{{"tasks", json::array()}}});
  EXPECT_EQ(agent.run_step(none).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(none.events.empty());
}

TEST(TechLead, CompletesAFinishedEpicAndPlansTheNext) {
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN);
  json state = fresh_state();
  state["epics"] = {{{"id", 1},
                     {"name", "Initial project"},
                     {"source", "app"},
                     {"description", "the app"},
                     {"planned", true},
                     {"completed", false}},
                    {{"id", 2},
                     {"name", "Feature #2"},
                     {"source", "feature"},
                     {"description", "dark mode"},
                     {"planned", false},
                     {"completed", false}}};
  state["tasks"] = {{{"id", 1}, {"epic_id", 1}, {"description", "Serve the page"}, {"status", "done"}},
                    {{"id", 2}, {"epic_id", 1}, {"description", "Export CSV"}, {"status", "skipped"}}};
  ASSERT_TRUE(agent.wants(state));
  ScriptedAgentContext context(state);
  context.script_model("task_plan", std::vector<json>{{{"tasks",
                                                        {{{"description", "Add a theme toggle"},
                                                          {"testing_instructions", "Click the moon"}}}}}});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const json& next = step->next_state;
  EXPECT_EQ(next["epics"][0]["completed"], true);
  EXPECT_EQ(next["epics"][1]["planned"], true);
  EXPECT_EQ(next["epics"][1]["completed"], false);
  ASSERT_EQ(next["tasks"].size(), 3U);
  EXPECT_EQ(next["tasks"][2]["id"], 3);
  EXPECT_EQ(next["tasks"][2]["epic_id"], 2);
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_NE(prompt.find("dark mode"), std::string::npos);
  EXPECT_NE(prompt.find("Serve the page"), std::string::npos);  // the finished tasks
  EXPECT_NE(prompt.find("Export CSV"), std::string::npos);
}

TEST(TechLead, WhenNoEpicIsLeftTheRunIsDoneWithASummaryAndNoModelCall) {
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN);
  json state = fresh_state();
  state["epics"] = {{{"id", 1}, {"name", "Initial project"}, {"planned", true}, {"completed", true}},
                    {{"id", 2}, {"name", "Feature #2"}, {"planned", true}, {"completed", false}}};
  state["tasks"] = {{{"id", 1}, {"epic_id", 1}, {"description", "Serve the page"}, {"status", "done"}},
                    {{"id", 2}, {"epic_id", 2}, {"description", "Add a theme toggle"}, {"status", "done"}},
                    {{"id", 3}, {"epic_id", 2}, {"description", "Export CSV"}, {"status", "skipped"}}};
  state["app"] = {{"run_command", "npm start"}};
  ScriptedAgentContext context(state);
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const json& next = step->next_state;
  EXPECT_TRUE(context.model_calls.empty());
  EXPECT_EQ(next["done"], true);
  EXPECT_EQ(next["epics"][1]["completed"], true);
  const std::string summary = next.value("summary", std::string());
  EXPECT_NE(summary.find("Initial project\n  1. Serve the page\n"), std::string::npos) << summary;
  EXPECT_NE(summary.find("Feature #2\n  1. Add a theme toggle\n  2. Export CSV (skipped)\n"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("Run it with: npm start"), std::string::npos) << summary;
  EXPECT_NE(summary.find("preview"), std::string::npos) << summary;
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "app.finished");
  EXPECT_EQ(context.events[0].second["summary"], summary);
  // Done: no agent wants the state any more, so the run succeeds.
  EXPECT_FALSE(agent.wants(next));

  // Without the troubleshooter's run command, the template's.
  state.erase("app");
  ScriptedAgentContext fallback(state);
  auto again = agent.run_step(fallback);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->next_state["summary"].get<std::string>().find("Run it with: node server.js"),
            std::string::npos);
}

TEST(TechLead, APromptFolderInConfigReplacesThePlanPrompt) {
  TempDir dir("samokoder-tech-lead");
  dir.write("task_plan.md", "Plan {{epic}} in at most {{max_tasks}} tasks.");
  AgentHarness agent("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(fresh_state());
  context.script_model("task_plan", std::vector<json>{two_tasks()});
  ASSERT_TRUE(agent.run_step(context).ok());
  EXPECT_EQ(prompt_of(context.model_calls[0]).rfind("Plan {", 0), 0U);
  EXPECT_NE(prompt_of(context.model_calls[0]).find("at most 12 tasks."), std::string::npos);

  TempDir typo("samokoder-tech-lead");
  typo.write("task_plans.md", "x");
  AgentHarness misspelt("agent.tech_lead", SAMOKODER_AGENT_TECH_LEAD_PLUGIN,
                        {{"prompt_dir", typo.path().string()}});
  EXPECT_NE(misspelt.error().find("task_plans.md"), std::string::npos) << misspelt.error();
}

}  // namespace
}  // namespace samokoder::testing
