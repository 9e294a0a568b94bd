// Server-sent events on a Connection: the head, then one chunk per message, a comment chunk as
// heartbeat, and the terminating chunk when the stream closes. See stream.hpp.
#include <array>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "http/connection.hpp"
#include "http/stream_session.hpp"

namespace samokoder::http::detail {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kHeartbeatChunk = "e\r\n: keep-alive\n\n\r\n";
constexpr std::string_view kHeartbeatRaw = ": keep-alive\n\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

class SseStream final : public StreamSession {
 public:
  SseStream(Connection& connection, std::shared_ptr<StreamHandler> handler, StreamOptions options,
            bool chunked, std::string head)
      : StreamSession(connection, StreamType::kSse, std::move(handler), options,
                      chunked ? StreamQueue::Framing::kChunked : StreamQueue::Framing::kRaw),
        chunked_(chunked),
        head_(std::move(head)),
        heartbeat_(context()) {}

  void start() override {
    buffers_.assign({asio::buffer(head_)});
    write([this](const boost::system::error_code& ec) { on_head_written(ec); });
  }

  void wake() override {
    if (ended_) return;
    if (channel_->overflowed()) {
      // Whatever is in flight will not make it: the client sees the body cut short (no last chunk), which
      // EventSource answers by reconnecting with Last-Event-ID.
      end(StreamEnd::kOverflow);
      return;
    }
    pull_and_write();
  }

  void check_deadline(Clock::time_point now) override {
    if (now >= write_deadline_) end(StreamEnd::kTimeout);
  }

  void shutdown() override {
    if (ended_ || !channel_->is_open()) return;
    close_reason_ = StreamEnd::kServerStop;
    channel_->close(kCloseGoingAway, "server stopping");
    pull_and_write();
  }

 private:
  template <typename Done>
  void write(Done done) {
    writing_ = true;
    write_deadline_ = Clock::now() + write_timeout();
    // The completion condition runs after every partial write: a write that moves keeps its deadline
    // ahead, one that stalls for request_timeout ends the stream (check_deadline).
    asio::async_write(
        socket(), buffers_,
        [this](const boost::system::error_code& ec, std::size_t) -> std::size_t {
          if (ec) return 0;
          write_deadline_ = Clock::now() + write_timeout();
          return 64 * 1024;
        },
        [self = keep_alive(), this, done = std::move(done)](const boost::system::error_code& ec,
                                                            std::size_t) {
          writing_ = false;
          write_deadline_ = Clock::time_point::max();
          last_write_ = Clock::now();
          done(ec);
        });
  }

  void on_head_written(const boost::system::error_code& ec) {
    if (ended_) return;
    if (ec) {
      end(StreamEnd::kClientGone);
      return;
    }
    head_ = std::string();
    opened_ = true;
    next_heartbeat_ = last_write_ + options_.heartbeat;
    watch_client();
    arm_heartbeat();
    // A stream told to stop before it opened goes straight to its end.
    if (channel_->is_open() && !call_on_open()) {
      close_reason_ = StreamEnd::kError;
      channel_->close(kCloseInternal);
    }
    pull_and_write();
  }

  // The client must not send while it streams: EOF, an error or any byte at all means it is gone, and
  // an outstanding read notices at once (a write would only fail once the socket buffers filled).
  void watch_client() {
    socket().async_read_some(asio::buffer(probe_),
                             [self = keep_alive(), this](const boost::system::error_code&, std::size_t) {
                               end(StreamEnd::kClientGone);
                             });
  }

  void pull_and_write() {
    if (ended_ || !opened_ || writing_) return;
    if (channel_->overflowed()) {
      end(StreamEnd::kOverflow);
      return;
    }
    batch_.clear();
    const StreamQueue::Pulled pulled = channel_->pull(batch_);
    if (batch_.empty()) {
      if (pulled.close) write_end();
      return;
    }
    std::size_t bytes = 0;
    buffers_.clear();
    for (const std::string& message : batch_) {
      buffers_.push_back(asio::buffer(message));
      bytes += message.size();
    }
    write([this, bytes](const boost::system::error_code& ec) {
      channel_->written(bytes);
      batch_.clear();
      if (ended_) return;
      if (ec) {
        end(StreamEnd::kClientGone);
        return;
      }
      pull_and_write();
    });
  }

  void write_end() {
    if (!chunked_) {
      end(close_reason_);  // an HTTP/1.0 body ends with the connection
      return;
    }
    buffers_.assign({asio::buffer(kLastChunk.data(), kLastChunk.size())});
    write([this](const boost::system::error_code& ec) { end(ec ? StreamEnd::kClientGone : close_reason_); });
  }

  void arm_heartbeat() {
    if (options_.heartbeat <= std::chrono::milliseconds::zero()) return;
    heartbeat_.expires_at(next_heartbeat_);
    heartbeat_.async_wait([self = keep_alive(), this](const boost::system::error_code& ec) {
      if (!ec) on_heartbeat();
    });
  }

  // Idle means nothing written for a whole heartbeat; a busy stream needs no comment lines.
  void on_heartbeat() {
    if (ended_) return;
    const auto now = Clock::now();
    if (writing_ || !channel_->is_open()) {
      next_heartbeat_ = now + options_.heartbeat;
    } else if (now - last_write_ >= options_.heartbeat) {
      const std::string_view beat = chunked_ ? kHeartbeatChunk : kHeartbeatRaw;
      buffers_.assign({asio::buffer(beat.data(), beat.size())});
      write([this](const boost::system::error_code& ec) {
        if (ended_) return;
        if (ec) {
          end(StreamEnd::kClientGone);
          return;
        }
        pull_and_write();
      });
      next_heartbeat_ = now + options_.heartbeat;
    } else {
      next_heartbeat_ = last_write_ + options_.heartbeat;
    }
    arm_heartbeat();
  }

  void close_transport() noexcept override { heartbeat_.cancel(); }

  const bool chunked_;
  std::string head_;
  asio::steady_timer heartbeat_;
  std::deque<std::string> batch_;  // the messages being written
  std::vector<asio::const_buffer> buffers_;
  std::array<char, 64> probe_{};
  Clock::time_point last_write_ = Clock::now();
  Clock::time_point next_heartbeat_;
  Clock::time_point write_deadline_ = Clock::time_point::max();
  StreamEnd close_reason_ = StreamEnd::kClosed;  // why the stream ends once its close was written
  bool opened_ = false;
  bool writing_ = false;
};

}  // namespace

std::unique_ptr<StreamSession> make_sse_stream(Connection& connection, std::shared_ptr<StreamHandler> handler,
                                               StreamOptions options, bool chunked, std::string head) {
  return std::make_unique<SseStream>(connection, std::move(handler), options, chunked, std::move(head));
}

}  // namespace samokoder::http::detail
