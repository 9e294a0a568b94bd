#include "http/server.hpp"

#include <algorithm>
#include <exception>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "core/logging.hpp"
#include "http/connection.hpp"
#include "http/server_core.hpp"
#include "http/stream_session.hpp"

namespace samokoder::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace detail {

// ---- HttpMetrics ----

HttpMetrics::HttpMetrics(metrics::Registry& registry, const Router& router)
    : connections_active(registry.gauge("samokoder_http_connections_active", "Open HTTP connections.")),
      connections_total(registry.counter("samokoder_http_connections_total", "HTTP connections accepted.")),
      in_flight(registry.gauge("samokoder_http_requests_in_flight",
                               "HTTP requests read completely and not yet answered.")),
      registry_(registry) {
  labels_.reserve(router.patterns().size() + 1);
  labels_.emplace_back("unmatched");
  labels_.insert(labels_.end(), router.patterns().begin(), router.patterns().end());
  for (const std::string& label : labels_) {
    durations_.push_back(&registry.histogram("samokoder_http_request_duration_seconds",
                                             "Time from the first byte of a request to its response.",
                                             {{"route", label}}));
  }
  tables_ = std::make_unique<std::atomic<StatusCounters*>[]>(labels_.size() * kVerbs);

  static_assert(kStreamKinds == kStreamTypeCount && kStreamEndReasons == kStreamEndCount);
  for (std::size_t kind = 0; kind < kStreamKinds; ++kind) {
    const std::string kind_label(to_string(static_cast<StreamType>(kind)));
    streams_active[kind] =
        &registry.gauge("samokoder_http_streams_active", "Open streams (server-sent events, WebSocket).",
                        {{"kind", kind_label}});
    for (std::size_t reason = 0; reason < kStreamEndReasons; ++reason) {
      streams_closed[kind][reason] = &registry.counter(
          "samokoder_http_streams_closed_total", "Streams ended, by kind and why they ended.",
          {{"kind", kind_label}, {"reason", std::string(to_string(static_cast<StreamEnd>(reason)))}});
    }
  }
}

HttpMetrics::~HttpMetrics() {
  for (std::size_t i = 0; i < labels_.size() * kVerbs; ++i)
    delete tables_[i].load(std::memory_order_acquire);
}

metrics::Counter* HttpMetrics::counter(std::size_t label, bhttp::verb method, unsigned status) {
  std::atomic<StatusCounters*>& table_slot = tables_[label * kVerbs + static_cast<std::size_t>(method)];
  StatusCounters* table = table_slot.load(std::memory_order_acquire);
  if (table == nullptr) {
    auto fresh = std::make_unique<StatusCounters>();
    if (table_slot.compare_exchange_strong(table, fresh.get(), std::memory_order_acq_rel))
      table = fresh.release();
  }
  std::atomic<metrics::Counter*>& slot = table->slots[status - kFirstStatus];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // The registry returns the same counter for the same labels, so two threads racing here agree.
    const std::string_view method_label = method == bhttp::verb::unknown ? "OTHER" : bhttp::to_string(method);
    counter = &registry_.counter("samokoder_http_requests_total", "HTTP requests answered.",
                                 {{"route", labels_[label]},
                                  {"method", std::string(method_label)},
                                  {"status", std::to_string(status)}});
    slot.store(counter, std::memory_order_release);
  }
  return counter;
}

void HttpMetrics::record(std::size_t label, bhttp::verb method, unsigned status, double seconds) noexcept {
  if (label >= labels_.size() || status < kFirstStatus || status >= kFirstStatus + kStatusSlots) return;
  try {
    counter(label, method, status)->add();
  } catch (...) {
    // Only allocation can fail here; losing one sample beats failing the request.
  }
  durations_[label]->observe(seconds);
}

// ---- ServerCore ----

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

}  // namespace

ServerCore::ServerCore(const config::ServerConfig& config_in, config::Environment environment_in,
                       std::shared_ptr<const Router> router_in, metrics::Registry& registry_in,
                       ServerOptions options_in)
    : config(config_in),
      environment(environment_in),
      router(std::move(router_in)),
      options(std::move(options_in)),
      registry(registry_in),
      log(core::logger("http")),
      access_log(core::logger("access")),
      metrics(registry_in, *router),
      access_log_on(options.access_log),
      request_timeout_ms(std::max<std::uint32_t>(config.request_timeout_ms, 1)),
      keep_alive_timeout_ms(std::max<std::uint32_t>(config.keep_alive_timeout_ms, 1)),
      shutdown_grace_ms(config.shutdown_grace_ms),
      header_limit(
          static_cast<std::uint32_t>(std::clamp<std::size_t>(config.max_header_bytes, 256, UINT32_MAX))) {
  auto add_default = [this](std::string name, std::string_view value) {
    std::string line = name + ": " + std::string(value) + "\r\n";
    default_headers_block += line;
    default_headers.push_back({std::move(name), std::move(line)});
  };
  add_default("X-Content-Type-Options", "nosniff");
  add_default("X-Frame-Options", "DENY");
  add_default("Referrer-Policy", "no-referrer");
  add_default("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  add_default("Cross-Origin-Opener-Policy", "same-origin");
  add_default("Cache-Control", "no-store");
  if (environment == config::Environment::kProduction) {
    add_default("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
  }
  if (!options.cors_exposed_headers.empty()) {
    cors_expose_line = "Access-Control-Expose-Headers: " + join(options.cors_exposed_headers) + "\r\n";
  }
  cors_allow_headers = join(options.cors_allowed_headers);
  cors_max_age = std::to_string(options.cors_max_age_seconds);
}

bool ServerCore::is_allowed_origin(std::string_view origin) const noexcept {
  if (origin.empty()) return false;
  return std::find(config.cors_allowed_origins.begin(), config.cors_allowed_origins.end(), origin) !=
         config.cors_allowed_origins.end();
}

void ServerCore::connection_opened() noexcept {
  open_connections.fetch_add(1, std::memory_order_relaxed);
  metrics.connections_active.add(1);
  metrics.connections_total.add();
}

void ServerCore::connection_closed() noexcept {
  metrics.connections_active.add(-1);
  if (open_connections.fetch_sub(1, std::memory_order_acq_rel) == 1 && stopping.load()) {
    // Taking the mutex orders this notification after stop()'s predicate check or before its wait.
    { std::lock_guard lock(drain_mutex); }
    drained.notify_all();
  }
}

// ---- IoLoop ----

void IoLoop::link(Connection* connection) noexcept {
  connection->prev_ = nullptr;
  connection->next_ = head;
  if (head != nullptr) head->prev_ = connection;
  head = connection;
  connection->linked_ = true;
}

void IoLoop::unlink(Connection* connection) noexcept {
  if (!connection->linked_) return;
  if (connection->prev_ != nullptr) {
    connection->prev_->next_ = connection->next_;
  } else {
    head = connection->next_;
  }
  if (connection->next_ != nullptr) connection->next_->prev_ = connection->prev_;
  connection->prev_ = connection->next_ = nullptr;
  connection->linked_ = false;
}

Connection* IoLoop::next_of(Connection* c) noexcept {
  return c->next_;
}

}  // namespace detail

// ---- Server ----

struct Server::Impl {
  Impl(const config::ServerConfig& config, config::Environment environment,
       std::shared_ptr<const Router> router, metrics::Registry& registry, ServerOptions options)
      : core(config, environment, std::move(router), registry, std::move(options)) {}

  void accept();
  void schedule_sweep(detail::IoLoop& loop);

  // Declaration order is destruction order in reverse: the acceptor and its retry timer go before the
  // loops' io_contexts, and those (with any connection still queued in them) before the core.
  detail::ServerCore core;
  std::vector<std::unique_ptr<detail::IoLoop>> loops;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_retry;
  std::size_t next_loop = 0;  // touched by loops[0] only
  std::atomic<std::uint16_t> port{0};
  std::string host;
  std::vector<WorkPool::Unfinished> unfinished;  // filled by stop()
  bool started = false;
  bool stopped = false;
};

void Server::Impl::accept() {
  detail::IoLoop& target = *loops[next_loop++ % loops.size()];
  acceptor->async_accept(
      target.context, [this, &target](const boost::system::error_code& ec, detail::Socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
        if (ec) {
          // Typically EMFILE: back off instead of spinning on a listen queue we cannot drain.
          core.log->warn("accept failed: {}", ec.message());
          accept_retry->expires_after(std::chrono::milliseconds(50));
          accept_retry->async_wait([this](const boost::system::error_code& wait_ec) {
            if (!wait_ec && acceptor->is_open()) accept();
          });
          return;
        }
        auto connection = std::make_shared<detail::Connection>(core, target, std::move(socket));
        asio::post(target.context, [connection] { connection->start(); });
        accept();
      });
}

void Server::Impl::schedule_sweep(detail::IoLoop& loop) {
  // From the timeouts in force, which a config reload may have shortened.
  const auto shortest = std::min(core.request_timeout(), core.keep_alive_timeout());
  loop.sweep.expires_after(std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(5),
                                                                 std::chrono::milliseconds(1000)));
  loop.sweep.async_wait([this, &loop](const boost::system::error_code& ec) {
    if (ec || !loop.sweeping) return;
    const auto now = std::chrono::steady_clock::now();
    loop.for_each_connection([now](detail::Connection& c) { c.check_deadline(now); });
    schedule_sweep(loop);
  });
}

Server::Server(const config::ServerConfig& config, config::Environment environment,
               std::shared_ptr<const Router> router, metrics::Registry& metrics, ServerOptions options) {
  if (!router) throw std::invalid_argument("http::Server needs a router");
  impl_ = std::make_unique<Impl>(config, environment, std::move(router), metrics, std::move(options));
}

Server::~Server() {
  stop();
}

void Server::use(std::shared_ptr<Middleware> middleware) {
  if (impl_->started) throw std::logic_error("http::Server::use() after start()");
  if (middleware) impl_->core.middleware.push_back(std::move(middleware));
}

sdk::Status Server::start() {
  Impl& s = *impl_;
  if (s.started) return sdk::Status::failed_precondition("the HTTP server was already started");
  const config::ServerConfig& config = s.core.config;
  const unsigned io_threads = std::max(1U, config.io_threads);
  for (unsigned i = 0; i < io_threads; ++i)
    s.loops.push_back(std::make_unique<detail::IoLoop>());
  asio::io_context& context = s.loops.front()->context;

  boost::system::error_code ec;
  tcp::endpoint listen_endpoint;
  const auto address = asio::ip::make_address(config.listen.host, ec);
  if (!ec) {
    listen_endpoint = tcp::endpoint(address, config.listen.port);
  } else {
    tcp::resolver resolver(context);
    const auto results =
        resolver.resolve(config.listen.host, std::to_string(config.listen.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      s.loops.clear();
      return sdk::Status::unavailable("cannot resolve listen host '" + config.listen.host +
                                      "': " + ec.message());
    }
    listen_endpoint = results.begin()->endpoint();
  }

  s.acceptor.emplace(context);
  s.accept_retry.emplace(context);
  auto fail = [&](std::string_view step) {
    const std::string message =
        "cannot " + std::string(step) + " " + config.listen.to_string() + ": " + ec.message();
    s.acceptor.reset();
    s.accept_retry.reset();
    s.loops.clear();
    return sdk::Status::unavailable(message);
  };
  if (s.acceptor->open(listen_endpoint.protocol(), ec)) return fail("open a socket for");
  if (s.acceptor->set_option(asio::socket_base::reuse_address(true), ec)) return fail("set SO_REUSEADDR on");
  if (s.acceptor->bind(listen_endpoint, ec)) return fail("bind");
  if (s.acceptor->listen(asio::socket_base::max_listen_connections, ec)) return fail("listen on");
  s.port.store(s.acceptor->local_endpoint().port());
  s.host = listen_endpoint.address().to_string();

  s.core.request_pool.emplace("request", config.request_pool, s.core.registry);
  s.core.plugin_pool.emplace("plugin", config.plugin_pool, s.core.registry);
  s.started = true;
  s.accept();
  for (auto& loop : s.loops) {
    loop->guard.emplace(loop->context.get_executor());
    s.schedule_sweep(*loop);
    loop->thread = std::thread([&s, &loop = *loop] {
      for (;;) {
        try {
          loop.context.run();
          return;
        } catch (const std::exception& e) {
          s.core.log->error("HTTP event loop: unexpected exception: {}", e.what());
        }
      }
    });
  }
  s.core.log->info("listening on {} ({} I/O threads, {} request and {} plugin pool threads)", endpoint(),
                   io_threads, std::max(1U, config.request_pool.threads),
                   std::max(1U, config.plugin_pool.threads));
  return {};
}

void Server::stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  s.core.stopping.store(true);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(s.core.shutdown_grace_ms.load());

  asio::post(s.loops.front()->context, [&s] {
    boost::system::error_code ec;
    s.acceptor->close(ec);
    s.accept_retry->cancel();
  });
  for (auto& loop : s.loops) {
    asio::post(loop->context, [&loop = *loop] {
      loop.for_each_connection([](detail::Connection& c) {
        c.close_if_idle();
        // A stream never finishes by itself: it ends now (after what it queued), or the drain below
        // would always wait out the whole grace.
        c.shutdown_stream();
      });
    });
  }
  {
    std::unique_lock lock(s.core.drain_mutex);
    const bool drained =
        s.core.drained.wait_until(lock, deadline, [&] { return s.core.open_connections.load() == 0; });
    if (!drained) {
      s.core.log->warn("shutdown grace of {} ms over; closing {} connection(s)",
                       s.core.shutdown_grace_ms.load(), s.core.open_connections.load());
    }
  }
  for (auto& loop : s.loops) {
    asio::post(loop->context,
               [&loop = *loop] { loop.for_each_connection([](detail::Connection& c) { c.close(); }); });
  }
  // Handlers still running get the rest of the grace; their completions reach the loops, which are
  // still running. A call that outlasts it is left to its thread and reported.
  for (WorkPool* pool : {&*s.core.request_pool, &*s.core.plugin_pool}) {
    auto left = pool->stop(deadline);
    s.unfinished.insert(s.unfinished.end(), std::make_move_iterator(left.begin()),
                        std::make_move_iterator(left.end()));
  }
  for (auto& loop : s.loops) {
    asio::post(loop->context, [&loop = *loop] {
      loop.for_each_connection([](detail::Connection& c) { c.close(); });
      loop.sweeping = false;
      loop.sweep.cancel();
      loop.guard.reset();
    });
  }
  for (auto& loop : s.loops) {
    if (loop->thread.joinable()) loop->thread.join();
  }
  s.core.log->info("stopped listening on {}", endpoint());
}

void Server::apply_live(const config::ServerConfig& config, bool access_log) {
  detail::ServerCore& core = impl_->core;
  core.access_log_on.store(access_log, std::memory_order_relaxed);
  core.request_timeout_ms.store(std::max<std::uint32_t>(config.request_timeout_ms, 1),
                                std::memory_order_relaxed);
  core.keep_alive_timeout_ms.store(std::max<std::uint32_t>(config.keep_alive_timeout_ms, 1),
                                   std::memory_order_relaxed);
  core.shutdown_grace_ms.store(config.shutdown_grace_ms);
  if (core.request_pool)
    core.request_pool->set_call_timeout(std::chrono::milliseconds(config.request_pool.call_timeout_ms));
  if (core.plugin_pool)
    core.plugin_pool->set_call_timeout(std::chrono::milliseconds(config.plugin_pool.call_timeout_ms));
}

const std::vector<WorkPool::Unfinished>& Server::unfinished_calls() const noexcept {
  return impl_->unfinished;
}

std::uint16_t Server::port() const noexcept {
  return impl_->port.load();
}

std::string Server::endpoint() const {
  config::ListenAddress address;
  address.host = impl_->host.empty() ? impl_->core.config.listen.host : impl_->host;
  address.port = port();
  return address.to_string();
}

}  // namespace samokoder::http
