// SqliteStorage: the storage.sqlite plugin. Storage on one SQLite file in WAL mode.
//
// Connections: one writer connection, serialised by writer_mutex_, on which every write runs inside
// BEGIN IMMEDIATE ... COMMIT (so two writers never race for SQLite's write lock inside this process
// and "database is locked" cannot happen between them); and a small pool of reader connections
// (query_only) on which every read runs inside one deferred read transaction, a consistent snapshot
// that WAL lets proceed while the writer commits. Transactions of Storage::transaction run on the
// writer; each operation inside one is wrapped in a SAVEPOINT so a failed call leaves no partial
// effect and the function may go on.
//
// Group commit: writes that arrive while another is running queue up, and the thread at the head of
// the queue runs the queued ones together in one transaction, each in its own SAVEPOINT, with one
// COMMIT for all (LevelDB's writer queue, applied to SQLite). A failed write is rolled back to its
// savepoint alone; a failed COMMIT fails every write of the batch. Each caller returns only after the
// COMMIT that made its write durable. Storage::transaction never joins a batch: its function is the
// caller's code and runs on the caller's own thread.
//
// Ownership: created and destroyed by the kernel through the plugin descriptor; owns its connections.
// Thread-safety: every Storage method may be called from any thread concurrently after init().
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <samokoder/sdk/storage.hpp>
#include <samokoder/storage_common/stores.hpp>

#include "connection.hpp"
#include "ops.hpp"

namespace samokoder::storage_sqlite {

inline constexpr std::string_view kPluginId = "storage.sqlite";

struct Config {
  std::string path = "var/samokoder.db";
  int busy_timeout_ms = 5000;
  bool synchronous_full = false;
  int read_connections = 4;
  // false: init() opens the database without applying pending migrations (for `samokoder db status`
  // and `db migrate`); it still refuses a newer schema.
  bool auto_migrate = true;
};

// Parses the plugin's config section; unknown keys and wrong types are kInvalidArgument naming the key.
sdk::Result<Config> parse_config(const nlohmann::json& section);

// One write in the writer queue (defined in sqlite_storage.cpp).
class WriteJob;

// The read connections. acquire() blocks while all are in use.
class ReaderPool {
 public:
  void add(std::unique_ptr<Connection> connection);
  Connection& acquire();
  void release(Connection& connection);
  int in_use() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> all_;
  std::vector<Connection*> idle_;
};

class SqliteStorage final : public storage_common::ForwardingStores<SqliteStorage, SqliteOps, sdk::Storage> {
 public:
  SqliteStorage() = default;
  ~SqliteStorage() override;

  sdk::Status init(sdk::HostServices& host) override;
  sdk::Status self_test() override { return health(); }
  void shutdown() noexcept override;

  sdk::Status health() override;
  sdk::Status transaction(const std::function<sdk::Status(sdk::Stores& stores)>& fn) override;
  sdk::Result<sdk::SchemaStatus> schema_status() override;
  sdk::Status migrate() override;
  sdk::Status backup(std::string_view destination) override;
  sdk::Result<sdk::StorageStats> stats() override;

  // One store operation as its own unit of work: a write joins the writer's group commit, a read runs
  // on a pooled reader (see the header comment).
  template <storage_common::StoreAccess access, typename Operation>
  auto invoke(std::string_view operation, Operation&& sql) -> decltype(sql(std::declval<SqliteOps&>())) {
    if constexpr (access == storage_common::StoreAccess::kWrite) {
      return write(operation, sql);
    } else {
      return read(operation, sql);
    }
  }

 private:
  // Runs f(SqliteOps&) in a write transaction on the writer (read: in a read transaction on a pooled
  // reader), commits if it succeeded, rolls back otherwise, catches every exception, and records
  // the operation's metrics. R is sdk::Status or an sdk::Result<T>.
  enum class Batching { kJoin, kAlone };
  template <typename F>
  auto write(std::string_view operation, F&& f, Batching batching = Batching::kJoin)
      -> decltype(f(std::declval<SqliteOps&>()));
  template <typename F>
  auto read(std::string_view operation, F&& f) -> decltype(f(std::declval<SqliteOps&>()));

  // Queues the job and returns once it has run and its batch committed (or failed).
  void run_in_group(WriteJob& job);
  void run_batch(const std::vector<WriteJob*>& batch) noexcept;
  void set_queue_gauge() noexcept;

  sdk::Status usable() const;
  sdk::Status migrate_locked();
  void rollback(Connection& connection) noexcept;
  void record(std::string_view operation, const sdk::Status& status,
              std::chrono::steady_clock::time_point start) noexcept;
  void set_reader_gauge() noexcept;

  sdk::HostServices* host_ = nullptr;
  Config config_;
  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::deque<WriteJob*> write_queue_;  // guarded by queue_mutex_; the front one's thread leads
  std::mutex writer_mutex_;
  std::unique_ptr<Connection> writer_;
  // The thread inside a write (or transaction) right now: a call from that same thread would deadlock
  // on writer_mutex_ or read around its own uncommitted writes, so it is refused instead.
  std::atomic<std::thread::id> writer_thread_{};
  ReaderPool readers_;
  std::atomic<bool> open_{false};
};

}  // namespace samokoder::storage_sqlite
