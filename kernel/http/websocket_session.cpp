// WebSocket on a Connection: Beast's websocket::stream takes the connection's socket over, completes
// the handshake from the request the connection already parsed, and from then on reads text messages
// for on_message and writes the queue. See stream.hpp.
#include <algorithm>
#include <string_view>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "http/connection.hpp"
#include "http/stream_session.hpp"

namespace samokoder::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

namespace {

// A message is written in frames of this size, so that a large one shows progress to the write
// deadline frame by frame instead of only when all of it went out.
constexpr std::size_t kFrameBytes = 16 * 1024;

// The connection's socket with the bytes its read buffer already held past the request: a client may
// send its first frames right behind the upgrade request, and they must reach the WebSocket before
// anything read afterwards. Beast's accept from a parsed request has no way to take such bytes.
class PrefixedSocket {
 public:
  using executor_type = Socket::executor_type;
  using next_layer_type = Socket;

  PrefixedSocket(Socket socket, std::string prefix)
      : socket_(std::move(socket)), prefix_(std::move(prefix)) {}

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  Socket& next_layer() noexcept { return socket_; }
  const Socket& next_layer() const noexcept { return socket_; }

  template <typename MutableBufferSequence, typename ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return asio::async_initiate<ReadToken, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& out) {
          if (offset_ == prefix_.size()) {
            socket_.async_read_some(out, std::move(handler));
            return;
          }
          const std::size_t n = asio::buffer_copy(out, asio::buffer(prefix_) + offset_);
          offset_ += n;
          if (offset_ == prefix_.size()) {
            prefix_ = std::string();
            offset_ = 0;
          }
          // Never complete inside the initiating call.
          asio::post(socket_.get_executor(),
                     beast::bind_front_handler(std::move(handler), boost::system::error_code(), n));
        },
        token, buffers);
  }

  template <typename ConstBufferSequence, typename WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return socket_.async_write_some(buffers, std::forward<WriteToken>(token));
  }

 private:
  Socket socket_;
  std::string prefix_;
  std::size_t offset_ = 0;
};

// The closing handshake's teardown, found by Beast through argument-dependent lookup.
[[maybe_unused]] void teardown(beast::role_type role, PrefixedSocket& socket, boost::system::error_code& ec) {
  websocket::teardown(role, socket.next_layer(), ec);
}

template <typename TeardownHandler>
void async_teardown(beast::role_type role, PrefixedSocket& socket, TeardownHandler&& handler) {
  websocket::async_teardown(role, socket.next_layer(), std::forward<TeardownHandler>(handler));
}

// A close reason is at most 123 bytes (RFC 6455 section 5.5); cut at a UTF-8 character boundary.
std::string_view fit_close_reason(std::string_view reason) {
  if (reason.size() <= 123) return reason;
  std::size_t size = 123;
  while (size > 0 && (static_cast<unsigned char>(reason[size]) & 0xC0) == 0x80)
    --size;
  return reason.substr(0, size);
}

std::string take_buffered(beast::flat_buffer& buffer) {
  std::string bytes = beast::buffers_to_string(buffer.data());
  buffer.consume(buffer.size());
  return bytes;
}

class WebSocketSession final : public StreamSession {
 public:
  WebSocketSession(Connection& connection, std::shared_ptr<StreamHandler> handler, StreamOptions options,
                   std::vector<std::pair<std::string, std::string>> headers)
      : StreamSession(connection, StreamType::kWebSocket, std::move(handler), options,
                      StreamQueue::Framing::kMessage),
        ws_(std::move(socket()), take_buffered(read_buffer())),
        headers_(std::move(headers)) {}

  void start() override {
    const bool beats = options_.heartbeat > std::chrono::milliseconds::zero();
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = write_timeout();
    // Beast pings after half the idle time without a frame from the client and gives up after all of
    // it: a ping every heartbeat, and a close when two heartbeats brought no pong.
    timeout.idle_timeout =
        beats ? websocket::stream_base::duration(2 * options_.heartbeat) : websocket::stream_base::none();
    timeout.keep_alive_pings = beats;
    ws_.set_option(timeout);
    ws_.read_message_max(options_.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.set_option(
        websocket::stream_base::decorator([id = std::string(request().request_id()),
                                           headers = std::move(headers_)](websocket::response_type& res) {
          res.set(beast::http::field::server, "samokoder");
          res.set("X-Request-Id", id);
          for (const auto& [name, value] : headers)
            res.set(name, value);
        }));
    write_deadline_ = Clock::now() + write_timeout();
    ws_.async_accept(request().message(),
                     [self = keep_alive(), this](const boost::system::error_code& ec) { on_accept(ec); });
  }

  void wake() override {
    if (ended_) return;
    if (channel_->overflowed()) {
      begin_close(kClosePolicy, "too slow a reader", StreamEnd::kOverflow);
      return;
    }
    write_next();
  }

  void check_deadline(Clock::time_point now) override {
    // A close that cannot get through still ends for the reason it was started.
    if (now >= write_deadline_) end(closing_ ? close_reason_ : StreamEnd::kTimeout);
  }

  void shutdown() override {
    if (ended_ || !channel_->is_open()) return;
    close_reason_ = StreamEnd::kServerStop;
    channel_->close(kCloseGoingAway, "server stopping");
    write_next();
  }

 private:
  void on_accept(const boost::system::error_code& ec) {
    write_deadline_ = Clock::time_point::max();
    if (ended_) return;
    if (ec) {
      core().log->debug("WebSocket handshake for {} failed (request {}): {}", request().raw_path(),
                        request().request_id(), ec.message());
      end(StreamEnd::kError);
      return;
    }
    opened_ = true;
    read();
    if (channel_->is_open() && !call_on_open()) {
      begin_close(kCloseInternal, "internal error", StreamEnd::kError);
      return;
    }
    write_next();
  }

  void read() {
    ws_.async_read(read_buffer_, [self = keep_alive(), this](const boost::system::error_code& ec,
                                                             std::size_t) { on_read(ec); });
  }

  void on_read(const boost::system::error_code& ec) {
    if (ended_) return;
    if (ec) {
      // Our own close handshake is under way: its completion ends the stream.
      if (closing_) return;
      end(end_reason(ec));
      return;
    }
    if (!ws_.got_text()) {
      read_buffer_.consume(read_buffer_.size());
      begin_close(static_cast<std::uint16_t>(websocket::close_code::unknown_data),
                  "binary messages are not accepted", StreamEnd::kProtocol);
      return;
    }
    const auto data = read_buffer_.data();
    const bool ok = call_on_message(std::string_view(static_cast<const char*>(data.data()), data.size()));
    read_buffer_.consume(read_buffer_.size());
    if (ended_) return;
    if (!ok) {
      begin_close(kCloseInternal, "internal error", StreamEnd::kError);
      return;
    }
    // While our close is under way Beast's close reads (and drops) what still arrives.
    if (!closing_) read();
  }

  static StreamEnd end_reason(const boost::system::error_code& ec) {
    if (ec == websocket::error::closed) return StreamEnd::kClientGone;
    if (ec == beast::error::timeout) return StreamEnd::kTimeout;
    // Beast answered a protocol violation (an oversized message: 1009) with a close of its own.
    if (ec.category() == websocket::make_error_code(websocket::error::closed).category())
      return StreamEnd::kProtocol;
    return StreamEnd::kClientGone;
  }

  // One frame of the first pending message at a time; the next pull happens when the queue ran dry.
  void write_next() {
    if (ended_ || !opened_ || writing_ || closing_) return;
    if (channel_->overflowed()) {
      begin_close(kClosePolicy, "too slow a reader", StreamEnd::kOverflow);
      return;
    }
    if (pending_.empty()) {
      const StreamQueue::Pulled pulled = channel_->pull(pending_);
      if (pending_.empty()) {
        if (pulled.close) begin_close(pulled.code, pulled.reason, close_reason_);
        return;
      }
    }
    const std::string& message = pending_.front();
    const std::size_t size = std::min(kFrameBytes, message.size() - offset_);
    const bool fin = offset_ + size == message.size();
    writing_ = true;
    write_deadline_ = Clock::now() + write_timeout();
    ws_.text(true);
    ws_.async_write_some(fin, asio::buffer(message.data() + offset_, size),
                         [self = keep_alive(), this, fin](const boost::system::error_code& ec,
                                                          std::size_t n) { on_written(ec, n, fin); });
  }

  void on_written(const boost::system::error_code& ec, std::size_t bytes, bool fin) {
    writing_ = false;
    if (ended_) return;
    if (closing_) return;  // the close's deadline stays; its completion ends the stream
    write_deadline_ = Clock::time_point::max();
    if (ec) {
      end(end_reason(ec));
      return;
    }
    offset_ += bytes;
    if (fin) {
      channel_->written(pending_.front().size());
      pending_.pop_front();
      offset_ = 0;
    }
    write_next();
  }

  // Sends the close frame once the write in flight (if any) finished; Beast then waits for the
  // client's close. The write deadline bounds both, whatever the client does.
  void begin_close(std::uint16_t code, std::string_view reason, StreamEnd why) {
    if (ended_ || closing_) return;
    closing_ = true;
    close_reason_ = why;
    channel_->close(code, reason);  // no more sends from here; a no-op after an overflow
    write_deadline_ = Clock::now() + write_timeout();
    websocket::close_reason frame(code);
    const std::string_view text = fit_close_reason(reason);
    frame.reason.assign(text.data(), text.size());
    ws_.async_close(frame,
                    [self = keep_alive(), this](const boost::system::error_code&) { end(close_reason_); });
  }

  void close_transport() noexcept override {
    boost::system::error_code ignored;
    ws_.next_layer().next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    ws_.next_layer().next_layer().close(ignored);
  }

  websocket::stream<PrefixedSocket> ws_;
  std::vector<std::pair<std::string, std::string>> headers_;  // for the handshake answer
  beast::flat_buffer read_buffer_;
  std::deque<std::string> pending_;  // pulled, not yet written; the front may be partly written
  std::size_t offset_ = 0;           // bytes of pending_.front() written
  Clock::time_point write_deadline_ = Clock::time_point::max();
  StreamEnd close_reason_ = StreamEnd::kClosed;  // why the stream ends once its close completes
  bool opened_ = false;
  bool writing_ = false;
  bool closing_ = false;
};

}  // namespace

std::unique_ptr<StreamSession> make_websocket_session(
    Connection& connection, std::shared_ptr<StreamHandler> handler, StreamOptions options,
    std::vector<std::pair<std::string, std::string>> headers) {
  return std::make_unique<WebSocketSession>(connection, std::move(handler), options, std::move(headers));
}

}  // namespace samokoder::http::detail
