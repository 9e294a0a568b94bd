// Small pure helpers of storage.sqlite: ids, hashing, time encoding, input validation, cursors.
//
// Ownership: plain functions over values. Thread-safety: all are safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/storage.hpp>

namespace samokoder::storage_sqlite {

using sdk::Timestamp;

// Microseconds since the Unix epoch: how every timestamp is stored.
std::int64_t to_micros(Timestamp t) noexcept;
Timestamp from_micros(std::int64_t us) noexcept;

// A fresh 128-bit id: UUIDv7 layout (48-bit Unix milliseconds of `now`, version 7, variant 10, the rest
// from the kernel's CSPRNG via getrandom), rendered as 32 lowercase hex digits without dashes.
std::string new_id(Timestamp now);

// True for exactly 32 lowercase hex digits: the shape of every id new_id() issues.
bool is_id(std::string_view s) noexcept;

// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

std::string hex_encode(std::string_view bytes);
std::optional<std::string> hex_decode(std::string_view hex);

// ASCII-only lowercase: the case folding both backends agree on for emails and login subjects.
std::string ascii_lower(std::string_view s);

// Well-formed UTF-8 without NUL: what every text column accepts (PostgreSQL refuses anything else).
bool is_valid_text(std::string_view s) noexcept;

// The file path rule of the SDK (storage.hpp, "Files").
sdk::Status validate_path(std::string_view path);

// The smallest string greater than every string starting with `prefix`, or nullopt if there is none
// (prefix is all 0xFF bytes). Used as the exclusive upper bound of a prefix range scan.
std::optional<std::string> prefix_upper_bound(std::string_view prefix);

// Cursors are "<tag>.<field>.<field>...", each field lowercase hex of its bytes or a decimal number.
// The tag names the list, so a cursor from one list is refused by another.
struct TimeIdKey {
  std::int64_t micros = 0;
  std::string id;
};
std::string encode_time_id_cursor(std::string_view tag, std::int64_t micros, std::string_view id);
sdk::Result<TimeIdKey> decode_time_id_cursor(std::string_view tag, std::string_view cursor);
std::string encode_int_cursor(std::string_view tag, std::int64_t value);
sdk::Result<std::int64_t> decode_int_cursor(std::string_view tag, std::string_view cursor);
std::string encode_text_cursor(std::string_view tag, std::string_view a, std::string_view b = {});
// Returns the two fields (the second empty for one-field cursors).
sdk::Result<std::pair<std::string, std::string>> decode_text_cursor(std::string_view tag,
                                                                    std::string_view cursor);

sdk::Status validate_page(const sdk::PageRequest& page);

}  // namespace samokoder::storage_sqlite
