// agent.troubleshooter: the check at the end of a task (docs/pipeline.md). Once every step of the
// current task is done, the model defines how to start the app and a few HTTP checks of what the task
// built; the smoke check script (check/smoke_check.py) starts the app on a free loopback port, runs the
// checks and stops it, all as one command through the run's command service, so it is contained and
// recorded like any other command (a re-run of the step gets the same result back). A passing app gets
// the project's live preview, and at the end of an epic the user is asked to try it; their report, or a
// failed check, becomes an iteration the developer fixes.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>
#include <samokoder/agent_common/workspace_view.hpp>

#include "smoke_check_script.hpp"

namespace {

using samokoder::agent_common::trimmed;

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;

constexpr std::size_t kMaxChecks = 10;
// A check's HTTP request gets this long; the command's timeout allows kSecondsPerCheck for each, so
// the script (which stops itself within its budget) always ends before the command service kills it.
constexpr std::int64_t kRequestTimeoutS = 20;
constexpr std::int64_t kSecondsPerCheck = 30;
constexpr std::int64_t kCommandOverheadS = 20;  // the interpreter's start and the app's stop
constexpr std::int64_t kMaxCommandTimeoutS = 900;

std::string text_of(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return {};
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
  return text;
}

// The last `max` bytes of `text`, starting on a character's first byte (a status message becomes JSON).
std::string last_bytes(const std::string& text, std::size_t max) {
  std::size_t start = text.size() > max ? text.size() - max : 0;
  while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0U) == 0x80U)
    ++start;
  return text.substr(start);
}

std::string status_of(const nlohmann::json& element) {
  return text_of(element, "status");
}

// An answer to the review question that means "the app works".
bool approves(const std::string& answer) {
  std::string text = lowercase(trimmed(answer));
  while (!text.empty() && (text.back() == '.' || text.back() == '!'))
    text.pop_back();
  return text == "works" || text == "ok" || text == "yes" || text == "lgtm" || text == "looks good";
}

// What app_check answered, checked for what the schema cannot say.
struct AppCheck {
  std::string run_command;
  nlohmann::json checks = nlohmann::json::array();  // as the script and state.app take them
  nlohmann::json user_review = nlohmann::json::array();
};

sdk::Result<AppCheck> read_app_check(const nlohmann::json& answer) {
  AppCheck plan;
  plan.run_command = trimmed(text_of(answer, "run_command"));
  if (plan.run_command.empty()) return sdk::Status::invalid_argument("app_check gave no run_command");
  const auto checks = answer.find("checks");
  if (checks == answer.end() || !checks->is_array() || checks->empty())
    return sdk::Status::invalid_argument("app_check gave no checks");
  // More than the prompt asks for: the first ones are what the later ones build on, so they are kept.
  for (std::size_t i = 0; i < checks->size() && i < kMaxChecks; ++i) {
    const auto& check = (*checks)[i];
    const std::string where = "app_check's check " + std::to_string(i + 1);
    const std::string method = text_of(check, "method");
    const std::string path = text_of(check, "path");
    if (method.empty()) return sdk::Status::invalid_argument(where + " has no method");
    if (!path.starts_with("/") ||
        std::any_of(path.begin(), path.end(), [](unsigned char c) { return c <= ' ' || c == 0x7F; }))
      return sdk::Status::invalid_argument(where + " has the path \"" + path +
                                           "\"; a path starts with / and has no spaces");
    const auto status = check.find("expect_status");
    if (status == check.end() || !status->is_number_integer() || status->get<std::int64_t>() < 100 ||
        status->get<std::int64_t>() > 599)
      return sdk::Status::invalid_argument(where + " expects no HTTP status (100 to 599)");
    nlohmann::json body = nullptr;
    if (const auto it = check.find("body"); it != check.end() && it->is_string()) {
      if (!nlohmann::json::accept(it->get<std::string>()))
        return sdk::Status::invalid_argument(where + " has a body that is not JSON text");
      body = *it;
    }
    nlohmann::json contains = nullptr;
    if (const auto it = check.find("expect_contains"); it != check.end() && it->is_string() && !it->empty())
      contains = *it;
    plan.checks.push_back({{"method", method},
                           {"path", path},
                           {"body", body},
                           {"expect_status", *status},
                           {"expect_contains", contains}});
  }
  if (const auto review = answer.find("user_review"); review != answer.end() && review->is_array()) {
    for (const auto& item : *review) {
      if (!item.is_object()) continue;
      plan.user_review.push_back({{"title", text_of(item, "title")},
                                  {"action", text_of(item, "action")},
                                  {"result", text_of(item, "result")}});
    }
  }
  return plan;
}

// What the script reported.
struct CheckReport {
  bool started = false;
  std::string error;                  // why the app did not start
  std::vector<std::string> failures;  // "<method> <path>: <what went wrong>"
  std::string log;
};

// The script's one JSON line, or nullopt when the output holds none (the script never ran).
std::optional<CheckReport> read_report(const std::string& output, const nlohmann::json& checks) {
  std::size_t end = output.size();
  while (end > 0) {
    const auto start = output.rfind('\n', end - 1);
    const std::size_t from = start == std::string::npos ? 0 : start + 1;
    auto line = nlohmann::json::parse(output.substr(from, end - from), nullptr, /*allow_exceptions=*/false);
    if (line.is_object() && line.contains("started") && line["started"].is_boolean()) {
      CheckReport report;
      report.started = line["started"].get<bool>();
      report.error = text_of(line, "error");
      report.log = text_of(line, "log");
      const auto results = line.find("results");
      for (std::size_t i = 0; report.started && i < checks.size(); ++i) {
        const std::string what =
            checks[i]["method"].get<std::string>() + " " + checks[i]["path"].get<std::string>();
        const nlohmann::json* result =
            results != line.end() && results->is_array() && i < results->size() ? &(*results)[i] : nullptr;
        if (result == nullptr || !result->is_object()) {
          report.failures.push_back(what + ": not run");
        } else if (!(result->contains("ok") && (*result)["ok"].is_boolean() && (*result)["ok"].get<bool>())) {
          const std::string why = text_of(*result, "error");
          report.failures.push_back(what + ": " + (why.empty() ? "failed" : why));
        }
      }
      if (!report.started)
        report.failures.push_back(report.error.empty() ? "the app did not start" : report.error);
      return report;
    }
    if (start == std::string::npos) break;
    end = start;
  }
  return std::nullopt;
}

class Troubleshooter final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "troubleshooter"; }

  bool wants(const nlohmann::json& state) const override {
    if (common::current_task_status(state) != common::task_status::kInProgress) return false;
    const auto steps = state.find("steps");
    if (steps == state.end() || !steps->is_array() || steps->empty()) return false;
    for (const auto& step : *steps) {
      const auto completed = step.is_object() ? step.find("completed") : step.end();
      if (!step.is_object() || completed == step.end() || !completed->is_boolean() || !completed->get<bool>())
        return false;
    }
    const auto iterations = state.find("iterations");
    if (iterations != state.end() && iterations->is_array()) {
      for (const auto& iteration : *iterations)
        if (status_of(iteration) == common::iteration_status::kImplementSolution) return false;
    }
    return true;
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return check(context);
    } catch (const std::exception& e) {
      return sdk::Status::internal(std::string("agent.troubleshooter: ") + e.what());
    }
  }

 protected:
  sdk::Status configure(const nlohmann::json& config) override {
    if (auto read = whole_number(config, "start_timeout_s", 1, 600, start_timeout_s_); !read.ok())
      return read;
    if (auto read = whole_number(config, "max_iterations", 1, 100, max_iterations_); !read.ok()) return read;
    if (const auto it = config.find("ask_user"); it != config.end()) {
      const std::string mode = it->is_string() ? it->get<std::string>() : std::string();
      if (mode != "end_of_epic" && mode != "every_task" && mode != "never")
        return sdk::Status::invalid_argument("ask_user must be \"end_of_epic\", \"every_task\" or \"never\"");
      ask_user_ = mode;
    }
    return {};
  }

 private:
  static sdk::Status whole_number(const nlohmann::json& config, const char* key, std::int64_t min,
                                  std::int64_t max, std::int64_t& out) {
    const auto it = config.find(key);
    if (it == config.end()) return {};
    if (!it->is_number_integer() || it->get<std::int64_t>() < min || it->get<std::int64_t>() > max)
      return sdk::Status::invalid_argument(std::string(key) + " must be a whole number from " +
                                           std::to_string(min) + " to " + std::to_string(max));
    out = it->get<std::int64_t>();
    return {};
  }

  // Whether no other task of the task's epic is still open: the epic ends with this one.
  static bool last_open_of_epic(const nlohmann::json& state, std::size_t index) {
    const auto& tasks = state["tasks"];
    const nlohmann::json epic = tasks[index].value("epic_id", nlohmann::json(nullptr));
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      if (i == index || !tasks[i].is_object()) continue;
      const std::string status = status_of(tasks[i]);
      if (status == common::task_status::kDone || status == common::task_status::kSkipped) continue;
      if (tasks[i].value("epic_id", nlohmann::json(nullptr)) == epic) return false;
    }
    return true;
  }

  sdk::CommandRequest smoke_check_command(const AppCheck& plan) const {
    const auto checks = static_cast<std::int64_t>(plan.checks.size());
    const std::int64_t timeout_s =
        std::min(start_timeout_s_ + kSecondsPerCheck * checks + kCommandOverheadS, kMaxCommandTimeoutS);
    sdk::CommandRequest request;
    request.argv = {"python3", "-c", std::string(samokoder::troubleshooter::smoke_check_script())};
    request.environment = {
        {"SAMOKODER_CHECK", nlohmann::json({{"run_command", plan.run_command},
                                            {"checks", plan.checks},
                                            {"start_timeout_s", start_timeout_s_},
                                            {"request_timeout_s", kRequestTimeoutS},
                                            {"budget_s", timeout_s - kCommandOverheadS / 2}})
                                .dump()}};
    request.timeout = std::chrono::seconds(timeout_s);
    return request;
  }

  sdk::Result<sdk::AgentStepResult> check(sdk::AgentContext& context) const {
    nlohmann::json next = context.state();
    const auto index = common::current_task(next);
    if (!index) return sdk::Status::failed_precondition("there is no current task to check");
    const nlohmann::json task = next["tasks"][*index];
    const std::string task_id = task.value("id", nlohmann::json(nullptr)).dump();
    const nlohmann::json task_view = {{"description", text_of(task, "description")},
                                      {"testing_instructions", text_of(task, "testing_instructions")}};
    const std::string spec = common::text_at(next, "/spec/description");
    std::string known_command = common::text_at(next, "/app/run_command");
    if (known_command.empty()) known_command = common::text_at(next, "/template/run_command");

    auto files = common::describe_workspace(context);
    if (!files.ok()) return files.status();
    auto answer =
        ask(context, "app_check",
            {{"spec", spec}, {"task", task_view}, {"files", *files}, {"run_command", known_command}});
    if (!answer.ok()) return answer.status();
    auto plan = read_app_check(*answer);
    if (!plan.ok()) return plan.status();

    const sdk::CommandRequest request = smoke_check_command(*plan);
    auto ran = context.run_command(request);
    // No python3, no containment, a cancelled run: not the app's fault, so no iteration for it.
    if (!ran.ok()) return ran.status();
    auto report = read_report(ran->stdout_tail, plan->checks);
    if (!report) {
      if (!ran->timed_out)
        return sdk::Status::internal(
            "the smoke check reported nothing (exit " +
            (ran->exit_code ? std::to_string(*ran->exit_code) : std::string("none")) +
            "): " + last_bytes(ran->stderr_tail, 500));
      report = CheckReport{};
      report->failures.push_back("the smoke check did not finish within " +
                                 std::to_string(request.timeout.count() / 1000) + " s");
    }

    auto& iterations = common::array_member(next, "iterations");
    const std::size_t attempts = iterations.size();
    const nlohmann::json app = {{"run_command", plan->run_command}, {"checks", plan->checks}};

    if (!report->failures.empty()) {
      if (static_cast<std::int64_t>(attempts) >= max_iterations_)
        return sdk::Status::failed_precondition("task " + task_id + " still fails its check after " +
                                                std::to_string(attempts) +
                                                " attempts: " + report->failures[0]);
      finish_checking(iterations);
      std::string description = "The app failed its check:\n";
      for (const auto& failure : report->failures)
        description += "- " + failure + "\n";
      description += "The app was started with `" + plan->run_command +
                     "` from the project's root, with PORT and HOST set in its environment.\n";
      description += report->log.empty() ? std::string("The app printed nothing.")
                                         : "The app's output (its end):\n" + report->log;
      iterations.push_back({{"id", common::next_id(iterations)},
                            {"status", common::iteration_status::kImplementSolution},
                            {"description", description},
                            {"source", "check"}});
      next["app"] = app;
      next["app"]["passed"] = false;
      if (auto emitted =
              context.emit_event("app.checked", {{"passed", false}, {"failures", report->failures.size()}});
          !emitted.ok())
        return emitted;
      return sdk::AgentStepResult{std::move(next), "the app failed its check: " + report->failures[0]};
    }

    next["app"] = app;
    next["app"]["passed"] = true;
    finish_checking(iterations);
    if (auto emitted = context.emit_event("app.checked", {{"passed", true}, {"checks", plan->checks.size()}});
        !emitted.ok())
      return emitted;
    // The run goes on without a preview: the checks passed, and the user can start one from the API.
    const sdk::Status preview = context.start_preview();
    if (auto emitted = context.emit_event(
            "app.preview", preview.ok() ? nlohmann::json{{"started", true}}
                                        : nlohmann::json{{"started", false}, {"reason", preview.message()}});
        !emitted.ok())
      return emitted;

    auto& task_out = next["tasks"][*index];
    const bool ask_user =
        ask_user_ == "every_task" || (ask_user_ == "end_of_epic" && last_open_of_epic(next, *index));
    if (!ask_user) {
      task_out["status"] = common::task_status::kReviewed;
      return sdk::AgentStepResult{std::move(next), "the app passed its check"};
    }

    std::string text = "The app is running in the preview. Please try it:\n";
    if (plan->user_review.empty()) text += "1. " + text_of(task, "description") + "\n";
    for (std::size_t i = 0; i < plan->user_review.size(); ++i) {
      const auto& item = plan->user_review[i];
      const std::string title = text_of(item, "title");
      text += std::to_string(i + 1) + ". " + (title.empty() ? std::string() : title + ": ") +
              text_of(item, "action") + " -> " + text_of(item, "result") + "\n";
    }
    text += "Answer \"works\", or describe what is wrong.";
    const std::string id = "review." +
                           (task["id"].is_number_integer() ? task_id : std::to_string(*index + 1)) + "." +
                           std::to_string(attempts);
    auto reply = context.ask_user({id, text, {}});
    if (!reply.ok()) return reply.status();  // kAborted: the step waits for the user
    if (approves(reply->text)) {
      task_out["status"] = common::task_status::kReviewed;
      return sdk::AgentStepResult{std::move(next), "the app passed its check and the user's review"};
    }

    auto fix = ask(context, "user_report",
                   {{"spec", spec}, {"task", task_view}, {"report", reply->text}, {"files", *files}});
    if (!fix.ok()) return fix.status();
    const std::string description = trimmed(text_of(*fix, "fix"));
    if (description.empty()) return sdk::Status::invalid_argument("the model's user_report gave no fix");
    iterations.push_back({{"id", common::next_id(iterations)},
                          {"status", common::iteration_status::kImplementSolution},
                          {"description", description},
                          {"source", "user"},
                          {"report", reply->text}});
    return sdk::AgentStepResult{std::move(next), "the user reported a problem with task " + task_id};
  }

  // The developer's steps for a fix are checked now, passing or not: a failure starts a new iteration.
  static void finish_checking(nlohmann::json& iterations) {
    for (auto& iteration : iterations)
      if (iteration.is_object() && status_of(iteration) == common::iteration_status::kChecking)
        iteration["status"] = common::iteration_status::kDone;
  }

  // Set once by configure() at init.
  std::int64_t start_timeout_s_ = 60;
  std::int64_t max_iterations_ = 5;
  std::string ask_user_ = "end_of_epic";
};

}  // namespace

SAMOKODER_PLUGIN(Troubleshooter, "agent.troubleshooter", "1.0.0",
                 "Checks the app after a task, starts its preview and asks the user to try it")
