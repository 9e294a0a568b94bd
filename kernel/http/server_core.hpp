// Internal to samokoder_http: the state a Server shares with its connections, the per-loop state,
// and the request and stream metrics with their lock-free cache.
//
// Ownership: Server::Impl owns one ServerCore and the IoLoops; connections reference both, and the
// server keeps them alive until every connection is gone. Thread-safety: ServerCore is immutable once
// the server starts, except for its atomics and the drain mutex/condition; an IoLoop's connection list
// is touched only by that loop's thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/verb.hpp>
#include <spdlog/logger.h>

#include "config/config.hpp"
#include "http/middleware.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "http/work_pool.hpp"
#include "metrics/registry.hpp"

namespace samokoder::http::detail {

class Connection;

// Mirrors of stream_session.hpp's StreamType and StreamEnd counts, which index the stream metrics.
inline constexpr std::size_t kStreamKinds = 2;
inline constexpr std::size_t kStreamEndReasons = 7;

// Request counters keyed by (route label, method, status) and a duration histogram per route label.
// Label 0 is "unmatched", label i + 1 is Router::patterns()[i]. Counters are created on first use and
// cached in atomic slots, so after warm-up a request costs no registry lock and no allocation.
class HttpMetrics {
 public:
  HttpMetrics(metrics::Registry& registry, const Router& router);
  ~HttpMetrics();
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;

  // REQUIRES: 100 <= status <= 599.
  void record(std::size_t label, boost::beast::http::verb method, unsigned status, double seconds) noexcept;

  metrics::Gauge& connections_active;
  metrics::Counter& connections_total;
  metrics::Gauge& in_flight;
  // Indexed by StreamType, and by StreamType and StreamEnd; all registered up front.
  std::array<metrics::Gauge*, kStreamKinds> streams_active{};
  std::array<std::array<metrics::Counter*, kStreamEndReasons>, kStreamKinds> streams_closed{};

 private:
  static constexpr unsigned kFirstStatus = 100;
  static constexpr std::size_t kStatusSlots = 500;
  static constexpr std::size_t kVerbs = static_cast<std::size_t>(boost::beast::http::verb::unlink) + 1;
  struct StatusCounters {
    std::array<std::atomic<metrics::Counter*>, kStatusSlots> slots{};
  };

  metrics::Counter* counter(std::size_t label, boost::beast::http::verb method, unsigned status);

  metrics::Registry& registry_;
  std::vector<std::string> labels_;
  std::vector<metrics::Histogram*> durations_;
  std::unique_ptr<std::atomic<StatusCounters*>[]> tables_;  // labels_.size() * kVerbs
};

struct ServerCore {
  ServerCore(const config::ServerConfig& config, config::Environment environment,
             std::shared_ptr<const Router> router, metrics::Registry& registry, ServerOptions options);

  bool is_allowed_origin(std::string_view origin) const noexcept;
  void connection_opened() noexcept;
  void connection_closed() noexcept;

  const config::ServerConfig config;
  const config::Environment environment;
  const std::shared_ptr<const Router> router;
  const ServerOptions options;
  metrics::Registry& registry;
  std::vector<std::shared_ptr<Middleware>> middleware;  // fixed once started
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<spdlog::logger> access_log;
  HttpMetrics metrics;

  // What a config reload changes while connections read it (Server::apply_live): relaxed atomics, read
  // a few times per request, never a lock. `config` keeps the values the server started with.
  std::chrono::milliseconds request_timeout() const noexcept {
    return std::chrono::milliseconds(request_timeout_ms.load(std::memory_order_relaxed));
  }
  std::chrono::milliseconds keep_alive_timeout() const noexcept {
    return std::chrono::milliseconds(keep_alive_timeout_ms.load(std::memory_order_relaxed));
  }
  std::atomic<bool> access_log_on;
  std::atomic<std::chrono::milliseconds::rep> request_timeout_ms;
  std::atomic<std::chrono::milliseconds::rep> keep_alive_timeout_ms;
  std::atomic<std::uint32_t> shutdown_grace_ms;
  const std::uint32_t header_limit;

  // Default response headers, each a complete "Name: value\r\n" line, and all of them concatenated for
  // the common case of a handler that sets none of them.
  struct DefaultHeader {
    std::string name;
    std::string line;
  };
  std::vector<DefaultHeader> default_headers;
  std::string default_headers_block;
  std::string cors_expose_line;    // "Access-Control-Expose-Headers: ...\r\n", or empty
  std::string cors_allow_headers;  // value for preflights
  std::string cors_max_age;

  // Blocking handlers: Dispatch::kRequest and Dispatch::kPluginCall. Created by start().
  std::optional<WorkPool> request_pool;
  std::optional<WorkPool> plugin_pool;
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> open_connections{0};
  std::mutex drain_mutex;
  std::condition_variable drained;
};

// One event loop: an io_context run by exactly one thread, so its connections need no strands.
struct IoLoop {
  IoLoop() = default;
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  void link(Connection* connection) noexcept;
  void unlink(Connection* connection) noexcept;
  template <typename F>
  void for_each_connection(F&& f) {
    for (Connection* c = head; c != nullptr;) {
      Connection* next = next_of(c);
      f(*c);
      c = next;
    }
  }
  static Connection* next_of(Connection* c) noexcept;

  // Declared before the context so that handlers destroyed with the context can still unlink.
  Connection* head = nullptr;
  boost::asio::io_context context{1};
  boost::asio::steady_timer sweep{context};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  bool sweeping = true;
  std::thread thread;
};

}  // namespace samokoder::http::detail
