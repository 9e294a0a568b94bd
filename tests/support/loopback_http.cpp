#include "loopback_http.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

namespace samokoder::testing {
namespace {

// --- PKI -------------------------------------------------------------------------------------------

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const noexcept { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Freer<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL: ") + what + " failed");
}

KeyPtr new_key() {
  KeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

CertPtr new_cert(EVP_PKEY* key, const std::string& common_name, X509* issuer, long serial) {
  CertPtr cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  return cert;
}

std::string pem_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(size)};
}

std::string pem_of(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(size)};
}

// --- byte streams ----------------------------------------------------------------------------------

int listen_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(fd >= 0, "socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  check(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0, "bind");
  // The system's limit, not a small queue: hundreds of clients connecting at once (the LLM benchmark's
  // concurrent streams) would otherwise overflow it while the accept thread starts connection threads,
  // and each dropped SYN costs its client a 1 s (then 3 s) retransmission.
  check(::listen(fd, SOMAXCONN) == 0, "listen");
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

// One accepted connection, plain or TLS, with blocking reads and writes.
class Stream {
 public:
  Stream(int fd, SSL_CTX* tls) : fd_(fd) {
    if (tls == nullptr) return;
    ssl_ = SSL_new(tls);
    SSL_set_fd(ssl_, fd_);
    if (SSL_accept(ssl_) != 1) failed_ = true;  // e.g. the client rejected the certificate
  }
  ~Stream() {  // the Acceptor closes the descriptor
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool failed() const noexcept { return failed_; }
  long read(char* data, std::size_t size) {
    if (ssl_ != nullptr) return SSL_read(ssl_, data, static_cast<int>(size));
    return ::recv(fd_, data, size, 0);
  }
  bool write(std::string_view bytes) {
    while (!bytes.empty()) {
      const long n = ssl_ != nullptr ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                                     : ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_ = nullptr;
  bool failed_ = false;
};

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Reads one request head (and its Content-Length body) from `stream`; nullopt at end of stream.
std::optional<ReceivedRequest> read_request(Stream& stream, std::string& pending) {
  std::size_t head_end = std::string::npos;
  char buffer[4096];
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
    const long n = stream.read(buffer, sizeof buffer);
    if (n <= 0) return std::nullopt;
    pending.append(buffer, static_cast<std::size_t>(n));
  }
  ReceivedRequest request;
  std::string_view head(pending.data(), head_end);
  const std::size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const std::size_t space = line.find(' ');
  request.method = std::string(line.substr(0, space));
  request.target = std::string(line.substr(space + 1, line.rfind(' ') - space - 1));
  std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    const std::string_view field = rest.substr(0, end);
    const std::size_t colon = field.find(':');
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    request.headers[lowercase(std::string(field.substr(0, colon)))] = std::string(value);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
  }
  pending.erase(0, head_end + 4);
  const std::size_t length =
      request.headers.count("content-length") ? std::stoul(request.headers["content-length"]) : 0;
  while (pending.size() < length) {
    const long n = stream.read(buffer, sizeof buffer);
    if (n <= 0) return std::nullopt;
    pending.append(buffer, static_cast<std::size_t>(n));
  }
  request.body = pending.substr(0, length);
  pending.erase(0, length);
  return request;
}

// Accepts on a loopback port and runs `serve(fd, acceptor)` on a thread per connection; the destructor
// wakes every blocked call with shutdown() and joins.
class Acceptor {
 public:
  explicit Acceptor(std::function<void(int, const Acceptor&)> serve) : serve_(std::move(serve)) {
    fd_ = listen_loopback(port_);
    thread_ = std::thread([this] { run(); });
  }
  ~Acceptor() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_)
        ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : connections_)
      t.join();
    ::close(fd_);
  }
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  bool stopping() const noexcept { return stopping_; }

 private:
  void run() {
    while (!stopping_) {
      const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      // As real servers do: otherwise Nagle's algorithm holds each small write (a header, an SSE event)
      // until the client's delayed ACK, up to 40 ms per response, and that is what clients would measure.
      const int on = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      std::lock_guard lock(mutex_);
      open_.insert(fd);
      connections_.emplace_back([this, fd] {
        serve_(fd, *this);
        // Closed under the lock, so that the destructor never shuts down a number accept() reused.
        std::lock_guard inner(mutex_);
        open_.erase(fd);
        ::close(fd);
      });
    }
  }

  std::function<void(int, const Acceptor&)> serve_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::set<int> open_;
  std::vector<std::thread> connections_;
};

}  // namespace

TestPki make_pki(const std::vector<std::string>& names) {
  static std::atomic<long> serial{1};
  KeyPtr ca_key = new_key();
  CertPtr ca = new_cert(ca_key.get(), "Samokoder Test CA", nullptr, serial++);
  add_extension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  check(X509_sign(ca.get(), ca_key.get(), EVP_sha256()) > 0, "X509_sign (CA)");

  KeyPtr key = new_key();
  CertPtr cert = new_cert(key.get(), names.empty() ? "localhost" : names.front(), ca.get(), serial++);
  std::string alt_names;
  for (const std::string& name : names) {
    in6_addr ignored{};
    const bool ip = ::inet_pton(AF_INET, name.c_str(), &ignored) == 1 ||
                    ::inet_pton(AF_INET6, name.c_str(), &ignored) == 1;
    alt_names += (alt_names.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + name;
  }
  add_extension(cert.get(), ca.get(), NID_subject_alt_name, alt_names.c_str());
  add_extension(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(cert.get(), ca_key.get(), EVP_sha256()) > 0, "X509_sign (server)");
  return {pem_of(ca.get()), pem_of(cert.get()), pem_of(key.get())};
}

std::string ReceivedRequest::header(const std::string& lowercase_name) const {
  const auto it = headers.find(lowercase_name);
  return it == headers.end() ? std::string() : it->second;
}

bool ServerConnection::respond(unsigned status, std::string_view body,
                               const std::vector<std::string>& extra_headers) {
  std::string out = "HTTP/1.1 " + std::to_string(status) +
                    " Status\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (const std::string& header : extra_headers)
    out += header + "\r\n";
  out += "\r\n";
  out += body;
  return write(out);
}

bool ServerConnection::write_chunk(std::string_view piece) {
  char size[16];
  char* end = std::to_chars(size, size + sizeof size, piece.size(), 16).ptr;
  return write(std::string(size, end) + "\r\n" + std::string(piece) + "\r\n");
}

// --- the server --------------------------------------------------------------------------------------

struct LoopbackHttpServer::State {
  Handler handler;
  std::unique_ptr<SSL_CTX, Freer<SSL_CTX, SSL_CTX_free>> tls;
  std::atomic<std::size_t> accepted{0};
  std::atomic<std::size_t> closed{0};
  std::atomic<std::size_t> requests{0};
  mutable std::mutex mutex;
  std::vector<ReceivedRequest> received;
  std::unique_ptr<Acceptor> acceptor;
};

namespace {

class Connection final : public ServerConnection {
 public:
  Connection(Stream& stream, const Acceptor& acceptor) : stream_(stream), acceptor_(acceptor) {}
  bool write(std::string_view bytes) override { return stream_.write(bytes); }
  void stall() override {
    char byte = 0;
    while (!acceptor_.stopping() && stream_.read(&byte, 1) > 0) {
    }
  }

 private:
  Stream& stream_;
  const Acceptor& acceptor_;
};

}  // namespace

LoopbackHttpServer::LoopbackHttpServer(Handler handler, const TestPki* pki)
    : state_(std::make_shared<State>()) {
  // SSL_write reaches the socket through write(), which raises SIGPIPE once the client went away.
  ::signal(SIGPIPE, SIG_IGN);
  state_->handler = std::move(handler);
  if (pki != nullptr) {
    state_->tls.reset(SSL_CTX_new(TLS_server_method()));
    BioPtr cert(BIO_new_mem_buf(pki->server_cert.data(), static_cast<int>(pki->server_cert.size())));
    BioPtr key(BIO_new_mem_buf(pki->server_key.data(), static_cast<int>(pki->server_key.size())));
    CertPtr x509(PEM_read_bio_X509(cert.get(), nullptr, nullptr, nullptr));
    KeyPtr pkey(PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr));
    check(x509 && pkey && SSL_CTX_use_certificate(state_->tls.get(), x509.get()) == 1 &&
              SSL_CTX_use_PrivateKey(state_->tls.get(), pkey.get()) == 1,
          "loading the server certificate");
  }
  State* state = state_.get();
  state_->acceptor = std::make_unique<Acceptor>([state](int fd, const Acceptor& acceptor) {
    state->accepted++;
    {
      Stream stream(fd, state->tls.get());
      if (!stream.failed()) {
        Connection connection(stream, acceptor);
        std::string pending;
        while (auto request = read_request(stream, pending)) {
          state->requests++;
          {
            std::lock_guard lock(state->mutex);
            state->received.push_back(*request);
          }
          state->handler(*request, connection);
          if (connection.closing()) break;
        }
      }
    }
    state->closed++;
  });
  port_ = state_->acceptor->port();
}

LoopbackHttpServer::~LoopbackHttpServer() {
  state_->acceptor.reset();
}

std::string LoopbackHttpServer::url(std::string_view path, std::string_view host) const {
  return std::string(state_->tls ? "https://" : "http://") + std::string(host) + ":" + std::to_string(port_) +
         std::string(path);
}

std::size_t LoopbackHttpServer::accepted() const noexcept {
  return state_->accepted.load();
}

std::size_t LoopbackHttpServer::closed() const noexcept {
  return state_->closed.load();
}

std::size_t LoopbackHttpServer::requests() const noexcept {
  return state_->requests.load();
}

std::vector<ReceivedRequest> LoopbackHttpServer::received() const {
  std::lock_guard lock(state_->mutex);
  return state_->received;
}

// --- the proxy ---------------------------------------------------------------------------------------

struct LoopbackProxy::State {
  mutable std::mutex mutex;
  std::vector<std::string> lines;
  std::vector<std::string> authorizations;
  std::unique_ptr<Acceptor> acceptor;
};

namespace {

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

// Copies bytes both ways until either side closes.
void pump(int a, int b) {
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  char buffer[16384];
  while (::poll(fds, 2, -1) > 0) {
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      const long n = ::recv(fds[i].fd, buffer, sizeof buffer, 0);
      if (n <= 0 || ::send(fds[1 - i].fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) return;
    }
  }
}

}  // namespace

LoopbackProxy::LoopbackProxy() : state_(std::make_shared<State>()) {
  State* state = state_.get();
  state_->acceptor = std::make_unique<Acceptor>([state](int fd, const Acceptor&) {
    Stream client(fd, nullptr);
    std::string pending;
    const auto request = read_request(client, pending);
    if (!request) return;
    {
      std::lock_guard lock(state->mutex);
      state->lines.push_back(request->method + " " + request->target + " HTTP/1.1");
      state->authorizations.push_back(request->header("proxy-authorization"));
    }
    if (request->method != "CONNECT") {
      const std::string body = "proxied " + request->method + " " + request->target;
      client.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\n\r\n" + body);
      return;
    }
    // Every test server listens on 127.0.0.1, whatever name the client used.
    const std::size_t colon = request->target.rfind(':');
    const int upstream =
        connect_loopback(static_cast<std::uint16_t>(std::stoi(request->target.substr(colon + 1))));
    if (upstream < 0) {
      client.write("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    client.write("HTTP/1.1 200 Connection established\r\n\r\n");
    if (!pending.empty()) ::send(upstream, pending.data(), pending.size(), MSG_NOSIGNAL);
    pump(fd, upstream);
    ::close(upstream);
  });
}

LoopbackProxy::~LoopbackProxy() {
  state_->acceptor.reset();
}

std::uint16_t LoopbackProxy::port() const noexcept {
  return state_->acceptor->port();
}

std::vector<std::string> LoopbackProxy::request_lines() const {
  std::lock_guard lock(state_->mutex);
  return state_->lines;
}

std::vector<std::string> LoopbackProxy::authorizations() const {
  std::lock_guard lock(state_->mutex);
  return state_->authorizations;
}

}  // namespace samokoder::testing
