// Fuzzes the server-sent events parser the LLM providers read streamed answers with: the events do not
// depend on how the network split the bytes, and none carries a line break it should have ended at.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/llm_common/sse.hpp>

#include "fuzz_check.hpp"

using samokoder::llm_common::SseEvent;
using samokoder::llm_common::SseParser;

namespace {

struct Outcome {
  std::vector<SseEvent> events;
  SseParser::Feed last = SseParser::Feed::kMore;
};

// Feeds `bytes` in pieces of `step` bytes (0: at once), with a small line limit so that path runs too.
Outcome parse(std::string_view bytes, std::size_t step) {
  SseParser parser(256);
  Outcome out;
  const auto keep = [&out](const SseEvent& event) {
    out.events.push_back(event);
    return true;
  };
  if (step == 0) step = bytes.size() + 1;
  for (std::size_t at = 0; at < bytes.size(); at += step) {
    out.last = parser.feed(bytes.substr(at, step), keep);
    if (out.last != SseParser::Feed::kMore) break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 7;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Outcome whole = parse(bytes, 0);
  const Outcome split = parse(bytes, step);
  FUZZ_CHECK(whole.last == split.last);
  if (whole.last == SseParser::Feed::kLineTooLong) return 0;  // where it stops depends on the pieces
  FUZZ_CHECK(whole.events.size() == split.events.size());
  for (std::size_t i = 0; i < whole.events.size(); ++i) {
    FUZZ_CHECK(whole.events[i].event == split.events[i].event);
    FUZZ_CHECK(whole.events[i].data == split.events[i].data);
    FUZZ_CHECK(whole.events[i].id == split.events[i].id);
    FUZZ_CHECK(whole.events[i].event.find_first_of("\r\n") == std::string::npos);
    FUZZ_CHECK(whole.events[i].id.find_first_of("\r\n") == std::string::npos);
    FUZZ_CHECK(whole.events[i].data.find('\r') == std::string::npos);
  }
  return 0;
}
