// Connection and Stmt: one SQLite connection of storage.sqlite and the prepared statements run on it.
//
// Poco::Data::SQLite opens, configures and closes the connection (its SessionImpl, created directly
// so no connector is registered in Poco's process-wide SessionFactory). Statements then run through
// the connection's sqlite3 handle because the backend needs what Poco's statement layer hides:
// extended result codes (a UNIQUE violation is kAlreadyExists, a FOREIGN KEY violation kNotFound),
// explicit BEGIN IMMEDIATE, the online backup API, and prepared statements reused across calls.
//
// Ownership: a Connection owns its session and its cached statements; a Stmt borrows one cached
// statement and gives it back (reset, bindings cleared) when destroyed, so it must not outlive its
// Connection. Thread-safety: none; a Connection is used by one thread at a time (the writer mutex or
// the reader pool guarantees that).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <Poco/Data/Session.h>
#include <nlohmann/json.hpp>

#include <samokoder/sdk/storage.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace samokoder::storage_sqlite {

struct ConnectionOptions {
  std::string path;
  int busy_timeout_ms = 5000;
  bool synchronous_full = false;
  bool read_only = false;  // reader connections refuse writes, so a misrouted write fails loudly
};

// Maps an SQLite result code (extended codes on) to a Status. Never yields "database is locked":
// BUSY/LOCKED become kUnavailable naming the busy timeout.
sdk::Status status_from_sqlite(int rc, std::string_view context, sqlite3* db);

class Connection;

class Stmt {
 public:
  // `cached_in_use` is the cache entry's busy flag, or null for a one-off statement.
  Stmt(Connection& connection, sqlite3_stmt* stmt, bool* cached_in_use);
  Stmt(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  // Binds the next parameter (1, 2, 3, ... in call order). Text must be UTF-8 without NUL; a bad value
  // is remembered and returned by the next step()/run() as kInvalidArgument.
  Stmt& text(std::string_view value);
  // Text that skips the UTF-8 check: only for comparison bounds that are never stored.
  Stmt& unchecked_text(std::string_view value);
  Stmt& blob(std::string_view bytes);
  Stmt& integer(std::int64_t value);
  Stmt& boolean(bool value) { return integer(value ? 1 : 0); }
  Stmt& time(sdk::Timestamp value);
  Stmt& optional_time(const std::optional<sdk::Timestamp>& value);
  Stmt& optional_text(std::string_view value);  // NULL when empty
  Stmt& json(const nlohmann::json& value);
  Stmt& null();

  // One step: true when a row is available, false when done.
  sdk::Result<bool> step();
  // Steps to completion, ignoring rows.
  sdk::Status run();

  std::int64_t column_int(int col) const;
  bool column_bool(int col) const { return column_int(col) != 0; }
  bool column_is_null(int col) const;
  std::string column_text(int col) const;  // "" for NULL
  std::string column_blob(int col) const;  // "" for NULL
  sdk::Timestamp column_time(int col) const;
  std::optional<sdk::Timestamp> column_optional_time(int col) const;
  nlohmann::json column_json(int col) const;  // throws nlohmann::json::parse_error on corrupt text

 private:
  Connection* connection_;
  sqlite3_stmt* stmt_;
  bool* cached_in_use_;
  int next_param_ = 1;
  sdk::Status bind_error_;
};

class Connection {
 public:
  // Opens (creating the file if needed) and applies the per-connection pragmas: foreign keys on, busy
  // timeout, synchronous, WAL for writers, query_only for readers.
  static sdk::Result<std::unique_ptr<Connection>> open(const ConnectionOptions& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // A statement for `sql`, prepared once per connection and reused. If that statement is in use
  // (a nested query with the same text), a one-off statement is prepared instead.
  sdk::Result<Stmt> prepare(std::string_view sql);
  // Runs one or more statements without parameters or results (DDL, pragmas).
  sdk::Status exec(std::string_view sql);
  // Runs one statement without parameters or results through the statement cache: for transaction
  // control (BEGIN, COMMIT, ROLLBACK), which every operation runs and exec would parse every time.
  sdk::Status run_statement(std::string_view sql);

  std::int64_t changes() const;
  sqlite3* handle() const noexcept { return db_; }
  int busy_timeout_ms() const noexcept { return busy_timeout_ms_; }

 private:
  struct CachedStmt {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };

  Connection(Poco::Data::Session session, sqlite3* db, int busy_timeout_ms);

  Poco::Data::Session session_;
  sqlite3* db_;
  int busy_timeout_ms_;
  std::unordered_map<std::string, CachedStmt> cache_;
};

}  // namespace samokoder::storage_sqlite
