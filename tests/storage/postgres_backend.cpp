// The "postgres" entry of the conformance suite: storage.postgres on a fresh database of a real
// PostgreSQL 15 server that this test program starts (PostgresServer::shared(), one per program).
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include <libpq-fe.h>
#include <unistd.h>

#include "backend.hpp"
#include "postgres_server.hpp"

namespace samokoder::testing {
namespace {

class PostgresDatabase final : public BackendDatabase {
 public:
  PostgresDatabase() {
    static std::atomic<int> counter{0};
    url_ = PostgresServer::shared().create_database("conformance_" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(counter.fetch_add(1)));
  }

  nlohmann::json plugin_config() const override {
    return {{"url", url_}, {"pool_size", 8}, {"acquire_timeout_ms", 10000}, {"statement_timeout_ms", 60000}};
  }

  sdk::Status force_schema_version(std::int64_t version) override {
    return exec("INSERT INTO schema_migrations (version, applied_at, description) VALUES (" +
                std::to_string(version) + ", 0, 'written by a newer storage.postgres')");
  }

  // PostgreSQL recovers from a killed client (and a killed server) by itself; what is worth checking is
  // that every B-tree index still agrees with its table (amcheck, shipped with the server).
  sdk::Status check_integrity() override {
    SAMOKODER_RETURN_IF_ERROR(exec("CREATE EXTENSION IF NOT EXISTS amcheck"));
    return exec(
        "SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.amname = 'btree' AND n.nspname = 'public'");
  }

  sdk::Result<std::int64_t> count_rows(const std::string& table) override {
    std::string count;
    SAMOKODER_RETURN_IF_ERROR(exec("SELECT count(*) FROM \"" + table + "\"", &count));
    return std::stoll(count);
  }

 private:
  // Runs `sql` on its own connection; stores the first column of the first row in *value, if given.
  sdk::Status exec(const std::string& sql, std::string* value = nullptr) const {
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url_.c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      return sdk::Status::unavailable("connect: " + std::string(PQerrorMessage(conn.get())));
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return sdk::Status::data_loss(sql + ": " + PQresultErrorMessage(result.get()));
    }
    if (value != nullptr && PQntuples(result.get()) > 0) *value = PQgetvalue(result.get(), 0, 0);
    return {};
  }

  std::string url_;
};

// Without the server binaries PostgresServer throws, naming the binary and how to install it.
std::unique_ptr<BackendDatabase> create_postgres_database() {
  return std::make_unique<PostgresDatabase>();
}

}  // namespace
}  // namespace samokoder::testing

SAMOKODER_REGISTER_STORAGE_BACKEND(postgres, ::samokoder::testing::StorageBackend{
                                                 "postgres", SAMOKODER_STORAGE_POSTGRES_PLUGIN,
                                                 &::samokoder::testing::create_postgres_database});
