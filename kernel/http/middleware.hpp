// Middleware: code that runs around every request without being part of a handler (rate limits,
// authentication, audit). Registered with Server::use() before start(), run in registration order
// before dispatch and in reverse order after.
//
// Ownership: the server shares ownership of each middleware. Thread-safety: both methods are called
// concurrently from several I/O threads, so implementations must be thread-safe; they run on the I/O
// thread and must never block (no storage, no hashing, no network).
#pragma once

#include <optional>

#include "http/request.hpp"
#include "http/response.hpp"

namespace samokoder::http {

class Middleware {
 public:
  virtual ~Middleware() = default;

  // Runs once the whole request is read and routed, for every parsed request (unknown paths and
  // wrong methods included) except an OPTIONS request the server answers itself (no OPTIONS route:
  // CORS preflights above all, which carry no credentials and must not meet an auth check).
  // Returning a response short-circuits the handler (a rate limiter answering 429); later middlewares'
  // before() is skipped, but every after() still runs.
  virtual std::optional<Response> before(Request& request) {
    static_cast<void>(request);
    return std::nullopt;
  }

  // Runs on every response, errors included (404, 405, 413, 400, 500, preflights). For a request the
  // server could not parse, `request` carries only its request id and remote address.
  virtual void after(const Request& request, Response& response) {
    static_cast<void>(request);
    static_cast<void>(response);
  }
};

}  // namespace samokoder::http
