// Server: the kernel's HTTP/1.1 server on Boost.Beast. It owns the listening socket, the I/O threads
// (config io_threads, one event loop each; they never block) and two bounded work pools (see
// work_pool.hpp): request_pool runs Dispatch::kRequest handlers, plugin_pool Dispatch::kPluginCall
// ones. A full pool queue is answered 503 problem+json with Retry-After at once, on the I/O thread; a
// call past its pool's call_timeout_ms is answered 504 problem+json and the connection closes.
//
// Per request, always on, in this order: request id (a valid incoming X-Request-Id is kept, else a
// random 128-bit hex id; echoed on every response), limits (header size -> 431, body size -> 413 from
// Content-Length before the body is read or as a chunked body grows, malformed request -> 400; each of
// these closes the connection after the answer), routing (404, 405 with Allow, 501 for an unknown
// method; OPTIONS answered with 204 + Allow, plus CORS preflight headers for an allowed origin),
// middleware before(), the handler, middleware after(), then the response headers every answer carries:
// Server, Date, X-Request-Id, X-Content-Type-Options, X-Frame-Options, Referrer-Policy,
// Content-Security-Policy, Cross-Origin-Opener-Policy, Cache-Control: no-store and, in production,
// Strict-Transport-Security (each default yields to a value the handler set), and the CORS headers for
// an origin in cors_allowed_origins (exact match). Metrics and the access log line are recorded last.
//
// Streams (stream.hpp): a handler answering Response::event_stream() or Response::websocket() gets the
// connection once the head is written (200 text/event-stream, chunked, Connection: close, with the
// headers above) or the WebSocket handshake completed (a request that is no valid upgrade is answered
// 426, one from an origin neither allowed nor the server's own 403). Metrics and the access log record
// a stream when it starts (200 or 101). A stream ends its connection; it is not a request in flight, the
// keep-alive and request timeouts do not apply to it (heartbeats and a write-progress deadline of
// request_timeout_ms do), and stop() ends it first (SSE: the last chunk; WebSocket: close 1001).
//
// Timeouts: a request (first byte to last) must arrive within request_timeout_ms, or the client gets
// 408 and the connection closes; an idle keep-alive connection closes after keep_alive_timeout_ms; a
// fresh connection must start its first request within request_timeout_ms; writing a response may
// take request_timeout_ms. Deadlines are checked by a sweep per event loop, so they fire up to a
// quarter of the shorter timeout (at most 1 s) late. A config reload may change these timeouts, the
// shutdown grace, the pools' call deadlines and the access log switch while the server runs
// (apply_live); everything else in ServerConfig is fixed at construction.
//
// Ownership: the server shares the Router and each middleware, and references the Registry, which
// must outlive it. Thread-safety: construct, use(), start(), stop() and destroy from one controlling
// thread, never from an I/O or worker thread of this server; port(), endpoint() and apply_live() are
// safe anywhere after start().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <samokoder/sdk/status.hpp>

#include "config/config.hpp"
#include "http/middleware.hpp"
#include "http/router.hpp"
#include "http/work_pool.hpp"
#include "metrics/registry.hpp"

namespace samokoder::http {

struct ServerOptions {
  bool access_log = true;  // one line per request on the "access" logger
  // Sent in a CORS preflight answer as Access-Control-Allow-Headers.
  std::vector<std::string> cors_allowed_headers = {"Authorization", "Content-Type",  "X-Request-Id",
                                                   "X-CSRF-Token",  "Last-Event-ID", "Idempotency-Key"};
  // Response headers a browser script of an allowed origin may read.
  std::vector<std::string> cors_exposed_headers = {"X-Request-Id", "Retry-After", "Location"};
  std::uint32_t cors_max_age_seconds = 600;
};

class Server {
 public:
  // Registers the metrics samokoder_http_requests_total{route,method,status},
  // samokoder_http_request_duration_seconds{route}, samokoder_http_connections_active,
  // samokoder_http_connections_total, samokoder_http_requests_in_flight,
  // samokoder_http_streams_active{kind}, samokoder_http_streams_closed_total{kind,reason} (kind "sse" or
  // "websocket"; reason client_gone, overflow, closed, server_stop, error, timeout or protocol) and the
  // work pools' metrics (work_pool.hpp) in `metrics`. The route
  // label is the route pattern, "unmatched" when no route matched the path; the method label is
  // "OTHER" for a method Beast does not know.
  Server(const config::ServerConfig& config, config::Environment environment,
         std::shared_ptr<const Router> router, metrics::Registry& metrics, ServerOptions options = {});
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds a middleware; throws std::logic_error after start().
  void use(std::shared_ptr<Middleware> middleware);

  // Binds config.listen (port 0 picks a free port), then starts the I/O threads and the work pools.
  // Fails with unavailable when the address cannot be bound, failed_precondition when called twice.
  sdk::Status start();

  // Graceful: stops accepting, closes idle connections, ends open streams, lets requests in flight
  // finish for up to shutdown_grace_ms (their responses carry Connection: close; a stream response is
  // answered 503), then closes every connection and
  // joins all threads. Returns within about shutdown_grace_ms even when a handler never returns: such a
  // call is logged, left to its (detached) thread and listed by unfinished_calls(). Idempotent.
  void stop();

  // What a config reload changes on the running server: the access log switch, request_timeout_ms and
  // keep_alive_timeout_ms (from each connection's next deadline on), shutdown_grace_ms and the pools'
  // call_timeout_ms (for calls that start after). Every other field of `config` is ignored here: it is
  // built into the listener, threads and pools and needs a restart. Safe from any thread after start().
  void apply_live(const config::ServerConfig& config, bool access_log);

  // The calls stop() left running (empty before stop() and when everything finished). The caller must
  // keep alive whatever those calls still use (plugins above all: see Application::stop).
  const std::vector<WorkPool::Unfinished>& unfinished_calls() const noexcept;

  std::uint16_t port() const noexcept;  // the bound port; 0 before start()
  std::string endpoint() const;         // "127.0.0.1:8080", "[::1]:8080"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace samokoder::http
