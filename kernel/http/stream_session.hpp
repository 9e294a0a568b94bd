// Internal to samokoder_http: the machinery behind streams (stream.hpp). StreamQueue is the
// StreamChannel the application holds; a StreamSession is what a Connection runs once its response
// became a stream: an SSE response (sse_stream.cpp) or a WebSocket (websocket_session.cpp).
//
// The queue never calls into a connection: send() appends under its mutex and, when the loop is not
// already busy with the queue, posts a wake-up that finds the connection through a weak pointer. So a
// channel may outlive its connection and its server; once the stream ended (detach()) it posts nothing.
//
// Ownership: a Connection owns its session; the session's asynchronous operations keep the connection
// (and so the session) alive. The queue is shared by the session and the application.
// Thread-safety: StreamQueue is safe from any thread; a session runs on its connection's loop thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "http/connection.hpp"
#include "http/stream.hpp"

namespace samokoder::http::detail {

// Why a stream ended: the reason label of samokoder_http_streams_closed_total.
enum class StreamEnd { kClientGone, kOverflow, kClosed, kServerStop, kError, kTimeout, kProtocol };
inline constexpr std::size_t kStreamEndCount = 7;
std::string_view to_string(StreamEnd reason) noexcept;

enum class StreamType { kSse, kWebSocket };
inline constexpr std::size_t kStreamTypeCount = 2;
std::string_view to_string(StreamType type) noexcept;

class StreamQueue final : public StreamChannel {
 public:
  // How send() frames a message: an SSE chunk of a chunked response, SSE bytes as they are (an HTTP/1.0
  // client, whose response ends with the connection), or one WebSocket message.
  enum class Framing { kChunked, kRaw, kMessage };

  // `wake` is called with the mutex held, at most once until the loop pulls an empty queue again (and
  // once more on an overflow); it must only post.
  StreamQueue(Framing framing, std::size_t max_queued_bytes, std::function<void()> wake);

  bool send(std::string message) override;
  void close(std::uint16_t code = kCloseNormal, std::string_view reason = {}) override;
  bool is_open() const noexcept override;
  std::size_t queued_bytes() const noexcept override;

  // Loop side. pull() moves the queued messages into `out`; when there are none and no close was asked
  // for, the next send() posts a wake-up again.
  struct Pulled {
    bool close = false;  // a close was asked for and everything queued before it was pulled
    std::uint16_t code = kCloseNormal;
    std::string reason;
  };
  Pulled pull(std::deque<std::string>& out);
  // True once a send() found the queue full: the stream must end now, the queue was dropped.
  bool overflowed() const noexcept { return state_.load(std::memory_order_acquire) == State::kOverflow; }
  // `bytes` of pulled messages reached the socket.
  void written(std::size_t bytes) noexcept;
  // The stream ended: every later send() fails, nothing is posted any more, the queue is dropped.
  void detach() noexcept;

 private:
  enum class State { kOpen, kClosing, kOverflow, kDetached };

  const Framing framing_;
  const std::size_t max_queued_bytes_;
  mutable std::mutex mutex_;
  std::function<void()> wake_;
  std::deque<std::string> queue_;
  bool wake_pending_ = false;  // posted, or the loop is writing and pulls again when done
  std::uint16_t close_code_ = kCloseNormal;
  std::string close_reason_;
  std::atomic<State> state_{State::kOpen};  // written under mutex_, read anywhere
  std::atomic<std::size_t> queued_bytes_{0};
};

// One stream on one connection. The base keeps what both kinds share: the handler and its calls (each
// in try/catch, logged), the queue, the metrics and the single end.
class StreamSession {
 public:
  using Clock = std::chrono::steady_clock;

  StreamSession(Connection& connection, StreamType type, std::shared_ptr<StreamHandler> handler,
                StreamOptions options, StreamQueue::Framing framing);
  virtual ~StreamSession();
  StreamSession(const StreamSession&) = delete;
  StreamSession& operator=(const StreamSession&) = delete;

  // Writes the head (SSE) or completes the handshake (WebSocket), then calls on_open.
  virtual void start() = 0;
  // The queue has news (posted by StreamQueue).
  virtual void wake() = 0;
  // The loop's sweep: ends a stream whose write made no progress in time.
  virtual void check_deadline(Clock::time_point now) = 0;
  // Server stop: end after the queue (SSE: the last chunk; WebSocket: close 1001).
  virtual void shutdown() = 0;
  // The connection is closing right now (Server::stop after its grace): end without writing.
  void abort() noexcept { end(StreamEnd::kServerStop); }

 protected:
  // Handler calls; false when the handler threw (logged).
  bool call_on_open() noexcept;
  bool call_on_message(std::string_view text) noexcept;
  // The one end of the stream: detaches the queue, closes the transport and the connection, counts
  // the reason and calls on_close. Idempotent.
  void end(StreamEnd reason) noexcept;
  // Closes the sockets this session owns; the connection closes its own afterwards.
  virtual void close_transport() noexcept = 0;
  std::chrono::milliseconds write_timeout() const noexcept;

  // The connection's parts a session works with (only the base is the connection's friend).
  Socket& socket() noexcept;
  boost::beast::flat_buffer& read_buffer() noexcept;  // bytes read past the request
  boost::asio::io_context& context() noexcept;
  ServerCore& core() noexcept;
  const Request& request() const noexcept;
  // For the completion handlers: the connection, and with it this session, lives while they wait.
  std::shared_ptr<Connection> keep_alive() { return connection_.shared_from_this(); }

  Connection& connection_;
  const StreamType type_;
  std::shared_ptr<StreamHandler> handler_;  // released once on_close ran
  const StreamOptions options_;
  std::shared_ptr<StreamQueue> channel_;
  bool ended_ = false;

 private:
  void log_handler_failure(std::string_view what, std::string_view error) noexcept;
};

std::unique_ptr<StreamSession> make_sse_stream(Connection& connection, std::shared_ptr<StreamHandler> handler,
                                               StreamOptions options, bool chunked, std::string head);
// `headers`: what the handler and middleware added to the response, for the handshake answer.
std::unique_ptr<StreamSession> make_websocket_session(
    Connection& connection, std::shared_ptr<StreamHandler> handler, StreamOptions options,
    std::vector<std::pair<std::string, std::string>> headers);

}  // namespace samokoder::http::detail
