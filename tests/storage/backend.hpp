// The storage backends the conformance suite runs against, and how a backend joins it.
//
// Each backend registers a StorageBackend from its own source file in tests/storage/ with
// SAMOKODER_REGISTER_STORAGE_BACKEND; every TEST_P of the suite then runs once per registered backend
// (the gtest parameter name is StorageBackend::name). See sqlite_backend.cpp for the model.
//
// Ownership: BackendDatabase objects are owned by the test that created them and must outlive every
// plugin instance opened on them. Thread-safety: registration happens during static initialisation;
// storage_backends() is read-only afterwards.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::testing {

// One fresh, empty database, private to one test.
class BackendDatabase {
 public:
  virtual ~BackendDatabase() = default;
  // The plugin's config section that opens this database.
  virtual nlohmann::json plugin_config() const = 0;
  // Writes a schema_migrations row with `version` directly, bypassing the plugin, so the next init
  // meets a schema newer than it supports. Called after the plugin initialised once and shut down.
  virtual sdk::Status force_schema_version(std::int64_t version) = 0;
  // The backend's physical consistency check, run after a writer was killed (SQLite:
  // PRAGMA integrity_check and foreign_key_check).
  virtual sdk::Status check_integrity() = 0;
  // The number of rows in `table` (a table name of docs/storage.md that every backend has), read
  // directly, bypassing the plugin: for effects no Storage call can observe, such as records that
  // must be gone after their owner was deleted.
  virtual sdk::Result<std::int64_t> count_rows(const std::string& table) = 0;
};

struct StorageBackend {
  std::string name;  // [A-Za-z0-9_]: the gtest parameter name
  std::filesystem::path plugin_path;
  // A fresh database per call. A backend that cannot run here throws saying why (a test failure, never a
  // skip: a suite that passes without its backend proves nothing).
  std::function<std::unique_ptr<BackendDatabase>()> create_database;
};

// gtest prints a test parameter with this: the backend's name instead of its bytes.
inline void PrintTo(const StorageBackend& backend, std::ostream* os) {
  *os << backend.name;
}

std::vector<StorageBackend>& storage_backends();
bool register_storage_backend(StorageBackend backend);

}  // namespace samokoder::testing

#define SAMOKODER_REGISTER_STORAGE_BACKEND(ident, ...)             \
  static const bool samokoder_storage_backend_registered_##ident = \
      ::samokoder::testing::register_storage_backend(__VA_ARGS__)
