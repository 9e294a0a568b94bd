// agent.executor through the real plugin manager: which steps it takes, which commands run without a
// question, what the user's answer does, and how a failed command becomes the run state's error.
#include <gtest/gtest.h>

#include "agent_harness.hpp"

namespace samokoder::testing {
namespace {

nlohmann::json state_with_steps(nlohmann::json steps) {
  return {{"tasks", {{{"id", 1}, {"description", "the list"}, {"status", "in_progress"}}}},
          {"steps", std::move(steps)}};
}

nlohmann::json command_step(int id, const std::string& command, nlohmann::json timeout = nullptr) {
  nlohmann::json step = {{"id", id}, {"type", "command"}, {"command", command}, {"completed", false}};
  if (!timeout.is_null()) step["timeout_s"] = timeout;
  return step;
}

nlohmann::json state_with_command(const std::string& command, nlohmann::json timeout = nullptr) {
  return state_with_steps({{{"id", 1}, {"type", "save_file"}, {"path", "server.js"}, {"completed", true}},
                           command_step(2, command, std::move(timeout))});
}

// Answers every command the agent runs with `result`.
void answer_commands(ScriptedAgentContext& context, sdk::CommandResult result) {
  context.script_commands(
      [result](const sdk::CommandRequest&) -> sdk::Result<sdk::CommandResult> { return result; });
}

TEST(Executor, TakesOnlyACurrentCommandStep) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "executor");
  EXPECT_TRUE(agent.wants(state_with_command("npm test")));
  // The current step writes a file: the code monkey's.
  EXPECT_FALSE(agent.wants(state_with_steps(
      {{{"id", 1}, {"type", "save_file"}, {"completed", false}}, command_step(2, "npm test")})));
  // Every step is done: the troubleshooter's.
  nlohmann::json done = state_with_command("npm test");
  done["steps"][1]["completed"] = true;
  EXPECT_FALSE(agent.wants(done));
  EXPECT_FALSE(agent.wants(state_with_steps(nlohmann::json::array())));
  EXPECT_FALSE(agent.wants(nlohmann::json::object()));
  EXPECT_FALSE(agent.wants(state_with_steps({{{"id", 1}, {"type", 7}, {"completed", false}}})));
}

TEST(Executor, RunsAnAllowedCommandWithoutAskingAndCompletesTheStep) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_command("npm install express", 90));
  answer_commands(context, command_exited(0, "added 1 package"));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_TRUE(context.questions.empty());
  ASSERT_EQ(context.commands.size(), 1U);
  EXPECT_EQ(context.commands[0].argv, std::vector<std::string>{"npm install express"});
  EXPECT_TRUE(context.commands[0].shell);
  EXPECT_EQ(context.commands[0].timeout, std::chrono::seconds(90));
  const auto& next = step->next_state;
  EXPECT_EQ(next["steps"][1]["completed"], true);
  EXPECT_EQ(next["steps"][1]["exit_code"], 0);
  EXPECT_FALSE(next.contains("error"));
  EXPECT_EQ(step->summary, "ran `npm install express`");
  EXPECT_FALSE(agent.wants(next));
}

TEST(Executor, MatchesAPrefixOnlyAsAWholeWord) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  for (const std::string command : {"npm test", "npm test -- --watch=false", "ls", "cat package.json"}) {
    ScriptedAgentContext context(state_with_command(command));
    answer_commands(context, command_exited(0));
    ASSERT_TRUE(agent.run_step(context).ok()) << command;
    EXPECT_TRUE(context.questions.empty()) << command;
  }
  for (const std::string command : {"npm testing", "lsblk", "catalog", "rm -rf node_modules"}) {
    ScriptedAgentContext context(state_with_command(command));
    EXPECT_EQ(agent.run_step(context).status().code(), sdk::StatusCode::kAborted) << command;
    EXPECT_EQ(context.questions.size(), 1U) << command;
  }
}

TEST(Executor, AsksAboutAnAllowedPrefixThatChainsThroughTheShell) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  for (const std::string command :
       {"npm test && rm -rf ~", "npm test; curl evil", "npm test | sh", "cat `x`", "cat $(whoami)",
        "ls > out", "cat < /etc/passwd", "npm test &", "ls\nrm -rf ~", "npm test ${HOME}"}) {
    ScriptedAgentContext context(state_with_command(command));
    answer_commands(context, command_exited(0));
    auto step = agent.run_step(context);
    EXPECT_EQ(step.status().code(), sdk::StatusCode::kAborted) << command;
    EXPECT_TRUE(context.commands.empty()) << command;
    ASSERT_EQ(context.questions.size(), 1U) << command;
  }
}

TEST(Executor, AsksBeforeACommandOffTheListAndWaitsForTheAnswer) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_command("node seed.js"));
  answer_commands(context, command_exited(0));
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kAborted);
  ASSERT_EQ(context.questions.size(), 1U);
  EXPECT_EQ(context.questions[0].id, "run.2");
  EXPECT_EQ(context.questions[0].text, "The developer wants to run `node seed.js` in the workspace. Run it?");
  EXPECT_EQ(context.questions[0].options, (std::vector<std::string>{"run", "skip"}));
  EXPECT_TRUE(context.commands.empty());
}

TEST(Executor, RunsACommandTheUserAllowed) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_command("node seed.js"));
  context.answer("run.2", "run");
  answer_commands(context, command_exited(0));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  ASSERT_EQ(context.commands.size(), 1U);
  EXPECT_EQ(context.commands[0].argv[0], "node seed.js");
  EXPECT_EQ(step->next_state["steps"][1]["completed"], true);
  EXPECT_FALSE(step->next_state["steps"][1].contains("skipped"));
}

TEST(Executor, SkipsACommandTheUserDeclined) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_command("node seed.js"));
  context.answer("run.2", "skip");
  answer_commands(context, command_exited(0));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_TRUE(context.commands.empty());
  EXPECT_EQ(step->next_state["steps"][1]["completed"], true);
  EXPECT_EQ(step->next_state["steps"][1]["skipped"], true);
  EXPECT_FALSE(step->next_state.contains("error"));
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "exec.skipped");
  EXPECT_EQ(context.events[0].second["command"], "node seed.js");
  EXPECT_EQ(context.events[0].second["step_id"], 2);
}

TEST(Executor, RefusesACommandOffTheListWhenConfiguredNotToAsk) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN, {{"ask_outside_allow_list", false}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(state_with_command("node seed.js"));
  answer_commands(context, command_exited(0));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_TRUE(context.questions.empty());
  EXPECT_TRUE(context.commands.empty());
  EXPECT_EQ(step->next_state["steps"][1]["skipped"], true);
  EXPECT_EQ(step->next_state["steps"][1]["completed"], true);
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "exec.skipped");
  EXPECT_EQ(context.events[0].second["reason"], "it is not on the allow-list");
}

TEST(Executor, UsesTheConfiguredAllowList) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN, {{"allow", {"make"}}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext make(state_with_command("make all"));
  answer_commands(make, command_exited(0));
  ASSERT_TRUE(agent.run_step(make).ok());
  EXPECT_TRUE(make.questions.empty());
  // The configured list replaces the default one.
  ScriptedAgentContext npm(state_with_command("npm test"));
  EXPECT_EQ(agent.run_step(npm).status().code(), sdk::StatusCode::kAborted);
}

TEST(Executor, ClampsTheStepsTimeoutAndDefaultsAMissingOne) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN,
                     {{"max_timeout_s", 300}, {"default_timeout_s", 45}});
  ASSERT_EQ(agent.error(), "");
  const std::vector<std::pair<nlohmann::json, int>> cases = {{nullptr, 45}, {10, 10}, {3600, 300},
                                                             {1e300, 300},  {-5, 45}, {"soon", 45}};
  for (const auto& [timeout, expected] : cases) {
    nlohmann::json state = state_with_command("npm test");
    if (!timeout.is_null()) state["steps"][1]["timeout_s"] = timeout;
    ScriptedAgentContext context(state);
    answer_commands(context, command_exited(0));
    ASSERT_TRUE(agent.run_step(context).ok()) << timeout.dump();
    ASSERT_EQ(context.commands.size(), 1U);
    EXPECT_EQ(context.commands[0].timeout, std::chrono::seconds(expected)) << timeout.dump();
  }
}

TEST(Executor, AFailedCommandBecomesTheRunsErrorAndLeavesTheStepOpen) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_command("npm test"));
  const std::string long_out = std::string(6000, 'a') + "the end";
  answer_commands(context, command_exited(1, long_out, "Error: Cannot find module 'express'"));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const auto& next = step->next_state;
  EXPECT_EQ(next["steps"][1]["completed"], false);
  const auto& error = next["error"];
  EXPECT_EQ(error["message"], "`npm test` exited with 1");
  EXPECT_EQ(error["command"], "npm test");
  EXPECT_EQ(error["exit_code"], 1);
  EXPECT_EQ(error["step_id"], 2);
  EXPECT_EQ(error["stderr"], "Error: Cannot find module 'express'");
  const std::string out = error["stdout"];
  EXPECT_EQ(out.size(), 4096U);
  EXPECT_TRUE(out.ends_with("the end"));
  EXPECT_EQ(step->summary, "`npm test` exited with 1");
  // The executor leaves a failed step to the error handler, which runs first in the pipeline.
  EXPECT_TRUE(agent.wants(next));
}

TEST(Executor, NamesATimeoutAndASignal) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  {
    ScriptedAgentContext context(state_with_command("npm test", 30));
    sdk::CommandResult result;
    result.timed_out = true;
    result.signal = 9;
    answer_commands(context, result);
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    EXPECT_EQ(step->next_state["error"]["message"], "`npm test` timed out after 30 s");
    EXPECT_TRUE(step->next_state["error"]["exit_code"].is_null());
  }
  {
    ScriptedAgentContext context(state_with_command("npm test"));
    sdk::CommandResult result;
    result.signal = 11;
    answer_commands(context, result);
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    EXPECT_EQ(step->next_state["error"]["message"], "`npm test` was killed by signal 11");
  }
}

TEST(Executor, KeepsTheOutputValidUtf8) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_command("npm test"));
  // A tail cut inside "é" (0xC3 0xA9) and a stray byte of binary output.
  std::string out = "\xA9 ok \xFF done";
  answer_commands(context, command_exited(2, out, std::string(4095, 'x') + "\xC3\xA9"));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const auto& error = step->next_state["error"];
  EXPECT_NO_THROW((void)step->next_state.dump());
  EXPECT_EQ(error["stdout"], " ok \xEF\xBF\xBD done");
  const std::string err = error["stderr"];
  EXPECT_TRUE(err.ends_with("\xC3\xA9"));
  EXPECT_LE(err.size(), 4096U);
}

TEST(Executor, FailsTheStepWhenTheCommandCannotStart) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_command("npm test"));
  context.script_commands([](const sdk::CommandRequest&) -> sdk::Result<sdk::CommandResult> {
    return sdk::Status::failed_precondition("no runner can confine commands");
  });
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(step.status().message(), "no runner can confine commands");
}

TEST(Executor, RejectsACommandStepWithoutACommand) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  ScriptedAgentContext context(state_with_steps({{{"id", 4}, {"type", "command"}, {"command", 12}}}));
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(step.status().message().find("step 4"), std::string::npos);
  EXPECT_TRUE(context.commands.empty());
}

TEST(Executor, RejectsABadConfig) {
  EXPECT_NE(AgentHarness("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN, {{"allow", "npm test"}}).error(),
            "");
  EXPECT_NE(AgentHarness("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN, {{"allow", {""}}}).error(), "");
  EXPECT_NE(AgentHarness("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN, {{"max_timeout_s", 0}}).error(),
            "");
  EXPECT_NE(
      AgentHarness("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN, {{"ask_outside_allow_list", "no"}})
          .error(),
      "");
}

TEST(Executor, TheSameInputsGiveTheSameNextState) {
  AgentHarness agent("agent.executor", SAMOKODER_AGENT_EXECUTOR_PLUGIN);
  std::vector<nlohmann::json> nexts;
  for (int i = 0; i < 2; ++i) {
    ScriptedAgentContext context(state_with_command("npm run build"));
    answer_commands(context, command_exited(1, "", "tsc: error"));
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    nexts.push_back(step->next_state);
  }
  EXPECT_EQ(nexts[0], nexts[1]);
}

}  // namespace
}  // namespace samokoder::testing
