#include "samokoder/llm_common/sse.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace samokoder::llm_common {
namespace {

std::vector<SseEvent> parse_in_pieces(std::string_view stream, std::size_t piece) {
  SseParser parser;
  std::vector<SseEvent> events;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    EXPECT_EQ(parser.feed(stream.substr(at, piece),
                          [&](const SseEvent& e) {
                            events.push_back(e);
                            return true;
                          }),
              SseParser::Feed::kMore);
  }
  EXPECT_FALSE(parser.pending());
  return events;
}

// An OpenAI-like stream with every line ending the standard allows, a comment, a multi-line event,
// a UTF-8 text and an event without data (dropped).
constexpr std::string_view kStream =
    "\xEF\xBB\xBF: keep-alive\r\n\r\n"
    "data: {\"d\":\"h\xC3\xA9llo\"}\n\n"
    "event: message_delta\r\nid: 7\r\ndata: line one\r\ndata:line two\r\n\r\n"
    "event: ping\r\r"
    "data: [DONE]\n\n";

TEST(SseParser, EveryWayOfSplittingTheStreamGivesTheSameEvents) {
  for (std::size_t piece = 1; piece <= kStream.size(); ++piece) {
    const auto events = parse_in_pieces(kStream, piece);
    ASSERT_EQ(events.size(), 3u) << "pieces of " << piece;
    EXPECT_EQ(events[0].event, "message");
    EXPECT_EQ(events[0].data, "{\"d\":\"h\xC3\xA9llo\"}");
    EXPECT_EQ(events[1].event, "message_delta");
    EXPECT_EQ(events[1].id, "7");
    EXPECT_EQ(events[1].data, "line one\nline two");
    EXPECT_EQ(events[2].data, "[DONE]");
    EXPECT_EQ(events[2].event, "message") << "the ping's type must not leak into the next event";
    EXPECT_EQ(events[2].id, "7") << "the last event id carries on";
  }
}

TEST(SseParser, SeveralEventsInOneReadAllArrive) {
  std::string many;
  for (int i = 0; i < 100; ++i)
    many += "data: " + std::to_string(i) + "\n\n";
  const auto events = parse_in_pieces(many, many.size());
  ASSERT_EQ(events.size(), 100u);
  EXPECT_EQ(events[99].data, "99");
}

TEST(SseParser, AnUnfinishedEventIsPendingAndNotDelivered) {
  SseParser parser;
  int delivered = 0;
  parser.feed("data: half", [&](const SseEvent&) { return ++delivered, true; });
  EXPECT_TRUE(parser.pending());
  parser.feed(" an event\n", [&](const SseEvent&) { return ++delivered, true; });
  EXPECT_TRUE(parser.pending()) << "data without the blank line is not an event yet";
  EXPECT_EQ(delivered, 0);
  parser.feed("\n", [&](const SseEvent& e) {
    EXPECT_EQ(e.data, "half an event");
    return ++delivered, true;
  });
  EXPECT_EQ(delivered, 1);
  EXPECT_FALSE(parser.pending());
}

TEST(SseParser, TheHandlerStopsTheStream) {
  SseParser parser;
  std::vector<std::string> seen;
  const auto result = parser.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n", [&](const SseEvent& e) {
    seen.push_back(e.data);
    return e.data != "2";
  });
  EXPECT_EQ(result, SseParser::Feed::kStopped);
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "2"}));
}

TEST(SseParser, ALineBeyondTheLimitFailsInsteadOfGrowing) {
  SseParser parser(16);
  const auto handler = [](const SseEvent&) { return true; };
  EXPECT_EQ(parser.feed("data: 0123456789", handler), SseParser::Feed::kMore);
  EXPECT_EQ(parser.feed("abcdef", handler), SseParser::Feed::kLineTooLong);
}

}  // namespace
}  // namespace samokoder::llm_common
