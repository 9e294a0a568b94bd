#include "codec.hpp"

#include <charconv>

namespace samokoder::storage_postgres {

std::string time_id_cursor(std::int64_t micros, std::string_view id) {
  return std::to_string(micros) + "." + std::string(id);
}

std::optional<TimeIdCursor> parse_time_id_cursor(std::string_view cursor) {
  const auto dot = cursor.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  TimeIdCursor out;
  const char* first = cursor.data();
  const char* last = cursor.data() + dot;
  const auto [ptr, ec] = std::from_chars(first, last, out.micros);
  if (ec != std::errc() || ptr != last) return std::nullopt;
  out.id = std::string(cursor.substr(dot + 1));
  if (!is_id(out.id)) return std::nullopt;
  return out;
}

}  // namespace samokoder::storage_postgres
