// agent.developer through the real plugin manager: which states it takes, the steps it makes of a new
// task and of a fix, and the model's steps it refuses.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

using nlohmann::json;

json base_state() {
  return {{"spec", {{"description", "A to-do list with a JSON API."}}},
          {"architecture", {{"app_type", "web-app"}, {"package_dependencies", {{{"name", "express"}}}}}},
          {"template", {{"name", "node_express"}, {"run_command", "node server.js"}}},
          {"epics", {{{"id", 1}, {"name", "Initial project"}, {"planned", true}, {"completed", false}}}},
          {"tasks",
           {{{"id", 1}, {"epic_id", 1}, {"description", "Serve the page"}, {"status", "done"}},
            {{"id", 2},
             {"epic_id", 1},
             {"description", "Add the items API"},
             {"status", "todo"},
             {"testing_instructions", "GET /api/items answers []"},
             {"instructions", nullptr}}}},
          {"steps", json::array()},
          {"iterations", json::array()}};
}

// A task in progress whose steps are all done, with an iteration in `status`.
json iterating_state(const std::string& status) {
  json state = base_state();
  state["tasks"][1]["status"] = "in_progress";
  state["steps"] = {{{"id", 1}, {"type", "save_file"}, {"path", "server.js"}, {"completed", true}},
                    {{"id", 2}, {"type", "command"}, {"command", "npm install"}, {"completed", true}}};
  state["iterations"] = {{{"id", 1}, {"status", "done"}, {"description", "an old fix"}},
                         {{"id", 2},
                          {"status", status},
                          {"description", "GET /api/items answers 500"},
                          {"source", "check"},
                          {"diagnosis", "TypeError: items is undefined"}}};
  return state;
}

json plan(json steps) {
  return {{"instructions", "Add an items array and two routes."}, {"steps", std::move(steps)}};
}

json save(const std::string& path, const std::string& description = "the file") {
  return {{"type", "save_file"},
          {"path", path},
          {"description", description},
          {"command", nullptr},
          {"timeout_s", nullptr}};
}

json command(json text, json timeout = nullptr) {
  return {{"type", "command"},
          {"path", nullptr},
          {"description", "install"},
          {"command", std::move(text)},
          {"timeout_s", std::move(timeout)}};
}

std::string prompt_of(const sdk::ModelRequest& request) {
  return request.messages.empty() ? std::string() : request.messages.front().content;
}

TEST(Developer, WantsANewTaskOrAFixWaitingForStepsAndNothingElse) {
  AgentHarness agent("agent.developer", SAMOKODER_AGENT_DEVELOPER_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "developer");
  EXPECT_TRUE(agent.wants(base_state()));
  json no_steps_member = base_state();
  no_steps_member.erase("steps");
  EXPECT_TRUE(agent.wants(no_steps_member));

  EXPECT_TRUE(agent.wants(iterating_state("implement_solution")));
  // Its own last step: the fix is broken into steps and waits for the troubleshooter's check.
  EXPECT_FALSE(agent.wants(iterating_state("checking")));
  // All steps and iterations done: the troubleshooter's.
  EXPECT_FALSE(agent.wants(iterating_state("done")));

  // An open step: the code monkey's or the executor's.
  json open_step = iterating_state("implement_solution");
  open_step["steps"][1]["completed"] = false;
  EXPECT_FALSE(agent.wants(open_step));
  json todo_with_step = base_state();
  todo_with_step["steps"] = {{{"id", 1}, {"type", "save_file"}, {"path", "a.js"}, {"completed", false}}};
  EXPECT_FALSE(agent.wants(todo_with_step));

  // No current task: the tech lead's.
  json all_done = base_state();
  all_done["tasks"][1]["status"] = "done";
  EXPECT_FALSE(agent.wants(all_done));
  for (const char* status : {"reviewed", "documented", "in_progress"}) {
    json other = base_state();
    other["tasks"][1]["status"] = status;
    EXPECT_FALSE(agent.wants(other)) << status;
  }
}

TEST(Developer, BreaksANewTaskIntoStepsAndStartsIt) {
  AgentHarness agent("agent.developer", SAMOKODER_AGENT_DEVELOPER_PLUGIN);
  json state = base_state();
  // Steps left by an earlier task keep their ids; the new ones continue after them.
  state["steps"] = {{{"id", 4}, {"type", "save_file"}, {"path", "old.js"}, {"completed", true}}};
  ScriptedAgentContext context(state);
  context.files["server.js"] = "const express = require('express');\n";
  context.script_model("task_steps",
                       std::vector<json>{plan(json::array({save("server.js", "add the routes"),
                                                           save("./public/app.js", "list the items"),
                                                           command("npm install", 120)}))});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const json& next = step->next_state;

  ASSERT_EQ(next["steps"].size(), 4U);
  EXPECT_EQ(next["steps"][1], json({{"id", 5},
                                    {"type", "save_file"},
                                    {"path", "server.js"},
                                    {"description", "add the routes"},
                                    {"completed", false}}));
  EXPECT_EQ(next["steps"][2]["path"], "public/app.js");  // "./" dropped
  EXPECT_EQ(next["steps"][3], json({{"id", 7},
                                    {"type", "command"},
                                    {"command", "npm install"},
                                    {"description", "install"},
                                    {"timeout_s", 120},
                                    {"completed", false}}));
  EXPECT_EQ(next["tasks"][1]["status"], "in_progress");
  EXPECT_EQ(next["tasks"][1]["instructions"], "Add an items array and two routes.");
  EXPECT_EQ(next["tasks"][0], state["tasks"][0]);

  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"task_steps"});
  const std::string prompt = prompt_of(context.model_calls[0]);
  for (const char* expected :
       {"A to-do list with a JSON API.", "Add the items API", "GET /api/items answers []", "node server.js",
        "express", "node_express", "--- server.js ---"})
    EXPECT_NE(prompt.find(expected), std::string::npos) << expected << "\n" << prompt;

  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "task.started");
  EXPECT_EQ(context.events[0].second,
            json({{"task", 2}, {"description", "Add the items API"}, {"steps", 3}}));
  EXPECT_TRUE(context.written.empty());
  EXPECT_TRUE(context.commands.empty());
  // The first new step is open now: the developer does not want its own state.
  EXPECT_FALSE(agent.wants(next));
}

TEST(Developer, TheTroubleshootersRunCommandWinsOverTheTemplates) {
  AgentHarness agent("agent.developer", SAMOKODER_AGENT_DEVELOPER_PLUGIN);
  json state = base_state();
  state["app"] = {{"run_command", "npm run serve"}};
  ScriptedAgentContext context(state);
  context.script_model("task_steps", std::vector<json>{plan(json::array({save("server.js")}))});
  ASSERT_TRUE(agent.run_step(context).ok());
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_NE(prompt.find("npm run serve"), std::string::npos);
}

TEST(Developer, BreaksAnOpenIterationIntoStepsAndHandsItToTheCheck) {
  AgentHarness agent("agent.developer", SAMOKODER_AGENT_DEVELOPER_PLUGIN);
  ScriptedAgentContext context(iterating_state("implement_solution"));
  context.script_model("iteration_steps",
                       std::vector<json>{{{"instructions", "Declare items before the routes."},
                                          {"steps", json::array({save("server.js", "declare items")})}}});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const json& next = step->next_state;
  ASSERT_EQ(next["steps"].size(), 3U);
  EXPECT_EQ(next["steps"][2]["id"], 3);
  EXPECT_EQ(next["steps"][2]["path"], "server.js");
  EXPECT_EQ(next["iterations"][1]["status"], "checking");
  EXPECT_EQ(next["iterations"][1]["instructions"], "Declare items before the routes.");
  EXPECT_EQ(next["iterations"][0]["status"], "done");
  EXPECT_EQ(next["tasks"][1]["status"], "in_progress");

  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"iteration_steps"});
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_NE(prompt.find("GET /api/items answers 500"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("TypeError: items is undefined"), std::string::npos) << prompt;  // the diagnosis
  EXPECT_NE(prompt.find("Add the items API"), std::string::npos);
  EXPECT_EQ(prompt.find("an old fix"), std::string::npos);
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "iteration.started");
  EXPECT_EQ(context.events[0].second["iteration"], 2);
  EXPECT_FALSE(agent.wants(next));
}

TEST(Developer, BadStepsFailTheStepNamingIt) {
  AgentHarness agent("agent.developer", SAMOKODER_AGENT_DEVELOPER_PLUGIN);
  const std::vector<std::pair<json, std::string>> cases = {
      {save("../etc/passwd"), "step 2 (save_file)"},
      {save("/etc/passwd"), "step 2 (save_file)"},
      {save("src/../../x.js"), "step 2 (save_file)"},
      {save("public/"), "step 2 (save_file)"},
      {save(""), "step 2 (save_file)"},
      {{{"type", "save_file"},
        {"path", nullptr},
        {"description", "x"},
        {"command", nullptr},
        {"timeout_s", nullptr}},
       "step 2 (save_file)"},
      {command("   "), "step 2 (command)"},
      {command(nullptr), "step 2 (command)"},
      {command("npm test", 0), "timeout_s"},
      {{{"type", "human"}, {"description", "x"}}, "unknown type"},
  };
  for (const auto& [bad, expected] : cases) {
    ScriptedAgentContext context(base_state());
    context.script_model("task_steps", std::vector<json>{plan(json::array({save("server.js"), bad}))});
    auto step = agent.run_step(context);
    ASSERT_FALSE(step.ok()) << bad.dump();
    EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument) << bad.dump();
    EXPECT_NE(step.status().message().find(expected), std::string::npos) << step.status().message();
    EXPECT_TRUE(context.events.empty());
    EXPECT_TRUE(context.written.empty());
  }
  ScriptedAgentContext empty(base_state());
  empty.script_model("task_steps", std::vector<json>{plan(json::array())});
  EXPECT_EQ(agent.run_step(empty).status().code(), sdk::StatusCode::kInvalidArgument);
}

TEST(Developer, TheSameStateAndAnswersGiveTheSameNextState) {
  AgentHarness agent("agent.developer", SAMOKODER_AGENT_DEVELOPER_PLUGIN);
  json results[2];
  for (auto& result : results) {
    ScriptedAgentContext context(base_state());
    context.script_model("task_steps",
                         std::vector<json>{plan(json::array({save("server.js"), command("npm install")}))});
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    result = step->next_state;
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST(Developer, APromptFolderInConfigReplacesAPrompt) {
  TempDir dir("samokoder-developer");
  dir.write("task_steps.md", "Steps for {{task}}, started with {{run_command}}.");
  AgentHarness agent("agent.developer", SAMOKODER_AGENT_DEVELOPER_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(base_state());
  context.script_model("task_steps", std::vector<json>{plan(json::array({save("server.js")}))});
  ASSERT_TRUE(agent.run_step(context).ok());
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_EQ(prompt.rfind("Steps for {", 0), 0U) << prompt;
  EXPECT_NE(prompt.find("started with node server.js."), std::string::npos) << prompt;
}

}  // namespace
}  // namespace samokoder::testing
