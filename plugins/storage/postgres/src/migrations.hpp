// The schema of storage.postgres as numbered migrations, applied in order by PostgresStorage::migrate().
// A published migration is never edited: a schema change is a new, higher-numbered entry.
//
// Thread-safety: immutable data.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace samokoder::storage_postgres {

struct Migration {
  std::int64_t version;
  std::string_view description;
  std::string_view sql;  // one or more statements, run in the migration's transaction
};

std::span<const Migration> migrations() noexcept;

// pg_advisory_lock key that serialises migrations across kernel nodes sharing one database
// ("samokoder" in ASCII, so it is recognisable in pg_locks).
inline constexpr std::int64_t kMigrationLockKey = 0x73616d6f6b6f6465;

}  // namespace samokoder::storage_postgres
