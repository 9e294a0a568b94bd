// Request: one HTTP request as a handler and a middleware see it: method, target, decoded path, query,
// headers, body, path parameters, request id, remote address and the matched route.
//
// Ownership: a Request owns its message (headers and body) and its decoded path. The string_views it
// hands out point into the request itself, or into the Router for the route pattern and parameter names,
// and stay valid until the request is modified or destroyed; the server keeps its Router alive for as
// long as it serves.
// Thread-safety: none. The server hands each request to exactly one thread at a time (the I/O thread,
// then possibly one worker, then the I/O thread again), with a happens-before edge at each hand-over.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/container/small_vector.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::http {

struct Route;
class Router;
namespace detail {
class Connection;
}

class Request {
 public:
  using Message = boost::beast::http::request<boost::beast::http::string_body>;

  Request() = default;

  // Builds a request outside a server, for handler tests and in-process calls. Fails with
  // invalid_argument when the target is not an origin-form ("/a/b?c") or absolute-form path with valid
  // percent-encoding. The request id comes from an X-Request-Id header when valid, else is generated.
  static sdk::Result<Request> make(Message message, std::string remote_address = "127.0.0.1");

  boost::beast::http::verb method() const noexcept { return message_.method(); }
  std::string_view method_string() const noexcept { return message_.method_string(); }
  unsigned version() const noexcept { return message_.version(); }  // 11 for HTTP/1.1
  // The request target exactly as received, e.g. "/api/v1/projects/7/files/a%20b?x=1".
  std::string_view target() const noexcept { return message_.target(); }
  // The path part of the target, still percent-encoded ("/api/v1/projects/7/files/a%20b").
  std::string_view raw_path() const noexcept;
  // The path, percent-decoded ("/api/v1/projects/7/files/a b"). An encoded "/" (%2F) decodes to "/"
  // here but never splits a path parameter; routing works on the encoded segments.
  const std::string& path() const noexcept { return path_; }
  // The raw query string after "?", without decoding ("" when absent).
  std::string_view query() const noexcept;
  // The first value of a query parameter, percent-decoded ("+" is a space); nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
  // A header value, looked up case-insensitively; empty when missing.
  std::string_view header(std::string_view name) const;
  const Message& message() const noexcept { return message_; }
  const std::string& body() const noexcept { return message_.body(); }
  std::string& body() noexcept { return message_.body(); }
  // A path parameter of the matched route ("id" for "/plugins/{id}", "path" for "{path...}"),
  // percent-decoded; empty when the route has no such parameter.
  std::string_view param(std::string_view name) const noexcept;
  // The id echoed as X-Request-Id: the client's when valid (1-64 of [A-Za-z0-9._-]), else 32 hex digits.
  std::string_view request_id() const noexcept { return {request_id_.data(), request_id_size_}; }
  const std::string& remote_address() const noexcept { return remote_address_; }
  // The pattern of the route that matched ("/api/v1/plugins/{id}"); for a 405 or OPTIONS answer, the
  // pattern of a route on the same path; empty when no route matched the path.
  std::string_view route_pattern() const noexcept { return route_pattern_; }
  // The matched route, or nullptr when none matched the method and path.
  const Route* route() const noexcept { return route_; }

  // True for a valid incoming request id: 1-64 characters of [A-Za-z0-9._-].
  static bool is_valid_request_id(std::string_view id) noexcept;

 private:
  friend class Router;
  friend class detail::Connection;

  // A byte range of path_.
  struct Span {
    std::uint32_t offset = 0;
    std::uint32_t size = 0;
  };
  struct Param {
    std::string_view name;  // owned by the Router
    Span value;
  };

  // Prepares for a new request on a reused object, keeping allocated capacity.
  void reset(std::string_view remote_address);
  // Splits and decodes the target's path; false when the target is not a usable path.
  bool parse_target(std::string_view target);
  // Takes the client's id when valid, else generates a fresh one.
  void assign_request_id(std::string_view incoming);
  std::string_view span(Span s) const noexcept { return std::string_view(path_).substr(s.offset, s.size); }

  Message message_;
  std::string path_;
  boost::container::small_vector<Span, 12> segments_;
  boost::container::small_vector<Param, 4> params_;
  // Bounds of the path and the query inside the target, so they survive moves of the message.
  std::uint32_t raw_path_begin_ = 0;
  std::uint32_t raw_path_end_ = 0;
  std::uint32_t query_begin_ = 0;
  std::array<char, 64> request_id_{};
  std::uint8_t request_id_size_ = 0;
  std::string remote_address_;
  std::string_view route_pattern_;
  const Route* route_ = nullptr;
};

}  // namespace samokoder::http
