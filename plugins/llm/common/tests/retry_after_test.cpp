#include "samokoder/llm_common/retry_after.hpp"

#include <gtest/gtest.h>

namespace samokoder::llm_common {
namespace {

using std::chrono::milliseconds;

// 2015-10-21 07:28:00 UTC, the RFC's own example date.
const auto kThen = std::chrono::system_clock::from_time_t(1445412480);

TEST(RetryAfter, SecondsAndFractionsOfThem) {
  EXPECT_EQ(parse_retry_after("120", kThen), milliseconds(120000));
  EXPECT_EQ(parse_retry_after(" 0 ", kThen), milliseconds(0));
  EXPECT_EQ(parse_retry_after("1.5", kThen), milliseconds(1500));
}

TEST(RetryAfter, AnHttpDateIsMeasuredFromTheHostsClock) {
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", kThen), milliseconds(30000));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", kThen), milliseconds(0)) << "a date passed";
}

TEST(RetryAfter, GarbageIsNoDelay) {
  for (const char* garbage :
       {"", "soon", "-1", "12s", "Wed, 21 Oct 2015 07:28:30 UTC", "Wed, 21 Foo 2015 07:28:30 GMT"})
    EXPECT_EQ(parse_retry_after(garbage, kThen), std::nullopt) << garbage;
}

TEST(RetryAfter, TheHeaderIsFoundWhateverItsCase) {
  const std::vector<sdk::HttpHeader> headers = {{"Content-Type", "application/json"}, {"RETRY-AFTER", "7"}};
  EXPECT_EQ(retry_after_of(headers, kThen), milliseconds(7000));
  EXPECT_EQ(retry_after_of({}, kThen), std::nullopt);
}

}  // namespace
}  // namespace samokoder::llm_common
