// The run state's conventions the pipeline's agents share (docs/pipeline.md, "The run state"): which
// epic, task, step and iteration is current, how ids are made, and the statuses that move a task
// along. Free functions over nlohmann::json so an agent reads the state the kernel hands it as is.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace samokoder::agent_common {

namespace task_status {
inline constexpr std::string_view kTodo = "todo";
inline constexpr std::string_view kInProgress = "in_progress";
inline constexpr std::string_view kReviewed = "reviewed";
inline constexpr std::string_view kDocumented = "documented";
inline constexpr std::string_view kDone = "done";
inline constexpr std::string_view kSkipped = "skipped";
}  // namespace task_status

namespace iteration_status {
inline constexpr std::string_view kImplementSolution = "implement_solution";
inline constexpr std::string_view kChecking = "checking";
inline constexpr std::string_view kDone = "done";
}  // namespace iteration_status

// The index in state[member] (an array) of its current element, or nullopt.
// Epic: the first whose "completed" is not true.
std::optional<std::size_t> current_epic(const nlohmann::json& state);
// Task: the first whose "status" is neither done nor skipped.
std::optional<std::size_t> current_task(const nlohmann::json& state);
// Step: the first of "steps" whose "completed" is not true.
std::optional<std::size_t> current_step(const nlohmann::json& state);
// Iteration: the last of "iterations" whose "status" is not done.
std::optional<std::size_t> open_iteration(const nlohmann::json& state);

// The current task's status, or "" when there is none.
std::string current_task_status(const nlohmann::json& state);
// Whether state has a non-empty string at `pointer` ("/spec/description").
bool has_text(const nlohmann::json& state, const char* pointer);
// The string at `pointer`, or "" when it is missing or not a string.
std::string text_at(const nlohmann::json& state, const char* pointer);

// object[member] when it is a string, else "" (also for an object that is not one).
std::string string_of(const nlohmann::json& object, const char* member);
// `text` without leading and trailing blanks (spaces, tabs, line breaks).
std::string trimmed(std::string_view text);

// 1 + the largest "id" of the objects of `array` (1 for an empty or missing array): deterministic, so a
// replayed step makes the same ids.
std::int64_t next_id(const nlohmann::json& array);

// state[member] as an array, made one when it is missing or null.
nlohmann::json& array_member(nlohmann::json& state, const char* member);

}  // namespace samokoder::agent_common
