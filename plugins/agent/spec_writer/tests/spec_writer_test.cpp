// agent.spec_writer through the real plugin manager: when it takes the state, the spec it writes, the
// questions it asks a vague description, the features it makes of the user's messages, and its errors.
#include <gtest/gtest.h>

#include "agent_harness.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

const nlohmann::json kClearReview = {
    {"complexity", "simple"}, {"clear", true}, {"questions", nlohmann::json::array()}};
const nlohmann::json kSpec = {{"spec", "# To-do list\n\n## Purpose\nKeep tasks."},
                              {"summary", "A to-do list"}};

nlohmann::json fresh_run(const std::string& description) {
  return {{"description", description}, {"inbox", nlohmann::json::array()}, {"inbox_seq", 0}};
}

std::string prompt_of(const sdk::ModelRequest& request) {
  return request.messages.empty() ? std::string() : request.messages.front().content;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A run with a spec, two handled messages and two new ones, one finished task and a finished run.
nlohmann::json built_run() {
  return {{"description", "a to-do list"},
          {"inbox",
           {{{"seq", 1}, {"text", "old one"}},
            {{"seq", 2}, {"text", "old two"}},
            {{"seq", 3}, {"text", "add due dates"}},
            {{"seq", 4}, {"text", "and sort by them"}}}},
          {"inbox_seq", 4},
          {"inbox_handled", 2},
          {"spec", {{"original_description", "a to-do list"}, {"description", "# To-do\nthe spec"}}},
          {"epics", {{{"id", 1}, {"name", "Initial project"}, {"completed", true}}}},
          {"tasks",
           {{{"id", 1}, {"description", "the list page"}, {"status", "done"}},
            {{"id", 2}, {"description", "never built"}, {"status", "skipped"}}}},
          {"done", true},
          {"summary", "built the list"}};
}

const nlohmann::json kFeature = {{"spec", "# To-do\nthe spec with due dates"},
                                 {"feature", "Add a due date to tasks and sort the list by it."},
                                 {"name", "Due dates"}};

TEST(SpecWriter, WantsARunWithoutASpecOrWithANewMessage) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "spec_writer");
  EXPECT_TRUE(agent.wants(fresh_run("a to-do list")));
  EXPECT_TRUE(agent.wants({{"spec", {{"description", ""}}}}));
  nlohmann::json specified = {{"spec", {{"description", "the spec"}}}, {"inbox_seq", 0}};
  EXPECT_FALSE(agent.wants(specified));
  specified["inbox"] = {{{"seq", 1}, {"text", "make it blue"}}};
  EXPECT_TRUE(agent.wants(specified));  // inbox_handled missing counts as 0
  specified["inbox_handled"] = 1;
  EXPECT_FALSE(agent.wants(specified));
  EXPECT_TRUE(agent.wants(built_run()));
}

TEST(SpecWriter, AClearDescriptionBecomesTheSpecWithoutQuestions) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  ScriptedAgentContext context(fresh_run("a to-do list with priorities"));
  context.script_model("spec_review", {kClearReview});
  context.script_model("spec", {kSpec});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(context.model_call_names, (std::vector<std::string>{"spec_review", "spec"}));
  EXPECT_TRUE(contains(prompt_of(context.model_calls[0]), "a to-do list with priorities"));
  EXPECT_TRUE(contains(prompt_of(context.model_calls[1]), "a to-do list with priorities"));
  EXPECT_TRUE(contains(prompt_of(context.model_calls[1]), "simple"));
  EXPECT_TRUE(contains(context.model_calls[0].system, "product analyst"));
  EXPECT_TRUE(context.questions.empty());

  const auto& next = step->next_state;
  EXPECT_EQ(next["spec"]["description"], kSpec["spec"]);
  EXPECT_EQ(next["spec"]["original_description"], "a to-do list with priorities");
  EXPECT_EQ(next["spec"]["complexity"], "simple");
  EXPECT_EQ(next["spec"]["questions"], nlohmann::json::array());
  EXPECT_EQ(next["inbox_handled"], 0);
  EXPECT_EQ(step->summary, "spec: A to-do list");
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "spec.written");
  EXPECT_EQ(context.events[0].second, (nlohmann::json{{"complexity", "simple"}, {"questions", 0}}));
  EXPECT_FALSE(agent.wants(next));
}

TEST(SpecWriter, MessagesSentBeforeTheSpecReachItsPromptsAndAreHandled) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  auto state = fresh_run("a to-do list");
  state["inbox"] = {{{"seq", 1}, {"text", "dark theme please"}}};
  state["inbox_seq"] = 1;
  ScriptedAgentContext context(state);
  context.script_model("spec_review", {kClearReview});
  context.script_model("spec", {kSpec});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_TRUE(contains(prompt_of(context.model_calls[0]), "dark theme please"));
  EXPECT_TRUE(contains(prompt_of(context.model_calls[1]), "dark theme please"));
  EXPECT_EQ(step->next_state["inbox_handled"], 1);
  EXPECT_FALSE(agent.wants(step->next_state));
}

TEST(SpecWriter, AVagueDescriptionAsksEachQuestionInTurnThenWritesTheSpecWithTheAnswers) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  const nlohmann::json review = {
      {"complexity", "moderate"}, {"clear", false}, {"questions", {"Who uses it?", "What do they record?"}}};
  const auto state = fresh_run("an app for my business");

  // The first run pauses at the first question: nothing after it happens.
  ScriptedAgentContext first(state);
  first.script_model("spec_review", {review});
  first.script_model("spec", {kSpec});
  auto paused = agent.run_step(first);
  ASSERT_FALSE(paused.ok());
  EXPECT_EQ(paused.status().code(), sdk::StatusCode::kAborted);
  ASSERT_EQ(first.questions.size(), 1U);
  EXPECT_EQ(first.questions[0].id, "clarify.1");
  EXPECT_TRUE(contains(first.questions[0].text, "Who uses it?"));
  EXPECT_TRUE(first.questions[0].options.empty());
  EXPECT_EQ(first.calls_of("spec"), 0U);

  // The re-run gets the first answer back and stops at the second question.
  ScriptedAgentContext second(state);
  second.script_model("spec_review", {review});
  second.answer("clarify.1", "my bakery's staff");
  EXPECT_EQ(agent.run_step(second).status().code(), sdk::StatusCode::kAborted);
  ASSERT_EQ(second.questions.size(), 2U);
  EXPECT_EQ(second.questions[1].id, "clarify.2");

  ScriptedAgentContext third(state);
  third.script_model("spec_review", {review});
  third.script_model("spec", {kSpec});
  third.answer("clarify.1", "my bakery's staff");
  third.answer("clarify.2", "daily orders");
  auto step = agent.run_step(third);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const std::string prompt = prompt_of(third.model_calls[1]);
  EXPECT_TRUE(contains(prompt, "my bakery's staff"));
  EXPECT_TRUE(contains(prompt, "What do they record?"));
  EXPECT_TRUE(contains(prompt, "moderate"));
  const nlohmann::json expected = {{{"question", "Who uses it?"}, {"answer", "my bakery's staff"}},
                                   {{"question", "What do they record?"}, {"answer", "daily orders"}}};
  EXPECT_EQ(step->next_state["spec"]["questions"], expected);
  EXPECT_EQ(step->next_state["spec"]["complexity"], "moderate");
  EXPECT_EQ(third.events[0].second["questions"], 2);
}

TEST(SpecWriter, AsksAtMostThreeQuestionsAndNoneWhenTheDescriptionIsClear) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  ScriptedAgentContext many(fresh_run("something"));
  many.script_model("spec_review",
                    {{{"complexity", "hard"}, {"clear", false}, {"questions", {"a", "b", "c", "d"}}}});
  many.script_model("spec", {kSpec});
  for (const char* id : {"clarify.1", "clarify.2", "clarify.3", "clarify.4"})
    many.answer(id, "yes");
  ASSERT_TRUE(agent.run_step(many).ok());
  EXPECT_EQ(many.questions.size(), 3U);

  // Questions that come with clear = true are not asked.
  ScriptedAgentContext clear(fresh_run("a to-do list"));
  clear.script_model("spec_review",
                     {{{"complexity", "simple"}, {"clear", true}, {"questions", {"colour?"}}}});
  clear.script_model("spec", {kSpec});
  ASSERT_TRUE(agent.run_step(clear).ok());
  EXPECT_TRUE(clear.questions.empty());
}

TEST(SpecWriter, AnswersThatMakeNoSpecFailTheStepWithoutChangingAnything) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  ScriptedAgentContext bad_complexity(fresh_run("a to-do list"));
  bad_complexity.script_model(
      "spec_review", {{{"complexity", "huge"}, {"clear", true}, {"questions", nlohmann::json::array()}}});
  auto step = agent.run_step(bad_complexity);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(step.status().message(), "huge"));
  EXPECT_EQ(bad_complexity.calls_of("spec"), 0U);

  ScriptedAgentContext empty_spec(fresh_run("a to-do list"));
  empty_spec.script_model("spec_review", {kClearReview});
  empty_spec.script_model("spec", {{{"spec", "  \n"}, {"summary", "nothing"}}});
  step = agent.run_step(empty_spec);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(empty_spec.events.empty());

  ScriptedAgentContext nothing(fresh_run(""));
  EXPECT_EQ(agent.run_step(nothing).status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(nothing.model_calls.empty());

  // The model's failure is the step's.
  ScriptedAgentContext unscripted(fresh_run("a to-do list"));
  EXPECT_EQ(agent.run_step(unscripted).status().code(), sdk::StatusCode::kUnavailable);
}

TEST(SpecWriter, ANewMessageBecomesAFeatureEpicAndReopensAFinishedRun) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  ScriptedAgentContext context(built_run());
  context.script_model("feature", {kFeature});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"feature"});
  const std::string prompt = prompt_of(context.model_calls[0]);
  EXPECT_TRUE(contains(prompt, "the spec"));
  EXPECT_TRUE(contains(prompt, "add due dates"));
  EXPECT_TRUE(contains(prompt, "and sort by them"));
  EXPECT_FALSE(contains(prompt, "old one"));  // handled before
  EXPECT_TRUE(contains(prompt, "the list page"));
  EXPECT_FALSE(contains(prompt, "never built"));  // skipped, not done

  const auto& next = step->next_state;
  ASSERT_EQ(next["epics"].size(), 2U);
  EXPECT_EQ(next["epics"][1], (nlohmann::json{{"id", 2},
                                              {"name", "Due dates"},
                                              {"source", "feature"},
                                              {"description", kFeature["feature"]},
                                              {"planned", false},
                                              {"completed", false}}));
  EXPECT_EQ(next["spec"]["description"], kFeature["spec"]);
  EXPECT_EQ(next["spec"]["original_description"], "a to-do list");
  EXPECT_EQ(next["inbox_handled"], 4);
  EXPECT_FALSE(next.contains("done"));
  EXPECT_FALSE(next.contains("summary"));
  EXPECT_EQ(next["tasks"], built_run()["tasks"]);
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "spec.updated");
  EXPECT_EQ(context.events[0].second, (nlohmann::json{{"epic", 2}, {"name", "Due dates"}}));
  EXPECT_EQ(step->summary, "feature: Due dates");
  EXPECT_FALSE(agent.wants(next));
}

TEST(SpecWriter, AFeatureWithoutADescriptionFailsTheStep) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  ScriptedAgentContext context(built_run());
  context.script_model("feature", {{{"spec", "# To-do"}, {"feature", ""}, {"name", "x"}}});
  auto step = agent.run_step(context);
  ASSERT_FALSE(step.ok());
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(context.events.empty());
}

TEST(SpecWriter, TheSameInputsGiveTheSameNextState) {
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN);
  auto run_once = [&](const nlohmann::json& state) {
    ScriptedAgentContext context(state);
    context.script_model("spec_review",
                         {{{"complexity", "simple"}, {"clear", false}, {"questions", {"Who?"}}}});
    context.script_model("spec", {kSpec});
    context.script_model("feature", {kFeature});
    context.answer("clarify.1", "me");
    auto step = agent.run_step(context);
    EXPECT_TRUE(step.ok()) << step.status().to_string();
    return std::make_pair(step.ok() ? step->next_state : nlohmann::json(), context.model_calls);
  };
  for (const auto& state : {fresh_run("a to-do list"), built_run()}) {
    const auto [first, first_calls] = run_once(state);
    const auto [second, second_calls] = run_once(state);
    EXPECT_EQ(first, second);
    ASSERT_EQ(first_calls.size(), second_calls.size());
    for (std::size_t i = 0; i < first_calls.size(); ++i)
      EXPECT_EQ(prompt_of(first_calls[i]), prompt_of(second_calls[i]));
  }
}

TEST(SpecWriter, APromptDirReplacesABuiltInPrompt) {
  TempDir dir("samokoder-spec-prompts");
  dir.write("spec_review.md", "Review: {{description}} / {{messages}}");
  AgentHarness agent("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN,
                     {{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(fresh_run("a to-do list"));
  context.script_model("spec_review", {kClearReview});
  context.script_model("spec", {kSpec});
  ASSERT_TRUE(agent.run_step(context).ok());
  EXPECT_EQ(prompt_of(context.model_calls[0]), "Review: a to-do list / []");
  EXPECT_TRUE(contains(prompt_of(context.model_calls[1]), "What the spec must hold"));  // still built in

  TempDir misspelt("samokoder-spec-prompts");
  misspelt.write("spec_reveiw.md", "typo");
  AgentHarness broken("agent.spec_writer", SAMOKODER_AGENT_SPEC_WRITER_PLUGIN,
                      {{"prompt_dir", misspelt.path().string()}});
  EXPECT_TRUE(contains(broken.error(), "spec_reveiw.md")) << broken.error();
}

}  // namespace
}  // namespace samokoder::testing
