// agent.code_monkey through the real plugin manager: which states it takes, one file written with its
// prompt, the reviewer's rework loop, the parallel fan-out (proposed, one branch, folded), and what it
// refuses to write.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

using nlohmann::json;

json save_step(int id, const std::string& path, bool completed = false) {
  return {{"id", id},
          {"type", "save_file"},
          {"path", path},
          {"description", "write " + path},
          {"completed", completed}};
}

json command_step(int id) {
  return {{"id", id},
          {"type", "command"},
          {"command", "npm install"},
          {"timeout_s", nullptr},
          {"completed", false}};
}

json state_with(std::vector<json> steps) {
  return {{"spec", {{"description", "A to-do list with a JSON API."}}},
          {"tasks",
           {{{"id", 1}, {"epic_id", 1}, {"description", "Serve the page"}, {"status", "done"}},
            {{"id", 2},
             {"epic_id", 1},
             {"description", "Add the items API"},
             {"status", "in_progress"},
             {"instructions", "Keep the items in an array; GET and POST /api/items."}}}},
          {"steps", json(std::move(steps))},
          {"iterations", json::array()}};
}

json content(const std::string& text) {
  return {{"content", text}};
}

json verdict(bool approved, const std::string& feedback) {
  return {{"approved", approved}, {"feedback", feedback}};
}

std::string prompt_of(const sdk::ModelRequest& request) {
  return request.messages.empty() ? std::string() : request.messages.front().content;
}

TEST(CodeMonkey, WantsASaveFileStepOrItsCompleteFanOut) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "code_monkey");
  EXPECT_TRUE(agent.wants(state_with({save_step(1, "a.js", true), save_step(2, "b.js")})));
  // A command is the executor's; no open step is the troubleshooter's or the developer's.
  EXPECT_FALSE(agent.wants(state_with({save_step(1, "a.js", true), command_step(2), save_step(3, "b.js")})));
  EXPECT_FALSE(agent.wants(state_with({save_step(1, "a.js", true)})));
  EXPECT_FALSE(agent.wants(state_with({})));

  json fanned = state_with({save_step(1, "a.js"), save_step(2, "b.js")});
  fanned["fan_out"] = {{"agent", "agent.code_monkey"},
                       {"tasks", json::array({save_step(1, "a.js"), save_step(2, "b.js")})},
                       {"results", {{"0", {{"step_id", 1}}}}}};
  EXPECT_FALSE(agent.wants(fanned));  // a result missing: the kernel's branches still run
  fanned["fan_out"]["results"]["1"] = {{"step_id", 2}};
  EXPECT_TRUE(agent.wants(fanned));
  fanned["fan_out"]["agent"] = "agent.other";
  EXPECT_FALSE(agent.wants(fanned));  // another agent's fan-out is its own to fold
}

TEST(CodeMonkey, WritesANewFileFromItsPrompt) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  ScriptedAgentContext context(state_with({save_step(1, "server.js"), command_step(2)}));
  context.files["package.json"] = "{\"name\": \"todo\"}\n";
  context.script_model("file_content", std::vector<json>{content("console.log('hi');\n")});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const json& next = step->next_state;
  EXPECT_EQ(context.written, std::vector<std::string>{"server.js"});
  EXPECT_EQ(context.files["server.js"], "console.log('hi');\n");
  EXPECT_EQ(next["steps"][0]["completed"], true);
  EXPECT_EQ(next["steps"][1]["completed"], false);
  EXPECT_FALSE(next.contains("fan_out"));
  // A new file is not reviewed.
  EXPECT_EQ(context.model_call_names, std::vector<std::string>{"file_content"});
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_NE(prompt.find("\nFile: server.js\n"), std::string::npos) << prompt;  // the e2e model reads it
  for (const char* expected : {"write server.js", "Add the items API", "GET and POST /api/items",
                               "(new file)", "A to-do list with a JSON API.", "--- package.json ---"})
    EXPECT_NE(prompt.find(expected), std::string::npos) << expected;
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "code.written");
  EXPECT_EQ(context.events[0].second["paths"], json::array({"server.js"}));
  // The next step is a command: the executor's.
  EXPECT_FALSE(agent.wants(next));
}

TEST(CodeMonkey, AnUnchangedFileIsNeitherReviewedNorWritten) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  ScriptedAgentContext context(state_with({save_step(1, "server.js")}));
  context.files["server.js"] = "same\n";
  context.script_model("file_content", std::vector<json>{content("same\n")});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_TRUE(context.written.empty());
  EXPECT_EQ(context.model_call_names, std::vector<std::string>{"file_content"});
  EXPECT_NE(prompt_of(context.model_calls[0]).find("same\n"), std::string::npos);
  EXPECT_EQ(step->next_state["steps"][0]["completed"], true);
}

TEST(CodeMonkey, ARejectedChangeIsReworkedWithTheReviewersFeedback) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  ScriptedAgentContext context(state_with({save_step(1, "server.js")}));
  context.files["server.js"] = "old\n";
  context.script_model("file_content", std::vector<json>{content("v1\n"), content("v2\n"), content("v3\n")});
  context.script_model("file_review",
                       std::vector<json>{verdict(false, "the GET route is missing"),
                                         verdict(false, "the export was lost."), verdict(true, "")});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(context.calls_of("file_content"), 3U);
  EXPECT_EQ(context.calls_of("file_review"), 3U);
  EXPECT_EQ(context.files["server.js"], "v3\n");
  EXPECT_EQ(context.written, std::vector<std::string>{"server.js"});

  // Each rework carries the rejected draft and the reviewer's words after the same prompt.
  const auto& first = context.model_calls[0];
  ASSERT_EQ(first.messages.size(), 1U);
  const auto& second = context.model_calls[2];  // file_content, file_review, file_content, ...
  ASSERT_EQ(context.model_call_names[2], "file_content");
  ASSERT_EQ(second.messages.size(), 3U);
  EXPECT_EQ(second.messages[0].content, first.messages[0].content);
  EXPECT_EQ(second.messages[1].role, "assistant");
  EXPECT_EQ(json::parse(second.messages[1].content), content("v1\n"));
  EXPECT_EQ(second.messages[2].role, "user");
  EXPECT_EQ(second.messages[2].content,
            "A reviewer rejected this version: the GET route is missing. Answer with the whole file again.");
  const auto& third = context.model_calls[4];
  ASSERT_EQ(third.messages.size(), 3U);
  EXPECT_EQ(json::parse(third.messages[1].content), content("v2\n"));
  EXPECT_EQ(third.messages[2].content,
            "A reviewer rejected this version: the export was lost. Answer with the whole file again.");

  // The reviewer saw the file before and after.
  const std::string review = prompt_of(context.model_calls[1]);
  EXPECT_NE(review.find("old\n"), std::string::npos);
  EXPECT_NE(review.find("v1\n"), std::string::npos);
  EXPECT_NE(review.find("File: server.js"), std::string::npos);
  for (const auto& [type, payload] : context.events)
    EXPECT_NE(type, "code.review_exhausted");
}

TEST(CodeMonkey, AfterThreeReworksTheLastVersionIsTaken) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  ScriptedAgentContext context(state_with({save_step(1, "server.js")}));
  context.files["server.js"] = "old\n";
  context.script_model("file_content", std::vector<json>{content("v1\n"), content("v2\n"), content("v3\n"),
                                                         content("v4\n"), content("v5\n")});
  context.script_model("file_review", std::vector<json>{verdict(false, "no")});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(context.calls_of("file_content"), 4U);
  EXPECT_EQ(context.calls_of("file_review"), 3U);
  EXPECT_EQ(context.files["server.js"], "v4\n");
  ASSERT_EQ(context.events.size(), 2U);
  EXPECT_EQ(context.events[0].first, "code.review_exhausted");
  EXPECT_EQ(context.events[0].second["path"], "server.js");
  EXPECT_EQ(context.events[1].first, "code.written");
}

TEST(CodeMonkey, SeveralFilesAreWrittenInParallelThroughAFanOut) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  const json state =
      state_with({save_step(1, "a.js", true), save_step(2, "server.js"), save_step(3, "public/index.html"),
                  save_step(4, "public/app.js"), command_step(5), save_step(6, "late.js")});

  // 1. The step proposes the fan-out and writes nothing.
  ScriptedAgentContext start(state);
  auto proposed = agent.run_step(start);
  ASSERT_TRUE(proposed.ok()) << proposed.status().to_string();
  EXPECT_TRUE(start.model_calls.empty());
  EXPECT_TRUE(start.written.empty());
  const json& fanned = proposed->next_state;
  ASSERT_TRUE(fanned.contains("fan_out"));
  EXPECT_EQ(fanned["fan_out"]["agent"], "agent.code_monkey");
  EXPECT_EQ(fanned["fan_out"]["tasks"],
            json::array({state["steps"][1], state["steps"][2], state["steps"][3]}));
  EXPECT_EQ(fanned["fan_out"]["results"], json::object());
  EXPECT_EQ(fanned["steps"], state["steps"]);  // nothing is completed until the fold
  EXPECT_FALSE(agent.wants(fanned));           // the kernel runs the branches

  // 2. A branch writes exactly its file and answers with its result.
  ScriptedAgentContext branch(fanned, fanned["fan_out"]["tasks"][1]);
  branch.files["server.js"] = "const x = 1;\n";
  branch.script_model("file_content", [](const sdk::ModelRequest& request) -> sdk::Result<json> {
    const std::string& prompt = request.messages.front().content;
    if (prompt.find("\nFile: public/index.html\n") == std::string::npos)
      return sdk::Status::invalid_argument("asked for the wrong file");
    return content("<h1>To-do</h1>\n");
  });
  auto result = agent.run_step(branch);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->next_state, json({{"step_id", 3}, {"path", "public/index.html"}, {"reworks", 0}}));
  EXPECT_EQ(branch.written, std::vector<std::string>{"public/index.html"});
  EXPECT_EQ(branch.files["public/index.html"], "<h1>To-do</h1>\n");
  EXPECT_EQ(branch.calls_of("file_content"), 1U);

  // 3. With every result in, the fold completes the steps and removes the fan-out.
  json complete = fanned;
  complete["fan_out"]["results"] = {{"0", {{"step_id", 2}, {"path", "server.js"}, {"reworks", 1}}},
                                    {"1", result->next_state},
                                    {"2", {{"step_id", 4}, {"path", "public/app.js"}, {"reworks", 0}}}};
  ASSERT_TRUE(agent.wants(complete));
  ScriptedAgentContext fold(complete);
  auto folded = agent.run_step(fold);
  ASSERT_TRUE(folded.ok()) << folded.status().to_string();
  const json& next = folded->next_state;
  EXPECT_FALSE(next.contains("fan_out"));
  for (const int i : {0, 1, 2, 3})
    EXPECT_EQ(next["steps"][i]["completed"], true) << i;
  EXPECT_EQ(next["steps"][4]["completed"], false);
  EXPECT_EQ(next["steps"][5]["completed"], false);
  EXPECT_TRUE(fold.model_calls.empty());
  EXPECT_TRUE(fold.written.empty());
  ASSERT_EQ(fold.events.size(), 1U);
  EXPECT_EQ(fold.events[0].first, "code.written");
  EXPECT_EQ(fold.events[0].second["paths"], json::array({"server.js", "public/index.html", "public/app.js"}));
  EXPECT_FALSE(agent.wants(next));  // the command is the executor's
}

TEST(CodeMonkey, AFanOutHoldsAtMostMaxParallelDistinctFiles) {
  AgentHarness two("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN, {{"max_parallel", 2}});
  ASSERT_EQ(two.error(), "");
  ScriptedAgentContext capped(state_with({save_step(1, "a.js"), save_step(2, "b.js"), save_step(3, "c.js")}));
  auto step = two.run_step(capped);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  ASSERT_EQ(step->next_state["fan_out"]["tasks"].size(), 2U);
  EXPECT_EQ(step->next_state["fan_out"]["tasks"][1]["path"], "b.js");

  // A file twice in a row is written once per step, never twice at once.
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  ScriptedAgentContext twice(state_with({save_step(1, "a.js"), save_step(2, "a.js"), save_step(3, "b.js")}));
  twice.script_model("file_content", std::vector<json>{content("a\n")});
  auto single = agent.run_step(twice);
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  EXPECT_FALSE(single->next_state.contains("fan_out"));
  EXPECT_EQ(twice.written, std::vector<std::string>{"a.js"});
  EXPECT_EQ(single->next_state["steps"][0]["completed"], true);
  EXPECT_EQ(single->next_state["steps"][1]["completed"], false);

  AgentHarness zero("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN, {{"max_parallel", 0}});
  EXPECT_NE(zero.error().find("max_parallel"), std::string::npos) << zero.error();
}

TEST(CodeMonkey, ABadPathOrAnOversizedFileWritesNothing) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN, {{"max_file_bytes", 8}});
  ASSERT_EQ(agent.error(), "");
  for (const char* bad : {"../outside.js", "/etc/passwd", "a/../../b.js", ""}) {
    ScriptedAgentContext context(state_with({save_step(1, bad)}));
    context.script_model("file_content", std::vector<json>{content("x\n")});
    auto step = agent.run_step(context);
    ASSERT_FALSE(step.ok()) << bad;
    EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(step.status().message().find("step 1"), std::string::npos) << step.status().message();
    EXPECT_TRUE(context.model_calls.empty()) << bad;
    EXPECT_TRUE(context.written.empty()) << bad;
  }
  // A bad path later in the batch fails before any branch starts.
  ScriptedAgentContext later(state_with({save_step(1, "a.js"), save_step(2, "../b.js")}));
  EXPECT_EQ(agent.run_step(later).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(later.written.empty());

  ScriptedAgentContext large(state_with({save_step(1, "big.js")}));
  large.script_model("file_content", std::vector<json>{content("123456789")});
  auto step = agent.run_step(large);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(step.status().message().find("max_file_bytes"), std::string::npos) << step.status().message();
  EXPECT_TRUE(large.written.empty());
  EXPECT_TRUE(large.events.empty());

  // A branch refuses the same.
  json fanned = state_with({save_step(1, "ok.js")});
  fanned["fan_out"] = {{"agent", "agent.code_monkey"},
                       {"tasks", json::array({save_step(1, "../x.js")})},
                       {"results", json::object()}};
  ScriptedAgentContext branch(fanned, fanned["fan_out"]["tasks"][0]);
  EXPECT_EQ(agent.run_step(branch).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(branch.written.empty());
}

TEST(CodeMonkey, AFixsPlanReachesThePrompt) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  json state = state_with({save_step(1, "server.js", true), save_step(2, "server.js")});
  state["iterations"] = {{{"id", 1},
                          {"status", "checking"},
                          {"description", "GET /api/items answers 500"},
                          {"instructions", "Declare items before the routes."}}};
  ScriptedAgentContext context(state);
  context.script_model("file_content", std::vector<json>{content("fixed\n")});
  ASSERT_TRUE(agent.run_step(context).ok());
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_NE(prompt.find("GET /api/items answers 500"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("Declare items before the routes."), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("GET and POST /api/items."), std::string::npos) << prompt;
}

TEST(CodeMonkey, TheSameStateAndAnswersGiveTheSameNextState) {
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN);
  json results[2];
  for (auto& result : results) {
    ScriptedAgentContext context(state_with({save_step(1, "server.js")}));
    context.files["server.js"] = "old\n";
    context.script_model("file_content", std::vector<json>{content("v1\n"), content("v2\n")});
    context.script_model("file_review", std::vector<json>{verdict(false, "no"), verdict(true, "")});
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    result = step->next_state;
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST(CodeMonkey, APromptFolderInConfigReplacesAPrompt) {
  TempDir dir("samokoder-code-monkey");
  dir.write("file_content.md", "Only write\nFile: {{path}}\n");
  AgentHarness agent("agent.code_monkey", SAMOKODER_AGENT_CODE_MONKEY_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(state_with({save_step(1, "a.js")}));
  context.script_model("file_content", std::vector<json>{content("a\n")});
  ASSERT_TRUE(agent.run_step(context).ok());
  EXPECT_EQ(prompt_of(context.model_calls[0]), "Only write\nFile: a.js\n");
}

}  // namespace
}  // namespace samokoder::testing
