#include "sqlite_storage.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>

#include "migrations.hpp"
#include "util.hpp"

namespace samokoder::storage_sqlite {

using sdk::Result;
using sdk::Status;

namespace {

namespace fs = std::filesystem;

const Status& status_of(const Status& status) {
  return status;
}

template <typename T>
Status status_of(const Result<T>& result) {
  return result.status();
}

Status closed() {
  return Status::failed_precondition("storage.sqlite is not open (init failed or shut down)");
}

Status reentrant() {
  return Status::failed_precondition(
      "storage.sqlite was called from inside its own transaction function; use the stores passed to it");
}

// A database no migration ever touched has no schema_migrations table: init with auto_migrate off
// creates nothing, so its version is 0.
Result<bool> has_schema_migrations(Connection& db) {
  auto q = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
  if (!q.ok()) return q.status();
  return q->step();
}

Result<std::int64_t> current_schema_version(Connection& db) {
  auto exists = has_schema_migrations(db);
  if (!exists.ok()) return exists.status();
  if (!*exists) return std::int64_t{0};
  auto q = db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!q.ok()) return q.status();
  auto row = q->step();
  if (!row.ok()) return row.status();
  return q->column_int(0);
}

Status newer_schema(std::int64_t found) {
  return Status::failed_precondition("database schema version " + std::to_string(found) +
                                     " is newer than this " + std::string(kPluginId) + " supports (" +
                                     std::to_string(supported_schema_version()) +
                                     "); upgrade Samokoder or restore a backup");
}

// Sets the calling thread as the writer for the span of one write and clears it afterwards.
class WriterThreadMark {
 public:
  explicit WriterThreadMark(std::atomic<std::thread::id>& slot) : slot_(slot) {
    slot_.store(std::this_thread::get_id());
  }
  ~WriterThreadMark() { slot_.store(std::thread::id()); }
  WriterThreadMark(const WriterThreadMark&) = delete;
  WriterThreadMark& operator=(const WriterThreadMark&) = delete;

 private:
  std::atomic<std::thread::id>& slot_;
};

// One operation inside a transaction of several (Storage::transaction, a group commit) runs in a
// savepoint of its own, so a failed one is undone alone.
Status open_savepoint(Connection& db) {
  return db.run_statement("SAVEPOINT storage_op");
}

// Keeps the operation's effects, or undoes them. Not OK when SQLite already ended the whole
// transaction (an I/O error, a full disk): the savepoint is gone with it.
Status close_savepoint(Connection& db, bool keep) {
  if (keep) return db.run_statement("RELEASE storage_op");
  SAMOKODER_RETURN_IF_ERROR(db.run_statement("ROLLBACK TO storage_op"));
  return db.run_statement("RELEASE storage_op");
}

// What a transaction function receives: SqliteOps on the writer, with every write wrapped in a
// SAVEPOINT so that a failed call is undone on its own and the function may carry on.
class TransactionOps final : public storage_common::ForwardingStores<TransactionOps, SqliteOps, sdk::Stores> {
 public:
  TransactionOps(SqliteOps& inner, Connection& db) : inner_(inner), db_(db) {}

  template <storage_common::StoreAccess access, typename Operation>
  auto invoke(std::string_view, Operation&& sql) -> decltype(sql(std::declval<SqliteOps&>())) {
    if constexpr (access == storage_common::StoreAccess::kWrite) {
      return atomically([&] { return sql(inner_); });
    } else {
      return checked([&] { return sql(inner_); });
    }
  }

 private:
  // SQLite rolls a whole transaction back by itself after some errors (I/O, disk full). From then
  // on, statements would silently run in autocommit mode, outside the transaction: refuse them.
  Status still_in_transaction() const {
    if (sqlite3_get_autocommit(db_.handle()) != 0) {
      return Status::aborted("the transaction was rolled back by SQLite after an earlier error");
    }
    return {};
  }

  template <typename F>
  auto checked(F&& f) -> decltype(f()) {
    SAMOKODER_RETURN_IF_ERROR(still_in_transaction());
    return f();
  }

  template <typename F>
  auto atomically(F&& f) -> decltype(f()) {
    SAMOKODER_RETURN_IF_ERROR(still_in_transaction());
    SAMOKODER_RETURN_IF_ERROR(open_savepoint(db_));
    auto result = f();
    if (status_of(result).ok()) {
      SAMOKODER_RETURN_IF_ERROR(close_savepoint(db_, true));
      return result;
    }
    if (still_in_transaction().ok()) (void)close_savepoint(db_, false);
    return result;
  }

  SqliteOps& inner_;
  Connection& db_;
};

}  // namespace

// ============================================================================================ config

Result<Config> parse_config(const nlohmann::json& section) {
  Config config;
  if (section.is_null()) return config;
  const auto bad = [](const std::string& key, const std::string& expected) {
    return Status::invalid_argument(std::string(kPluginId) + " config: /" + key + ": expected " + expected);
  };
  if (!section.is_object())
    return Status::invalid_argument(std::string(kPluginId) + " config must be an object");
  for (const auto& [key, value] : section.items()) {
    if (key == "path") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty())
        return bad(key, "a non-empty string");
      config.path = value.get<std::string>();
      // Several connections share the database, so it must be a real file, not a private memory db.
      if (config.path == ":memory:" || config.path.starts_with("file:")) return bad(key, "a file path");
    } else if (key == "busy_timeout_ms") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > 600000) {
        return bad(key, "an integer 0..600000");
      }
      config.busy_timeout_ms = value.get<int>();
    } else if (key == "synchronous") {
      if (!value.is_string() || (value != "normal" && value != "full"))
        return bad(key, "\"normal\" or \"full\"");
      config.synchronous_full = value == "full";
    } else if (key == "read_connections") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 || value.get<std::int64_t>() > 64) {
        return bad(key, "an integer 1..64");
      }
      config.read_connections = value.get<int>();
    } else if (key == "auto_migrate") {
      if (!value.is_boolean()) return bad(key, "true or false");
      config.auto_migrate = value.get<bool>();
    } else {
      return Status::invalid_argument(std::string(kPluginId) + " config: unknown key /" + key);
    }
  }
  return config;
}

// ======================================================================================= reader pool

void ReaderPool::add(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  idle_.push_back(connection.get());
  all_.push_back(std::move(connection));
}

Connection& ReaderPool::acquire() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty(); });
  Connection* connection = idle_.back();
  idle_.pop_back();
  return *connection;
}

void ReaderPool::release(Connection& connection) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(&connection);
  }
  available_.notify_one();
}

int ReaderPool::in_use() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(all_.size() - idle_.size());
}

void ReaderPool::clear() {
  std::lock_guard lock(mutex_);
  idle_.clear();
  all_.clear();
}

// ======================================================================================= lifecycle

SqliteStorage::~SqliteStorage() {
  shutdown();
}

Status SqliteStorage::init(sdk::HostServices& host) {
  host_ = &host;
  try {
    auto config = parse_config(host.config());
    if (!config.ok()) return config.status();
    config_ = std::move(*config);

    const fs::path path(config_.path);
    if (path.has_parent_path()) {
      std::error_code ec;
      fs::create_directories(path.parent_path(), ec);
      if (ec) {
        return Status::failed_precondition("cannot create directory " + path.parent_path().string() +
                                           " for the database: " + ec.message());
      }
    }
    ConnectionOptions options{config_.path, config_.busy_timeout_ms, config_.synchronous_full, false};
    auto writer = Connection::open(options);
    if (!writer.ok()) return writer.status();
    std::int64_t version = 0;
    {
      std::lock_guard lock(writer_mutex_);
      writer_ = std::move(*writer);
      if (config_.auto_migrate) SAMOKODER_RETURN_IF_ERROR(migrate_locked());
      auto current = current_schema_version(*writer_);
      if (!current.ok()) return current.status();
      version = *current;
    }
    if (version > supported_schema_version()) return newer_schema(version);
    if (version < supported_schema_version()) {
      // Only reachable with auto_migrate off: the caller (`samokoder db status`, `db migrate`) decides.
      host.log(sdk::LogLevel::kWarn,
               std::to_string(supported_schema_version() - version) +
                   " schema migration(s) pending: the database is at version " + std::to_string(version) +
                   ", this " + std::string(kPluginId) + " supports " +
                   std::to_string(supported_schema_version()) +
                   "; auto_migrate is off, so they are applied only by migrate() (`samokoder db migrate`)");
    }
    options.read_only = true;
    for (int i = 0; i < config_.read_connections; ++i) {
      auto reader = Connection::open(options);
      if (!reader.ok()) return reader.status();
      readers_.add(std::move(*reader));
    }
    open_.store(true);
    set_reader_gauge();
    host.log(sdk::LogLevel::kInfo,
             "opened " + config_.path + " (schema version " + std::to_string(version) +
                 ", WAL, synchronous=" + (config_.synchronous_full ? "full" : "normal") + ", " +
                 std::to_string(config_.read_connections) + " read connections)");
    return {};
  } catch (const std::exception& e) {
    return Status::internal(std::string("storage.sqlite init failed: ") + e.what());
  }
}

void SqliteStorage::shutdown() noexcept {
  open_.store(false);
  // Readers first: the writer is then the last connection, and closing it checkpoints the WAL into
  // the database file and removes the -wal file.
  readers_.clear();
  std::lock_guard lock(writer_mutex_);
  writer_.reset();
}

Status SqliteStorage::usable() const {
  if (!open_.load()) return closed();
  if (writer_thread_.load() == std::this_thread::get_id()) return reentrant();
  return {};
}

void SqliteStorage::rollback(Connection& connection) noexcept {
  if (sqlite3_get_autocommit(connection.handle()) == 0) (void)connection.run_statement("ROLLBACK");
}

void SqliteStorage::record(std::string_view operation, const Status& status,
                           std::chrono::steady_clock::time_point start) noexcept {
  if (host_ == nullptr) return;
  const std::chrono::duration<double> elapsed = host_->monotonic_now() - start;
  const sdk::MetricLabel counted[] = {{"operation", operation},
                                      {"outcome", sdk::status_code_name(status.code())}};
  host_->counter_add("storage_operations_total", counted, 1);
  const sdk::MetricLabel timed[] = {{"operation", operation}};
  host_->histogram_observe("storage_operation_seconds", timed, elapsed.count());
}

void SqliteStorage::set_reader_gauge() noexcept {
  if (host_ == nullptr) return;
  const sdk::MetricLabel labels[] = {{"pool", "read"}};
  host_->gauge_set("storage_connections_in_use", labels, readers_.in_use());
}

// ====================================================================================== routing

// One write waiting in, or running from, the writer queue. Its operation runs on whichever thread
// leads the batch; the caller's thread sleeps until `done` and then takes the outcome.
class WriteJob {
 public:
  explicit WriteJob(bool batchable) : batchable(batchable) {}
  virtual ~WriteJob() = default;
  WriteJob(const WriteJob&) = delete;
  WriteJob& operator=(const WriteJob&) = delete;

  // Runs the operation inside the open transaction; true if it succeeded. Never throws.
  virtual bool run(SqliteOps& ops) noexcept = 0;
  // The transaction that held the operation's effect is gone (its COMMIT, or a statement of the
  // batch around the operation, failed): that failure becomes the outcome.
  virtual void fail(const Status& status) noexcept = 0;

  const bool batchable;
  bool done = false;  // guarded by SqliteStorage::queue_mutex_
};

namespace {

constexpr std::size_t kMaxBatch = 64;

template <typename R, typename F>
class TypedWriteJob final : public WriteJob {
 public:
  TypedWriteJob(std::string_view operation, F& f, bool batchable)
      : WriteJob(batchable), operation_(operation), f_(f) {}

  bool run(SqliteOps& ops) noexcept override {
    try {
      outcome_.emplace(f_(ops));
    } catch (const nlohmann::json::exception& e) {
      outcome_.emplace(Status::data_loss(std::string(operation_) + ": stored JSON is corrupt: " + e.what()));
    } catch (const std::exception& e) {
      outcome_.emplace(Status::internal(std::string(operation_) + ": " + e.what()));
    } catch (...) {
      outcome_.emplace(Status::internal(std::string(operation_) + ": unknown exception"));
    }
    return status_of(*outcome_).ok();
  }
  void fail(const Status& status) noexcept override { outcome_.emplace(status); }
  R take() { return std::move(*outcome_); }

 private:
  std::string_view operation_;
  F& f_;
  std::optional<R> outcome_;
};

}  // namespace

template <typename F>
auto SqliteStorage::write(std::string_view operation, F&& f, Batching batching)
    -> decltype(f(std::declval<SqliteOps&>())) {
  using R = decltype(f(std::declval<SqliteOps&>()));
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  R result = [&]() -> R {
    SAMOKODER_RETURN_IF_ERROR(usable());
    TypedWriteJob<R, std::remove_reference_t<F>> job(operation, f, batching == Batching::kJoin);
    run_in_group(job);
    return job.take();
  }();
  record(operation, status_of(result), start);
  return result;
}

void SqliteStorage::run_in_group(WriteJob& job) {
  // Allocated before the job is queued: once it is, nothing may throw until it is taken off again,
  // or the queue would keep a dangling head that every later writer waits behind.
  std::vector<WriteJob*> batch;
  batch.reserve(kMaxBatch);
  std::unique_lock queue_lock(queue_mutex_);
  write_queue_.push_back(&job);
  set_queue_gauge();
  queue_changed_.wait(queue_lock, [&] { return job.done || write_queue_.front() == &job; });
  if (job.done) return;
  // This thread leads: it takes its own job and the batchable ones queued right behind it. A job
  // that may not join a batch is only ever taken by its own thread, alone.
  batch.push_back(&job);
  if (job.batchable) {
    for (auto it = std::next(write_queue_.begin()); it != write_queue_.end() && batch.size() < kMaxBatch;
         ++it) {
      if (!(*it)->batchable) break;
      batch.push_back(*it);
    }
  }
  queue_lock.unlock();
  run_batch(batch);
  queue_lock.lock();
  for (WriteJob* done : batch) {
    done->done = true;
    write_queue_.pop_front();
  }
  set_queue_gauge();
  queue_lock.unlock();
  queue_changed_.notify_all();
}

void SqliteStorage::run_batch(const std::vector<WriteJob*>& batch) noexcept {
  std::lock_guard lock(writer_mutex_);
  if (!writer_) {
    for (WriteJob* job : batch)
      job->fail(closed());
    return;
  }
  WriterThreadMark mark(writer_thread_);
  const sdk::MetricLabel pool[] = {{"pool", "write"}};
  host_->gauge_set("storage_connections_in_use", pool, 1);
  host_->counter_add("storage_write_batches_total", {}, 1);
  struct GaugeReset {
    sdk::HostServices& host;
    const sdk::MetricLabel (&labels)[1];
    ~GaugeReset() { host.gauge_set("storage_connections_in_use", labels, 0); }
  } gauge_reset{*host_, pool};

  // Everything the transaction did is gone, so every job of the batch fails with `why`: also one that
  // failed on its own, because it ran on top of the others' effects and its error (say, a name
  // already taken by an earlier job of the batch) may no longer be true.
  auto abandon = [&](const Status& why) noexcept {
    rollback(*writer_);
    for (WriteJob* job : batch)
      job->fail(why);
  };

  if (Status begun = writer_->run_statement("BEGIN IMMEDIATE"); !begun.ok()) {
    abandon(begun);
    return;
  }
  SqliteOps ops(*writer_, *host_);
  const bool alone = batch.size() == 1;
  bool any_succeeded = false;
  for (WriteJob* job : batch) {
    // A job alone needs no savepoint: on failure the whole transaction is rolled back.
    if (!alone) {
      if (Status saved = open_savepoint(*writer_); !saved.ok()) {
        abandon(saved);
        return;
      }
    }
    const bool succeeded = job->run(ops);
    any_succeeded = any_succeeded || succeeded;
    if (alone) continue;
    // Fails when SQLite already rolled the whole transaction back: the earlier jobs' effects are gone too.
    if (Status closed_savepoint = close_savepoint(*writer_, succeeded); !closed_savepoint.ok()) {
      abandon(closed_savepoint);
      return;
    }
  }
  if (!any_succeeded) {
    rollback(*writer_);
    return;
  }
  if (sqlite3_get_autocommit(writer_->handle()) != 0) {
    abandon(Status::unavailable("storage.sqlite: the write transaction ended before its COMMIT"));
    return;
  }
  if (Status committed = writer_->run_statement("COMMIT"); !committed.ok()) abandon(committed);
}

void SqliteStorage::set_queue_gauge() noexcept {
  if (host_ != nullptr)
    host_->gauge_set("storage_write_queue_depth", {}, static_cast<double>(write_queue_.size()));
}

template <typename F>
auto SqliteStorage::read(std::string_view operation, F&& f) -> decltype(f(std::declval<SqliteOps&>())) {
  using R = decltype(f(std::declval<SqliteOps&>()));
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  R result = [&]() -> R {
    SAMOKODER_RETURN_IF_ERROR(usable());
    Connection& reader = readers_.acquire();
    set_reader_gauge();
    struct Release {
      SqliteStorage& self;
      Connection& reader;
      ~Release() {
        self.readers_.release(reader);
        self.set_reader_gauge();
      }
    } release{*this, reader};
    try {
      SAMOKODER_RETURN_IF_ERROR(reader.run_statement("BEGIN"));
      SqliteOps ops(reader, *host_);
      R r = f(ops);
      rollback(reader);  // a read transaction has nothing to commit; ending it frees the snapshot
      return r;
    } catch (const nlohmann::json::exception& e) {
      rollback(reader);
      return Status::data_loss(std::string(operation) + ": stored JSON is corrupt: " + e.what());
    } catch (const std::exception& e) {
      rollback(reader);
      return Status::internal(std::string(operation) + ": " + e.what());
    } catch (...) {
      rollback(reader);
      return Status::internal(std::string(operation) + ": unknown exception");
    }
  }();
  record(operation, status_of(result), start);
  return result;
}

// =============================================================================== Storage methods

Status SqliteStorage::health() {
  Result<std::int64_t> version =
      read("health", [](SqliteOps& ops) { return current_schema_version(ops.connection()); });
  if (version.ok()) return {};
  const Status failure = version.status();
  if (failure.code() == sdk::StatusCode::kFailedPrecondition) return failure;
  return Status::unavailable("storage.sqlite health check failed: " + failure.message());
}

Status SqliteStorage::transaction(const std::function<Status(sdk::Stores& stores)>& fn) {
  if (!fn) return Status::invalid_argument("transaction function is empty");
  return write(
      "transaction",
      [&](SqliteOps& ops) -> Status {
        TransactionOps tx(ops, ops.connection());
        try {
          return fn(tx);
        } catch (const std::exception& e) {
          return Status::internal(std::string("transaction function threw: ") + e.what());
        } catch (...) {
          return Status::internal("transaction function threw a non-standard exception");
        }
      },
      Batching::kAlone);
}

Result<sdk::SchemaStatus> SqliteStorage::schema_status() {
  return read("schema_status", [](SqliteOps& ops) -> Result<sdk::SchemaStatus> {
    sdk::SchemaStatus status;
    status.supported_version = supported_schema_version();
    auto exists = has_schema_migrations(ops.connection());
    if (!exists.ok()) return exists.status();
    if (!*exists) return status;
    auto q = ops.connection().prepare(
        "SELECT version, description, applied_at FROM schema_migrations ORDER BY version");
    if (!q.ok()) return q.status();
    while (true) {
      auto row = q->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      status.applied.push_back(sdk::AppliedMigration{q->column_int(0), q->column_text(1), q->column_time(2)});
      status.current_version = q->column_int(0);
    }
    return status;
  });
}

Status SqliteStorage::migrate() {
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  Status status = [&]() -> Status {
    SAMOKODER_RETURN_IF_ERROR(usable());
    std::lock_guard lock(writer_mutex_);
    if (!writer_) return closed();
    try {
      return migrate_locked();
    } catch (const std::exception& e) {
      rollback(*writer_);
      return Status::internal(std::string("migrate: ") + e.what());
    }
  }();
  record("migrate", status, start);
  return status;
}

Status SqliteStorage::migrate_locked() {
  SAMOKODER_RETURN_IF_ERROR(writer_->exec(kSchemaMigrationsTable));
  auto current = current_schema_version(*writer_);
  if (!current.ok()) return current.status();
  if (*current > supported_schema_version()) return newer_schema(*current);
  for (const Migration& migration : migrations()) {
    if (migration.version <= *current) continue;
    SAMOKODER_RETURN_IF_ERROR(writer_->run_statement("BEGIN IMMEDIATE"));
    Status applied = [&]() -> Status {
      // Another process may have migrated between our check and BEGIN IMMEDIATE.
      auto now_at = current_schema_version(*writer_);
      if (!now_at.ok()) return now_at.status();
      if (*now_at > supported_schema_version()) return newer_schema(*now_at);
      if (*now_at >= migration.version) return {};
      SAMOKODER_RETURN_IF_ERROR(writer_->exec(migration.sql));
      auto insert = writer_->prepare(
          "INSERT INTO schema_migrations (version, applied_at, description) VALUES (?, ?, ?)");
      if (!insert.ok()) return insert.status();
      insert->integer(migration.version).time(host_->now()).text(migration.description);
      SAMOKODER_RETURN_IF_ERROR(insert->run());
      return writer_->run_statement("COMMIT");
    }();
    if (!applied.ok()) {
      rollback(*writer_);
      return Status(applied.code(), "schema migration " + std::to_string(migration.version) + " (" +
                                        std::string(migration.description) +
                                        ") failed: " + applied.message());
    }
    rollback(*writer_);  // only still open when the version had been applied meanwhile
    host_->log(sdk::LogLevel::kInfo, "applied schema migration " + std::to_string(migration.version) + ": " +
                                         std::string(migration.description));
    *current = migration.version;
  }
  return {};
}

Status SqliteStorage::backup(std::string_view destination) {
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  const auto write_backup = [&]() -> Status {
    SAMOKODER_RETURN_IF_ERROR(usable());
    if (destination.empty()) return Status::invalid_argument("backup destination is required");
    const fs::path target{std::string(destination)};
    std::error_code ec;
    if (fs::exists(fs::symlink_status(target, ec))) {
      return Status::already_exists("backup destination " + target.string() + " already exists");
    }
    const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(parent, ec)) {
      return Status::not_found("backup directory " + parent.string() + " does not exist");
    }
    // Written beside the target and renamed into place, so a crash never leaves a half backup there.
    const std::string partial = target.string() + ".partial-" + new_id(host_->now());

    Connection& source = readers_.acquire();
    set_reader_gauge();
    sqlite3* out = nullptr;
    struct Cleanup {
      SqliteStorage& self;
      Connection& source;
      sqlite3*& out;
      const std::string& partial;
      ~Cleanup() {
        if (out != nullptr) sqlite3_close(out);
        std::error_code ignored;
        fs::remove(partial, ignored);
        self.readers_.release(source);
        self.set_reader_gauge();
      }
    } cleanup{*this, source, out, partial};

    int rc = sqlite3_open_v2(partial.c_str(), &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) return status_from_sqlite(rc, "backup: open " + partial, out);
    sqlite3_backup* copy = sqlite3_backup_init(out, "main", source.handle(), "main");
    if (copy == nullptr) return status_from_sqlite(sqlite3_extended_errcode(out), "backup", out);
    // One step copies everything under one read transaction: a consistent snapshot, and in WAL mode
    // the writer keeps committing meanwhile.
    rc = sqlite3_backup_step(copy, -1);
    const int finished = sqlite3_backup_finish(copy);
    if (rc != SQLITE_DONE) return status_from_sqlite(rc, "backup", out);
    if (finished != SQLITE_OK) return status_from_sqlite(finished, "backup", out);
    rc = sqlite3_close(out);
    out = nullptr;
    if (rc != SQLITE_OK) return status_from_sqlite(rc, "backup: close " + partial, nullptr);
    if (renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
      const int error = errno;
      if (error == EEXIST)
        return Status::already_exists("backup destination " + target.string() + " already exists");
      return Status::unavailable("backup: cannot move " + partial + " to " + target.string() + ": " +
                                 std::strerror(error));
    }
    host_->log(sdk::LogLevel::kInfo, "backup written to " + target.string());
    return {};
  };
  Status status;
  try {
    status = write_backup();
  } catch (const std::exception& e) {
    status = Status::internal(std::string("backup: ") + e.what());
  }
  record("backup", status, start);
  return status;
}

// ================================================================================ whole database

sdk::Result<sdk::StorageStats> SqliteStorage::stats() {
  return read("stats", [&](SqliteOps& ops) { return ops.stats(); });
}

}  // namespace samokoder::storage_sqlite

SAMOKODER_PLUGIN(samokoder::storage_sqlite::SqliteStorage, "storage.sqlite", "1.0.0",
                 "Embedded SQLite storage (WAL, one writer, pooled readers)")
