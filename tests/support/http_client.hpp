// HttpClient: a small blocking HTTP/1.1 client for tests, on Boost.Beast. It keeps one keep-alive
// connection, reconnects when the server closed it, and bounds every exchange with a timeout so a
// broken server fails the test instead of hanging it. send_raw() writes arbitrary bytes on a fresh
// connection, for malformed-request tests.
//
// Ownership: owns its io_context and socket. Thread-safety: none; use one client per thread.
// Failures (connect, timeout, a response that does not parse) throw std::runtime_error.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

namespace samokoder::testing {

struct ClientResponse {
  unsigned status = 0;
  unsigned version = 11;
  boost::beast::http::fields headers;  // case-insensitive
  std::string body;

  // The first value of a header; empty when missing.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  std::size_t header_count(std::string_view name) const;
  // The body parsed as JSON; throws when it is not JSON.
  nlohmann::json json() const;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept connection (opening it if needed) and reads the response. Host and,
  // for a non-empty body, Content-Length are added unless given in `headers`.
  ClientResponse request(boost::beast::http::verb method, std::string_view target, std::string_view body = "",
                         const HeaderList& headers = {});
  ClientResponse get(std::string_view target, const HeaderList& headers = {}) {
    return request(boost::beast::http::verb::get, target, "", headers);
  }

  // Opens a fresh connection, writes `bytes`, and returns everything the server sent until it closed
  // the connection or `timeout` passed; last_raw_closed() tells which.
  std::string send_raw(std::string_view bytes,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  bool last_raw_closed() const noexcept { return last_raw_closed_; }

  // Waits until the server closes the kept connection (it reads end of stream); false when it is still
  // open after `timeout` or there is no kept connection. Data the server sends meanwhile is discarded.
  bool wait_for_close(std::chrono::milliseconds timeout);

  // TCP connections request() has opened so far.
  std::size_t connects() const noexcept { return connects_; }
  void disconnect();

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::size_t connects_ = 0;
  bool last_raw_closed_ = false;
};

// Splits a byte stream into the HTTP responses it holds (pipelining and send_raw tests). Responses to
// HEAD requests cannot be told apart from the stream, so do not mix them in. Throws on garbage.
std::vector<ClientResponse> parse_responses(std::string_view raw);

}  // namespace samokoder::testing
