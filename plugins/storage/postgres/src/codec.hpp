// Value codecs of storage.postgres: its keyset cursors, plus the codecs both backends share (ids,
// timestamps, hashes, text and path rules: storage_common/codec.hpp). Pure functions, no state.
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/storage.hpp>
#include <samokoder/storage_common/codec.hpp>

namespace samokoder::storage_postgres {

// The codecs both backends share (storage_common/codec.hpp), unqualified as before they were shared.
using namespace storage_common;

// Keyset cursor over (created/occurred microseconds, id): "<us>.<id>".
std::string time_id_cursor(std::int64_t micros, std::string_view id);
struct TimeIdCursor {
  std::int64_t micros = 0;
  std::string id;
};
std::optional<TimeIdCursor> parse_time_id_cursor(std::string_view cursor);

}  // namespace samokoder::storage_postgres
