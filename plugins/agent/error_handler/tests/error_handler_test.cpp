// agent.error_handler through the real plugin manager: the states it takes, the prompt it sends, the
// fix iteration it proposes, and the limit that ends a task that keeps failing.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

const nlohmann::json kError = {{"message", "`npm test` exited with 1"},
                               {"command", "npm test"},
                               {"exit_code", 1},
                               {"stdout", ""},
                               {"stderr", "Error: Cannot find module 'express'"},
                               {"step_id", 3}};

nlohmann::json failed_state(nlohmann::json iterations = nlohmann::json::array()) {
  return {
      {"spec", {{"description", "A to-do list with a JSON API."}}},
      {"tasks",
       {{{"id", 1}, {"description", "the scaffold"}, {"status", "done"}},
        {{"id", 2}, {"description", "the API"}, {"status", "in_progress"}, {"testing_instructions", "GET"}}}},
      {"steps",
       {{{"id", 1}, {"type", "save_file"}, {"path", "server.js"}, {"completed", true}},
        {{"id", 2}, {"type", "command"}, {"command", "npm install"}, {"completed", true}},
        {{"id", 3}, {"type", "command"}, {"command", "npm test"}, {"completed", false}},
        {{"id", 4}, {"type", "save_file"}, {"path", "README.md"}, {"completed", false}}}},
      {"iterations", std::move(iterations)},
      {"error", kError}};
}

const nlohmann::json kPlan = {
    {"diagnosis", "express is used by server.js but not in package.json."},
    {"fix",
     "Add express ^4.19.2 to the dependencies of package.json, then run npm install "
     "and npm test."}};

TEST(ErrorHandler, TakesOnlyAStateWithAnError) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "error_handler");
  EXPECT_TRUE(agent.wants(failed_state()));
  nlohmann::json clean = failed_state();
  clean.erase("error");
  EXPECT_FALSE(agent.wants(clean));
  clean["error"] = nullptr;
  EXPECT_FALSE(agent.wants(clean));
  clean["error"] = "a string is no error object";
  EXPECT_FALSE(agent.wants(clean));
  EXPECT_FALSE(agent.wants(nlohmann::json::object()));
}

TEST(ErrorHandler, AsksForAFixWithTheErrorTheTaskAndTheFiles) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  ScriptedAgentContext context(
      failed_state({{{"id", 1}, {"status", "done"}, {"description", "use node 20"}}}));
  context.files["server.js"] = "const express = require('express');\n";
  context.files["node_modules/x/index.js"] = "installed, not shown";
  context.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"fix_plan"});
  const auto& request = context.model_calls[0];
  EXPECT_NE(request.system.find("senior developer"), std::string::npos);
  const std::string& prompt = request.messages[0].content;
  EXPECT_NE(prompt.find("A to-do list with a JSON API."), std::string::npos);
  EXPECT_NE(prompt.find("the API"), std::string::npos);
  EXPECT_NE(prompt.find("Cannot find module 'express'"), std::string::npos);
  EXPECT_NE(prompt.find("--- server.js ---"), std::string::npos);
  EXPECT_EQ(prompt.find("installed, not shown"), std::string::npos);
  EXPECT_NE(prompt.find("use node 20"), std::string::npos);
  EXPECT_EQ(prompt.find("{{"), std::string::npos);
  ASSERT_TRUE(request.json_output.has_value());
  EXPECT_EQ(request.json_output->schema["required"], nlohmann::json({"diagnosis", "fix"}));
}

TEST(ErrorHandler, AppendsAFixIterationAndKeepsOnlyTheCompletedSteps) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  ScriptedAgentContext context(failed_state({{{"id", 1}, {"status", "done"}, {"description", "earlier"}}}));
  context.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const auto& next = step->next_state;
  EXPECT_FALSE(next.contains("error"));
  ASSERT_EQ(next["iterations"].size(), 2U);
  EXPECT_EQ(next["iterations"][1], nlohmann::json({{"id", 2},
                                                   {"status", "implement_solution"},
                                                   {"description", kPlan["fix"]},
                                                   {"diagnosis", kPlan["diagnosis"]},
                                                   {"source", "command"},
                                                   {"error", "`npm test` exited with 1"}}));
  ASSERT_EQ(next["steps"].size(), 2U);
  EXPECT_EQ(next["steps"][0]["id"], 1);
  EXPECT_EQ(next["steps"][1]["id"], 2);
  EXPECT_EQ(next["tasks"][1]["status"], "in_progress");
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "error.diagnosed");
  EXPECT_EQ(context.events[0].second["diagnosis"], kPlan["diagnosis"]);
  EXPECT_EQ(step->summary, "diagnosed: `npm test` exited with 1");
  EXPECT_FALSE(agent.wants(next));
}

TEST(ErrorHandler, StopsATaskThatFailedTooOften) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN, {{"max_iterations", 2}});
  ASSERT_EQ(agent.error(), "");
  // One earlier attempt: a second one is still allowed.
  {
    ScriptedAgentContext context(failed_state({{{"id", 1}, {"status", "done"}}}));
    context.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
    EXPECT_TRUE(agent.run_step(context).ok());
  }
  ScriptedAgentContext context(
      failed_state({{{"id", 1}, {"status", "done"}}, {{"id", 2}, {"status", "checking"}}}));
  context.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(step.status().message(), "task 2 still fails after 2 attempts: `npm test` exited with 1");
  EXPECT_TRUE(context.model_calls.empty());
}

TEST(ErrorHandler, DefaultsToFiveAttempts) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  nlohmann::json four = nlohmann::json::array();
  for (int id = 1; id <= 4; ++id)
    four.push_back({{"id", id}, {"status", "done"}});
  ScriptedAgentContext allowed(failed_state(four));
  allowed.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
  auto fifth = agent.run_step(allowed);
  ASSERT_TRUE(fifth.ok());
  nlohmann::json again = fifth->next_state;
  again["error"] = kError;
  ScriptedAgentContext sixth(again);
  sixth.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
  EXPECT_EQ(agent.run_step(sixth).status().code(), sdk::StatusCode::kFailedPrecondition);
}

TEST(ErrorHandler, RejectsAnEmptyFix) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  ScriptedAgentContext context(failed_state());
  context.script_model("fix_plan", std::vector<nlohmann::json>{{{"diagnosis", "unclear"}, {"fix", "  \n"}}});
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(context.events.empty());
}

TEST(ErrorHandler, FailsAnErrorOutsideAnyTask) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  ScriptedAgentContext context(nlohmann::json{{"error", {{"message", "boom"}}}});
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_NE(step.status().message().find("boom"), std::string::npos);
}

TEST(ErrorHandler, TheModelsFailureFailsTheStep) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  ScriptedAgentContext context(failed_state());
  auto step = agent.run_step(context);  // nothing scripted: the model is unavailable
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kUnavailable);
}

TEST(ErrorHandler, APromptDirOverridesThePrompt) {
  TempDir dir("error-handler-prompts");
  dir.write("fix_plan.md", "Fix {{error}} for {{spec}}.");
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(failed_state());
  context.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
  ASSERT_TRUE(agent.run_step(context).ok());
  EXPECT_EQ(context.model_calls[0].messages[0].content,
            "Fix " + kError.dump(2) + " for A to-do list with a JSON API..");
}

TEST(ErrorHandler, RejectsABadConfig) {
  EXPECT_NE(AgentHarness("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN, {{"max_iterations", 0}})
                .error(),
            "");
  EXPECT_NE(
      AgentHarness("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN, {{"max_iterations", "five"}})
          .error(),
      "");
}

TEST(ErrorHandler, TheSameInputsGiveTheSameNextState) {
  AgentHarness agent("agent.error_handler", SAMOKODER_AGENT_ERROR_HANDLER_PLUGIN);
  std::vector<nlohmann::json> nexts;
  for (int i = 0; i < 2; ++i) {
    ScriptedAgentContext context(failed_state());
    context.script_model("fix_plan", std::vector<nlohmann::json>{kPlan});
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    nexts.push_back(step->next_state);
  }
  EXPECT_EQ(nexts[0], nexts[1]);
}

}  // namespace
}  // namespace samokoder::testing
