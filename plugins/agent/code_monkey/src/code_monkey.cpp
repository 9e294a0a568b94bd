// agent.code_monkey: writes the files the developer's save_file steps name (docs/pipeline.md). Each
// file is one `file_content` model call that answers with the whole file; a change to a file that
// existed goes past a reviewer (`file_review`) first, and a rejected version is written again with the
// reviewer's notes, at most three times, after which the last version is taken (a reviewer that never
// agrees must not stall the run). Several consecutive files are independent of each other, so they are
// written in parallel through a fan-out (sdk/agent.hpp, "Independent work"): this agent proposes the
// fan-out, runs once per file as a branch, and folds the branches' results back into the steps.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>
#include <samokoder/agent_common/workspace_view.hpp>

namespace {

using samokoder::agent_common::string_of;
using samokoder::agent_common::trimmed;
using samokoder::agent_common::workspace_path;

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;
using nlohmann::json;

constexpr std::string_view kId = "agent.code_monkey";
constexpr int kMaxReworks = 3;
constexpr std::int64_t kDefaultMaxParallel = 6;
constexpr std::int64_t kLargestMaxParallel = 64;
constexpr std::int64_t kDefaultMaxFileBytes = 512 * 1024;
constexpr std::int64_t kLargestMaxFileBytes = 16 * 1024 * 1024;  // the kernel's limit of a file

bool is_save_file(const json& step) {
  if (!step.is_object() || string_of(step, "type") != "save_file") return false;
  const auto completed = step.find("completed");
  return completed == step.end() || !completed->is_boolean() || !completed->get<bool>();
}

// Whether `fan_out` is this agent's and every task has its result (sdk.md, "Fan-out").
bool complete_fan_out(const json& fan_out) {
  if (!fan_out.is_object() || string_of(fan_out, "agent") != kId) return false;
  const auto tasks = fan_out.find("tasks");
  const auto results = fan_out.find("results");
  if (tasks == fan_out.end() || !tasks->is_array() || results == fan_out.end() || !results->is_object())
    return false;
  for (std::size_t i = 0; i < tasks->size(); ++i)
    if (!results->contains(std::to_string(i))) return false;
  return true;
}

bool has_fan_out(const json& state) {
  const auto it = state.find("fan_out");
  return it != state.end() && !it->is_null();
}

struct Written {
  std::string path;
  int reworks = 0;
  bool changed = false;
};

class CodeMonkey final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "code_monkey"; }

  bool wants(const json& state) const override {
    if (!state.is_object()) return false;
    // A fan-out in the state is someone's work in progress: only ours, with every result in, is ours
    // to take, and a current save_file step beside it is part of it rather than a new file to write.
    if (has_fan_out(state)) return complete_fan_out(state["fan_out"]);
    const auto step = common::current_step(state);
    return step && string_of(state["steps"][*step], "type") == "save_file";
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      if (!context.task().is_null()) return branch(context);
      if (has_fan_out(context.state())) return fold(context);
      return start(context);
    } catch (const std::exception& error) {
      return sdk::Status::internal(std::string("agent.code_monkey: ") + error.what());
    }
  }

 protected:
  sdk::Status configure(const json& config) override {
    if (auto read = read_limit(config, "max_parallel", kLargestMaxParallel, max_parallel_); !read.ok())
      return read;
    return read_limit(config, "max_file_bytes", kLargestMaxFileBytes, max_file_bytes_);
  }

 private:
  static sdk::Status read_limit(const json& config, const char* key, std::int64_t largest,
                                std::int64_t& out) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) return {};
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > largest)
      return sdk::Status::invalid_argument(std::string(key) + " must be an integer from 1 to " +
                                           std::to_string(largest));
    out = it->get<std::int64_t>();
    return {};
  }

  // The current step and the save_file steps right after it, as one batch of distinct files.
  sdk::Result<sdk::AgentStepResult> start(sdk::AgentContext& context) const {
    json next = context.state();
    const auto first = common::current_step(next);
    if (!first || !is_save_file(next["steps"][*first]))
      return sdk::Status::failed_precondition("the current step does not save a file");
    auto& steps = next["steps"];
    std::vector<std::size_t> batch;
    std::set<std::string> paths;
    for (std::size_t i = *first; i < steps.size() && static_cast<std::int64_t>(batch.size()) < max_parallel_;
         ++i) {
      if (!is_save_file(steps[i])) break;
      const std::string path = workspace_path(string_of(steps[i], "path"));
      if (path.empty())
        return sdk::Status::invalid_argument("step " + steps[i].value("id", json()).dump() +
                                             " (save_file) has no relative path inside the workspace");
      // Two writes of one file in parallel would race; the second waits for the next batch.
      if (!paths.insert(path).second) break;
      batch.push_back(i);
    }

    if (batch.size() == 1) {
      auto written = write(context, next, steps[*first]);
      if (!written.ok()) return written.status();
      steps[*first]["completed"] = true;
      if (auto emitted = context.emit_event("code.written", {{"paths", json::array({written->path})}});
          !emitted.ok())
        return emitted;
      return sdk::AgentStepResult{std::move(next),
                                  (written->changed ? "wrote " : "left unchanged: ") + written->path};
    }

    json tasks = json::array();
    for (const auto i : batch)
      tasks.push_back(steps[i]);
    next["fan_out"] = {{"agent", kId}, {"tasks", std::move(tasks)}, {"results", json::object()}};
    return sdk::AgentStepResult{std::move(next),
                                "writing " + std::to_string(batch.size()) + " files in parallel"};
  }

  // One file of a fan-out: context.task() is its step. The result names the step the fold completes.
  sdk::Result<sdk::AgentStepResult> branch(sdk::AgentContext& context) const {
    const json& step = context.task();
    if (!step.is_object())
      return sdk::Status::invalid_argument("a code_monkey fan-out task must be a save_file step");
    auto written = write(context, context.state(), step);
    if (!written.ok()) return written.status();
    json result = {
        {"step_id", step.value("id", json())}, {"path", written->path}, {"reworks", written->reworks}};
    return sdk::AgentStepResult{std::move(result),
                                (written->changed ? "wrote " : "left unchanged: ") + written->path};
  }

  sdk::Result<sdk::AgentStepResult> fold(sdk::AgentContext& context) const {
    json next = context.state();
    if (!complete_fan_out(next["fan_out"]))
      return sdk::Status::failed_precondition("the fan-out is not code_monkey's or still misses results");
    const json fan_out = next["fan_out"];
    const auto& tasks = fan_out["tasks"];
    std::vector<json> done_ids;
    json paths = json::array();
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const auto& result = fan_out["results"][std::to_string(i)];
      json id = result.is_object() ? result.value("step_id", json()) : json();
      if (id.is_null()) id = tasks[i].value("id", json());
      done_ids.push_back(std::move(id));
      std::string path = string_of(result, "path");
      paths.push_back(path.empty() ? string_of(tasks[i], "path") : path);
    }
    for (auto& step : common::array_member(next, "steps"))
      if (step.is_object() &&
          std::find(done_ids.begin(), done_ids.end(), step.value("id", json())) != done_ids.end())
        step["completed"] = true;
    next.erase("fan_out");
    if (auto emitted = context.emit_event("code.written", {{"paths", paths}}); !emitted.ok()) return emitted;
    return sdk::AgentStepResult{std::move(next), "wrote " + std::to_string(paths.size()) + " files"};
  }

  // Writes the file of `step` as the current task needs it: the model writes it whole, a change to an
  // existing file is reviewed, and a rejected version is reworked with the reviewer's notes.
  sdk::Result<Written> write(sdk::AgentContext& context, const json& state, const json& step) const {
    Written out;
    out.path = workspace_path(string_of(step, "path"));
    if (out.path.empty())
      return sdk::Status::invalid_argument("step " + step.value("id", json()).dump() +
                                           " (save_file) has no relative path inside the workspace");
    const auto task_index = common::current_task(state);
    if (!task_index) return sdk::Status::failed_precondition("there is no current task to write a file for");
    const json& task = state["tasks"][*task_index];

    std::string instructions = trimmed(string_of(task, "instructions"));
    if (const auto iteration = common::open_iteration(state)) {
      // A fix's steps are written from the fix's plan as well as the task's.
      const json& fix = state["iterations"][*iteration];
      instructions += "\n\nThe fix being made now: " + string_of(fix, "description");
      if (const std::string plan = string_of(fix, "instructions"); !plan.empty()) instructions += "\n" + plan;
    }
    if (trimmed(instructions).empty()) instructions = "(none)";

    auto current = context.read_file(out.path);
    if (!current.ok() && current.status().code() != sdk::StatusCode::kNotFound) return current.status();
    const bool existed = current.ok();
    const std::string old = existed ? *current : std::string();
    auto files = common::describe_workspace(context);
    if (!files.ok()) return files.status();

    std::string spec = common::text_at(state, "/spec/description");
    if (spec.empty()) spec = common::text_at(state, "/description");
    const std::string task_text = string_of(task, "description");
    const json values = {{"spec", spec},
                         {"task", task_text},
                         {"instructions", instructions},
                         {"step", string_of(step, "description")},
                         {"path", out.path},
                         {"current", existed ? old : std::string("(new file)")},
                         {"files", *files}};
    common::AskOptions options;
    // A whole file, not a summary; 8192 is what every current model of the providers can answer.
    options.max_tokens = 8192;
    std::string content;
    while (true) {
      auto answer = ask(context, "file_content", values, options);
      if (!answer.ok()) return answer.status();
      const auto it = answer->find("content");
      if (it == answer->end() || !it->is_string())
        return sdk::Status::invalid_argument("file_content for " + out.path + " carries no content");
      content = it->get<std::string>();
      if (static_cast<std::int64_t>(content.size()) > max_file_bytes_)
        return sdk::Status::invalid_argument(
            "file_content for " + out.path + " is " + std::to_string(content.size()) +
            " bytes, over max_file_bytes (" + std::to_string(max_file_bytes_) + ")");
      if (!existed || content == old) break;
      if (out.reworks >= kMaxReworks) {
        if (auto emitted = context.emit_event("code.review_exhausted", {{"path", out.path}}); !emitted.ok())
          return emitted;
        break;
      }
      auto review = ask(context, "file_review",
                        {{"path", out.path},
                         {"task", task_text},
                         {"instructions", instructions},
                         {"old", old},
                         {"new", content}});
      if (!review.ok()) return review.status();
      const auto approved = review->find("approved");
      if (approved != review->end() && approved->is_boolean() && approved->get<bool>()) break;
      std::string feedback = trimmed(string_of(*review, "feedback"));
      while (!feedback.empty() && feedback.back() == '.')
        feedback.pop_back();
      if (feedback.empty()) feedback = "no reason given";
      // Only the last rejected draft goes back: the prompt already holds the file as it is, and a
      // longer history would only grow every rework's request.
      options.follow_up = {
          {"assistant", answer->dump(), false},
          {"user", "A reviewer rejected this version: " + feedback + ". Answer with the whole file again.",
           false}};
      ++out.reworks;
    }
    out.changed = !existed || content != old;
    if (out.changed) {
      if (auto wrote = context.write_file(out.path, content); !wrote.ok()) return wrote;
    }
    return out;
  }

  std::int64_t max_parallel_ = kDefaultMaxParallel;
  std::int64_t max_file_bytes_ = kDefaultMaxFileBytes;
};

}  // namespace

SAMOKODER_PLUGIN(CodeMonkey, "agent.code_monkey", "1.0.0",
                 "Writes the files of the current task's steps, reviewed, several in parallel")
