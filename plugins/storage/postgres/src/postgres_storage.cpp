// storage.postgres: the Storage plugin on PostgreSQL, for several kernel nodes sharing one database.
// Direct calls each borrow a pooled connection and run as their own unit (READ COMMITTED, with row locks
// where an operation needs them, retried on deadlock); transaction() runs the caller's function in one
// SERIALIZABLE transaction with a savepoint around each call. See README.md for configuration.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/redact.hpp>
#include <samokoder/sdk/storage.hpp>
#include <samokoder/storage_common/stores.hpp>

#include "codec.hpp"
#include "migrations.hpp"
#include "ops.hpp"
#include "pool.hpp"

namespace samokoder::storage_postgres {
namespace {

using sdk::Result;
using sdk::Status;
using sdk::StatusCode;

constexpr std::string_view kPluginId = "storage.postgres";
constexpr std::string_view kUrlEnvironment = "SAMOKODER_DATABASE_URL";
// Direct calls that lose a deadlock are retried this many times in all.
constexpr int kMaxAttempts = 5;

struct Config {
  std::string url;
  std::size_t pool_size = 10;
  std::chrono::milliseconds acquire_timeout{5000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds statement_timeout{30000};
  std::string sslmode;
  std::string sslrootcert;
  std::string application_name = "samokoder";
  // false: init() connects without applying pending migrations (for `samokoder db status` and
  // `db migrate`); it still refuses a newer schema.
  bool auto_migrate = true;
};

Status config_error(std::string_view key, std::string_view expected) {
  return Status::invalid_argument(std::string(kPluginId) + " config: \"" + std::string(key) + "\" must be " +
                                  std::string(expected));
}

Result<std::int64_t> read_integer(const nlohmann::json& value, std::string_view key, std::int64_t min,
                                  std::int64_t max) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < min || value.get<std::int64_t>() > max) {
    return config_error(key, "an integer within " + std::to_string(min) + ".." + std::to_string(max));
  }
  return value.get<std::int64_t>();
}

Result<Config> parse_config(const nlohmann::json& json) {
  Config config;
  if (json.is_null()) return config;
  if (!json.is_object())
    return Status::invalid_argument(std::string(kPluginId) + " config must be an object");
  constexpr std::string_view kSslModes[] = {"disable", "allow",     "prefer",
                                            "require", "verify-ca", "verify-full"};
  for (const auto& [key, value] : json.items()) {
    if (key == "url" || key == "sslrootcert" || key == "application_name" || key == "sslmode") {
      if (!value.is_string()) return config_error(key, "a string");
      const auto text = value.get<std::string>();
      if (key == "url") config.url = text;
      if (key == "sslrootcert") config.sslrootcert = text;
      if (key == "application_name") config.application_name = text;
      if (key == "sslmode") {
        if (std::find(std::begin(kSslModes), std::end(kSslModes), text) == std::end(kSslModes)) {
          return config_error(key, "one of disable, allow, prefer, require, verify-ca, verify-full");
        }
        config.sslmode = text;
      }
    } else if (key == "auto_migrate") {
      if (!value.is_boolean()) return config_error(key, "true or false");
      config.auto_migrate = value.get<bool>();
    } else if (key == "pool_size") {
      auto n = read_integer(value, key, 1, 1000);
      if (!n.ok()) return n.status();
      config.pool_size = static_cast<std::size_t>(*n);
    } else if (key == "acquire_timeout_ms") {
      auto n = read_integer(value, key, 1, 600000);
      if (!n.ok()) return n.status();
      config.acquire_timeout = std::chrono::milliseconds(*n);
    } else if (key == "connect_timeout_ms") {
      auto n = read_integer(value, key, 1, 600000);
      if (!n.ok()) return n.status();
      config.connect_timeout = std::chrono::milliseconds(*n);
    } else if (key == "statement_timeout_ms") {
      auto n = read_integer(value, key, 0, 86400000);
      if (!n.ok()) return n.status();
      config.statement_timeout = std::chrono::milliseconds(*n);
    } else {
      return Status::invalid_argument(std::string(kPluginId) + " config: unknown key \"" + key + "\"");
    }
  }
  return config;
}

// "host:port/dbname as user" for logs and errors: never the password.
std::string describe_target(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (error) PQfreemem(error);
  if (!options) return "(unparsable URL)";
  std::string host, port, dbname, user;
  for (auto* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string_view k = o->keyword;
    if (k == "host" || k == "hostaddr") host = host.empty() ? o->val : host;
    if (k == "port") port = o->val;
    if (k == "dbname") dbname = o->val;
    if (k == "user") user = o->val;
  }
  PQconninfoFree(options);
  std::string out = host.empty() ? "(local socket)" : host;
  if (!port.empty()) out += ":" + port;
  out += "/" + dbname;
  if (!user.empty()) out += " as " + user;
  return out;
}

Status status_of(const Status& status) {
  return status;
}
template <typename T>
Status status_of(const Result<T>& result) {
  return result.status();
}

// Operations never let an exception out: JSON that cannot be serialised (invalid UTF-8) is the caller's
// input, anything else is a bug reported as kInternal.
template <typename R, typename Fn>
R call_safely(Fn&& fn) {
  try {
    return fn();
  } catch (const nlohmann::json::exception& e) {
    return R(Status::invalid_argument(std::string("JSON value cannot be stored: ") + e.what()));
  } catch (const std::exception& e) {
    return R(Status::internal(std::string(kPluginId) + ": " + e.what()));
  } catch (...) {
    return R(Status::internal(std::string(kPluginId) + ": unknown exception"));
  }
}

class Metrics {
 public:
  explicit Metrics(sdk::HostServices& host) noexcept : host_(host) {}

  void record(std::string_view operation, const Status& status,
              std::chrono::steady_clock::duration elapsed) noexcept {
    const sdk::MetricLabel counter_labels[] = {
        {"operation", operation}, {"outcome", status.ok() ? "ok" : sdk::status_code_name(status.code())}};
    host_.counter_add("storage_operations_total", counter_labels, 1);
    const sdk::MetricLabel latency_labels[] = {{"operation", operation}};
    host_.histogram_observe("storage_operation_seconds", latency_labels,
                            std::chrono::duration<double>(elapsed).count());
  }

  void connections_in_use(std::size_t n) noexcept {
    const sdk::MetricLabel labels[] = {{"pool", "main"}};
    host_.gauge_set("storage_connections_in_use", labels, static_cast<double>(n));
  }

 private:
  sdk::HostServices& host_;
};

// The stores a transaction function receives. Each call runs inside a savepoint, so a call that fails
// (say, kAlreadyExists) undoes only its own writes and the function may carry on; a serialization failure
// or lost connection dooms the transaction, and every later call and the commit report kAborted.
class TxOps final : public storage_common::ForwardingStores<TxOps, PgOps, sdk::Stores> {
 public:
  TxOps(Connection& conn, sdk::HostServices& host, Metrics& metrics) noexcept
      : conn_(conn), host_(host), metrics_(metrics) {}

  bool doomed() const noexcept { return doomed_; }

  template <storage_common::StoreAccess, typename Operation>
  auto invoke(std::string_view operation, Operation&& sql) -> decltype(sql(std::declval<PgOps&>())) {
    const auto start = host_.monotonic_now();
    auto result = run(sql);
    metrics_.record(operation, status_of(result), host_.monotonic_now() - start);
    return result;
  }

 private:
  template <typename Operation, typename R = std::invoke_result_t<Operation&, PgOps&>>
  R run(Operation& sql) {
    if (doomed_) return R(Status::aborted("an earlier call failed the transaction; roll it back and retry"));
    auto savepoint = conn_.command("SAVEPOINT op");
    if (!savepoint.ok()) return doom<R>(savepoint.status());
    PgOps ops(conn_, host_, /*in_transaction=*/true);
    R result = call_safely<R>([&] { return sql(ops); });
    const Status status = status_of(result);
    if (status.ok()) {
      auto release = conn_.command("RELEASE SAVEPOINT op");
      if (!release.ok()) return doom<R>(release.status());
      return result;
    }
    auto rollback = conn_.command("ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op");
    if (!rollback.ok() || status.code() == StatusCode::kAborted ||
        status.code() == StatusCode::kUnavailable) {
      doomed_ = true;
    }
    return result;
  }

  template <typename R>
  R doom(Status status) {
    doomed_ = true;
    return R(std::move(status));
  }

  Connection& conn_;
  sdk::HostServices& host_;
  Metrics& metrics_;
  bool doomed_ = false;
};

class PostgresStorage final : public storage_common::ForwardingStores<PostgresStorage, PgOps, sdk::Storage> {
 public:
  Status init(sdk::HostServices& host) override {
    host_ = &host;
    metrics_ = std::make_unique<Metrics>(host);
    auto parsed = parse_config(host.config());
    if (!parsed.ok()) return parsed.status();
    Config config = std::move(parsed.value());
    // The environment wins over the config file: deployments keep the URL (and its password) out of git.
    if (const char* env = std::getenv(kUrlEnvironment.data()); env && *env) config.url = env;
    if (config.url.empty()) {
      return Status::invalid_argument(std::string(kPluginId) + " needs a database URL: set " +
                                      std::string(kUrlEnvironment) + " or the plugin config \"url\"");
    }
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(config.url.c_str(), &error);
    if (!options) {
      std::string reason = error ? error : "unparsable";
      if (error) PQfreemem(error);
      while (!reason.empty() && reason.back() == '\n')
        reason.pop_back();
      // libpq quotes the URL, or a fragment of it, in its reason.
      return Status::invalid_argument(std::string(kPluginId) + ": the database URL is not valid: " +
                                      sdk::redact_credentials(reason, config.url));
    }
    PQconninfoFree(options);
    target_ = describe_target(config.url);

    // Keywords before "dbname" are defaults the URL may override (sslmode=... in the URL wins over the
    // config); those after it are forced.
    std::vector<std::pair<std::string, std::string>> params;
    if (!config.sslmode.empty()) params.emplace_back("sslmode", config.sslmode);
    if (!config.sslrootcert.empty()) params.emplace_back("sslrootcert", config.sslrootcert);
    const auto connect_seconds =
        std::max<std::int64_t>(2, std::chrono::ceil<std::chrono::seconds>(config.connect_timeout).count());
    params.emplace_back("connect_timeout", std::to_string(connect_seconds));
    params.emplace_back("application_name", config.application_name);
    // Notices ("relation already exists, skipping") are noise; warnings go to the log.
    params.emplace_back("options",
                        "-c statement_timeout=" + std::to_string(config.statement_timeout.count()) +
                            " -c client_min_messages=warning");
    params.emplace_back("dbname", config.url);
    params.emplace_back("client_encoding", "UTF8");
    Metrics* metrics = metrics_.get();
    sdk::HostServices* log_host = &host;
    pool_ = std::make_unique<ConnectionPool>(
        std::move(params), config.pool_size, config.acquire_timeout,
        [metrics](std::size_t n) { metrics->connections_in_use(n); },
        [log_host](std::string_view notice) {
          log_host->log(sdk::LogLevel::kWarn, "PostgreSQL: " + std::string(notice));
        });

    if (Status reachable = health(); !reachable.ok()) {
      return Status::unavailable("cannot reach PostgreSQL at " + target_ + ": " +
                                 sdk::redact_credentials(reachable.message(), config.url));
    }
    if (config.auto_migrate) {
      SAMOKODER_RETURN_IF_ERROR(migrate());
    } else {
      SAMOKODER_RETURN_IF_ERROR(check_schema_version());
    }
    host.log(sdk::LogLevel::kInfo, "using PostgreSQL at " + target_ + ", pool of " +
                                       std::to_string(config.pool_size) + " connections");
    return {};
  }

  void shutdown() noexcept override {
    if (pool_) pool_->close_idle();
    pool_.reset();
  }

  Status health() override {
    if (!pool_) return Status::unavailable(std::string(kPluginId) + " is not initialised");
    auto lease = pool_->acquire();
    if (!lease.ok()) return lease.status();
    auto rows = (*lease.value()).exec("SELECT 1");
    if (!rows.ok()) return Status::unavailable(rows.status().message());
    return {};
  }

  Status transaction(const std::function<Status(sdk::Stores& stores)>& fn) override {
    if (!pool_) return Status::failed_precondition(std::string(kPluginId) + " is not initialised");
    if (!fn) return Status::invalid_argument("transaction needs a function");
    if (inside_own_transaction()) {
      return Status::failed_precondition("transactions do not nest; use the stores passed to the function");
    }
    const auto start = host_->monotonic_now();
    const Status status = run_transaction(fn);
    metrics_->record("transaction", status, host_->monotonic_now() - start);
    return status;
  }

  Result<sdk::SchemaStatus> schema_status() override {
    if (!pool_) return Status::failed_precondition(std::string(kPluginId) + " is not initialised");
    auto lease = pool_->acquire();
    if (!lease.ok()) return lease.status();
    Connection& conn = *lease.value();
    sdk::SchemaStatus out;
    out.supported_version = supported_version();
    auto exists = has_schema_migrations(conn);
    if (!exists.ok()) return exists.status();
    if (!*exists) return out;
    auto rows = conn.exec("SELECT version, description, applied_at FROM schema_migrations ORDER BY version");
    if (!rows.ok()) return rows.status();
    for (int r = 0; r < rows.size(); ++r) {
      out.applied.push_back({rows.i64(r, 0), rows.text(r, 1), rows.time(r, 2)});
      out.current_version = rows.i64(r, 0);
    }
    return out;
  }

  Status migrate() override {
    if (!pool_) return Status::failed_precondition(std::string(kPluginId) + " is not initialised");
    auto lease = pool_->acquire();
    if (!lease.ok()) return lease.status();
    Connection& conn = *lease.value();
    // A session-level advisory lock: a second node starting at the same time waits here, then finds the
    // migrations applied and skips them.
    auto lock = conn.exec("SELECT pg_advisory_lock($1)", Params().i64(kMigrationLockKey));
    if (!lock.ok()) return lock.status();
    const Status status = migrate_locked(conn);
    (void)conn.exec("SELECT pg_advisory_unlock($1)", Params().i64(kMigrationLockKey));
    return status;
  }

  Status backup(std::string_view) override {
    return Status::unimplemented(std::string(kPluginId) +
                                 " leaves backups to PostgreSQL's tools: pg_dump, or base backups with WAL "
                                 "archiving (see the plugin README)");
  }

  Result<sdk::StorageStats> stats() override {
    return invoke<storage_common::StoreAccess::kRead>("stats", [](PgOps& ops) { return ops.stats(); });
  }

 private:
  friend class storage_common::ForwardingStores<PostgresStorage, PgOps, sdk::Storage>;

  template <storage_common::StoreAccess, typename Operation,
            typename R = std::invoke_result_t<Operation&, PgOps&>>
  R invoke(std::string_view operation, Operation&& sql) {
    if (!pool_) return R(Status::failed_precondition(std::string(kPluginId) + " is not initialised"));
    if (inside_own_transaction()) {
      return R(
          Status::failed_precondition("the Storage object was called inside its own transaction; use the "
                                      "stores passed to the function"));
    }
    const auto start = host_->monotonic_now();
    R result = R(Status::internal("no attempt was made"));
    for (int attempt = 1;; ++attempt) {
      auto lease = pool_->acquire();
      if (!lease.ok()) {
        result = R(lease.status());
        break;
      }
      Connection& conn = *lease.value();
      PgOps ops(conn, *host_, /*in_transaction=*/false);
      result = call_safely<R>([&] { return sql(ops); });
      Status status = status_of(result);
      if (ops.unit_open()) {
        if (status.ok()) {
          auto commit = conn.command("COMMIT");
          if (!commit.ok()) {
            status = commit.status();
            result = R(status);
          }
        } else {
          (void)conn.command("ROLLBACK");
        }
      }
      // Only deadlocks (and, on a single statement, serialization failures) are retried: the unit was
      // rolled back, so running it again cannot apply it twice.
      if (status.code() != StatusCode::kAborted || attempt == kMaxAttempts) break;
    }
    metrics_->record(operation, status_of(result), host_->monotonic_now() - start);
    return result;
  }

  Status run_transaction(const std::function<Status(sdk::Stores& stores)>& fn) {
    auto lease = pool_->acquire();
    if (!lease.ok()) return lease.status();
    Connection& conn = *lease.value();
    auto begin = conn.command("BEGIN ISOLATION LEVEL SERIALIZABLE");
    if (!begin.ok()) return begin.status();
    TxOps ops(conn, *host_, *metrics_);
    Status status;
    {
      ThreadMark mark(*this);
      try {
        status = fn(ops);
      } catch (const std::exception& e) {
        status = Status::internal(std::string("transaction function threw: ") + e.what());
      } catch (...) {
        status = Status::internal("transaction function threw a non-standard exception");
      }
    }
    if (status.ok() && ops.doomed()) {
      status = Status::aborted("a call inside the transaction failed it; the transaction was rolled back");
    }
    if (!status.ok()) {
      (void)conn.command("ROLLBACK");
      return status;
    }
    auto commit = conn.command("COMMIT");
    return commit.status();
  }

  static std::int64_t supported_version() noexcept { return migrations().back().version; }

  static Status newer_schema(std::int64_t current) {
    return Status::failed_precondition("database schema version " + std::to_string(current) +
                                       " is newer than this " + std::string(kPluginId) + " supports (" +
                                       std::to_string(supported_version()) +
                                       "); upgrade Samokoder or restore a backup");
  }

  // A database no migration ever touched has no schema_migrations table (init with auto_migrate off
  // creates nothing): its version is 0.
  static Result<bool> has_schema_migrations(Connection& conn) {
    auto exists = conn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists.ok()) return exists.status();
    return exists.boolean(0, 0);
  }

  static Result<std::int64_t> current_version(Connection& conn) {
    auto exists = has_schema_migrations(conn);
    if (!exists.ok()) return exists.status();
    if (!*exists) return std::int64_t{0};
    auto rows = conn.exec("SELECT COALESCE(max(version), 0) FROM schema_migrations");
    if (!rows.ok()) return rows.status();
    return rows.i64(0, 0);
  }

  // init() with auto_migrate off: the schema is left as it is, but a newer one is still refused.
  Status check_schema_version() {
    auto lease = pool_->acquire();
    if (!lease.ok()) return lease.status();
    auto current = current_version(*lease.value());
    if (!current.ok()) return current.status();
    if (*current > supported_version()) return newer_schema(*current);
    if (*current < supported_version()) {
      host_->log(sdk::LogLevel::kWarn,
                 std::to_string(supported_version() - *current) +
                     " schema migration(s) pending: the database is at version " + std::to_string(*current) +
                     ", this " + std::string(kPluginId) + " supports " + std::to_string(supported_version()) +
                     "; auto_migrate is off, so they are applied only by migrate() (`samokoder db migrate`)");
    }
    return {};
  }

  Status migrate_locked(Connection& conn) {
    auto table = conn.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, applied_at bigint NOT "
        "NULL, "
        "description text NOT NULL)");
    if (!table.ok()) return table.status();
    auto current_rows = conn.exec("SELECT COALESCE(max(version), 0) FROM schema_migrations");
    if (!current_rows.ok()) return current_rows.status();
    const std::int64_t current = current_rows.i64(0, 0);
    if (current > supported_version()) return newer_schema(current);
    for (const auto& migration : migrations()) {
      if (migration.version <= current) continue;
      const std::string label =
          "migration " + std::to_string(migration.version) + " (" + std::string(migration.description) + ")";
      auto begin = conn.command("BEGIN");
      if (!begin.ok()) return begin.status();
      auto applied = conn.command(std::string(migration.sql).c_str());
      if (applied.ok()) {
        applied =
            conn.exec("INSERT INTO schema_migrations (version, applied_at, description) VALUES ($1, $2, $3)",
                      Params().i64(migration.version).time(host_->now()).text(migration.description));
      }
      if (applied.ok()) applied = conn.command("COMMIT");
      if (!applied.ok()) {
        (void)conn.command("ROLLBACK");
        return Status(applied.status().code(), label + " failed: " + applied.status().message());
      }
      host_->log(sdk::LogLevel::kInfo, "applied " + label);
    }
    return {};
  }

  // Threads currently running a transaction function of this object: a direct call from one of them
  // would run outside the transaction (or wait forever for a pooled connection), so it is refused.
  class ThreadMark {
   public:
    explicit ThreadMark(PostgresStorage& storage) : storage_(storage) {
      std::lock_guard lock(storage_.tx_mutex_);
      storage_.tx_threads_.push_back(std::this_thread::get_id());
      storage_.tx_count_.fetch_add(1, std::memory_order_release);
    }
    ~ThreadMark() {
      std::lock_guard lock(storage_.tx_mutex_);
      auto& threads = storage_.tx_threads_;
      threads.erase(std::find(threads.begin(), threads.end(), std::this_thread::get_id()));
      storage_.tx_count_.fetch_sub(1, std::memory_order_release);
    }
    ThreadMark(const ThreadMark&) = delete;
    ThreadMark& operator=(const ThreadMark&) = delete;

   private:
    PostgresStorage& storage_;
  };

  bool inside_own_transaction() {
    if (tx_count_.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard lock(tx_mutex_);
    return std::find(tx_threads_.begin(), tx_threads_.end(), std::this_thread::get_id()) != tx_threads_.end();
  }

  sdk::HostServices* host_ = nullptr;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ConnectionPool> pool_;
  std::string target_;
  std::mutex tx_mutex_;
  std::vector<std::thread::id> tx_threads_;  // guarded by tx_mutex_
  std::atomic<int> tx_count_{0};
};

}  // namespace
}  // namespace samokoder::storage_postgres

SAMOKODER_PLUGIN(samokoder::storage_postgres::PostgresStorage, "storage.postgres", "1.0.0",
                 "PostgreSQL storage for one or many kernel nodes sharing a database")
