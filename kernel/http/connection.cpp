#include "http/connection.hpp"

#include <array>
#include <charconv>
#include <ctime>
#include <exception>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include "http/stream_session.hpp"

namespace samokoder::http::detail {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::size_t kReadSize = 16 * 1024;
// A closing connection reads and discards what the client still sends, so that the close does not
// turn into a reset that destroys our error response in flight; this bounds how much and how long.
constexpr std::size_t kMaxDrainBytes = 1024 * 1024;
constexpr std::chrono::milliseconds kMaxDrainTime{2000};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// Retry-After of a 503 for a full pool queue: queues drain in well under a second unless something is
// stuck, and a client should not hammer a stuck pool either.
constexpr int kRetryAfterSeconds = 1;

Response internal_error() {
  return Response::problem(
      500, "internal", "Internal Server Error",
      "The server failed to handle the request; quote the request id when reporting it.");
}

// Runs a handler; a throw becomes a 500 and a log line.
Response run_route(const Route& route, Request& request, spdlog::logger& log) noexcept {
  try {
    return route.handler(request);
  } catch (const std::exception& e) {
    log.error("handler {} {} failed (request {}): {}", request.method_string(), route.pattern,
              request.request_id(), e.what());
  } catch (...) {
    log.error("handler {} {} failed (request {}): unknown exception", request.method_string(), route.pattern,
              request.request_id());
  }
  return internal_error();
}

// "Sun, 06 Nov 1994 08:49:37 GMT", formatted once per second per thread.
std::string_view http_date() {
  struct Cache {
    std::time_t second = -1;
    std::array<char, 32> text{};
    std::size_t size = 0;
  };
  thread_local Cache cache;
  const std::time_t now = std::time(nullptr);
  if (now != cache.second) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&now, &tm);
    const int n = std::snprintf(cache.text.data(), cache.text.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                                kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900,
                                tm.tm_hour, tm.tm_min, tm.tm_sec);
    cache.size = n > 0 ? static_cast<std::size_t>(n) : 0;
    cache.second = now;
  }
  return {cache.text.data(), cache.size};
}

void append_number(std::string& out, std::size_t value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return boost::beast::iequals(a, b);
}

bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Names and values a handler could use to split the response or smuggle a second one.
bool is_valid_header(std::string_view name, std::string_view value) noexcept {
  if (name.empty()) return false;
  for (char c : name) {
    if (!is_token_char(c)) return false;
  }
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Headers the server writes itself; a handler's copy is ignored.
bool is_framing_header(std::string_view name) noexcept {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "Connection") || iequals(name, "Keep-Alive") || iequals(name, "Date") ||
         iequals(name, "Server") || iequals(name, "X-Request-Id");
}

// Headers of a WebSocket handshake answer that Beast writes itself.
bool is_handshake_header(std::string_view name) noexcept {
  return is_framing_header(name) || iequals(name, "Upgrade") || iequals(name, "Sec-WebSocket-Accept") ||
         iequals(name, "Content-Type");
}

// A browser sends Origin with every WebSocket handshake and applies no CORS to it, so a page of any
// site could open a socket with the user's cookies (cross-site WebSocket hijacking). Accepted: no
// Origin (not a browser), a configured CORS origin, or the origin the request was sent to.
bool is_same_origin(std::string_view origin, std::string_view host) noexcept {
  const std::size_t scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos || host.empty()) return false;
  return iequals(origin.substr(scheme_end + 3), host);
}

std::string_view reason_phrase(unsigned status) {
  const std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return reason.starts_with('<') ? std::string_view() : reason;
}

}  // namespace

Connection::Connection(ServerCore& core, IoLoop& loop, Socket socket)
    : core_(core), loop_(loop), socket_(std::move(socket)) {}

Connection::~Connection() {
  // Only when the io_context is destroyed with this connection's handlers still queued (after stop()).
  complete_request();
  if (phase_ == Phase::kStreaming) {
    close();  // the stream's handler still hears on_close
  } else if (phase_ != Phase::kClosed) {
    loop_.unlink(this);
    core_.connection_closed();
  }
}

void Connection::start() {
  loop_.link(this);
  core_.connection_opened();
  boost::system::error_code ec;
  const auto endpoint = socket_.remote_endpoint(ec);
  remote_ = ec ? std::string("-") : endpoint.address().to_string();
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  begin_request();
}

void Connection::begin_request() {
  if (core_.stopping.load(std::memory_order_relaxed)) {
    close();
    return;
  }
  parser_.emplace();
  parser_->header_limit(core_.header_limit);
  // The route decides the body limit once the header is parsed; Beast would otherwise reject a large
  // Content-Length during header parsing, before the route is known.
  parser_->body_limit(boost::none);
  header_done_ = timed_out_ = close_after_ = linger_ = false;
  label_ = 0;
  match_ = RouteMatch{};
  request_.reset(remote_);
  const auto now = Clock::now();
  if (buffer_.size() == 0) {
    phase_ = Phase::kIdle;
    deadline_ = now + (first_request_ ? core_.request_timeout() : core_.keep_alive_timeout());
    read_some();
  } else {
    phase_ = Phase::kReading;
    started_ = now;
    deadline_ = now + core_.request_timeout();
    parse();
  }
}

void Connection::read_some() {
  socket_.async_read_some(buffer_.prepare(kReadSize),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      std::size_t bytes) { self->on_read(ec, bytes); });
}

void Connection::on_read(const boost::system::error_code& ec, std::size_t bytes) {
  if (phase_ == Phase::kClosed) return;
  if (timed_out_) {
    respond_error(408, "request_timeout", "Request Timeout", "The request did not arrive in time.");
    return;
  }
  if (ec) {
    close();
    return;
  }
  buffer_.commit(bytes);
  if (phase_ == Phase::kIdle) {
    phase_ = Phase::kReading;
    started_ = Clock::now();
    deadline_ = started_ + core_.request_timeout();
  }
  parse();
}

void Connection::parse() {
  while (buffer_.size() != 0) {
    boost::system::error_code ec;
    const std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec && ec != bhttp::error::need_more) {
      on_parse_error(ec);
      return;
    }
    if (!header_done_ && parser_->is_header_done()) {
      header_done_ = true;
      if (!on_header()) return;
    }
    if (parser_->is_done()) {
      on_request();
      return;
    }
    if (ec || used == 0) break;
  }
  read_some();
}

void Connection::on_parse_error(const boost::system::error_code& ec) {
  if (ec == bhttp::error::header_limit) {
    respond_error(431, "header_fields_too_large", "Request Header Fields Too Large",
                  "The request line and headers exceed " + std::to_string(core_.header_limit) + " bytes.");
  } else if (ec == bhttp::error::body_limit) {
    respond_error(413, "payload_too_large", "Payload Too Large", "The request body exceeds the size limit.");
  } else {
    respond_error(400, "bad_request", "Bad Request",
                  "The request is not valid HTTP/1.1 (" + ec.message() + ").");
  }
}

bool Connection::on_header() {
  const auto& message = parser_->get();
  request_.assign_request_id(message["X-Request-Id"]);
  if (!request_.parse_target(message.target())) {
    respond_error(400, "bad_request", "Bad Request", "The request target is not a valid path.");
    return false;
  }
  match_ = core_.router->match(message.method(), request_);
  label_ = match_.outcome == RouteMatch::Outcome::kNotFound ? 0 : match_.pattern_id + 1;

  std::size_t limit = core_.config.max_body_bytes;
  if (match_.route != nullptr && match_.route->options.max_body_bytes) {
    limit = *match_.route->options.max_body_bytes;
  }
  if (const auto length = parser_->content_length(); length && *length > limit) {
    respond_error(413, "payload_too_large", "Payload Too Large",
                  "The request body exceeds the limit of " + std::to_string(limit) + " bytes.");
    return false;
  }
  parser_->body_limit(limit);  // enforced by Beast as a chunked body grows
  parser_->eager(true);

  if (!parser_->is_done() && buffer_.size() == 0 && message.version() >= 11 &&
      iequals(message[bhttp::field::expect], "100-continue")) {
    asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = shared_from_this()](const boost::system::error_code& write_ec, std::size_t) {
                        if (self->phase_ == Phase::kClosed) return;
                        if (write_ec) {
                          self->close();
                          return;
                        }
                        self->parse();
                      });
    return false;
  }
  return true;
}

void Connection::on_request() {
  request_.message_ = parser_->release();
  parser_.reset();
  phase_ = Phase::kHandling;
  deadline_ = Clock::time_point::max();
  in_flight_ = true;
  core_.metrics.in_flight.add(1);
  response_ = Response();
  dispatch();
}

void Connection::dispatch() {
  const bhttp::verb method = request_.method();
  if (method == bhttp::verb::options && match_.outcome == RouteMatch::Outcome::kMethodNotAllowed) {
    answer_options();
    finish();
    return;
  }
  for (const auto& middleware : core_.middleware) {
    std::optional<Response> early;
    try {
      early = middleware->before(request_);
    } catch (const std::exception& e) {
      core_.log->error("middleware before() failed for {} {} (request {}): {}", request_.method_string(),
                       request_.raw_path(), request_.request_id(), e.what());
      early = internal_error();
    } catch (...) {
      core_.log->error("middleware before() failed for {} {} (request {}): unknown exception",
                       request_.method_string(), request_.raw_path(), request_.request_id());
      early = internal_error();
    }
    if (early) {
      response_ = std::move(*early);
      finish();
      return;
    }
  }
  switch (match_.outcome) {
    case RouteMatch::Outcome::kNotFound:
      response_ = Response::problem(404, "not_found", "Not Found", "No resource exists at this path.");
      finish();
      return;
    case RouteMatch::Outcome::kMethodNotAllowed:
      if (method == bhttp::verb::unknown) {
        response_ = Response::problem(501, "not_implemented", "Not Implemented",
                                      "The server does not implement this request method.");
      } else {
        response_ = Response::problem(405, "method_not_allowed", "Method Not Allowed",
                                      "This resource does not support the request method.");
      }
      response_.set_header(
          "Allow", Router::format_methods(match_.allowed_methods | Router::method_bit(bhttp::verb::options)));
      finish();
      return;
    case RouteMatch::Outcome::kFound:
      break;
  }
  const Route& route = *match_.route;
  if (route.options.dispatch == Dispatch::kInline) {
    response_ = run_route(route, request_, *core_.log);
    finish();
    return;
  }
  dispatch_to_pool(route);
}

// A handler's call on a pool thread. It owns the request while the call runs, so a call that overruns
// its deadline can be answered on the connection while its thread still reads the request, and it keeps
// the router (the route and its handler) alive for a call that outlives the server.
struct PendingCall {
  PendingCall(std::shared_ptr<const Router> router_in, std::shared_ptr<spdlog::logger> log_in,
              const Route& route_in)
      : router(std::move(router_in)), log(std::move(log_in)), route(route_in) {}
  const std::shared_ptr<const Router> router;
  const std::shared_ptr<spdlog::logger> log;
  const Route& route;
  Request request;
  Response response;
};

void Connection::dispatch_to_pool(const Route& route) {
  WorkPool& pool = route.options.dispatch == Dispatch::kPluginCall ? *core_.plugin_pool : *core_.request_pool;
  auto call = std::make_shared<PendingCall>(core_.router, core_.log, route);
  call->request = std::move(request_);
  // What an answer without the request needs (a timeout's): its id, method, version and, for CORS, the
  // origin.
  request_ = Request();
  request_.message_.method(call->request.method());
  request_.message_.version(call->request.version());
  request_.request_id_ = call->request.request_id_;
  request_.request_id_size_ = call->request.request_id_size_;
  if (const std::string_view origin = call->request.header("Origin"); !origin.empty())
    request_.message_.set(bhttp::field::origin, origin);

  std::string what = std::string(call->request.method_string()) + " " + route.pattern;
  const bool queued = pool.submit(
      std::move(what), [call] { call->response = run_route(call->route, call->request, *call->log); },
      [self = shared_from_this(), call](WorkPool::Outcome outcome) mutable {
        IoLoop& loop = self->loop_;
        asio::post(loop.context, [self = std::move(self), call = std::move(call), outcome] {
          self->on_call_finished(outcome, *call);
        });
      });
  if (queued) return;
  request_ = std::move(call->request);
  response_ = Response::problem(503, "overloaded", "Service Unavailable",
                                "The server has too much of this kind of work queued; retry later.");
  response_.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
  finish();
}

void Connection::answer_options() {
  response_ = Response::no_content();
  std::string methods =
      Router::format_methods(match_.allowed_methods | Router::method_bit(bhttp::verb::options));
  const bool preflight = !request_.header("Access-Control-Request-Method").empty();
  if (preflight && core_.is_allowed_origin(request_.header("Origin"))) {
    response_.headers.emplace_back("Access-Control-Allow-Methods", methods);
    response_.headers.emplace_back("Access-Control-Allow-Headers", core_.cors_allow_headers);
    response_.headers.emplace_back("Access-Control-Max-Age", core_.cors_max_age);
  }
  response_.headers.emplace_back("Allow", std::move(methods));
}

void Connection::on_call_finished(WorkPool::Outcome outcome, PendingCall& call) {
  if (phase_ == Phase::kClosed) {
    complete_request();
    return;
  }
  switch (outcome) {
    case WorkPool::Outcome::kDone:
      request_ = std::move(call.request);
      response_ = std::move(call.response);
      break;
    case WorkPool::Outcome::kTimedOut:
      // The call still runs and owns the request: this answer closes the connection instead of reading
      // the next request.
      request_.remote_address_ = remote_;
      response_ = Response::problem(504, "handler_timeout", "Gateway Timeout",
                                    "The request did not finish within the server's time limit for it.");
      close_after_ = true;
      break;
    case WorkPool::Outcome::kAbandoned:  // shutdown gave up on it
      close();
      complete_request();
      return;
  }
  finish();
}

void Connection::respond_error(unsigned status, std::string_view slug, std::string_view title,
                               std::string detail) {
  if (parser_ && header_done_) request_.message_ = parser_->release();
  parser_.reset();
  if (request_.request_id().empty()) request_.assign_request_id({});
  response_ = Response::problem(status, slug, title, detail);
  close_after_ = true;
  linger_ = true;
  finish();
}

void Connection::finish() {
  // Whatever becomes of the response (a middleware may replace it), a stream handler that does not get
  // its stream still hears on_close.
  const std::shared_ptr<StreamHandler> offered = response_.stream;
  vet_stream();
  finalize_response();
  const bool stream = starts_stream();
  const auto now = Clock::now();
  // Done before the write starts, so a client holding the response never sees its request in flight;
  // so a stream is not "in flight" either, and never holds up a graceful stop's drain.
  complete_request();
  record(now);
  if (offered && (!stream || response_.stream != offered)) {
    try {
      offered->on_close();
    } catch (const std::exception& e) {
      core_.log->error("stream handler on_close failed for {} (request {}): {}", request_.raw_path(),
                       request_.request_id(), e.what());
    } catch (...) {
      core_.log->error("stream handler on_close failed for {} (request {}): unknown exception",
                       request_.raw_path(), request_.request_id());
    }
  }
  if (stream) {
    start_stream();
    return;
  }
  response_.stream.reset();
  serialize_head();
  write(now);
}

// Answers a stream the server will not start: the server is stopping (a stream would end at once), or
// a WebSocket response to a request that is no valid handshake, or from a foreign page.
void Connection::vet_stream() {
  if (response_.stream_kind == Response::StreamKind::kNone) return;
  if (core_.stopping.load(std::memory_order_relaxed)) {
    response_ = Response::problem(503, "shutting_down", "Service Unavailable",
                                  "The server is stopping; retry on a new connection.");
    response_.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
    return;
  }
  if (response_.stream_kind != Response::StreamKind::kWebSocket) return;
  namespace websocket = boost::beast::websocket;
  const Request::Message& message = request_.message_;
  if (!websocket::is_upgrade(message)) {
    response_ = Response::problem(426, "upgrade_required", "Upgrade Required",
                                  "This resource is a WebSocket; send a WebSocket upgrade request.");
    response_.set_header("Upgrade", "websocket");
    return;
  }
  if (message[bhttp::field::sec_websocket_version] != "13") {
    response_ = Response::problem(426, "upgrade_required", "Upgrade Required",
                                  "The server speaks WebSocket version 13 only.");
    response_.set_header("Upgrade", "websocket");
    response_.set_header("Sec-WebSocket-Version", "13");
    return;
  }
  // A key is 16 random bytes in base64 (RFC 6455 section 4.1): 24 characters.
  if (message[bhttp::field::sec_websocket_key].size() != 24) {
    response_ = Response::problem(400, "bad_request", "Bad Request",
                                  "The WebSocket handshake lacks a valid Sec-WebSocket-Key.");
    return;
  }
  const std::string_view origin = request_.header("Origin");
  if (!origin.empty() && !core_.is_allowed_origin(origin) &&
      !is_same_origin(origin, request_.header("Host"))) {
    response_ = Response::problem(403, "forbidden_origin", "Forbidden",
                                  "WebSocket connections from this origin are not allowed.");
  }
}

void Connection::finalize_response() {
  auto valid_status = [this] {
    return (response_.status >= 200 && response_.status <= 599) ||
           (response_.status == 101 && response_.stream_kind == Response::StreamKind::kWebSocket);
  };
  if (!valid_status()) {
    core_.log->error("handler answered {} {} with invalid status {} (request {})", request_.method_string(),
                     request_.raw_path(), response_.status, request_.request_id());
    response_ = internal_error();
  }
  response_.render_problem(request_.raw_path(), request_.request_id());
  for (auto it = core_.middleware.rbegin(); it != core_.middleware.rend(); ++it) {
    try {
      (*it)->after(request_, response_);
    } catch (const std::exception& e) {
      core_.log->error("middleware after() failed for {} {} (request {}): {}", request_.method_string(),
                       request_.raw_path(), request_.request_id(), e.what());
      response_ = internal_error();
    } catch (...) {
      core_.log->error("middleware after() failed for {} {} (request {}): unknown exception",
                       request_.method_string(), request_.raw_path(), request_.request_id());
      response_ = internal_error();
    }
  }
  bool headers_ok = valid_status();
  for (const auto& [name, value] : response_.headers)
    headers_ok = headers_ok && is_valid_header(name, value);
  headers_ok = headers_ok && is_valid_header("Content-Type", response_.content_type);
  if (!headers_ok) {
    core_.log->error("response to {} {} has an invalid status or header (request {})",
                     request_.method_string(), request_.raw_path(), request_.request_id());
    response_ = internal_error();
  }
  response_.render_problem(request_.raw_path(), request_.request_id());
}

// Decides, once middleware had its say, whether the response starts its stream: only the answer the
// server would send anyway (SSE: 200 to anything but HEAD; WebSocket: 101 to an upgrade request).
bool Connection::starts_stream() {
  switch (response_.stream_kind) {
    case Response::StreamKind::kNone:
      return false;
    case Response::StreamKind::kServerSentEvents:
      return response_.stream && response_.status == 200 && request_.method() != bhttp::verb::head;
    case Response::StreamKind::kWebSocket:
      if (response_.status != 101) return false;
      if (response_.stream && boost::beast::websocket::is_upgrade(request_.message_)) return true;
      // Only a middleware swapping responses gets here: a 101 the server cannot honour.
      core_.log->error("WebSocket answer to {} {} without a handler or an upgrade request (request {})",
                       request_.method_string(), request_.raw_path(), request_.request_id());
      response_ = internal_error();
      response_.render_problem(request_.raw_path(), request_.request_id());
      return false;
  }
  return false;
}

void Connection::start_stream() {
  phase_ = Phase::kStreaming;
  deadline_ = Clock::time_point::max();  // the session keeps its own write deadline
  close_after_ = true;
  std::shared_ptr<StreamHandler> handler = std::move(response_.stream);
  const StreamOptions options = response_.stream_options;
  if (response_.stream_kind == Response::StreamKind::kServerSentEvents) {
    // HTTP/1.0 knows no chunked encoding: its body simply runs until the connection closes.
    const bool chunked = request_.version() >= 11;
    serialize_head(chunked ? Framing::kChunked : Framing::kUntilClose);
    stream_ = make_sse_stream(*this, std::move(handler), options, chunked, std::move(head_));
  } else {
    std::vector<std::pair<std::string, std::string>> headers;
    for (auto& [name, value] : response_.headers) {
      if (!is_handshake_header(name)) headers.emplace_back(std::move(name), std::move(value));
    }
    stream_ = make_websocket_session(*this, std::move(handler), options, std::move(headers));
  }
  response_ = Response();
  stream_->start();
}

void Connection::wake_stream() {
  if (phase_ == Phase::kStreaming) stream_->wake();
}

void Connection::serialize_head(Framing framing) {
  const unsigned status = response_.status;
  const bool bodyless_status = status == 204 || status == 304;
  send_body_ = !bodyless_status && request_.method() != bhttp::verb::head;
  // A stream ends its connection: it never has to hand it back to keep-alive reading.
  bool keep_alive = framing == Framing::kLength && !close_after_ && request_.message_.keep_alive() &&
                    !core_.stopping.load(std::memory_order_relaxed);
  close_after_ = !keep_alive;

  std::string& h = head_;
  h.clear();
  h += "HTTP/1.1 ";
  append_number(h, status);
  h += ' ';
  h += reason_phrase(status);
  h += "\r\nServer: samokoder\r\nDate: ";
  h += http_date();
  h += "\r\n";
  if (!response_.content_type.empty()) {
    h += "Content-Type: ";
    h += response_.content_type;
    h += "\r\n";
  }
  if (framing == Framing::kChunked) {
    h += "Transfer-Encoding: chunked\r\n";
  } else if (!bodyless_status && framing == Framing::kLength) {
    h += "Content-Length: ";
    append_number(h, response_.body.size());
    h += "\r\n";
  }
  h += "X-Request-Id: ";
  h += request_.request_id();
  h += "\r\n";
  if (!keep_alive) {
    h += "Connection: close\r\n";
  } else if (request_.version() < 11) {
    h += "Connection: keep-alive\r\n";
  }
  if (response_.headers.empty()) {
    h += core_.default_headers_block;
  } else {
    for (const auto& header : core_.default_headers) {
      if (!response_.has_header(header.name)) h += header.line;
    }
  }
  const std::string_view origin = request_.header("Origin");
  if (!origin.empty() && core_.is_allowed_origin(origin)) {
    h += "Access-Control-Allow-Origin: ";
    h += origin;
    h += "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
    h += core_.cors_expose_line;
  }
  for (const auto& [name, value] : response_.headers) {
    if (is_framing_header(name) || (!response_.content_type.empty() && iequals(name, "Content-Type")))
      continue;
    h += name;
    h += ": ";
    h += value;
    h += "\r\n";
  }
  h += "\r\n";
}

void Connection::record(Clock::time_point now) {
  const double seconds = std::chrono::duration<double>(now - started_).count();
  core_.metrics.record(label_, request_.method(), response_.status, seconds);
  if (core_.access_log_on.load(std::memory_order_relaxed) &&
      core_.access_log->should_log(spdlog::level::info)) {
    const std::string_view method = request_.method_string();
    const std::string_view path = request_.raw_path();
    core_.access_log->info("{} {} {} {} {:.3f}ms id={} remote={}", method.empty() ? "-" : method,
                           path.empty() ? "-" : path, response_.status, response_.body.size(),
                           seconds * 1000.0, request_.request_id(), remote_);
  }
}

void Connection::write(Clock::time_point now) {
  phase_ = Phase::kWriting;
  deadline_ = now + core_.request_timeout();
  const std::array<asio::const_buffer, 2> buffers{
      asio::buffer(head_), send_body_ ? asio::buffer(response_.body) : asio::const_buffer()};
  asio::async_write(
      socket_, buffers,
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) { self->on_write(ec); });
}

void Connection::on_write(const boost::system::error_code& ec) {
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    close();
    return;
  }
  if (close_after_) {
    if (linger_) {
      start_drain();
    } else {
      close();
    }
    return;
  }
  first_request_ = false;
  begin_request();
}

void Connection::complete_request() noexcept {
  if (!in_flight_) return;
  in_flight_ = false;
  core_.metrics.in_flight.add(-1);
}

void Connection::start_drain() {
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) {
    close();
    return;
  }
  phase_ = Phase::kDraining;
  deadline_ = Clock::now() + std::min<std::chrono::milliseconds>(core_.request_timeout(), kMaxDrainTime);
  drained_ = 0;
  buffer_.clear();
  drain_some();
}

void Connection::drain_some() {
  socket_.async_read_some(
      buffer_.prepare(kReadSize),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t bytes) {
        self->drained_ += bytes;
        if (ec || self->phase_ == Phase::kClosed || self->drained_ > kMaxDrainBytes) {
          self->close();
          return;
        }
        self->drain_some();
      });
}

void Connection::check_deadline(Clock::time_point now) {
  if (phase_ == Phase::kStreaming) {
    stream_->check_deadline(now);
    return;
  }
  if (now < deadline_) return;
  if (phase_ == Phase::kReading && !timed_out_) {
    // The pending read completes with operation_aborted and answers 408; if the next sweep still
    // finds the deadline passed (the 100-continue write was stuck), the connection is closed.
    timed_out_ = true;
    boost::system::error_code ec;
    socket_.cancel(ec);
    return;
  }
  close();
}

void Connection::close_if_idle() {
  if (phase_ == Phase::kIdle) close();
}

void Connection::shutdown_stream() {
  if (phase_ == Phase::kStreaming) stream_->shutdown();
}

void Connection::close() {
  if (phase_ == Phase::kClosed) return;
  const bool streaming = phase_ == Phase::kStreaming;
  phase_ = Phase::kClosed;
  deadline_ = Clock::time_point::max();
  loop_.unlink(this);
  // A stream ending on its own got here from its end(); otherwise (Server::stop past its grace) it ends
  // now, before the socket it may share goes.
  if (streaming) stream_->abort();
  boost::system::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  core_.connection_closed();
}

}  // namespace samokoder::http::detail
