#include "pg.hpp"

#include <charconv>
#include <cstring>
#include <utility>

#include <poll.h>

#include "codec.hpp"

namespace samokoder::storage_postgres {
namespace {

constexpr unsigned int kByteaOid = 17;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

Params& Params::text(std::string_view value) {
  if (invalid_reason_.empty() && !is_valid_text(value)) {
    invalid_reason_ =
        "text must be UTF-8 without NUL bytes (parameter " + std::to_string(values_.size() + 1) + ")";
  }
  values_.emplace_back(value);
  nulls_.push_back(false);
  formats_.push_back(0);
  types_.push_back(0);
  return *this;
}

Params& Params::bytes(std::string_view value) {
  values_.emplace_back(value);
  nulls_.push_back(false);
  formats_.push_back(1);
  types_.push_back(kByteaOid);
  return *this;
}

Params& Params::i64(std::int64_t value) {
  return text(std::to_string(value));
}

Params& Params::boolean(bool value) {
  return text(value ? "t" : "f");
}

Params& Params::time(sdk::Timestamp value) {
  return i64(to_micros(value));
}

Params& Params::null() {
  values_.emplace_back();
  nulls_.push_back(true);
  formats_.push_back(0);
  types_.push_back(0);
  return *this;
}

Params& Params::opt_text(const std::optional<std::string>& value) {
  return value ? text(*value) : null();
}

Params& Params::opt_time(const std::optional<sdk::Timestamp>& value) {
  return value ? time(*value) : null();
}

Params& Params::text_or_null(std::string_view value) {
  return value.empty() ? null() : text(value);
}

Rows::Rows(PGresult* result, sdk::Status status, std::string sqlstate)
    : result_(result), status_(std::move(status)), sqlstate_(std::move(sqlstate)) {}

Rows::Rows(Rows&& other) noexcept
    : result_(std::exchange(other.result_, nullptr)),
      status_(std::move(other.status_)),
      sqlstate_(std::move(other.sqlstate_)) {}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (result_) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
    status_ = std::move(other.status_);
    sqlstate_ = std::move(other.sqlstate_);
  }
  return *this;
}

Rows::~Rows() {
  if (result_) PQclear(result_);
}

std::int64_t Rows::affected() const {
  if (!result_) return 0;
  const char* tuples = PQcmdTuples(result_);
  std::int64_t n = 0;
  std::from_chars(tuples, tuples + std::strlen(tuples), n);
  return n;
}

std::string Rows::text(int row, int col) const {
  return std::string(PQgetvalue(result_, row, col), static_cast<std::size_t>(PQgetlength(result_, row, col)));
}

std::int64_t Rows::i64(int row, int col) const {
  const char* value = PQgetvalue(result_, row, col);
  std::int64_t n = 0;
  std::from_chars(value, value + PQgetlength(result_, row, col), n);
  return n;
}

bool Rows::boolean(int row, int col) const {
  return PQgetvalue(result_, row, col)[0] == 't';
}

sdk::Timestamp Rows::time(int row, int col) const {
  return from_micros(i64(row, col));
}

std::optional<sdk::Timestamp> Rows::opt_time(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return time(row, col);
}

std::string Rows::bytes(int row, int col) const {
  const char* value = PQgetvalue(result_, row, col);
  const auto length = static_cast<std::size_t>(PQgetlength(result_, row, col));
  if (PQfformat(result_, col) == 1) return std::string(value, length);
  // Text format of bytea is "\x" followed by hex (bytea_output = hex, set per connection).
  const std::string_view text(value, length);
  if (!starts_with(text, "\\x")) return std::string();
  return hex_decode(text.substr(2)).value_or(std::string());
}

nlohmann::json Rows::json(int row, int col) const {
  if (is_null(row, col)) return nullptr;
  return nlohmann::json::parse(std::string_view(PQgetvalue(result_, row, col),
                                                static_cast<std::size_t>(PQgetlength(result_, row, col))));
}

sdk::Status to_status(std::string_view state, std::string message) {
  using sdk::Status;
  if (state.empty() || starts_with(state, "08") || starts_with(state, "53") || state == "57014" ||
      state == "55P03" || starts_with(state, "57P")) {
    // No SQLSTATE means libpq itself failed: the connection is gone. 08 connection exceptions, 53
    // insufficient resources (too many connections), 57014 statement_timeout, 55P03 lock_timeout,
    // 57P0x server shutting down or not accepting connections yet.
    return Status::unavailable(std::move(message));
  }
  if (state == sqlstate::kSerializationFailure || state == sqlstate::kDeadlockDetected) {
    return Status::aborted(std::move(message));
  }
  if (state == sqlstate::kUniqueViolation) return Status::already_exists(std::move(message));
  if (state == sqlstate::kForeignKeyViolation) return Status::not_found(std::move(message));
  // 22xxx data exceptions (bad UTF-8, string too long, numeric out of range, bad json).
  if (starts_with(state, "22")) return Status::invalid_argument(std::move(message));
  // XX001 data_corrupted, XX002 index_corrupted.
  if (state == "XX001" || state == "XX002") return Status::data_loss(std::move(message));
  return Status::internal(std::move(message));
}

Connection::Connection(Connection&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

Rows Connection::exec(std::string_view sql, const Params& params, bool binary_results) {
  if (!params.invalid_reason_.empty()) {
    return Rows(nullptr, sdk::Status::invalid_argument(params.invalid_reason_), "22021");
  }
  const std::size_t n = params.values_.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  for (std::size_t i = 0; i < n; ++i) {
    values[i] = params.nulls_[i] ? nullptr : params.values_[i].data();
    lengths[i] = static_cast<int>(params.values_[i].size());
  }
  const std::string statement(sql);
  PGresult* result =
      PQexecParams(conn_, statement.c_str(), static_cast<int>(n), params.types_.data(), values.data(),
                   lengths.data(), params.formats_.data(), binary_results ? 1 : 0);
  return finish(result);
}

Rows Connection::command(const char* sql) {
  return finish(PQexec(conn_, sql));
}

Rows Connection::finish(PGresult* result) {
  const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Rows(result, {}, {});
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  // A broken connection can report a result without a SQLSTATE; keep "no SQLSTATE" meaning "unreachable".
  if (code.empty() && PQstatus(conn_) == CONNECTION_OK && result) code = "XX000";
  if (result) PQclear(result);
  sdk::Status mapped = to_status(code, "PostgreSQL: " + message);
  return Rows(nullptr, std::move(mapped), std::move(code));
}

std::string Connection::error_message() const {
  std::string message = conn_ ? PQerrorMessage(conn_) : "no connection";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  return message;
}

bool Connection::healthy() const noexcept {
  return conn_ && PQstatus(conn_) == CONNECTION_OK;
}

bool Connection::still_alive() noexcept {
  if (!healthy()) return false;
  pollfd pfd{PQsocket(conn_), POLLIN, 0};
  if (::poll(&pfd, 1, 0) > 0) {
    // Data or EOF while idle: a notice, or the server closing the session. PQconsumeInput notices EOF.
    if (PQconsumeInput(conn_) == 0) return false;
  }
  return PQstatus(conn_) == CONNECTION_OK;
}

}  // namespace samokoder::storage_postgres
