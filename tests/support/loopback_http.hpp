// Real HTTP peers on 127.0.0.1 for the outbound HTTP tests: a scripted HTTP/1.1 server (plain or TLS),
// a tiny forward proxy (CONNECT tunnels, and absolute-form requests it answers itself), and a PKI
// made at run time with OpenSSL's API (a CA and a server certificate it signs).
//
// The server reads each request with Beast and hands it to the test's handler, which writes whatever
// bytes it likes: a proper response, a chunked body in pieces, half a body, or nothing at all
// (stall() blocks until the client closes the connection or the server stops). It counts accepted and
// closed connections, so tests can see connection reuse and that a cancelled call closed its socket.
//
// Ownership: each object owns its sockets and threads; the destructor closes every connection and
// joins. Thread-safety: the accessors may be called from any thread; handlers run on one thread per
// connection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace samokoder::testing {

// PEM texts. make_pki() signs a server certificate for `names` (DNS names or IP addresses) with a new
// CA; each call makes a new CA, so two calls give two CAs that do not trust each other.
struct TestPki {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
};
TestPki make_pki(const std::vector<std::string>& names = {"localhost", "127.0.0.1"});

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string header(const std::string& lowercase_name) const;
};

class ServerConnection {
 public:
  virtual ~ServerConnection() = default;
  // False once the peer is gone.
  virtual bool write(std::string_view bytes) = 0;
  // Writes a complete response with Content-Length.
  bool respond(unsigned status, std::string_view body, const std::vector<std::string>& extra_headers = {});
  // Writes one chunk of a chunked body (an empty piece ends the body).
  bool write_chunk(std::string_view piece);
  // Blocks until the client closes the connection or the server stops.
  virtual void stall() = 0;
  // Closes the connection after the handler returns instead of reading the next request.
  void close_after() { close_after_ = true; }
  bool closing() const noexcept { return close_after_; }

 private:
  bool close_after_ = false;
};

class LoopbackHttpServer {
 public:
  using Handler = std::function<void(const ReceivedRequest&, ServerConnection&)>;

  // Plain HTTP, or HTTPS with `pki`'s server certificate.
  explicit LoopbackHttpServer(Handler handler, const TestPki* pki = nullptr);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // "http://127.0.0.1:<port><path>", or https://<host>:<port><path> for TLS.
  std::string url(std::string_view path = "/", std::string_view host = "127.0.0.1") const;

  std::size_t accepted() const noexcept;
  // Connections the server saw end (the client closed them, or the handler did) so far.
  std::size_t closed() const noexcept;
  std::size_t requests() const noexcept;
  std::vector<ReceivedRequest> received() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
  std::uint16_t port_ = 0;
};

// A forward proxy: CONNECT host:port opens a tunnel (after checking nothing), any other request is
// answered 200 with body "proxied <method> <target>". Records what it was asked.
class LoopbackProxy {
 public:
  LoopbackProxy();
  ~LoopbackProxy();
  LoopbackProxy(const LoopbackProxy&) = delete;
  LoopbackProxy& operator=(const LoopbackProxy&) = delete;

  std::uint16_t port() const noexcept;
  // Request lines ("CONNECT localhost:443 HTTP/1.1", "GET http://... HTTP/1.1") in arrival order.
  std::vector<std::string> request_lines() const;
  // Proxy-Authorization values received (empty strings when absent).
  std::vector<std::string> authorizations() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace samokoder::testing
