// The "sqlite" entry of the conformance suite: storage.sqlite on a fresh file in a temp directory.
#include <memory>
#include <string>

#include <sqlite3.h>

#include "backend.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

class SqliteDatabase final : public BackendDatabase {
 public:
  SqliteDatabase() : dir_("storage-sqlite"), path_(dir_.path() / "data" / "samokoder.db") {}

  nlohmann::json plugin_config() const override {
    return {{"path", path_.string()},
            {"busy_timeout_ms", 10000},
            {"synchronous", "normal"},
            {"read_connections", 4}};
  }

  sdk::Status force_schema_version(std::int64_t version) override {
    return exec(SQLITE_OPEN_READWRITE,
                "INSERT INTO schema_migrations (version, applied_at, description) VALUES (" +
                    std::to_string(version) + ", 0, 'written by a newer storage.sqlite')",
                nullptr);
  }

  sdk::Status check_integrity() override {
    std::string integrity;
    SAMOKODER_RETURN_IF_ERROR(exec(SQLITE_OPEN_READONLY, "PRAGMA integrity_check", &integrity));
    if (integrity != "ok") return sdk::Status::data_loss("integrity_check: " + integrity);
    std::string dangling;
    SAMOKODER_RETURN_IF_ERROR(exec(SQLITE_OPEN_READONLY, "PRAGMA foreign_key_check", &dangling));
    if (!dangling.empty()) return sdk::Status::data_loss("foreign_key_check: " + dangling);
    return {};
  }

  sdk::Result<std::int64_t> count_rows(const std::string& table) override {
    std::string count;
    SAMOKODER_RETURN_IF_ERROR(exec(SQLITE_OPEN_READONLY, "SELECT count(*) FROM \"" + table + "\"", &count));
    return std::stoll(count);
  }

 private:
  // Runs `sql` on its own connection; appends the first column of every row to *rows.
  sdk::Status exec(int flags, const std::string& sql, std::string* rows) const {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(db, sqlite3_close);
    if (rc != SQLITE_OK)
      return sdk::Status::unavailable("open " + path_.string() + ": " + sqlite3_errstr(rc));
    sqlite3_busy_timeout(db, 10000);
    const auto collect = [](void* out, int columns, char** values, char**) {
      if (out != nullptr && columns > 0) {
        auto* text = static_cast<std::string*>(out);
        if (!text->empty()) *text += "; ";
        *text += values[0] != nullptr ? values[0] : "NULL";
      }
      return 0;
    };
    char* error = nullptr;
    rc = sqlite3_exec(db, sql.c_str(), collect, rows, &error);
    if (rc != SQLITE_OK) {
      std::string message = error != nullptr ? error : sqlite3_errstr(rc);
      sqlite3_free(error);
      return sdk::Status::internal(sql + ": " + message);
    }
    return {};
  }

  TempDir dir_;
  std::filesystem::path path_;
};

}  // namespace
}  // namespace samokoder::testing

SAMOKODER_REGISTER_STORAGE_BACKEND(sqlite,
                                   ::samokoder::testing::StorageBackend{
                                       "sqlite", SAMOKODER_STORAGE_SQLITE_PLUGIN,
                                       []() -> std::unique_ptr<samokoder::testing::BackendDatabase> {
                                         return std::make_unique<samokoder::testing::SqliteDatabase>();
                                       }});
