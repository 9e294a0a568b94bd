#include "pool.hpp"

#include <samokoder/sdk/redact.hpp>

namespace samokoder::storage_postgres {

Lease::~Lease() {
  if (pool_ && conn_) pool_->give_back(std::move(conn_));
}

ConnectionPool::ConnectionPool(std::vector<std::pair<std::string, std::string>> params, std::size_t size,
                               std::chrono::milliseconds acquire_timeout,
                               std::function<void(std::size_t)> on_in_use,
                               std::function<void(std::string_view)> on_notice)
    : params_(std::move(params)),
      size_(size),
      acquire_timeout_(acquire_timeout),
      on_in_use_(std::move(on_in_use)),
      on_notice_(std::move(on_notice)) {}

ConnectionPool::~ConnectionPool() {
  close_idle();
}

sdk::Result<Lease> ConnectionPool::acquire() {
  const auto deadline = std::chrono::steady_clock::now() + acquire_timeout_;
  for (;;) {
    std::unique_lock lock(mutex_);
    const bool got = available_.wait_until(lock, deadline, [&] { return !idle_.empty() || open_ < size_; });
    if (!got) {
      return sdk::Status::unavailable("all " + std::to_string(size_) +
                                      " PostgreSQL connections stayed in use for " +
                                      std::to_string(acquire_timeout_.count()) + " ms");
    }
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      // A connection the server dropped while idle (restart, idle timeout) is replaced, not handed out.
      if (!conn->still_alive()) {
        conn.reset();
        lock.lock();
        --open_;
        available_.notify_one();
        continue;
      }
      lock.lock();
      ++in_use_;
      const std::size_t in_use = in_use_;
      lock.unlock();
      on_in_use_(in_use);
      return Lease(this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    auto opened = open();
    lock.lock();
    if (!opened.ok()) {
      --open_;
      available_.notify_one();
      return opened.status();
    }
    ++in_use_;
    const std::size_t in_use = in_use_;
    lock.unlock();
    on_in_use_(in_use);
    return Lease(this, std::move(opened.value()));
  }
}

sdk::Result<std::unique_ptr<Connection>> ConnectionPool::open() {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  for (const auto& [key, value] : params_) {
    keywords.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* raw = PQconnectdbParams(keywords.data(), values.data(), 1);
  auto conn = std::make_unique<Connection>(raw);
  if (!conn->healthy()) {
    // libpq's text can quote the connection string (the URL is the "dbname" parameter).
    std::string_view conninfo;
    for (const auto& [key, value] : params_) {
      if (key == "dbname") conninfo = value;
    }
    return sdk::Status::unavailable("cannot connect to PostgreSQL: " +
                                    sdk::redact_credentials(conn->error_message(), conninfo));
  }
  PQsetNoticeProcessor(
      raw,
      [](void* self, const char* message) {
        std::string_view text(message);
        while (!text.empty() && text.back() == '\n')
          text.remove_suffix(1);
        static_cast<const ConnectionPool*>(self)->on_notice_(text);
      },
      this);
  return conn;
}

void ConnectionPool::give_back(std::unique_ptr<Connection> conn) noexcept {
  // A lease dropped mid-transaction (an error path) must not leak the transaction into the next borrower.
  if (conn->healthy() && conn->transaction_status() != PQTRANS_IDLE) (void)conn->command("ROLLBACK");
  const bool reusable = conn->healthy() && conn->transaction_status() == PQTRANS_IDLE;
  if (!reusable) conn.reset();
  std::size_t in_use = 0;
  {
    std::lock_guard lock(mutex_);
    if (reusable) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
    in_use = --in_use_;
  }
  available_.notify_one();
  on_in_use_(in_use);
}

void ConnectionPool::close_idle() {
  std::vector<std::unique_ptr<Connection>> closing;
  {
    std::lock_guard lock(mutex_);
    closing.swap(idle_);
    open_ -= closing.size();
  }
}

}  // namespace samokoder::storage_postgres
