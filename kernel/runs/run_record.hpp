// RunRecord: what a run's event log says about the step being built, so that a step run again
// (after a pause for the user, a crash, a takeover by another node) gets back every model answer,
// user answer and command result it already got, instead of asking again.
//
// Recorded events carry the step they belong to as "base" (the sequence of the committed step the
// attempt started from) and "branch" (the fan-out task index, -1 for an ordinary step); a record
// is the payload of the newest such event under its key. Keys: "<branch>/llm/<n>" for the n-th
// model call, "<branch>/ask/<id>" for a question (its "answer" member once answered),
// "<branch>/cmd/<n>" for the n-th command.
//
// Ownership: a plain value. Thread-safety: none; a run's driver owns it and gives each branch a copy.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/storage/run_store.hpp>

namespace samokoder::runs {

// The kernel's event types. Agents may not emit types with these prefixes, nor with message., file.
// or budget. (is_kernel_event_type).
namespace event_type {
inline constexpr const char* kRunCreated = "run.created";
inline constexpr const char* kRunStarted = "run.started";
inline constexpr const char* kRunPaused = "run.paused";
inline constexpr const char* kRunResumed = "run.resumed";
inline constexpr const char* kRunFinished = "run.finished";
inline constexpr const char* kRunFailed = "run.failed";
inline constexpr const char* kRunCancelled = "run.cancelled";
inline constexpr const char* kStepStarted = "step.started";
inline constexpr const char* kStepCommitted = "step.committed";
inline constexpr const char* kFileWritten = "file.written";
inline constexpr const char* kLlmExchange = "llm.exchange";
inline constexpr const char* kLlmDelta = "llm.delta";  // transient
inline constexpr const char* kQuestionAsked = "question.asked";
inline constexpr const char* kQuestionAnswered = "question.answered";
inline constexpr const char* kCommandFinished = "command.finished";
inline constexpr const char* kCommandOutput = "command.output";  // transient
inline constexpr const char* kMessageReceived = "message.received";
inline constexpr const char* kBudgetWarning = "budget.warning";
}  // namespace event_type

// True for the types only the kernel writes.
bool is_kernel_event_type(std::string_view type) noexcept;

class RunRecord {
 public:
  // Forgets everything: a new step starts from `base`.
  void reset(std::int64_t base) {
    base_ = base;
    entries_.clear();
  }
  std::int64_t base() const noexcept { return base_; }
  // Takes in a recorded event (ignored unless it belongs to the current base).
  void add(const sdk::RunEvent& event);
  // The payload under `key`, or nullptr.
  const nlohmann::json* find(const std::string& key) const;

  static std::string key(int branch, std::string_view kind, std::string_view id) {
    return std::to_string(branch) + "/" + std::string(kind) + "/" + std::string(id);
  }

 private:
  std::int64_t base_ = 0;
  std::map<std::string, nlohmann::json> entries_;
};

}  // namespace samokoder::runs
