// SseParser: the server-sent events stream format (WHATWG HTML, "Server-sent events" section 9.2.6)
// as LLM APIs stream their answers: bytes in, whole events out.
//
// Bytes arrive as the network delivers them: an event may be split across any number of reads (in
// the middle of a line, of "\r\n", of a UTF-8 sequence) and one read may carry several events. The
// parser buffers the incomplete line only. Lines end in "\n", "\r\n" or "\r"; a line starting with ":"
// is a comment (keep-alives); "data" lines of one event are joined with "\n"; an empty line dispatches
// the event; an event with no data line is dropped, as the standard says. A leading UTF-8 BOM is
// skipped. Fields other than event, data and id are ignored.
//
// Not part of the SDK: plugin code shared by the LLM providers (linked statically into each).
// Ownership: the parser owns its buffer. Thread-safety: one parser per stream, used by one thread at a
// time.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace samokoder::llm_common {

struct SseEvent {
  std::string event = "message";  // the "event" field, or "message" when there was none
  std::string data;
  std::string id;
};

class SseParser {
 public:
  // `on_event` returns false to stop: feed() then returns at once and ignores the rest of the bytes.
  using EventHandler = std::function<bool(const SseEvent&)>;

  // A line longer than `max_line_bytes` fails the stream rather than growing without bound.
  explicit SseParser(std::size_t max_line_bytes = 4 * 1024 * 1024) : max_line_bytes_(max_line_bytes) {}

  enum class Feed { kMore, kStopped, kLineTooLong };
  Feed feed(std::string_view bytes, const EventHandler& on_event);

  // Bytes of an unfinished line or event are pending (a stream that ended here was cut off).
  bool pending() const noexcept { return !line_.empty() || has_data_; }

 private:
  // Returns false when the handler asked to stop.
  bool take_line(std::string_view line, const EventHandler& on_event);

  std::size_t max_line_bytes_;
  std::string line_;
  bool skipped_bom_check_ = false;
  bool last_was_cr_ = false;
  SseEvent event_;
  bool has_data_ = false;
};

}  // namespace samokoder::llm_common
