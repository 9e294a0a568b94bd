// The schema of storage.sqlite as numbered migrations, embedded in the plugin.
//
// A migration is never edited once released: a schema change is a new entry at the end. Each is
// applied in its own transaction together with its schema_migrations row (see migrate() in
// sqlite_storage.cpp), so a crash mid-way leaves the database at the previous version.
//
// Ownership: static data. Thread-safety: immutable.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace samokoder::storage_sqlite {

struct Migration {
  std::int64_t version;
  std::string_view description;
  std::string_view sql;
};

// Ascending by version, 1..N without gaps.
std::span<const Migration> migrations() noexcept;

// N: the highest version this build knows.
std::int64_t supported_schema_version() noexcept;

// Created (if missing) before any migration runs; not itself a migration.
inline constexpr std::string_view kSchemaMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " applied_at INTEGER NOT NULL,"  // microseconds since the Unix epoch
    " description TEXT NOT NULL) STRICT";

}  // namespace samokoder::storage_sqlite
