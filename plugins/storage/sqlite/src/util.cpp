#include "util.hpp"

#include <charconv>
#include <vector>

namespace samokoder::storage_sqlite {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

sdk::Status bad_cursor() {
  return sdk::Status::invalid_argument("cursor was not issued by this list of storage.sqlite");
}

}  // namespace

std::optional<std::string> prefix_upper_bound(std::string_view prefix) {
  std::string upper(prefix);
  while (!upper.empty()) {
    auto last = static_cast<unsigned char>(upper.back());
    if (last != 0xff) {
      upper.back() = static_cast<char>(last + 1);
      return upper;
    }
    upper.pop_back();
  }
  return std::nullopt;
}

std::string encode_time_id_cursor(std::string_view tag, std::int64_t micros, std::string_view id) {
  return std::string(tag) + "." + std::to_string(micros) + "." + std::string(id);
}

sdk::Result<TimeIdKey> decode_time_id_cursor(std::string_view tag, std::string_view cursor) {
  const auto parts = split(cursor, '.');
  if (parts.size() != 3 || parts[0] != tag || !is_id(parts[2])) return bad_cursor();
  const auto micros = parse_int(parts[1]);
  if (!micros) return bad_cursor();
  return TimeIdKey{*micros, std::string(parts[2])};
}

std::string encode_int_cursor(std::string_view tag, std::int64_t value) {
  return std::string(tag) + "." + std::to_string(value);
}

sdk::Result<std::int64_t> decode_int_cursor(std::string_view tag, std::string_view cursor) {
  const auto parts = split(cursor, '.');
  if (parts.size() != 2 || parts[0] != tag) return bad_cursor();
  const auto value = parse_int(parts[1]);
  if (!value) return bad_cursor();
  return *value;
}

std::string encode_text_cursor(std::string_view tag, std::string_view a, std::string_view b) {
  return std::string(tag) + "." + hex_encode(a) + "." + hex_encode(b);
}

sdk::Result<std::pair<std::string, std::string>> decode_text_cursor(std::string_view tag,
                                                                    std::string_view cursor) {
  const auto parts = split(cursor, '.');
  if (parts.size() != 3 || parts[0] != tag) return bad_cursor();
  auto a = hex_decode(parts[1]);
  auto b = hex_decode(parts[2]);
  if (!a || !b) return bad_cursor();
  return std::pair{std::move(*a), std::move(*b)};
}

sdk::Status validate_page(const sdk::PageRequest& page) {
  return storage_common::validate_page_limit(page.limit);
}

}  // namespace samokoder::storage_sqlite
