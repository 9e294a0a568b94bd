// agent.architect through the real plugin manager: when it takes the state, the architecture it keeps,
// the dependency checks it runs, what a missing required dependency asks, and its warnings and errors.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

nlohmann::json specified() {
  return {{"description", "a to-do list"},
          {"spec", {{"description", "# To-do list\nKeep tasks in a JSON file."}}}};
}

nlohmann::json dependency(const std::string& name, const std::string& test, bool required) {
  return {{"name", name},
          {"description", name + " runs the app"},
          {"test", test},
          {"required_locally", required}};
}

nlohmann::json architecture(nlohmann::json system, nlohmann::json packages = nlohmann::json::array()) {
  return {{"app_type", "web-app"},
          {"summary", "Node.js with node:http; public/ and /api on one port."},
          {"system_dependencies", std::move(system)},
          {"package_dependencies", std::move(packages)}};
}

std::string prompt_of(const sdk::ModelRequest& request) {
  return request.messages.empty() ? std::string() : request.messages.front().content;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Commands whose shell text is in `missing` fail with a message on stderr; the others succeed.
ScriptedAgentContext::CommandAnswerer machine_without(std::vector<std::string> missing) {
  return [missing](const sdk::CommandRequest& request) -> sdk::Result<sdk::CommandResult> {
    for (const auto& command : missing)
      if (request.argv.size() == 1 && request.argv[0] == command)
        return command_exited(127, "", "sh: 1: " + command.substr(0, command.find(' ')) + ": not found\n");
    return command_exited(0, "v1.0\n");
  };
}

std::vector<std::string> events_of(const ScriptedAgentContext& context, const std::string& type) {
  std::vector<std::string> names;
  for (const auto& [event, payload] : context.events)
    if (event == type) names.push_back(payload.value("name", std::string()));
  return names;
}

TEST(Architect, WantsASpecWithoutAnArchitecture) {
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "architect");
  EXPECT_TRUE(agent.wants(specified()));
  EXPECT_FALSE(agent.wants({{"description", "a to-do list"}}));
  EXPECT_FALSE(agent.wants({{"spec", {{"description", ""}}}}));
  auto decided = specified();
  decided["architecture"] = architecture(nlohmann::json::array());
  EXPECT_FALSE(agent.wants(decided));
}

TEST(Architect, ChecksEverySystemDependencyAndKeepsTheAnswerWithWhatIsInstalled) {
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN);
  ScriptedAgentContext context(specified());
  const auto answer =
      architecture({dependency("Node.js", "node --version", true), dependency("git", "git --version", false)},
                   {{{"name", "express"}, {"description", "the API"}}});
  context.script_model("architecture", {answer});
  context.script_commands(machine_without({"git --version"}));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();

  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"architecture"});
  EXPECT_TRUE(contains(prompt_of(context.model_calls[0]), "Keep tasks in a JSON file."));
  EXPECT_TRUE(contains(context.model_calls[0].system, "PyPI"));
  ASSERT_EQ(context.commands.size(), 2U);
  EXPECT_EQ(context.commands[0].argv, std::vector<std::string>{"node --version"});
  EXPECT_TRUE(context.commands[0].shell);
  EXPECT_EQ(context.commands[0].timeout, std::chrono::seconds(30));
  EXPECT_EQ(context.commands[1].argv, std::vector<std::string>{"git --version"});
  EXPECT_TRUE(context.questions.empty());  // git is missing but not required

  auto expected = answer;
  expected["system_dependencies"][0]["installed"] = true;
  expected["system_dependencies"][1]["installed"] = false;
  EXPECT_EQ(step->next_state["architecture"], expected);
  EXPECT_EQ(step->next_state["spec"], specified()["spec"]);
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "architecture.chosen");
  EXPECT_EQ(context.events[0].second["app_type"], "web-app");
  EXPECT_EQ(context.events[0].second["summary"], answer["summary"]);
  EXPECT_FALSE(agent.wants(step->next_state));
}

TEST(Architect, AMissingRequiredDependencyAsksTheUserAndContinueChecksAgain) {
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN);
  const auto answer = architecture({dependency("Node.js 20", "node --version", true)});

  ScriptedAgentContext asked(specified());
  asked.script_model("architecture", {answer});
  asked.script_commands(machine_without({"node --version"}));
  auto paused = agent.run_step(asked);
  EXPECT_EQ(paused.status().code(), sdk::StatusCode::kAborted);
  ASSERT_EQ(asked.questions.size(), 1U);
  EXPECT_EQ(asked.questions[0].id, "install.node_js_20");
  EXPECT_EQ(asked.questions[0].options, (std::vector<std::string>{"continue", "skip"}));
  EXPECT_TRUE(contains(asked.questions[0].text, "`node --version` failed here"));
  EXPECT_TRUE(contains(asked.questions[0].text, "node: not found"));
  EXPECT_TRUE(asked.events.empty());

  // The user installed it: the second check passes.
  ScriptedAgentContext installed(specified());
  installed.script_model("architecture", {answer});
  installed.answer("install.node_js_20", "continue");
  int runs = 0;
  installed.script_commands([&runs](const sdk::CommandRequest&) -> sdk::Result<sdk::CommandResult> {
    return ++runs == 1 ? command_exited(127, "", "not found") : command_exited(0, "v20.1.0");
  });
  auto step = agent.run_step(installed);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(installed.commands.size(), 2U);
  EXPECT_EQ(step->next_state["architecture"]["system_dependencies"][0]["installed"], true);

  // Still missing after "continue": recorded as not installed, with a warning.
  ScriptedAgentContext still(specified());
  still.script_model("architecture", {answer});
  still.answer("install.node_js_20", "continue");
  still.script_commands(machine_without({"node --version"}));
  step = agent.run_step(still);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(still.commands.size(), 2U);
  EXPECT_EQ(step->next_state["architecture"]["system_dependencies"][0]["installed"], false);
  EXPECT_EQ(events_of(still, "architecture.warning"), std::vector<std::string>{"Node.js 20"});

  // "skip" goes on without checking again.
  ScriptedAgentContext skipped(specified());
  skipped.script_model("architecture", {answer});
  skipped.answer("install.node_js_20", "skip");
  skipped.script_commands(machine_without({"node --version"}));
  step = agent.run_step(skipped);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(skipped.commands.size(), 1U);
  EXPECT_EQ(step->next_state["architecture"]["system_dependencies"][0]["installed"], false);
}

TEST(Architect, TwoDependenciesOfOneQuestionIdGetDistinctIds) {
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN);
  ScriptedAgentContext context(specified());
  context.script_model("architecture", {architecture({dependency("Node JS", "node --version", true),
                                                      dependency("node.js", "nodejs -v", true)})});
  context.script_commands(machine_without({"node --version", "nodejs -v"}));
  context.answer("install.node_js", "skip");
  EXPECT_EQ(agent.run_step(context).status().code(), sdk::StatusCode::kAborted);
  ASSERT_EQ(context.questions.size(), 2U);
  EXPECT_EQ(context.questions[1].id, "install.node_js.2");
}

TEST(Architect, WarnsAboutWhatThisMachineOrTheTemplatesCannotServe) {
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN);
  ScriptedAgentContext context(specified());
  context.script_model(
      "architecture",
      {architecture({dependency("Docker", "docker --version", false), dependency("Node.js", "node -v", true),
                     dependency("PostgreSQL 15", "psql --version", false)},
                    {{{"name", "express"}, {"description", "API"}},
                     {{"name", "mongoose"}, {"description", "MongoDB models"}},
                     {{"name", "Next.js"}, {"description", "pages"}},
                     {{"name", "nextra-theme"}, {"description", "not next itself"}}})});
  context.script_commands(machine_without({}));
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(events_of(context, "architecture.warning"),
            (std::vector<std::string>{"Docker", "PostgreSQL 15", "mongoose", "Next.js"}));
  for (const auto& [type, payload] : context.events)
    if (type == "architecture.warning") {
      EXPECT_FALSE(payload.value("reason", std::string()).empty());
    }
}

TEST(Architect, AnArchitectureItCannotUseFailsTheStepBeforeAnyCheck) {
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN);
  auto bad_type = architecture(nlohmann::json::array());
  bad_type["app_type"] = "mobile-app";
  auto no_test = architecture({dependency("Node.js", " ", true)});
  auto no_name = architecture(nlohmann::json::array(), {{{"name", ""}, {"description", "x"}}});
  for (const auto& answer : {bad_type, no_test, no_name}) {
    ScriptedAgentContext context(specified());
    context.script_model("architecture", {answer});
    context.script_commands(machine_without({}));
    auto step = agent.run_step(context);
    ASSERT_FALSE(step.ok()) << answer.dump();
    EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument) << step.status().to_string();
    EXPECT_TRUE(context.commands.empty());
    EXPECT_TRUE(context.events.empty());
  }
}

TEST(Architect, TheSameInputsGiveTheSameNextState) {
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN);
  auto run_once = [&] {
    ScriptedAgentContext context(specified());
    context.script_model(
        "architecture",
        {architecture({dependency("Node.js", "node -v", true), dependency("Python", "python3 -V", true)})});
    context.script_commands(machine_without({"python3 -V"}));
    context.answer("install.python", "skip");
    auto step = agent.run_step(context);
    EXPECT_TRUE(step.ok()) << step.status().to_string();
    return step.ok() ? step->next_state : nlohmann::json();
  };
  const auto first = run_once();
  EXPECT_EQ(first, run_once());
  EXPECT_EQ(first["architecture"]["system_dependencies"][1]["installed"], false);
}

TEST(Architect, APromptDirReplacesABuiltInPrompt) {
  TempDir dir("samokoder-architect-prompts");
  dir.write("architecture.md", "Stack for: {{spec}}");
  AgentHarness agent("agent.architect", SAMOKODER_AGENT_ARCHITECT_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(specified());
  context.script_model("architecture", {architecture(nlohmann::json::array())});
  ASSERT_TRUE(agent.run_step(context).ok());
  EXPECT_EQ(prompt_of(context.model_calls[0]), "Stack for: # To-do list\nKeep tasks in a JSON file.");
}

}  // namespace
}  // namespace samokoder::testing
