#include "probe.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace samokoder::preview_common::internal {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

// "HTTP/1.1 200" is enough: version, a space, three digits.
bool is_status_line(std::string_view got) {
  if (got.size() < 12 || got.substr(0, 5) != "HTTP/") return false;
  const auto space = got.find(' ');
  if (space == std::string_view::npos || space + 3 >= got.size()) return false;
  for (std::size_t i = space + 1; i < space + 4; ++i)
    if (got[i] < '0' || got[i] > '9') return false;
  return true;
}

}  // namespace

bool http_answers(const sdk::PreviewEndpoint& endpoint, std::chrono::milliseconds timeout) noexcept {
  const auto deadline = Clock::now() + timeout;
  sockaddr_storage address{};
  socklen_t length = 0;
  int family = AF_INET;
  if (!endpoint.socket_path.empty()) {
    family = AF_UNIX;
    auto* un = reinterpret_cast<sockaddr_un*>(&address);
    if (endpoint.socket_path.size() >= sizeof(un->sun_path)) return false;
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, endpoint.socket_path.c_str(), endpoint.socket_path.size() + 1);
    length = sizeof(sockaddr_un);
  } else {
    if (endpoint.port == 0) return false;
    auto* in = reinterpret_cast<sockaddr_in*>(&address);
    in->sin_family = AF_INET;
    in->sin_port = htons(endpoint.port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(sockaddr_in);
  }
  Fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return false;
    if (!wait_for(fd.get(), POLLOUT, deadline)) return false;
    int error = 0;
    socklen_t size = sizeof(error);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) return false;
  }
  static constexpr std::string_view kRequest =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: samokoder-preview-probe\r\nConnection: close\r\n\r\n";
  std::size_t sent = 0;
  while (sent < kRequest.size()) {
    const auto n = ::send(fd.get(), kRequest.data() + sent, kRequest.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd.get(), POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  std::string got;
  char chunk[256];
  while (got.size() < 64) {
    if (is_status_line(got)) return true;
    if (!wait_for(fd.get(), POLLIN, deadline)) return false;
    const auto n = ::recv(fd.get(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      got.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  return is_status_line(got);
}

}  // namespace samokoder::preview_common::internal
