#include "runs/run_record.hpp"

namespace samokoder::runs {

bool is_kernel_event_type(std::string_view type) noexcept {
  for (std::string_view prefix :
       {"run.", "step.", "llm.", "question.", "command.", "message.", "file.", "budget."}) {
    if (type.starts_with(prefix)) return true;
  }
  return false;
}

void RunRecord::add(const sdk::RunEvent& event) {
  const auto& p = event.payload;
  if (!p.is_object() || p.value("base", std::int64_t{-1}) != base_) return;
  const int branch = p.value("branch", -1);
  if (event.type == event_type::kLlmExchange) {
    entries_[key(branch, "llm", std::to_string(p.value("index", -1)))] = p;
  } else if (event.type == event_type::kCommandFinished) {
    entries_[key(branch, "cmd", std::to_string(p.value("index", -1)))] = p;
  } else if (event.type == event_type::kQuestionAsked) {
    auto& entry = entries_[key(branch, "ask", p.value("id", std::string()))];
    if (!entry.contains("answer")) entry = p;
  } else if (event.type == event_type::kQuestionAnswered) {
    auto& entry = entries_[key(branch, "ask", p.value("id", std::string()))];
    if (!entry.is_object()) entry = p;
    entry["answer"] = p.value("answer", std::string());
  }
}

const nlohmann::json* RunRecord::find(const std::string& key) const {
  const auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace samokoder::runs
