// Value codecs of storage.postgres: record ids, timestamps, content hashes, file-path rules, keyset
// cursors and ASCII case folding. Pure functions, no state.
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/storage.hpp>

namespace samokoder::storage_postgres {

// Timestamps are stored as microseconds since the Unix epoch (bigint), exactly what the contract keeps.
std::int64_t to_micros(sdk::Timestamp t) noexcept;
sdk::Timestamp from_micros(std::int64_t us) noexcept;

// A new record id: 32 lowercase hex digits in the UUIDv7 layout (48-bit Unix milliseconds of `now`,
// version nibble 7, variant bits, random rest from getrandom(2)).
std::string new_id(sdk::Timestamp now);
// True for a string shaped like an id this backend issues; anything else cannot name a record.
bool is_id(std::string_view s) noexcept;

std::string sha256_hex(std::string_view bytes);
std::string hex_encode(std::string_view bytes);
std::optional<std::string> hex_decode(std::string_view hex);

// Well-formed UTF-8 without NUL: what a PostgreSQL text value can hold.
bool is_valid_text(std::string_view s) noexcept;

// ASCII-only lowercase, the case folding both backends use for emails and login subjects.
std::string ascii_lower(std::string_view s);

// The file path rule of the contract: relative, '/'-separated, 1..4096 bytes of UTF-8 without NUL, no
// empty, "." or ".." segment.
bool is_valid_path(std::string_view path) noexcept;

// Keyset cursor over (created/occurred microseconds, id): "<us>.<id>".
std::string time_id_cursor(std::int64_t micros, std::string_view id);
struct TimeIdCursor {
  std::int64_t micros = 0;
  std::string id;
};
std::optional<TimeIdCursor> parse_time_id_cursor(std::string_view cursor);

// A page limit inside 1..kMaxPageLimit, else kInvalidArgument.
sdk::Status check_page_limit(std::uint32_t limit);

}  // namespace samokoder::storage_postgres
