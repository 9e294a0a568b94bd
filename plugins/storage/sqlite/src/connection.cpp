#include "connection.hpp"

#include <Poco/Data/SQLite/SessionImpl.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Exception.h>
#include <sqlite3.h>

#include "util.hpp"

namespace samokoder::storage_sqlite {

sdk::Status status_from_sqlite(int rc, std::string_view context, sqlite3* db) {
  const int primary = rc & 0xff;
  std::string message(context);
  message += ": ";
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    // SQLite's own text ("database is locked") would suggest a bug to the caller; it is congestion.
    message += "the database stayed busy for longer than busy_timeout_ms; retry later";
    return sdk::Status::unavailable(std::move(message));
  }
  message += sqlite3_errstr(rc);
  if (db != nullptr && sqlite3_errcode(db) == rc) {
    const char* detail = sqlite3_errmsg(db);
    if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
      message += " (";
      message += detail;
      message += ")";
    }
  }
  switch (primary) {
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
          return sdk::Status::already_exists(std::move(message));
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return sdk::Status::not_found(std::move(message));
        default:
          return sdk::Status::invalid_argument(std::move(message));
      }
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return sdk::Status::invalid_argument(std::move(message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return sdk::Status::data_loss(std::move(message));
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return sdk::Status::resource_exhausted(std::move(message));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_AUTH:
      return sdk::Status::unavailable(std::move(message));
    default:
      return sdk::Status::internal(std::move(message));
  }
}

// ---- Stmt -----------------------------------------------------------------------------------------

namespace {

// SQLite binds a null pointer as SQL NULL; an empty string_view may carry one, but means "".
const char* non_null(std::string_view value) noexcept {
  return value.data() != nullptr ? value.data() : "";
}

}  // namespace

Stmt::Stmt(Connection& connection, sqlite3_stmt* stmt, bool* cached_in_use)
    : connection_(&connection), stmt_(stmt), cached_in_use_(cached_in_use) {}

Stmt::Stmt(Stmt&& other) noexcept
    : connection_(other.connection_),
      stmt_(other.stmt_),
      cached_in_use_(other.cached_in_use_),
      next_param_(other.next_param_),
      bind_error_(std::move(other.bind_error_)) {
  other.stmt_ = nullptr;
}

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  if (cached_in_use_ == nullptr) {
    sqlite3_finalize(stmt_);
    return;
  }
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *cached_in_use_ = false;
}

Stmt& Stmt::text(std::string_view value) {
  const int index = next_param_++;
  if (!bind_error_.ok()) return *this;
  if (!is_valid_text(value)) {
    bind_error_ = sdk::Status::invalid_argument("text parameter " + std::to_string(index) +
                                                " is not UTF-8 without NUL");
    return *this;
  }
  const int rc =
      sqlite3_bind_text64(stmt_, index, non_null(value), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) bind_error_ = status_from_sqlite(rc, "bind", connection_->handle());
  return *this;
}

Stmt& Stmt::unchecked_text(std::string_view value) {
  const int index = next_param_++;
  if (!bind_error_.ok()) return *this;
  const int rc =
      sqlite3_bind_text64(stmt_, index, non_null(value), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) bind_error_ = status_from_sqlite(rc, "bind", connection_->handle());
  return *this;
}

Stmt& Stmt::blob(std::string_view bytes) {
  const int index = next_param_++;
  if (!bind_error_.ok()) return *this;
  // A zero-length blob must still be a blob, not NULL: pass a non-null pointer.
  static constexpr char kEmpty = 0;
  const char* data = bytes.empty() ? &kEmpty : bytes.data();
  const int rc = sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) bind_error_ = status_from_sqlite(rc, "bind", connection_->handle());
  return *this;
}

Stmt& Stmt::integer(std::int64_t value) {
  const int index = next_param_++;
  if (!bind_error_.ok()) return *this;
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) bind_error_ = status_from_sqlite(rc, "bind", connection_->handle());
  return *this;
}

Stmt& Stmt::time(sdk::Timestamp value) {
  return integer(to_micros(value));
}

Stmt& Stmt::optional_time(const std::optional<sdk::Timestamp>& value) {
  return value ? time(*value) : null();
}

Stmt& Stmt::optional_text(std::string_view value) {
  return value.empty() ? null() : text(value);
}

Stmt& Stmt::json(const nlohmann::json& value) {
  std::string dumped;
  try {
    dumped = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    ++next_param_;
    if (bind_error_.ok())
      bind_error_ = sdk::Status::invalid_argument("JSON value holds a string that is not UTF-8");
    return *this;
  }
  return text(dumped);
}

Stmt& Stmt::null() {
  const int index = next_param_++;
  if (!bind_error_.ok()) return *this;
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) bind_error_ = status_from_sqlite(rc, "bind", connection_->handle());
  return *this;
}

sdk::Result<bool> Stmt::step() {
  if (!bind_error_.ok()) return bind_error_;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return status_from_sqlite(rc, "sqlite", connection_->handle());
}

sdk::Status Stmt::run() {
  while (true) {
    auto row = step();
    if (!row.ok()) return row.status();
    if (!*row) return {};
  }
}

std::int64_t Stmt::column_int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

bool Stmt::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

std::string Stmt::column_text(int col) const {
  const auto* data = sqlite3_column_text(stmt_, col);
  if (data == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(data),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string Stmt::column_blob(int col) const {
  const void* data = sqlite3_column_blob(stmt_, col);
  if (data == nullptr) return {};
  return std::string(static_cast<const char*>(data),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

sdk::Timestamp Stmt::column_time(int col) const {
  return from_micros(column_int(col));
}

std::optional<sdk::Timestamp> Stmt::column_optional_time(int col) const {
  if (column_is_null(col)) return std::nullopt;
  return column_time(col);
}

nlohmann::json Stmt::column_json(int col) const {
  if (column_is_null(col)) return nullptr;
  return nlohmann::json::parse(column_text(col));
}

// ---- Connection -----------------------------------------------------------------------------------

Connection::Connection(Poco::Data::Session session, sqlite3* db, int busy_timeout_ms)
    : session_(std::move(session)), db_(db), busy_timeout_ms_(busy_timeout_ms) {}

Connection::~Connection() {
  for (auto& [sql, cached] : cache_)
    sqlite3_finalize(cached.stmt);
  cache_.clear();
  try {
    session_.close();
  } catch (const Poco::Exception&) {
    // Closing only fails for statements still open, and every one was finalized above.
  }
}

sdk::Result<std::unique_ptr<Connection>> Connection::open(const ConnectionOptions& options) {
  sqlite3* db = nullptr;
  std::optional<Poco::Data::Session> session;
  try {
    session.emplace(
        Poco::AutoPtr<Poco::Data::SessionImpl>(new Poco::Data::SQLite::SessionImpl(options.path)));
    db = Poco::Data::SQLite::Utility::dbHandle(*session);
  } catch (const Poco::Exception& e) {
    return sdk::Status::unavailable("cannot open SQLite database " + options.path + ": " + e.displayText());
  }
  if (db == nullptr) return sdk::Status::unavailable("cannot open SQLite database " + options.path);
  std::unique_ptr<Connection> connection(new Connection(std::move(*session), db, options.busy_timeout_ms));

  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  SAMOKODER_RETURN_IF_ERROR(connection->exec("PRAGMA foreign_keys = ON"));
  SAMOKODER_RETURN_IF_ERROR(connection->exec(options.synchronous_full ? "PRAGMA synchronous = FULL"
                                                                      : "PRAGMA synchronous = NORMAL"));
  if (options.read_only) {
    SAMOKODER_RETURN_IF_ERROR(connection->exec("PRAGMA query_only = ON"));
  } else {
    auto stmt = connection->prepare("PRAGMA journal_mode = WAL");
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->step();
    if (!row.ok()) return row.status();
    const std::string mode = *row ? ascii_lower(stmt->column_text(0)) : std::string();
    if (mode != "wal") {
      return sdk::Status::failed_precondition("SQLite database " + options.path +
                                              " cannot switch to WAL journal mode (it is in \"" + mode +
                                              "\")");
    }
  }
  return connection;
}

sdk::Result<Stmt> Connection::prepare(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Stmt(*this, it->second.stmt, &it->second.in_use);
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    it == cache_.end() ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) return status_from_sqlite(rc, "prepare", db_);
  if (it != cache_.end()) return Stmt(*this, stmt, nullptr);
  auto inserted = cache_.emplace(std::string(sql), CachedStmt{stmt, true}).first;
  return Stmt(*this, stmt, &inserted->second.in_use);
}

sdk::Status Connection::exec(std::string_view sql) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return status_from_sqlite(rc, "sqlite", db_);
  return {};
}

sdk::Status Connection::run_statement(std::string_view sql) {
  auto statement = prepare(sql);
  if (!statement.ok()) return statement.status();
  return statement->run();
}

std::int64_t Connection::changes() const {
  return sqlite3_changes64(db_);
}

}  // namespace samokoder::storage_sqlite
