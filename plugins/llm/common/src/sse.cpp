#include "samokoder/llm_common/sse.hpp"

namespace samokoder::llm_common {

SseParser::Feed SseParser::feed(std::string_view bytes, const EventHandler& on_event) {
  if (!skipped_bom_check_) {
    // The BOM may itself arrive split; wait until three bytes (or a mismatch) decide.
    constexpr std::string_view kBom = "\xEF\xBB\xBF";
    line_.append(bytes);
    if (line_.size() < kBom.size() && kBom.substr(0, line_.size()) == line_) return Feed::kMore;
    skipped_bom_check_ = true;
    std::string buffered = std::move(line_);
    line_.clear();
    std::string_view rest = buffered;
    if (rest.substr(0, kBom.size()) == kBom) rest.remove_prefix(kBom.size());
    return feed(rest, on_event);
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\n' && last_was_cr_) {  // the second half of a "\r\n" already ended the line
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      const std::string line = std::move(line_);
      line_.clear();
      if (!take_line(line, on_event)) return Feed::kStopped;
      continue;
    }
    // Copy the run up to the next line end in one append rather than byte by byte.
    std::size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) end = bytes.size();
    line_.append(bytes.substr(i, end - i));
    if (line_.size() > max_line_bytes_) return Feed::kLineTooLong;
    i = end - 1;
  }
  return Feed::kMore;
}

bool SseParser::take_line(std::string_view line, const EventHandler& on_event) {
  if (line.empty()) {
    // The event type and data start afresh; the id is the stream's "last event id" and carries on.
    SseEvent ready = std::move(event_);
    event_ = SseEvent{};
    event_.id = ready.id;
    if (!has_data_) return true;
    has_data_ = false;
    if (ready.event.empty()) ready.event = "message";
    return on_event(ready);
  }
  if (line.front() == ':') return true;  // a comment: keep-alive
  const std::size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) event_.id.assign(value);
  }
  return true;
}

}  // namespace samokoder::llm_common
