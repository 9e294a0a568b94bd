#include "samokoder/llm_common/retry_after.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <string>

namespace samokoder::llm_common {
namespace {

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0)
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0)
    text.remove_suffix(1);
  return text;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::optional<double> seconds_of(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (const char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0 && c != '.') return std::nullopt;
  }
  double seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds))
    return std::nullopt;
  return seconds;
}

std::optional<int> number_of(std::string_view text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "Wed, 21 Oct 2015 07:28:00 GMT": the only date form RFC 9110 requires senders to use.
std::optional<std::chrono::system_clock::time_point> imf_fixdate_of(std::string_view text) {
  constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text[3] != ',' || text.substr(25) != " GMT") return std::nullopt;
  const auto day = number_of(text.substr(5, 2));
  const auto year = number_of(text.substr(12, 4));
  const auto hour = number_of(text.substr(17, 2));
  const auto minute = number_of(text.substr(20, 2));
  const auto second = number_of(text.substr(23, 2));
  int month = -1;
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (text.substr(8, 3) == kMonths[i]) month = static_cast<int>(i);
  }
  if (!day || !year || !hour || !minute || !second || month < 0 || text[19] != ':' || text[22] != ':')
    return std::nullopt;
  std::tm parts{};
  parts.tm_year = *year - 1900;
  parts.tm_mon = month;
  parts.tm_mday = *day;
  parts.tm_hour = *hour;
  parts.tm_min = *minute;
  parts.tm_sec = *second;
  const std::time_t at = timegm(&parts);
  if (at == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(at);
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now) {
  value = trimmed(value);
  if (const auto seconds = seconds_of(value)) {
    // A day is far past any sensible wait; a larger value is a broken header, not a plan.
    constexpr double kMaxSeconds = 24 * 60 * 60;
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(std::llround(std::min(*seconds, kMaxSeconds) * 1000)));
  }
  const auto at = imf_fixdate_of(value);
  if (!at) return std::nullopt;
  if (*at <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(*at - now);
}

std::optional<std::chrono::milliseconds> retry_after_of(const std::vector<sdk::HttpHeader>& headers,
                                                        std::chrono::system_clock::time_point now) {
  for (const auto& header : headers) {
    if (iequals(header.name, "retry-after")) return parse_retry_after(header.value, now);
  }
  return std::nullopt;
}

}  // namespace samokoder::llm_common
