// ConnectionPool: at most `size` PostgreSQL connections, opened on demand and reused. acquire() waits up
// to the configured timeout for a free connection and then gives up with kUnavailable, so a saturated
// database slows callers down by a bounded amount instead of piling up connections.
//
// Ownership: the pool owns every connection; a Lease borrows one and gives it back when destroyed (a
// connection left broken or inside a transaction is closed instead of reused). Leases must not outlive
// the pool.
// Thread-safety: acquire() and lease destruction may happen on any thread, concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pg.hpp"

namespace samokoder::storage_postgres {

class ConnectionPool;

class Lease {
 public:
  Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn) noexcept
      : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&& other) noexcept = default;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();

  Connection& operator*() const noexcept { return *conn_; }
  Connection* operator->() const noexcept { return conn_.get(); }

 private:
  ConnectionPool* pool_;
  std::unique_ptr<Connection> conn_;
};

class ConnectionPool {
 public:
  // keywords/values: the libpq connection parameters (PQconnectdbParams with expand_dbname).
  // on_in_use reports the number of borrowed connections whenever it changes; on_notice receives the
  // server's warnings (libpq would print them to stderr).
  ConnectionPool(std::vector<std::pair<std::string, std::string>> params, std::size_t size,
                 std::chrono::milliseconds acquire_timeout, std::function<void(std::size_t)> on_in_use,
                 std::function<void(std::string_view)> on_notice);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  sdk::Result<Lease> acquire();
  // Closes idle connections; called at shutdown, when no lease is out.
  void close_idle();

  std::size_t size() const noexcept { return size_; }

 private:
  friend class Lease;
  void give_back(std::unique_ptr<Connection> conn) noexcept;
  sdk::Result<std::unique_ptr<Connection>> open();

  const std::vector<std::pair<std::string, std::string>> params_;
  const std::size_t size_;
  const std::chrono::milliseconds acquire_timeout_;
  const std::function<void(std::size_t)> on_in_use_;
  const std::function<void(std::string_view)> on_notice_;

  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
  std::size_t open_ = 0;                           // idle + borrowed + being opened; guarded by mutex_
  std::size_t in_use_ = 0;                         // guarded by mutex_
};

}  // namespace samokoder::storage_postgres
