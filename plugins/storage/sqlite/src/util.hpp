// Small pure helpers of storage.sqlite: its cursors and prefix bounds, plus the codecs both backends
// share (ids, hashing, time encoding, text and path rules: storage_common/codec.hpp).
//
// Ownership: plain functions over values. Thread-safety: all are safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/storage.hpp>
#include <samokoder/storage_common/codec.hpp>

namespace samokoder::storage_sqlite {

using sdk::Timestamp;

// The codecs both backends share (storage_common/codec.hpp), unqualified as before they were shared.
using namespace storage_common;

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
