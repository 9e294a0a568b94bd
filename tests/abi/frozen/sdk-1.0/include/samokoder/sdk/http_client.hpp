// HttpClient: outbound HTTP/1.1 and HTTPS for plugins, a host service (HostServices::http()).
//
// Plugins link no HTTP or TLS library of their own: the kernel makes the connection, verifies the
// server's certificate (the system CA store plus the operator's extra CA file, with SNI and hostname
// verification), goes through HTTPS_PROXY / HTTP_PROXY unless NO_PROXY names the host, reuses idle
// connections per host, enforces the timeouts and size caps below and counts every request in the
// kernel's metrics under the plugin's id and the target host.
//
// Two ways to call it, neither of which ever runs on an I/O thread of the HTTP server:
//   - send() blocks the calling thread (a plugin-pool thread or a thread of the plugin's own) until
//     the response is complete, failed or cancelled;
//   - send_async() returns at once; `done` runs later on one of the service's own threads.
// In both, on_headers and on_body run on the service's threads too: keep them short (copy or hand the
// data over) because a slow callback delays other transfers.
//
// Failures are Status codes, and the message says which limit or step failed:
//   kInvalidArgument     the URL is not http:// or https://, carries credentials, or a header is malformed
//   kDeadlineExceeded    a timeout passed; the message names it (connect, first_byte, idle or total)
//   kCancelled           the CancelToken was stopped; the connection was closed at once
//   kResourceExhausted   the request body or the response passed its size cap
//   kUnavailable         DNS, connect, proxy, TLS handshake or certificate verification failed, or the
//                        server closed the connection before the response was complete
// An HTTP error status (404, 503, ...) is not a failure: it arrives as a response.
// Header values are never quoted in messages or logs, and neither is the URL's path or query; the
// values of Authorization, Proxy-Authorization, Cookie, X-Api-Key, Api-Key and every header marked
// `secret` are additionally scrubbed from any text the service produces.
//
// Ownership: the kernel owns the client; it stays valid until the plugin's shutdown() has returned.
// The request is the caller's and only needs to live for the call (send_async copies what it keeps);
// callbacks are destroyed before send returns, or right after `done` has run. When the plugin is
// shut down, asynchronous calls still running are cancelled and their `done` has run before the
// plugin's instance is destroyed.
// Thread-safety: every method may be called from any thread, concurrently.
// Exceptions: no method throws; an exception thrown by a callback fails that call (kInternal).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::sdk {

struct HttpHeader {
  std::string name;
  std::string value;
  // Scrub this value from every message and log line, as Authorization already is.
  bool secret = false;
};

// 0 takes the operator's default (http_client.* in the kernel config).
struct HttpTimeouts {
  std::chrono::milliseconds connect{0};     // DNS, TCP, proxy CONNECT and TLS handshake together
  std::chrono::milliseconds first_byte{0};  // from the request sent to the response's headers read
  std::chrono::milliseconds idle{0};        // the longest silence between two reads of the body
  std::chrono::milliseconds total{0};       // the whole call, from send to the last byte
};

struct HttpResponseHead {
  unsigned status = 0;
  std::vector<HttpHeader> headers;  // as received, in order; names keep the server's case
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path?query or https://...; no userinfo
  // Host and User-Agent are added unless given; Content-Length follows the body. Connection,
  // Content-Length, Transfer-Encoding, TE and Upgrade belong to the client and are refused here.
  std::vector<HttpHeader> headers;
  std::string body;
  HttpTimeouts timeouts;
  std::uint64_t max_response_bytes = 0;  // body bytes, streamed or buffered; 0: the operator's default
  // Called once with the status and headers, before any body. Returning false ends the transfer
  // (the call succeeds with stopped = true and no body).
  std::function<bool(const HttpResponseHead&)> on_headers;
  // When set, the body is handed over piece by piece (chunked encoding already removed) instead of
  // being kept in HttpResponse::body. Returning false ends the transfer at once: the connection is
  // closed and the call succeeds with stopped = true.
  std::function<bool(std::string_view)> on_body;
};

struct HttpResponse {
  unsigned status = 0;
  std::vector<HttpHeader> headers;
  std::string body;              // empty when the request streamed it through on_body
  std::uint64_t body_bytes = 0;  // bytes of body received, streamed or not
  bool stopped = false;          // a callback returned false before the body was complete
  bool reused_connection = false;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // Blocks the calling thread until the response is complete (or the call failed or was cancelled).
  // Never call it on a thread the kernel lends for a non-blocking callback (on_body, `done`).
  virtual Result<HttpResponse> send(const HttpRequest& request, CancelToken cancel) noexcept = 0;

  using Completion = std::function<void(Result<HttpResponse>)>;
  // Starts the call and returns at once; `done` runs exactly once, on a service thread, also when
  // the request is refused before it starts (on the calling thread only once the plugin has been
  // shut down, or where the kernel offers no HTTP service, as in an offline plugin check).
  virtual void send_async(HttpRequest request, CancelToken cancel, Completion done) noexcept = 0;
};

}  // namespace samokoder::sdk
