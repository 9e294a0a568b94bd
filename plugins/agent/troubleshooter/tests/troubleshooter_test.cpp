// agent.troubleshooter through the real plugin manager: the states it takes, the check it defines and
// runs, what a passing or failing app leads to, the user's review, and the limit on attempts. The
// smoke check script is also run for real against tiny apps (RealApp tests below).
#include <chrono>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>
#include <unistd.h>

#include "agent_harness.hpp"
#include "real_command.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

nlohmann::json task_state(nlohmann::json iterations = nlohmann::json::array(),
                          const std::string& later_status = "todo", int later_epic = 1) {
  return {
      {"spec", {{"description", "A shopping list with a JSON API."}}},
      {"template", {{"name", "python_http"}, {"run_command", "python3 server.py"}}},
      {"epics", {{{"id", 1}, {"completed", false}}, {{"id", 2}, {"completed", false}}}},
      {"tasks",
       {{{"id", 1}, {"epic_id", 1}, {"description", "the scaffold"}, {"status", "done"}},
        {{"id", 2},
         {"epic_id", 1},
         {"description", "the items API"},
         {"status", "in_progress"},
         {"testing_instructions", "POST an item, then list it"}},
        {{"id", 3}, {"epic_id", later_epic}, {"description", "the styles"}, {"status", later_status}}}},
      {"steps",
       {{{"id", 1}, {"type", "save_file"}, {"path", "app.py"}, {"completed", true}},
        {{"id", 2}, {"type", "command"}, {"command", "python3 -m py_compile app.py"}, {"completed", true}}}},
      {"iterations", std::move(iterations)}};
}

// The last task of epic 1: task 3 belongs to epic 2.
nlohmann::json end_of_epic_state(nlohmann::json iterations = nlohmann::json::array()) {
  return task_state(std::move(iterations), "todo", 2);
}

nlohmann::json check(const std::string& method, const std::string& path, int status,
                     nlohmann::json contains = nullptr, nlohmann::json body = nullptr) {
  return {{"method", method},
          {"path", path},
          {"body", std::move(body)},
          {"expect_status", status},
          {"expect_contains", std::move(contains)}};
}

nlohmann::json app_check(nlohmann::json checks, const std::string& run_command = "python3 app.py") {
  return {{"run_command", run_command},
          {"checks", std::move(checks)},
          {"user_review",
           {{{"title", "Add an item"}, {"action", "Type milk and press Add"}, {"result", "milk is listed"}},
            {{"title", "Reload"}, {"action", "Reload the page"}, {"result", "milk is still there"}}}}};
}

const nlohmann::json kTwoChecks = app_check(
    {check("GET", "/health", 200, "ok"), check("POST", "/items", 201, nullptr, R"({"name": "milk"})")});

sdk::CommandResult reported(const nlohmann::json& report) {
  return command_exited(0, report.dump() + "\n");
}

const nlohmann::json kPassed = {
    {"started", true},
    {"error", nullptr},
    {"results",
     {{{"method", "GET"}, {"path", "/health"}, {"status", 200}, {"ok", true}, {"error", nullptr}},
      {{"method", "POST"}, {"path", "/items"}, {"status", 201}, {"ok", true}, {"error", nullptr}}}},
    {"log", "listening\n"}};

const nlohmann::json kFailed = {
    {"started", true},
    {"error", nullptr},
    {"results",
     {{{"method", "GET"}, {"path", "/health"}, {"status", 200}, {"ok", true}, {"error", nullptr}},
      {{"method", "POST"},
       {"path", "/items"},
       {"status", 500},
       {"ok", false},
       {"error", "got status 500, expected 201; the response began: KeyError"}}}},
    {"log", "Traceback: KeyError 'name'\n"}};

void answer_checks(ScriptedAgentContext& context, const nlohmann::json& report) {
  context.script_commands(
      [report](const sdk::CommandRequest&) -> sdk::Result<sdk::CommandResult> { return reported(report); });
}

AgentHarness troubleshooter(nlohmann::json config = nlohmann::json::object()) {
  return AgentHarness("agent.troubleshooter", SAMOKODER_AGENT_TROUBLESHOOTER_PLUGIN, std::move(config));
}

// --- wants -----------------------------------------------------------------------------------------

TEST(Troubleshooter, TakesATaskWhoseStepsAreAllDone) {
  AgentHarness agent = troubleshooter();
  ASSERT_EQ(agent.error(), "");
  EXPECT_EQ(agent.role(), "troubleshooter");
  EXPECT_TRUE(agent.wants(task_state()));
  EXPECT_TRUE(agent.wants(task_state({{{"id", 1}, {"status", "checking"}}})));
  EXPECT_TRUE(agent.wants(task_state({{{"id", 1}, {"status", "done"}}})));

  nlohmann::json open_step = task_state();
  open_step["steps"][1]["completed"] = false;
  EXPECT_FALSE(agent.wants(open_step));  // the executor's
  nlohmann::json no_steps = task_state();
  no_steps["steps"] = nlohmann::json::array();
  EXPECT_FALSE(agent.wants(no_steps));  // the developer's
  no_steps.erase("steps");
  EXPECT_FALSE(agent.wants(no_steps));
  // A fix waits for its steps: the developer's.
  EXPECT_FALSE(agent.wants(task_state({{{"id", 1}, {"status", "implement_solution"}}})));
  EXPECT_FALSE(agent.wants(
      task_state({{{"id", 1}, {"status", "implement_solution"}}, {{"id", 2}, {"status", "done"}}})));
  for (const std::string status : {"todo", "reviewed", "documented"}) {
    nlohmann::json other = task_state();
    other["tasks"][1]["status"] = status;
    EXPECT_FALSE(agent.wants(other)) << status;
  }
  EXPECT_FALSE(agent.wants(nlohmann::json::object()));
}

// --- the check -------------------------------------------------------------------------------------

TEST(Troubleshooter, AsksForTheCheckWithTheSpecTheTaskAndTheFiles) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(task_state());
  context.files["app.py"] = "import http.server\n";
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kPassed);
  ASSERT_TRUE(agent.run_step(context).ok());
  ASSERT_EQ(context.model_call_names, std::vector<std::string>{"app_check"});
  const std::string& prompt = context.model_calls[0].messages[0].content;
  EXPECT_NE(prompt.find("A shopping list with a JSON API."), std::string::npos);
  EXPECT_NE(prompt.find("the items API"), std::string::npos);
  EXPECT_NE(prompt.find("POST an item, then list it"), std::string::npos);
  EXPECT_NE(prompt.find("--- app.py ---"), std::string::npos);
  // No app yet: the template's run command.
  EXPECT_NE(prompt.find("python3 server.py"), std::string::npos);
  EXPECT_EQ(prompt.find("{{"), std::string::npos);
  EXPECT_NE(context.model_calls[0].system.find("PORT"), std::string::npos);

  // Once an app is known, its command wins over the template's.
  nlohmann::json known = task_state();
  known["app"] = {{"run_command", "python3 main.py"}, {"checks", nlohmann::json::array()}, {"passed", true}};
  ScriptedAgentContext again(known);
  again.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(again, kPassed);
  ASSERT_TRUE(agent.run_step(again).ok());
  EXPECT_NE(again.model_calls[0].messages[0].content.find("python3 main.py"), std::string::npos);
}

TEST(Troubleshooter, RunsTheCheckAsOnePythonCommand) {
  AgentHarness agent = troubleshooter({{"start_timeout_s", 15}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(task_state());
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kPassed);
  ASSERT_TRUE(agent.run_step(context).ok());
  ASSERT_EQ(context.commands.size(), 1U);
  const auto& command = context.commands[0];
  EXPECT_FALSE(command.shell);
  ASSERT_EQ(command.argv.size(), 3U);
  EXPECT_EQ(command.argv[0], "python3");
  EXPECT_EQ(command.argv[1], "-c");
  EXPECT_NE(command.argv[2].find("SAMOKODER_CHECK"), std::string::npos);
  EXPECT_NE(command.argv[2].find("def stop(app)"), std::string::npos);
  EXPECT_TRUE(command.working_directory.empty());
  ASSERT_EQ(command.environment.size(), 1U);
  EXPECT_EQ(command.environment[0].first, "SAMOKODER_CHECK");
  const auto spec = nlohmann::json::parse(command.environment[0].second);
  EXPECT_EQ(spec["run_command"], "python3 app.py");
  EXPECT_EQ(spec["checks"], kTwoChecks["checks"]);
  EXPECT_EQ(spec["start_timeout_s"], 15);
  // 15 s to start, 30 s per check, 20 s for the interpreter and the stop.
  EXPECT_EQ(command.timeout, std::chrono::seconds(15 + 2 * 30 + 20));
  EXPECT_LT(spec["budget_s"].get<int>(), 15 + 2 * 30 + 20);
}

TEST(Troubleshooter, APassingAppMidEpicIsReviewedWithoutAQuestion) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(task_state({{{"id", 1}, {"status", "checking"}, {"source", "command"}}}));
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kPassed);
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const auto& next = step->next_state;
  EXPECT_EQ(next["tasks"][1]["status"], "reviewed");
  EXPECT_EQ(next["app"],
            nlohmann::json(
                {{"run_command", "python3 app.py"}, {"checks", kTwoChecks["checks"]}, {"passed", true}}));
  EXPECT_EQ(next["iterations"][0]["status"], "done");
  EXPECT_TRUE(context.questions.empty());
  EXPECT_EQ(context.previews_started, 1);
  ASSERT_EQ(context.events.size(), 2U);
  EXPECT_EQ(context.events[0].first, "app.checked");
  EXPECT_EQ(context.events[0].second, nlohmann::json({{"passed", true}, {"checks", 2}}));
  EXPECT_EQ(context.events[1].first, "app.preview");
  EXPECT_EQ(context.events[1].second, nlohmann::json({{"started", true}}));
  EXPECT_FALSE(agent.wants(next));
}

TEST(Troubleshooter, APreviewThatCannotStartDoesNotStopTheRun) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(task_state());
  context.preview_result = sdk::Status::failed_precondition("no preview runner can run this workspace");
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kPassed);
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["tasks"][1]["status"], "reviewed");
  ASSERT_EQ(context.events.size(), 2U);
  EXPECT_EQ(context.events[1].first, "app.preview");
  EXPECT_EQ(context.events[1].second,
            nlohmann::json({{"started", false}, {"reason", "no preview runner can run this workspace"}}));
}

TEST(Troubleshooter, AsksTheUserToTryTheAppAtTheEndOfAnEpic) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(end_of_epic_state({{{"id", 1}, {"status", "checking"}}}));
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kPassed);
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kAborted);
  ASSERT_EQ(context.questions.size(), 1U);
  const auto& question = context.questions[0];
  EXPECT_EQ(question.id, "review.2.1");
  EXPECT_TRUE(question.options.empty());
  EXPECT_EQ(question.text,
            "The app is running in the preview. Please try it:\n"
            "1. Add an item: Type milk and press Add -> milk is listed\n"
            "2. Reload: Reload the page -> milk is still there\n"
            "Answer \"works\", or describe what is wrong.");
  // The preview runs before the user is asked to try it.
  EXPECT_EQ(context.previews_started, 1);
}

TEST(Troubleshooter, TheUsersApprovalReviewsTheTask) {
  AgentHarness agent = troubleshooter();
  for (const std::string answer : {"works", " LGTM ", "Looks good!", "ok", "Yes."}) {
    ScriptedAgentContext context(end_of_epic_state());
    context.answer("review.2.0", answer);
    context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
    answer_checks(context, kPassed);
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok()) << answer << ": " << step.status().to_string();
    EXPECT_EQ(step->next_state["tasks"][1]["status"], "reviewed") << answer;
    EXPECT_EQ(context.calls_of("user_report"), 0U) << answer;
  }
}

TEST(Troubleshooter, TheUsersReportBecomesAFixIteration) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(end_of_epic_state({{{"id", 1}, {"status", "checking"}}}));
  context.files["app.py"] = "items = []\n";
  context.answer("review.2.1", "The list forgets milk after a reload.");
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  context.script_model("user_report",
                       std::vector<nlohmann::json>{{{"fix", "Store the items in data/items.json."}}});
  answer_checks(context, kPassed);
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  ASSERT_EQ(context.model_call_names, (std::vector<std::string>{"app_check", "user_report"}));
  const std::string& prompt = context.model_calls[1].messages[0].content;
  EXPECT_NE(prompt.find("The list forgets milk after a reload."), std::string::npos);
  EXPECT_NE(prompt.find("the items API"), std::string::npos);
  EXPECT_NE(prompt.find("--- app.py ---"), std::string::npos);
  const auto& next = step->next_state;
  EXPECT_EQ(next["tasks"][1]["status"], "in_progress");
  ASSERT_EQ(next["iterations"].size(), 2U);
  EXPECT_EQ(next["iterations"][0]["status"], "done");
  EXPECT_EQ(next["iterations"][1], nlohmann::json({{"id", 2},
                                                   {"status", "implement_solution"},
                                                   {"description", "Store the items in data/items.json."},
                                                   {"source", "user"},
                                                   {"report", "The list forgets milk after a reload."}}));
  EXPECT_EQ(next["app"]["passed"], true);
  // The developer plans the fix next; the next review asks again under a new id (review.2.2).
  EXPECT_FALSE(agent.wants(next));
}

TEST(Troubleshooter, AskUserEveryTaskOrNever) {
  {
    AgentHarness agent = troubleshooter({{"ask_user", "every_task"}});
    ASSERT_EQ(agent.error(), "");
    ScriptedAgentContext context(task_state());  // mid-epic
    context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
    answer_checks(context, kPassed);
    EXPECT_EQ(agent.run_step(context).status().code(), sdk::StatusCode::kAborted);
    EXPECT_EQ(context.questions.size(), 1U);
  }
  {
    AgentHarness agent = troubleshooter({{"ask_user", "never"}});
    ScriptedAgentContext context(end_of_epic_state());
    context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
    answer_checks(context, kPassed);
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    EXPECT_TRUE(context.questions.empty());
    EXPECT_EQ(step->next_state["tasks"][1]["status"], "reviewed");
  }
}

TEST(Troubleshooter, TheLastTaskOfAnEpicCountsOnlyOpenTasksOfThatEpic) {
  AgentHarness agent = troubleshooter();
  // Task 3 of the same epic is done: task 2 ends the epic.
  ScriptedAgentContext context(task_state(nlohmann::json::array(), "done", 1));
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kPassed);
  EXPECT_EQ(agent.run_step(context).status().code(), sdk::StatusCode::kAborted);
  EXPECT_EQ(context.questions.size(), 1U);
}

TEST(Troubleshooter, AFailedCheckBecomesAFixIteration) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(end_of_epic_state({{{"id", 1}, {"status", "checking"}}}));
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kFailed);
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const auto& next = step->next_state;
  ASSERT_EQ(next["iterations"].size(), 2U);
  EXPECT_EQ(next["iterations"][0]["status"], "done");
  const auto& iteration = next["iterations"][1];
  EXPECT_EQ(iteration["id"], 2);
  EXPECT_EQ(iteration["status"], "implement_solution");
  EXPECT_EQ(iteration["source"], "check");
  EXPECT_EQ(
      iteration["description"],
      "The app failed its check:\n"
      "- POST /items: got status 500, expected 201; the response began: KeyError\n"
      "The app was started with `python3 app.py` from the project's root, with PORT and HOST set in its "
      "environment.\n"
      "The app's output (its end):\nTraceback: KeyError 'name'\n");
  EXPECT_EQ(next["app"]["passed"], false);
  EXPECT_EQ(next["tasks"][1]["status"], "in_progress");
  EXPECT_TRUE(context.questions.empty());
  EXPECT_EQ(context.previews_started, 0);
  ASSERT_EQ(context.events.size(), 1U);
  EXPECT_EQ(context.events[0].first, "app.checked");
  EXPECT_EQ(context.events[0].second, nlohmann::json({{"passed", false}, {"failures", 1}}));
  EXPECT_FALSE(agent.wants(next));
}

TEST(Troubleshooter, AnAppThatDidNotStartBecomesAFixIteration) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(task_state());
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, {{"started", false},
                          {"error", "the app did not listen on $PORT (4321) within 60 s"},
                          {"results", nlohmann::json::array()},
                          {"log", ""}});
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const std::string description = step->next_state["iterations"][0]["description"];
  EXPECT_TRUE(description.starts_with(
      "The app failed its check:\n- the app did not listen on $PORT (4321) within 60 s\n"))
      << description;
  EXPECT_TRUE(description.ends_with("The app printed nothing.")) << description;
  EXPECT_EQ(step->summary, "the app failed its check: the app did not listen on $PORT (4321) within 60 s");
}

TEST(Troubleshooter, StopsATaskThatFailedItsCheckTooOften) {
  AgentHarness agent = troubleshooter({{"max_iterations", 2}});
  ScriptedAgentContext context(
      task_state({{{"id", 1}, {"status", "done"}}, {{"id", 2}, {"status", "checking"}}}));
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kFailed);
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(step.status().message(),
            "task 2 still fails its check after 2 attempts: POST /items: got status 500, expected 201; the "
            "response "
            "began: KeyError");
  // A passing check is not limited.
  ScriptedAgentContext passing(
      task_state({{{"id", 1}, {"status", "done"}}, {{"id", 2}, {"status", "checking"}}}));
  passing.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(passing, kPassed);
  EXPECT_TRUE(agent.run_step(passing).ok());
}

TEST(Troubleshooter, ASmokeCheckThatReportsNothingFailsTheStep) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(task_state());
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  context.script_commands([](const sdk::CommandRequest&) -> sdk::Result<sdk::CommandResult> {
    return command_exited(127, "", "sh: 1: python3: not found");
  });
  auto step = agent.run_step(context);
  EXPECT_EQ(step.status().code(), sdk::StatusCode::kInternal);
  EXPECT_NE(step.status().message().find("python3: not found"), std::string::npos);
  EXPECT_TRUE(context.events.empty());
}

TEST(Troubleshooter, ACommandThatCannotStartFailsTheStep) {
  AgentHarness agent = troubleshooter();
  ScriptedAgentContext context(task_state());
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  context.script_commands([](const sdk::CommandRequest&) -> sdk::Result<sdk::CommandResult> {
    return sdk::Status::failed_precondition("no runner can confine commands");
  });
  EXPECT_EQ(agent.run_step(context).status().code(), sdk::StatusCode::kFailedPrecondition);
}

TEST(Troubleshooter, RejectsAnAppCheckItCannotRun) {
  AgentHarness agent = troubleshooter();
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {app_check({check("GET", "/", 200)}, "  "), "run_command"},
      {app_check(nlohmann::json::array()), "no checks"},
      {app_check({check("GET", "health", 200)}), "path"},
      {app_check({check("GET", "/a b", 200)}), "path"},
      {app_check({check("GET", "/", 99)}), "status"},
      {app_check({check("POST", "/items", 201, nullptr, "{name: milk}")}), "JSON"}};
  for (const auto& [answer, expected] : cases) {
    ScriptedAgentContext context(task_state());
    context.script_model("app_check", std::vector<nlohmann::json>{answer});
    answer_checks(context, kPassed);
    auto step = agent.run_step(context);
    EXPECT_EQ(step.status().code(), sdk::StatusCode::kInvalidArgument) << answer.dump();
    EXPECT_NE(step.status().message().find(expected), std::string::npos) << step.status().message();
    EXPECT_TRUE(context.commands.empty());
  }
}

TEST(Troubleshooter, KeepsTheFirstTenChecks) {
  AgentHarness agent = troubleshooter();
  nlohmann::json checks = nlohmann::json::array();
  for (int i = 0; i < 12; ++i)
    checks.push_back(check("GET", "/" + std::to_string(i), 200));
  ScriptedAgentContext context(task_state());
  context.script_model("app_check", std::vector<nlohmann::json>{app_check(checks)});
  nlohmann::json all_ok = {
      {"started", true}, {"error", nullptr}, {"results", nlohmann::json::array()}, {"log", ""}};
  for (int i = 0; i < 10; ++i)
    all_ok["results"].push_back(
        {{"method", "GET"}, {"path", "/" + std::to_string(i)}, {"status", 200}, {"ok", true}});
  answer_checks(context, all_ok);
  auto step = agent.run_step(context);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["app"]["checks"].size(), 10U);
}

TEST(Troubleshooter, APromptDirOverridesThePrompt) {
  TempDir dir("troubleshooter-prompts");
  dir.write("app_check.md", "Check {{task}} of {{spec}} ({{run_command}}); files: {{files}}");
  AgentHarness agent = troubleshooter({{"prompt_dir", dir.path().string()}});
  ASSERT_EQ(agent.error(), "");
  ScriptedAgentContext context(task_state());
  context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
  answer_checks(context, kPassed);
  ASSERT_TRUE(agent.run_step(context).ok());
  const std::string& prompt = context.model_calls[0].messages[0].content;
  EXPECT_TRUE(prompt.starts_with("Check {")) << prompt;
  EXPECT_NE(
      prompt.find("of A shopping list with a JSON API. (python3 server.py); files: (the workspace is empty)"),
      std::string::npos)
      << prompt;
}

TEST(Troubleshooter, RejectsABadConfig) {
  EXPECT_NE(troubleshooter({{"ask_user", "sometimes"}}).error(), "");
  EXPECT_NE(troubleshooter({{"start_timeout_s", 0}}).error(), "");
  EXPECT_NE(troubleshooter({{"max_iterations", "5"}}).error(), "");
}

TEST(Troubleshooter, TheSameInputsGiveTheSameNextState) {
  AgentHarness agent = troubleshooter();
  std::vector<nlohmann::json> nexts;
  for (int i = 0; i < 2; ++i) {
    ScriptedAgentContext context(end_of_epic_state());
    context.answer("review.2.0", "The button does nothing.");
    context.script_model("app_check", std::vector<nlohmann::json>{kTwoChecks});
    context.script_model("user_report",
                         std::vector<nlohmann::json>{{{"fix", "Wire the button's click handler."}}});
    answer_checks(context, kPassed);
    auto step = agent.run_step(context);
    ASSERT_TRUE(step.ok());
    nexts.push_back(step->next_state);
  }
  EXPECT_EQ(nexts[0], nexts[1]);
}

// --- the smoke check for real ------------------------------------------------------------------------

// A shopping list server on Python's standard library that listens on $HOST:$PORT and writes its pid.
constexpr const char* kPythonApp = R"PY(import http.server, json, os, signal, sys
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
items = []
with open("app.pid", "w") as f:
    f.write(str(os.getpid()))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self.reply(200, "ok")
        elif self.path == "/items":
            self.reply(200, json.dumps(items))
        else:
            self.reply(404, "no such page")
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        item = json.loads(self.rfile.read(length))
        if self.headers.get("Content-Type") != "application/json":
            self.reply(415, "json only")
            return
        items.append(item)
        self.reply(201, json.dumps(item))
    def reply(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
print("shopping list listening on", os.environ["HOST"], os.environ["PORT"], flush=True)
http.server.HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
)PY";

constexpr const char* kNodeApp = R"JS(const http = require('http');
const fs = require('fs');
fs.writeFileSync('app.pid', String(process.pid));
const items = [];
http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/') return res.end('<h1>Shopping list</h1>');
  if (req.method === 'GET' && req.url === '/api/items') return res.end(JSON.stringify(items));
  if (req.method === 'POST' && req.url === '/api/items') {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => { items.push(JSON.parse(body)); res.statusCode = 201; res.end(body); });
    return;
  }
  res.statusCode = 404;
  res.end('not found');
}).listen(Number(process.env.PORT), process.env.HOST, () => console.log('node app up'));
)JS";

const nlohmann::json kShoppingChecks = {check("GET", "/health", 200, "ok"),
                                        check("POST", "/items", 201, "milk", R"({"name": "milk"})"),
                                        check("GET", "/items", 200, "milk")};

class RealApp : public ::testing::Test {
 protected:
  RealApp() : dir_("troubleshooter-app") {}

  // Runs one troubleshooter step whose smoke check really runs in the app's folder.
  sdk::Result<sdk::AgentStepResult> check_app(const nlohmann::json& answer,
                                              nlohmann::json config = {{"ask_user", "never"}}) {
    AgentHarness agent = troubleshooter(std::move(config));
    EXPECT_EQ(agent.error(), "");
    context_ = std::make_unique<ScriptedAgentContext>(task_state());
    context_->script_model("app_check", std::vector<nlohmann::json>{answer});
    const auto folder = dir_.path();
    context_->script_commands(
        [folder](const sdk::CommandRequest& request) { return run_for_real(request, folder); });
    const auto started = std::chrono::steady_clock::now();
    auto step = agent.run_step(*context_);
    elapsed_ = std::chrono::steady_clock::now() - started;
    return step;
  }

  // The app's pid is gone: the smoke check left nothing running.
  void expect_app_stopped() {
    std::ifstream file(dir_.path() / "app.pid");
    int pid = 0;
    file >> pid;
    ASSERT_GT(pid, 1) << "the app never wrote its pid";
    EXPECT_TRUE(process_ended(pid, std::chrono::seconds(5)))
        << "the app (pid " << pid << ") is still running";
  }

  TempDir dir_;
  std::unique_ptr<ScriptedAgentContext> context_;
  std::chrono::steady_clock::duration elapsed_{};
};

TEST_F(RealApp, APassingPythonAppIsReviewedAndStopped) {
  dir_.write("app.py", kPythonApp);
  auto step = check_app(app_check(kShoppingChecks));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["app"]["passed"], true) << step->next_state.dump(2);
  EXPECT_EQ(step->next_state["tasks"][1]["status"], "reviewed");
  expect_app_stopped();
}

TEST_F(RealApp, APassingNodeAppIsReviewedAndStopped) {
  if (::access("/usr/bin/node", X_OK) != 0 && ::access("/usr/local/bin/node", X_OK) != 0)
    GTEST_SKIP() << "no node on this machine";
  dir_.write("server.js", kNodeApp);
  auto step = check_app(app_check({check("GET", "/", 200, "Shopping list"),
                                   check("POST", "/api/items", 201, nullptr, R"({"name": "eggs"})"),
                                   check("GET", "/api/items", 200, "eggs")},
                                  "node server.js"));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["app"]["passed"], true) << step->next_state.dump(2);
  expect_app_stopped();
}

TEST_F(RealApp, FailingChecksAreNamedWithTheAppsLog) {
  dir_.write("app.py", kPythonApp);
  auto step = check_app(app_check({check("GET", "/health", 200, "ok"), check("GET", "/missing", 200),
                                   check("GET", "/items", 200, "bread")}));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const auto& next = step->next_state;
  EXPECT_EQ(next["app"]["passed"], false);
  const std::string description = next["iterations"][0]["description"];
  EXPECT_EQ(description.find("- GET /health"), std::string::npos) << description;
  EXPECT_NE(
      description.find("- GET /missing: got status 404, expected 200; the response began: no such page"),
      std::string::npos)
      << description;
  EXPECT_NE(description.find("- GET /items: the response does not contain \"bread\"; the response began: []"),
            std::string::npos)
      << description;
  EXPECT_NE(description.find("shopping list listening on 127.0.0.1"), std::string::npos) << description;
  EXPECT_EQ(context_->events[0].second["failures"], 2);
  expect_app_stopped();
}

TEST_F(RealApp, AnAppThatNeverListensTimesOutAndIsStopped) {
  dir_.write(
      "app.py",
      "import os, time\nopen('app.pid', 'w').write(str(os.getpid()))\nprint('warming up', flush=True)\n"
      "time.sleep(600)\n");
  auto step = check_app(app_check({check("GET", "/", 200)}), {{"ask_user", "never"}, {"start_timeout_s", 2}});
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const std::string description = step->next_state["iterations"][0]["description"];
  EXPECT_NE(description.find("the app did not listen on $PORT ("), std::string::npos) << description;
  EXPECT_NE(description.find("within 2 s"), std::string::npos) << description;
  EXPECT_NE(description.find("warming up"), std::string::npos) << description;
  EXPECT_LT(elapsed_, std::chrono::seconds(15));
  expect_app_stopped();
}

TEST_F(RealApp, AnAppThatExitsAtOnceIsReportedWithItsOutput) {
  dir_.write("app.py",
             "import os, sys\nopen('app.pid', 'w').write(str(os.getpid()))\n"
             "print('boom: config.json is missing', file=sys.stderr)\nsys.exit(3)\n");
  auto step = check_app(app_check({check("GET", "/", 200)}));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  const std::string description = step->next_state["iterations"][0]["description"];
  EXPECT_NE(description.find("the app exited with status 3 before it listened on $PORT"), std::string::npos)
      << description;
  EXPECT_NE(description.find("boom: config.json is missing"), std::string::npos) << description;
  expect_app_stopped();
}

TEST_F(RealApp, AnAppThatIgnoresSigtermIsKilled) {
  dir_.write("app.py", kPythonApp);
  auto step = check_app(app_check({check("GET", "/health", 200, "ok")}, "python3 app.py --ignore-term"));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["app"]["passed"], true) << step->next_state.dump(2);
  expect_app_stopped();
}

TEST_F(RealApp, AnAppStartedThroughAShellPipelineIsStoppedWhole) {
  // The run command's shell stays (a pipeline), so the app is the shell's child: stopping only the
  // shell would leave it running.
  dir_.write("app.py", kPythonApp);
  auto step = check_app(app_check({check("GET", "/health", 200, "ok")}, "python3 app.py 2>&1 | cat"));
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["app"]["passed"], true) << step->next_state.dump(2);
  expect_app_stopped();
}

}  // namespace
}  // namespace samokoder::testing
