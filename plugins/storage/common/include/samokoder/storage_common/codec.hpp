// Value codecs both storage backends agree on: record ids, timestamps, UTC days, content hashes, hex,
// the text and file-path rules of the storage contract (sdk/storage/common.hpp,
// sdk/storage/file_store.hpp), ASCII case folding and the page-limit check. Cursors stay with each
// backend: their shapes differ.
//
// Ownership: pure functions over values. Thread-safety: every function may be called concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>
#include <samokoder/sdk/storage/llm_request_store.hpp>

namespace samokoder::storage_common {

// Timestamps are stored as microseconds since the Unix epoch, exactly what the contract keeps.
std::int64_t to_micros(sdk::Timestamp t) noexcept;
sdk::Timestamp from_micros(std::int64_t us) noexcept;

// The UTC day of llm_requests.created_at (microseconds) as days since 1970-01-01, as an SQL expression
// both dialects evaluate alike: integer / and % truncate toward zero in SQLite and PostgreSQL, and the
// CASE turns that into floor division, so a time before 1970 falls on its own day, not the next. The
// day is computed from the stored integer, not by the server's date functions, so no server time zone
// setting can shift it. Grouping by the number and formatting it with utc_day() in C++ gives both
// backends the same days, ordered chronologically.
inline constexpr std::string_view kCreatedAtUtcDaySql =
    "(created_at / 86400000000 - CASE WHEN created_at % 86400000000 < 0 THEN 1 ELSE 0 END)";
// "YYYY-MM-DD" (proleptic Gregorian calendar) of a day number as above.
std::string utc_day(std::int64_t days_since_epoch);

// A new record id: 32 lowercase hex digits in the UUIDv7 layout (48-bit Unix milliseconds of `now`,
// version nibble 7, variant bits, the rest from getrandom(2)).
std::string new_id(sdk::Timestamp now);
// True for exactly 32 lowercase hex digits: the shape of every id new_id() issues; anything else
// cannot name a record.
bool is_id(std::string_view s) noexcept;

// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);
std::string hex_encode(std::string_view bytes);
std::optional<std::string> hex_decode(std::string_view hex);

// Well-formed UTF-8 without NUL: what every text column accepts (PostgreSQL refuses anything else).
bool is_valid_text(std::string_view s) noexcept;

// ASCII-only lowercase, the case folding both backends use for emails and login subjects.
std::string ascii_lower(std::string_view s);

// The file path rule of the contract: relative, '/'-separated, 1..4096 bytes of UTF-8 without NUL, no
// empty, "." or ".." segment; kInvalidArgument saying which rule the path broke.
sdk::Status validate_path(std::string_view path);

// A page limit inside 1..kMaxPageLimit, else kInvalidArgument.
sdk::Status validate_page_limit(std::uint32_t limit);

// The rules of NewLlmRequest (sdk/storage/llm_request_store.hpp) that need no database: provider and
// model present, a known status, counters in range. kInvalidArgument saying which rule broke; the
// references (user, project, run) are each backend's to check.
sdk::Status validate_llm_request(const sdk::NewLlmRequest& request);

}  // namespace samokoder::storage_common
