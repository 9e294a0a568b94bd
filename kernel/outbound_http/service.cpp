#include "outbound_http/service.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <samokoder/sdk/redact.hpp>

#include "core/logging.hpp"

namespace samokoder::outbound_http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr std::size_t kHeaderLimit = 64 * 1024;
constexpr std::string_view kRequestsHelp =
    "Outbound HTTP requests of plugins that got a response, by status class.";
constexpr std::string_view kErrorsHelp = "Outbound HTTP requests of plugins that failed, by status code.";
constexpr std::string_view kSecondsHelp = "Outbound HTTP request latency, from send to the last byte.";
constexpr std::string_view kSentHelp = "Request body bytes plugins sent.";
constexpr std::string_view kReceivedHelp = "Response body bytes plugins received.";
constexpr std::string_view kConnectionsHelp =
    "Connections opened for outbound HTTP (reused ones are not counted).";

thread_local bool t_service_thread = false;

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Headers whose values are credentials whether or not the caller marked them.
bool is_secret(const sdk::HttpHeader& header) noexcept {
  static constexpr std::array<std::string_view, 6> kSecretNames = {
      "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"};
  return header.secret || std::any_of(kSecretNames.begin(), kSecretNames.end(),
                                      [&](std::string_view name) { return iequals(name, header.name); });
}

// RFC 9110 token characters (method and header names).
bool is_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// Takes every secret header value of `request` (whole, and each word of it: "Bearer <token>") out of
// `text`, then URL credentials.
std::string scrub(std::string text, const sdk::HttpRequest& request) {
  auto replace_all = [&](std::string_view secret) {
    if (secret.size() < 4) return;  // too short to tell apart from ordinary text; never quoted anyway
    for (std::size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + sdk::kRedacted.size()))
      text.replace(at, secret.size(), sdk::kRedacted);
  };
  for (const sdk::HttpHeader& header : request.headers) {
    if (!is_secret(header)) continue;
    replace_all(header.value);
    std::string_view rest = header.value;
    while (!rest.empty()) {
      const std::size_t space = rest.find_first_of(" ,;=");
      replace_all(rest.substr(0, space));
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
  }
  return sdk::redact_credentials(text);
}

enum class Phase { kConnect, kFirstByte, kIdle, kTotal };

std::string_view phase_name(Phase phase) noexcept {
  switch (phase) {
    case Phase::kConnect:
      return "connect";
    case Phase::kFirstByte:
      return "first_byte";
    case Phase::kIdle:
      return "idle";
    case Phase::kTotal:
      return "total";
  }
  return "total";
}

bool idempotent(std::string_view method) noexcept {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}) {
    if (method == m) return true;
  }
  return false;
}

// What a reused connection the server had already closed fails with before any response byte.
bool stale_connection_error(const beast::error_code& ec) noexcept {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

std::chrono::milliseconds or_default(std::chrono::milliseconds given, std::uint32_t fallback_ms) {
  return given.count() > 0 ? given : std::chrono::milliseconds(fallback_ms);
}

// One connection to an origin (or through a proxy to it); plain until TLS wraps its socket.
struct Connection {
  Connection(tcp::socket socket, std::string pool_key) : plain(std::move(socket)), key(std::move(pool_key)) {}

  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }

  // Runs `op(stream)` on whichever stream the connection speaks (both give the same awaitable type).
  template <typename Op>
  auto on_stream(Op&& op) {
    return tls ? op(*tls) : op(*plain);
  }

  std::optional<tcp::socket> plain;
  std::optional<ssl::stream<tcp::socket>> tls;
  beast::flat_buffer buffer;  // bytes read past one response belong to the next
  std::string key;
  Clock::time_point idle_since;
};

// True when an idle connection is still usable: nothing to read and not closed by the server.
bool still_open(Connection& connection) noexcept {
  char byte = 0;
  const ssize_t n = ::recv(connection.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

// --- the service -----------------------------------------------------------------------------------

struct Service::Impl {
  Impl(config::HttpClientConfig c, ProxySettings p, metrics::Registry& r)
      : config(std::move(c)), proxies(std::move(p)), registry(r), work(io.get_executor()) {}

  std::unique_ptr<Connection> take(const std::string& key);
  void put(std::unique_ptr<Connection> connection);

  const config::HttpClientConfig config;
  const ProxySettings proxies;
  metrics::Registry& registry;
  std::shared_ptr<spdlog::logger> log = core::logger("http_client");
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  ssl::context tls{ssl::context::tls_client};
  sdk::Status status;
  std::vector<std::thread> threads;

  mutable std::mutex pool_mutex;
  std::map<std::string, std::deque<std::unique_ptr<Connection>>, std::less<>> idle;

  std::mutex clients_mutex;
  std::vector<std::weak_ptr<PluginClient::Calls>> clients;
  bool stopped = false;
};

std::unique_ptr<Connection> Service::Impl::take(const std::string& key) {
  std::vector<std::unique_ptr<Connection>> dropped;  // closed outside the lock
  std::lock_guard lock(pool_mutex);
  const auto it = idle.find(key);
  if (it == idle.end()) return nullptr;
  const auto oldest_usable = Clock::now() - std::chrono::milliseconds(config.pool_idle_timeout_ms);
  std::unique_ptr<Connection> found;
  while (!it->second.empty() && !found) {
    std::unique_ptr<Connection> candidate = std::move(it->second.back());
    it->second.pop_back();
    if (candidate->idle_since >= oldest_usable && still_open(*candidate)) {
      found = std::move(candidate);
    } else {
      dropped.push_back(std::move(candidate));
    }
  }
  // Entries older than the idle timeout sit at the front: drop them too.
  while (!it->second.empty() && it->second.front()->idle_since < oldest_usable) {
    dropped.push_back(std::move(it->second.front()));
    it->second.pop_front();
  }
  if (it->second.empty()) idle.erase(it);
  return found;
}

void Service::Impl::put(std::unique_ptr<Connection> connection) {
  if (config.pool_max_idle_per_host == 0) return;
  connection->idle_since = Clock::now();
  std::unique_ptr<Connection> evicted;
  std::lock_guard lock(pool_mutex);
  auto& queue = idle[connection->key];
  queue.push_back(std::move(connection));
  if (queue.size() > config.pool_max_idle_per_host) {
    evicted = std::move(queue.front());
    queue.pop_front();
  }
}

// --- one call ----------------------------------------------------------------------------------

struct PluginClient::Calls {
  explicit Calls(std::string id) : plugin_id(std::move(id)) {}

  const std::string plugin_id;
  std::mutex mutex;
  std::condition_variable finished;
  bool closed = false;
  std::uint64_t next_id = 0;
  // Running calls: how to cancel each.
  std::map<std::uint64_t, std::function<void()>> running;
  // Refused calls whose completion (plugin code) is posted but has not run yet: close() waits for
  // them too, or a refusal of a call made from a completion could run after the library is gone.
  std::size_t refusals_queued = 0;
};

namespace {

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  using Completion = sdk::HttpClient::Completion;

  Exchange(std::shared_ptr<Service::Impl> service, std::shared_ptr<PluginClient::Calls> calls,
           const sdk::HttpRequest* request, std::optional<sdk::HttpRequest> owned, Url url, Completion done)
      : service_(std::move(service)),
        calls_(std::move(calls)),
        owned_(std::move(owned)),
        request_(owned_ ? &*owned_ : request),
        url_(std::move(url)),
        proxy_(service_->proxies.proxy_for(url_)),
        done_(std::move(done)),
        strand_(asio::make_strand(service_->io)),
        timer_(strand_),
        resolver_(strand_),
        started_(Clock::now()) {
    const auto& c = service_->config;
    connect_ = or_default(request_->timeouts.connect, c.connect_timeout_ms);
    first_byte_ = or_default(request_->timeouts.first_byte, c.first_byte_timeout_ms);
    idle_ = or_default(request_->timeouts.idle, c.idle_timeout_ms);
    total_ = or_default(request_->timeouts.total, c.total_timeout_ms);
    max_response_bytes_ =
        request_->max_response_bytes > 0 ? request_->max_response_bytes : c.max_response_bytes;
    total_deadline_ = started_ + total_;
    pool_key_ = url_.origin() + (proxy_ != nullptr ? " via " + proxy_->url.authority() : "");
  }

  // Registers the call with its client and the token, then runs it on its strand.
  void start(const sdk::CancelToken& cancel) {
    {
      std::lock_guard lock(calls_->mutex);
      if (calls_->closed) {
        // close() ran since the caller checked: it waits for registered calls only, so this one must
        // not start. Nothing runs on the strand yet, so finishing here is safe.
        closed_before_start_ = true;
      } else {
        id_ = calls_->next_id++;
        calls_->running.emplace(id_, [weak = weak_from_this()] {
          if (auto self = weak.lock()) self->cancel();
        });
      }
    }
    if (closed_before_start_) {
      finish(sdk::Status::unavailable("outbound HTTP is closed: the plugin is shutting down"));
      return;
    }
    cancel_registration_.emplace(cancel, CancelFn{weak_from_this()});
    asio::co_spawn(strand_, run(shared_from_this()), asio::detached);
  }

  // Any thread: closes the connection on the call's strand.
  void cancel() {
    asio::post(strand_, [self = shared_from_this()] {
      if (self->finished_) return;
      self->cancelled_ = true;
      self->abort_io();
    });
  }

 private:
  struct CancelFn {
    std::weak_ptr<Exchange> exchange;
    void operator()() const noexcept {
      if (auto self = exchange.lock()) self->cancel();
    }
  };

  static asio::awaitable<void> run(std::shared_ptr<Exchange> self) {
    sdk::Result<sdk::HttpResponse> result = sdk::Status::internal("the call did not run");
    try {
      result = co_await self->attempt();
    } catch (const std::exception& e) {
      result = sdk::Status::internal(self->describe() + ": " + e.what());
    }
    self->finish(std::move(result));
  }

  asio::awaitable<sdk::Result<sdk::HttpResponse>> attempt() {
    if (aborted()) co_return failure("starting", {});  // cancelled before the strand ran the call
    for (int attempt = 0;; ++attempt) {
      conn_ = service_->take(pool_key_);
      const bool reused = conn_ != nullptr;
      if (!reused) {
        if (auto status = co_await connect(); !status.ok()) co_return status;
      }
      sdk::HttpResponse response;
      response.reused_connection = reused;
      bool received = false;
      beast::error_code ec;
      auto status = co_await exchange(response, received, ec);
      if (status.ok()) co_return response;
      // A kept-alive connection the server closed meanwhile: one fresh try, when repeating is safe.
      if (reused && !received && attempt == 0 && !cancelled_ && !expired_ && stale_connection_error(ec) &&
          idempotent(request_->method)) {
        conn_.reset();
        continue;
      }
      co_return status;
    }
  }

  asio::awaitable<sdk::Status> connect() {
    beast::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    arm(Phase::kConnect, connect_);
    const Url& hop = proxy_ != nullptr ? proxy_->url : url_;
    const auto endpoints = co_await resolver_.async_resolve(hop.host, std::to_string(hop.port), token);
    if (ec || aborted()) co_return failure("resolving " + hop.host, ec);
    conn_ = std::make_unique<Connection>(tcp::socket(service_->io), pool_key_);
    co_await asio::async_connect(*conn_->plain, endpoints, token);
    if (ec || aborted()) co_return failure(proxy_ != nullptr ? "connecting to the proxy" : "connecting", ec);
    record_connection();
    if (proxy_ != nullptr && url_.tls) {
      http::request<http::empty_body> tunnel{http::verb::connect, url_.authority(), 11};
      tunnel.set(http::field::host, url_.authority());
      if (!proxy_->authorization.empty()) tunnel.set(http::field::proxy_authorization, proxy_->authorization);
      co_await http::async_write(*conn_->plain, tunnel, token);
      if (ec || aborted()) co_return failure("sending CONNECT to the proxy", ec);
      http::response_parser<http::empty_body> answer;
      answer.skip(true);  // a 2xx answer to CONNECT has no body; the tunnel starts after the head
      co_await http::async_read(*conn_->plain, conn_->buffer, answer, token);
      if (ec || aborted()) co_return failure("reading the proxy's answer to CONNECT", ec);
      if (answer.get().result_int() / 100 != 2) {
        co_return sdk::Status::unavailable(describe() + ": the proxy refused the tunnel with status " +
                                           std::to_string(answer.get().result_int()));
      }
    }
    if (url_.tls) {
      if (!service_->status.ok()) co_return service_->status;
      conn_->tls.emplace(std::move(*conn_->plain), service_->tls);
      conn_->plain.reset();
      boost::system::error_code not_ip;
      (void)asio::ip::make_address(url_.host, not_ip);
      // SNI names the host; an IP address is not sent (RFC 6066), but it is still verified.
      if (not_ip && SSL_set_tlsext_host_name(conn_->tls->native_handle(), url_.host.c_str()) != 1) {
        co_return sdk::Status::internal(describe() + ": could not set the TLS server name");
      }
      conn_->tls->set_verify_mode(ssl::verify_peer);
      conn_->tls->set_verify_callback(ssl::host_name_verification(url_.host));
      co_await conn_->tls->async_handshake(ssl::stream_base::client, token);
      if (ec || aborted()) co_return failure("TLS handshake", ec);
    }
    co_return sdk::Status{};
  }

  asio::awaitable<sdk::Status> exchange(sdk::HttpResponse& response, bool& received, beast::error_code& ec) {
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    const sdk::HttpRequest& in = *request_;
    http::request<http::span_body<const char>> out;
    out.version(11);
    if (const http::verb verb = http::string_to_verb(in.method); verb != http::verb::unknown) {
      out.method(verb);
    } else {
      out.method_string(in.method);
    }
    out.target(proxy_ != nullptr && !url_.tls ? url_.origin() + url_.target : url_.target);
    bool has_host = false;
    bool has_agent = false;
    for (const sdk::HttpHeader& header : in.headers) {
      has_host = has_host || iequals(header.name, "host");
      has_agent = has_agent || iequals(header.name, "user-agent");
      out.insert(header.name, header.value);
    }
    if (!has_host) {
      const std::string authority = url_.authority();
      const bool default_port = url_.port == (url_.tls ? 443 : 80);
      out.set(http::field::host, default_port ? authority.substr(0, authority.rfind(':')) : authority);
    }
    if (!has_agent) out.set(http::field::user_agent, "samokoder");
    if (proxy_ != nullptr && !url_.tls && !proxy_->authorization.empty()) {
      out.set(http::field::proxy_authorization, proxy_->authorization);
    }
    out.body() = {in.body.data(), in.body.size()};
    out.keep_alive(true);
    out.prepare_payload();
    trace_request(out);

    // Piece by piece, so that the idle timeout bounds each silence rather than the whole upload.
    http::request_serializer<http::span_body<const char>> serializer(out);
    while (!serializer.is_done()) {
      arm(Phase::kIdle, idle_);
      co_await conn_->on_stream(
          [&](auto& stream) { return http::async_write_some(stream, serializer, token); });
      if (ec || aborted()) co_return failure("sending the request", ec);
    }
    sent_bytes_ = in.body.size();

    arm(Phase::kFirstByte, first_byte_);
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(max_response_bytes_);
    if (out.method() == http::verb::head) parser.skip(true);
    co_await conn_->on_stream(
        [&](auto& stream) { return http::async_read_header(stream, conn_->buffer, parser, token); });
    received = !ec || conn_->buffer.size() > 0;
    if (ec || aborted()) co_return failure("reading the response headers", ec);

    sdk::HttpResponseHead head;
    head.status = parser.get().result_int();
    for (const auto& field : parser.get()) {
      head.headers.push_back({std::string(field.name_string()), std::string(field.value()), false});
    }
    response.status = head.status;
    response.headers = head.headers;
    if (in.on_headers) {
      bool more = true;
      if (auto status = guarded("on_headers", [&] { more = in.on_headers(head); }); !status.ok())
        co_return status;
      if (!more) {
        response.stopped = true;
        conn_.reset();  // the unread body makes the connection useless
        co_return sdk::Status{};
      }
    }

    std::array<char, 16 * 1024> piece{};
    while (!parser.is_done()) {
      parser.get().body().data = piece.data();
      parser.get().body().size = piece.size();
      arm(Phase::kIdle, idle_);
      // read_some hands over what arrived; async_read would wait until the piece buffer is full.
      co_await conn_->on_stream(
          [&](auto& stream) { return http::async_read_some(stream, conn_->buffer, parser, token); });
      if (ec == http::error::need_buffer) ec = {};
      if (ec || aborted()) co_return failure("reading the response body", ec);
      const std::size_t n = piece.size() - parser.get().body().size;
      if (n == 0) continue;
      response.body_bytes += n;
      received_bytes_ = response.body_bytes;
      const std::string_view data(piece.data(), n);
      if (!in.on_body) {
        response.body.append(data);
        continue;
      }
      bool more = true;
      if (auto status = guarded("on_body", [&] { more = in.on_body(data); }); !status.ok()) co_return status;
      if (!more) {
        response.stopped = true;
        conn_.reset();  // closes at once: the rest of the body is not read
        co_return sdk::Status{};
      }
    }
    if (parser.keep_alive()) service_->put(std::move(conn_));
    co_return sdk::Status{};
  }

  // Runs a plugin callback; what it throws fails the call.
  template <typename Fn>
  sdk::Status guarded(std::string_view name, Fn&& fn) {
    try {
      fn();
      return {};
    } catch (const std::exception& e) {
      return sdk::Status::internal(describe() + ": " + std::string(name) + " threw: " + e.what());
    } catch (...) {
      return sdk::Status::internal(describe() + ": " + std::string(name) + " threw");
    }
  }

  // Bounds the next step by `limit` and what is left of the total.
  void arm(Phase phase, Clock::duration limit) {
    const auto phase_deadline = Clock::now() + limit;
    armed_ = phase_deadline < total_deadline_ ? phase : Phase::kTotal;
    timer_.expires_at(std::min(phase_deadline, total_deadline_));
    timer_.async_wait(
        [self = shared_from_this(), generation = ++arm_generation_](const beast::error_code& ec) {
          if (ec || generation != self->arm_generation_ || self->finished_) return;
          self->expired_ = self->armed_;
          self->abort_io();
        });
  }

  bool aborted() const noexcept { return cancelled_ || expired_.has_value(); }

  void abort_io() {
    resolver_.cancel();
    if (conn_) {
      beast::error_code ignored;
      conn_->socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn_->socket().close(ignored);
    }
  }

  std::string describe() const { return request_->method + " " + url_.origin(); }

  std::chrono::milliseconds limit_of(Phase phase) const {
    switch (phase) {
      case Phase::kConnect:
        return connect_;
      case Phase::kFirstByte:
        return first_byte_;
      case Phase::kIdle:
        return idle_;
      case Phase::kTotal:
        return total_;
    }
    return total_;
  }

  // The Status for a step that ended with `ec` or was aborted: cancellation and timeouts first.
  sdk::Status failure(const std::string& step, const beast::error_code& ec) const {
    if (cancelled_) return sdk::Status::cancelled(describe() + ": cancelled by the caller while " + step);
    if (expired_) {
      return sdk::Status::deadline_exceeded(describe() + ": " + std::string(phase_name(*expired_)) +
                                            " timeout (" + std::to_string(limit_of(*expired_).count()) +
                                            " ms) passed while " + step);
    }
    if (ec == http::error::body_limit) {
      return sdk::Status::resource_exhausted(describe() +
                                             ": the response body is larger than max_response_bytes (" +
                                             std::to_string(max_response_bytes_) + ")");
    }
    if (ec == http::error::header_limit) {
      return sdk::Status::resource_exhausted(describe() + ": the response headers are larger than " +
                                             std::to_string(kHeaderLimit) + " bytes");
    }
    if (ec == http::error::partial_message || stale_connection_error(ec)) {
      return sdk::Status::unavailable(describe() + ": the server closed the connection while " + step);
    }
    return sdk::Status::unavailable(describe() + ": " + step + " failed: " + ec.message());
  }

  void trace_request(const http::request<http::span_body<const char>>& out) const {
    if (!service_->log->should_log(spdlog::level::trace)) return;
    std::string headers;
    for (const auto& field : out) {
      const sdk::HttpHeader header{std::string(field.name_string()), std::string(field.value()), false};
      const bool secret = is_secret(header) || std::any_of(request_->headers.begin(), request_->headers.end(),
                                                           [&](const sdk::HttpHeader& h) {
                                                             return h.secret && iequals(h.name, header.name);
                                                           });
      headers += (headers.empty() ? "" : ", ") + header.name + ": " +
                 (secret ? std::string(sdk::kRedacted) : header.value);
    }
    service_->log->trace("plugin {}: {} headers: {}", calls_->plugin_id, describe(),
                         scrub(headers, *request_));
  }

  metrics::Labels labels() const { return {{"plugin", calls_->plugin_id}, {"host", url_.authority()}}; }

  void record_connection() const {
    service_->registry.counter("samokoder_http_client_connections_total", kConnectionsHelp, labels()).add();
  }

  void finish(sdk::Result<sdk::HttpResponse> result) {
    finished_ = true;
    timer_.cancel();
    if (conn_) abort_io();
    conn_.reset();
    if (!result.ok())
      result = sdk::Status(result.status().code(), scrub(result.status().message(), *request_));

    const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    auto& registry = service_->registry;
    metrics::Labels by = labels();
    registry.histogram("samokoder_http_client_request_seconds", kSecondsHelp, by).observe(seconds);
    registry.counter("samokoder_http_client_sent_bytes_total", kSentHelp, by)
        .add(static_cast<double>(sent_bytes_));
    registry.counter("samokoder_http_client_received_bytes_total", kReceivedHelp, by)
        .add(static_cast<double>(received_bytes_));
    if (result.ok()) {
      by.emplace_back("class", std::to_string(result->status / 100) + "xx");
      registry.counter("samokoder_http_client_requests_total", kRequestsHelp, by).add();
      service_->log->debug("plugin {}: {} -> {} in {:.3f} s, {} body bytes{}", calls_->plugin_id, describe(),
                           result->status, seconds, result->body_bytes, result->stopped ? " (stopped)" : "");
    } else {
      by.emplace_back("code", std::string(sdk::status_code_name(result.status().code())));
      registry.counter("samokoder_http_client_errors_total", kErrorsHelp, by).add();
      service_->log->debug("plugin {}: {}", calls_->plugin_id, result.status().message());
    }

    cancel_registration_.reset();
    try {
      done_(std::move(result));
    } catch (const std::exception& e) {
      service_->log->error("plugin {}: the completion of {} threw: {}", calls_->plugin_id, describe(),
                           e.what());
    } catch (...) {
      service_->log->error("plugin {}: the completion of {} threw", calls_->plugin_id, describe());
    }
    // The plugin's callables go before the client hears that the call is over (close() waits for it).
    done_ = nullptr;
    owned_.reset();
    request_ = nullptr;
    std::lock_guard lock(calls_->mutex);
    if (!closed_before_start_) calls_->running.erase(id_);
    calls_->finished.notify_all();
  }

  const std::shared_ptr<Service::Impl> service_;
  const std::shared_ptr<PluginClient::Calls> calls_;
  std::optional<sdk::HttpRequest> owned_;
  const sdk::HttpRequest* request_;
  const Url url_;
  const Proxy* const proxy_;
  Completion done_;
  std::uint64_t id_ = 0;
  bool closed_before_start_ = false;
  std::optional<sdk::OnCancel<CancelFn>> cancel_registration_;

  Strand strand_;
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  std::unique_ptr<Connection> conn_;
  std::string pool_key_;

  Clock::time_point started_;
  Clock::time_point total_deadline_;
  std::chrono::milliseconds connect_{}, first_byte_{}, idle_{}, total_{};
  std::uint64_t max_response_bytes_ = 0;
  std::uint64_t sent_bytes_ = 0;
  std::uint64_t received_bytes_ = 0;

  // Touched only on the strand.
  Phase armed_ = Phase::kTotal;
  std::uint64_t arm_generation_ = 0;
  std::optional<Phase> expired_;
  bool cancelled_ = false;
  bool finished_ = false;
};

// Checks what can be refused before anything is sent; the message quotes no header value.
sdk::Result<Url> validate(const sdk::HttpRequest& request, const config::HttpClientConfig& config) {
  if (!is_token(request.method)) return sdk::Status::invalid_argument("the method is not an HTTP token");
  auto url = parse_url(request.url);
  if (!url.ok()) return url.status();
  for (const sdk::HttpHeader& header : request.headers) {
    if (!is_token(header.name)) return sdk::Status::invalid_argument("a header name is not an HTTP token");
    for (std::string_view own : {"connection", "transfer-encoding", "content-length", "upgrade", "te"}) {
      if (iequals(header.name, own)) {
        return sdk::Status::invalid_argument("header " + header.name + " is set by the client itself");
      }
    }
    if (header.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return sdk::Status::invalid_argument("the value of header " + header.name +
                                           " holds a line break or NUL (not quoted here)");
    }
  }
  if (request.body.size() > config.max_request_bytes) {
    return sdk::Status::resource_exhausted("the request body (" + std::to_string(request.body.size()) +
                                           " bytes) is larger than http_client.max_request_bytes (" +
                                           std::to_string(config.max_request_bytes) + ")");
  }
  return url;
}

}  // namespace

// --- Service and PluginClient ----------------------------------------------------------------------

Service::Service(config::HttpClientConfig config, ProxySettings proxies, metrics::Registry& registry)
    : impl_(std::make_shared<Impl>(std::move(config), std::move(proxies), registry)) {
  beast::error_code ec;
  impl_->tls.set_default_verify_paths(ec);
  if (ec) impl_->log->warn("the system CA store could not be loaded: {}", ec.message());
  impl_->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!impl_->config.extra_ca_file.empty()) {
    impl_->tls.load_verify_file(impl_->config.extra_ca_file, ec);
    if (ec) {
      impl_->status =
          sdk::Status::failed_precondition("http_client.extra_ca_file " + impl_->config.extra_ca_file +
                                           " could not be loaded: " + ec.message());
    }
  }
  for (std::uint32_t i = 0; i < std::max<std::uint32_t>(1, impl_->config.threads); ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] {
      t_service_thread = true;
      impl->io.run();
    });
  }
}

Service::~Service() {
  std::vector<std::shared_ptr<PluginClient::Calls>> clients;
  {
    std::lock_guard lock(impl_->clients_mutex);
    impl_->stopped = true;
    for (const auto& weak : impl_->clients) {
      if (auto calls = weak.lock()) clients.push_back(std::move(calls));
    }
  }
  // A client outliving the service (a plugin kept until exit) is refused from now on.
  for (const auto& calls : clients) {
    std::unique_lock lock(calls->mutex);
    calls->closed = true;
    for (const auto& [id, cancel] : calls->running)
      cancel();
    calls->finished.wait(lock, [&] { return calls->running.empty(); });
  }
  {
    std::lock_guard lock(impl_->pool_mutex);
    impl_->idle.clear();
  }
  // Every call has finished; letting the loop run dry (rather than stop()) runs the handlers still
  // queued, such as cancelled timer waits, so none is left holding its call.
  impl_->work.reset();
  for (auto& thread : impl_->threads)
    thread.join();
}

const sdk::Status& Service::status() const noexcept {
  return impl_->status;
}

std::unique_ptr<PluginClient> Service::client(std::string plugin_id) {
  std::unique_ptr<PluginClient> client(new PluginClient(impl_, std::move(plugin_id)));
  std::lock_guard lock(impl_->clients_mutex);
  std::erase_if(impl_->clients, [](const auto& weak) { return weak.expired(); });
  impl_->clients.push_back(client->calls_);
  if (impl_->stopped) client->calls_->closed = true;
  return client;
}

std::size_t Service::idle_connections() const {
  std::lock_guard lock(impl_->pool_mutex);
  std::size_t count = 0;
  for (const auto& [key, queue] : impl_->idle)
    count += queue.size();
  return count;
}

PluginClient::PluginClient(std::shared_ptr<Service::Impl> service, std::string plugin_id)
    : service_(std::move(service)), calls_(std::make_shared<Calls>(std::move(plugin_id))) {}

PluginClient::~PluginClient() {
  close();
}

void PluginClient::close() noexcept {
  std::unique_lock lock(calls_->mutex);
  calls_->closed = true;
  for (const auto& [id, cancel] : calls_->running)
    cancel();
  calls_->finished.wait(lock, [&] { return calls_->running.empty() && calls_->refusals_queued == 0; });
}

void PluginClient::send_async(sdk::HttpRequest request, sdk::CancelToken cancel, Completion done) noexcept {
  try {
    auto refuse = [&](sdk::Status status) {
      if (service_->io.stopped()) {  // the service is gone: nothing would run a posted completion
        done(std::move(status));
        return;
      }
      {
        std::lock_guard lock(calls_->mutex);
        ++calls_->refusals_queued;
      }
      asio::post(service_->io,
                 [calls = calls_, done = std::move(done), status = std::move(status)]() mutable {
                   try {
                     done(std::move(status));
                   } catch (...) {  // nothing to tell: the call never started
                   }
                   done = nullptr;  // the plugin's callable goes before close() may return
                   std::lock_guard lock(calls->mutex);
                   --calls->refusals_queued;
                   calls->finished.notify_all();
                 });
    };
    bool closed = false;
    {
      std::lock_guard lock(calls_->mutex);
      closed = calls_->closed;
    }
    if (closed)
      return refuse(sdk::Status::unavailable("outbound HTTP is closed: the plugin is shutting down"));
    auto url = validate(request, service_->config);
    if (!url.ok()) return refuse(url.status());
    auto exchange = std::make_shared<Exchange>(service_, calls_, nullptr, std::move(request),
                                               std::move(url).value(), std::move(done));
    exchange->start(cancel);
  } catch (const std::exception& e) {
    service_->log->error("plugin {}: send_async failed: {}", calls_->plugin_id, e.what());
  }
}

sdk::Result<sdk::HttpResponse> PluginClient::send(const sdk::HttpRequest& request,
                                                  sdk::CancelToken cancel) noexcept {
  try {
    if (t_service_thread) {
      return sdk::Status::failed_precondition(
          "send() blocks, and was called on an HTTP service thread (a callback); use send_async()");
    }
    {
      std::lock_guard lock(calls_->mutex);
      if (calls_->closed)
        return sdk::Status::unavailable("outbound HTTP is closed: the plugin is shutting down");
    }
    auto url = validate(request, service_->config);
    if (!url.ok()) return url.status();
    struct Waiter {
      std::mutex mutex;
      std::condition_variable ready;
      std::optional<sdk::Result<sdk::HttpResponse>> result;
    };
    auto waiter = std::make_shared<Waiter>();
    auto exchange =
        std::make_shared<Exchange>(service_, calls_, &request, std::nullopt, std::move(url).value(),
                                   [waiter](sdk::Result<sdk::HttpResponse> result) {
                                     std::lock_guard lock(waiter->mutex);
                                     waiter->result.emplace(std::move(result));
                                     waiter->ready.notify_all();
                                   });
    exchange->start(cancel);
    exchange.reset();
    std::unique_lock lock(waiter->mutex);
    waiter->ready.wait(lock, [&] { return waiter->result.has_value(); });
    return std::move(*waiter->result);
  } catch (const std::exception& e) {
    return sdk::Status::internal(std::string("send failed: ") + e.what());
  }
}

sdk::HttpClient& unavailable_client() noexcept {
  class Unavailable final : public sdk::HttpClient {
   public:
    sdk::Result<sdk::HttpResponse> send(const sdk::HttpRequest&, sdk::CancelToken) noexcept override {
      return status();
    }
    void send_async(sdk::HttpRequest, sdk::CancelToken, Completion done) noexcept override {
      try {
        done(status());
      } catch (...) {  // nothing to tell: the call never started
      }
    }

   private:
    static sdk::Status status() {
      return sdk::Status::unavailable("outbound HTTP is not available in this process");
    }
  };
  static Unavailable client;
  return client;
}

}  // namespace samokoder::outbound_http
