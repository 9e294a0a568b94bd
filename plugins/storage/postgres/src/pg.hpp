// A thin layer over libpq for storage.postgres: parameter lists, results that carry the SQLSTATE, and
// one connection that runs parameterised statements.
//
// Ownership: Rows owns its PGresult and Connection its PGconn; both are move-only.
// Thread-safety: none; a Connection is used by one thread at a time (the pool hands it out).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage.hpp>

namespace samokoder::storage_postgres {

// SQLSTATEs the backend reacts to (PostgreSQL manual, appendix A).
namespace sqlstate {
inline constexpr std::string_view kUniqueViolation = "23505";
inline constexpr std::string_view kForeignKeyViolation = "23503";
inline constexpr std::string_view kSerializationFailure = "40001";
inline constexpr std::string_view kDeadlockDetected = "40P01";
}  // namespace sqlstate

// Parameters of one statement. Text values travel in text format (PostgreSQL infers their type from the
// statement), bytes as binary bytea, so NULs survive. A text value that is not UTF-8 or holds a NUL byte
// (which libpq would silently truncate) marks the list invalid: the statement is not sent and fails with
// kInvalidArgument, as it does on storage.sqlite.
class Params {
 public:
  Params& text(std::string_view value);
  Params& bytes(std::string_view value);
  Params& i64(std::int64_t value);
  Params& boolean(bool value);
  Params& time(sdk::Timestamp value);
  Params& null();
  Params& opt_text(const std::optional<std::string>& value);
  Params& opt_time(const std::optional<sdk::Timestamp>& value);
  // Empty string -> NULL (optional references such as llm_requests.project_id).
  Params& text_or_null(std::string_view value);

  std::size_t size() const noexcept { return values_.size(); }
  const std::string& invalid_reason() const noexcept { return invalid_reason_; }

 private:
  friend class Connection;
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
  std::vector<int> formats_;
  std::vector<unsigned int> types_;
  std::string invalid_reason_;
};

// The outcome of one statement: rows (possibly none) or an error with its SQLSTATE.
class Rows {
 public:
  Rows() = default;
  Rows(PGresult* result, sdk::Status status, std::string sqlstate);
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  bool ok() const noexcept { return status_.ok(); }
  // The error mapped to the contract's codes (see to_status); OK on success.
  const sdk::Status& status() const noexcept { return status_; }
  const std::string& sqlstate() const noexcept { return sqlstate_; }

  int size() const noexcept { return result_ ? PQntuples(result_) : 0; }
  bool empty() const noexcept { return size() == 0; }
  // Rows changed by INSERT/UPDATE/DELETE.
  std::int64_t affected() const;

  bool is_null(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }
  std::string text(int row, int col) const;
  std::int64_t i64(int row, int col) const;
  bool boolean(int row, int col) const;
  sdk::Timestamp time(int row, int col) const;
  std::optional<sdk::Timestamp> opt_time(int row, int col) const;
  // A bytea column: raw bytes when the statement asked for binary results, else decoded from hex.
  std::string bytes(int row, int col) const;
  // A json column parsed back into a value.
  nlohmann::json json(int row, int col) const;

 private:
  PGresult* result_ = nullptr;
  sdk::Status status_;
  std::string sqlstate_;
};

// Maps a SQLSTATE and message to the contract's codes: connection trouble and timeouts -> kUnavailable,
// serialization failures and deadlocks -> kAborted, unique keys -> kAlreadyExists, missing parents ->
// kNotFound, bad text -> kInvalidArgument, corruption -> kDataLoss, the rest -> kInternal.
sdk::Status to_status(std::string_view sqlstate, std::string message);

class Connection {
 public:
  explicit Connection(PGconn* conn) noexcept : conn_(conn) {}
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&&) = delete;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one statement with $1..$n parameters. `binary_results` returns every column in binary
  // format; only used for statements that select bytea alone.
  Rows exec(std::string_view sql, const Params& params = Params(), bool binary_results = false);
  // Runs parameterless commands (BEGIN, COMMIT, SAVEPOINT ...).
  Rows command(const char* sql);

  // False once the socket is known dead (server gone, connection reset).
  bool healthy() const noexcept;
  // libpq's last error for this connection (connection failures), without the trailing newline.
  std::string error_message() const;
  // Reads what the server sent while the connection was idle, so a connection closed by a restarted
  // server is noticed before a statement is sent on it.
  bool still_alive() noexcept;
  PGTransactionStatusType transaction_status() const noexcept { return PQtransactionStatus(conn_); }

 private:
  Rows finish(PGresult* result);
  PGconn* conn_;
};

}  // namespace samokoder::storage_postgres
