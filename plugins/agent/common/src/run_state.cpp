#include <algorithm>

#include <samokoder/agent_common/run_state.hpp>

namespace samokoder::agent_common {
namespace {

template <typename Predicate>
std::optional<std::size_t> first_index(const nlohmann::json& state, const char* member, Predicate matches) {
  const auto it = state.find(member);
  if (it == state.end() || !it->is_array()) return std::nullopt;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& element = (*it)[i];
    if (element.is_object() && matches(element)) return i;
  }
  return std::nullopt;
}

bool completed(const nlohmann::json& element) {
  const auto it = element.find("completed");
  return it != element.end() && it->is_boolean() && it->get<bool>();
}

std::string status_of(const nlohmann::json& element) {
  const auto it = element.find("status");
  return it != element.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::optional<std::size_t> current_epic(const nlohmann::json& state) {
  return first_index(state, "epics", [](const nlohmann::json& epic) { return !completed(epic); });
}

std::optional<std::size_t> current_task(const nlohmann::json& state) {
  return first_index(state, "tasks", [](const nlohmann::json& task) {
    const std::string status = status_of(task);
    return status != task_status::kDone && status != task_status::kSkipped;
  });
}

std::optional<std::size_t> current_step(const nlohmann::json& state) {
  return first_index(state, "steps", [](const nlohmann::json& step) { return !completed(step); });
}

std::optional<std::size_t> open_iteration(const nlohmann::json& state) {
  const auto it = state.find("iterations");
  if (it == state.end() || !it->is_array()) return std::nullopt;
  for (std::size_t i = it->size(); i-- > 0;) {
    const auto& iteration = (*it)[i];
    if (iteration.is_object() && status_of(iteration) != iteration_status::kDone) return i;
  }
  return std::nullopt;
}

std::string current_task_status(const nlohmann::json& state) {
  const auto index = current_task(state);
  return index ? status_of(state["tasks"][*index]) : std::string();
}

bool has_text(const nlohmann::json& state, const char* pointer) {
  return !text_at(state, pointer).empty();
}

std::string text_at(const nlohmann::json& state, const char* pointer) {
  const nlohmann::json::json_pointer path(pointer);
  if (!state.contains(path)) return {};
  const auto& value = state.at(path);
  return value.is_string() ? value.get<std::string>() : std::string();
}

std::string string_of(const nlohmann::json& object, const char* member) {
  if (!object.is_object()) return {};
  const auto it = object.find(member);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

std::int64_t next_id(const nlohmann::json& array) {
  std::int64_t largest = 0;
  if (!array.is_array()) return 1;
  for (const auto& element : array) {
    if (!element.is_object()) continue;
    const auto id = element.find("id");
    if (id != element.end() && id->is_number_integer()) largest = std::max(largest, id->get<std::int64_t>());
  }
  return largest + 1;
}

nlohmann::json& array_member(nlohmann::json& state, const char* member) {
  auto& value = state[member];
  if (!value.is_array()) value = nlohmann::json::array();
  return value;
}

}  // namespace samokoder::agent_common
