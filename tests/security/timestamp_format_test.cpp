// api::format_timestamp and api::parse_timestamp: the RFC 3339 form every response and query uses.
#include <gtest/gtest.h>

#include "api/context.hpp"

namespace samokoder::api {
namespace {

using namespace std::chrono;

Timestamp at(int y, unsigned m, unsigned d, int hh, int mm, int ss, long long us) {
  return sys_days(year(y) / month(m) / day(d)) + hours(hh) + minutes(mm) + seconds(ss) + microseconds(us);
}

TEST(TimestampFormat, WritesUtcWithMicroseconds) {
  EXPECT_EQ(format_timestamp(at(2026, 1, 1, 0, 0, 0, 0)), "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp(at(2028, 2, 29, 23, 59, 59, 999'999)), "2028-02-29T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(at(1970, 1, 1, 0, 0, 0, 1)), "1970-01-01T00:00:00.000001Z");
  EXPECT_EQ(format_timestamp(at(1969, 12, 31, 23, 59, 59, 999'999)), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp(at(2262, 1, 1, 12, 30, 5, 42)), "2262-01-01T12:30:05.000042Z");
  // Below a microsecond is cut, not rounded.
  EXPECT_EQ(format_timestamp(at(2026, 6, 1, 8, 0, 0, 7) + nanoseconds(999)), "2026-06-01T08:00:00.000007Z");
}

TEST(TimestampFormat, RoundTripsThroughTheParser) {
  for (const Timestamp time : {at(2026, 11, 26, 7, 29, 17, 123'456), at(2000, 2, 29, 0, 0, 0, 0),
                               at(1999, 12, 31, 23, 59, 59, 999'999), at(1960, 7, 4, 1, 2, 3, 4)}) {
    const std::string text = format_timestamp(time);
    const auto parsed = parse_timestamp(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, time) << text;
  }
}

}  // namespace
}  // namespace samokoder::api
