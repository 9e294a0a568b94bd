#include "http/stream.hpp"

#include <charconv>
#include <exception>
#include <iterator>
#include <utility>

#include <spdlog/spdlog.h>

#include "http/connection.hpp"
#include "http/server_core.hpp"
#include "http/stream_session.hpp"

namespace samokoder::http {

namespace {

// SSE field values end at any of CR, LF or CRLF (WHATWG HTML, "event stream interpretation"), so a
// stray CR must split a line too: left inside a data line, the browser would read it as a line end.
void append_lines(std::string& out, std::string_view field, std::string_view value) {
  for (;;) {
    const std::size_t end = value.find_first_of("\r\n");
    out += field;
    out += value.substr(0, end);
    out += '\n';
    if (end == std::string_view::npos) return;
    const std::size_t next =
        value[end] == '\r' && end + 1 < value.size() && value[end + 1] == '\n' ? end + 2 : end + 1;
    value.remove_prefix(next);
  }
}

// A line break in an id or type would start a field of the caller's choosing; the contract forbids
// them, and dropping them keeps a broken caller from forging events.
void append_single_line(std::string& out, std::string_view field, std::string_view value) {
  out += field;
  for (char c : value) {
    if (c != '\r' && c != '\n') out += c;
  }
  out += '\n';
}

}  // namespace

std::string format_sse_event(std::string_view id, std::string_view type, std::string_view data) {
  std::string out;
  out.reserve(id.size() + type.size() + data.size() + 24);
  if (!id.empty()) append_single_line(out, "id: ", id);
  if (!type.empty()) append_single_line(out, "event: ", type);
  append_lines(out, "data: ", data);
  out += '\n';
  return out;
}

namespace detail {

std::string_view to_string(StreamEnd reason) noexcept {
  switch (reason) {
    case StreamEnd::kClientGone:
      return "client_gone";
    case StreamEnd::kOverflow:
      return "overflow";
    case StreamEnd::kClosed:
      return "closed";
    case StreamEnd::kServerStop:
      return "server_stop";
    case StreamEnd::kError:
      return "error";
    case StreamEnd::kTimeout:
      return "timeout";
    case StreamEnd::kProtocol:
      return "protocol";
  }
  return "error";
}

std::string_view to_string(StreamType type) noexcept {
  return type == StreamType::kSse ? "sse" : "websocket";
}

// ---- StreamQueue ----

namespace {

std::string frame_chunk(std::string message) {
  char size[2 * sizeof(std::size_t)];
  const auto result = std::to_chars(size, size + sizeof(size), message.size(), 16);
  std::string out;
  out.reserve(static_cast<std::size_t>(result.ptr - size) + message.size() + 4);
  out.append(size, result.ptr);
  out += "\r\n";
  out += message;
  out += "\r\n";
  return out;
}

}  // namespace

StreamQueue::StreamQueue(Framing framing, std::size_t max_queued_bytes, std::function<void()> wake)
    : framing_(framing), max_queued_bytes_(max_queued_bytes), wake_(std::move(wake)) {}

bool StreamQueue::send(std::string message) {
  // An empty chunk would be the chunked body's terminator; an empty SSE message carries nothing anyway.
  if (framing_ != Framing::kMessage && message.empty()) return is_open();
  if (!is_open()) return false;
  if (framing_ == Framing::kChunked) message = frame_chunk(std::move(message));
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) != State::kOpen) return false;
  const std::size_t queued = queued_bytes_.load(std::memory_order_relaxed);
  if (message.size() > max_queued_bytes_ - queued) {
    // The reader is too slow: end the stream instead of buffering without bound. The queue goes at
    // once; what is being written stays counted until its write completes or fails.
    std::size_t dropped = 0;
    for (const std::string& m : queue_)
      dropped += m.size();
    queue_.clear();
    queued_bytes_.store(queued - dropped, std::memory_order_relaxed);
    state_.store(State::kOverflow, std::memory_order_release);
    // Always: the loop may sit in a write to this very client and must hear about it now.
    if (wake_) wake_();
    return false;
  }
  queued_bytes_.store(queued + message.size(), std::memory_order_relaxed);
  queue_.push_back(std::move(message));
  if (!wake_pending_ && wake_) {
    wake_pending_ = true;
    wake_();
  }
  return true;
}

void StreamQueue::close(std::uint16_t code, std::string_view reason) {
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) != State::kOpen) return;
  close_code_ = code;
  close_reason_ = std::string(reason);
  state_.store(State::kClosing, std::memory_order_release);
  if (!wake_pending_ && wake_) {
    wake_pending_ = true;
    wake_();
  }
}

bool StreamQueue::is_open() const noexcept {
  return state_.load(std::memory_order_acquire) == State::kOpen;
}

std::size_t StreamQueue::queued_bytes() const noexcept {
  return queued_bytes_.load(std::memory_order_relaxed);
}

StreamQueue::Pulled StreamQueue::pull(std::deque<std::string>& out) {
  Pulled pulled;
  std::lock_guard lock(mutex_);
  const State state = state_.load(std::memory_order_relaxed);
  if (state == State::kOverflow || state == State::kDetached) return pulled;
  const bool had_messages = !queue_.empty();
  out.insert(out.end(), std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  if (state == State::kClosing) {
    pulled.close = true;
    pulled.code = close_code_;
    pulled.reason = close_reason_;
  } else if (!had_messages) {
    wake_pending_ = false;
  }
  return pulled;
}

void StreamQueue::written(std::size_t bytes) noexcept {
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) == State::kDetached) return;
  const std::size_t queued = queued_bytes_.load(std::memory_order_relaxed);
  queued_bytes_.store(queued - std::min(queued, bytes), std::memory_order_relaxed);
}

void StreamQueue::detach() noexcept {
  std::function<void()> wake;
  std::deque<std::string> queue;
  {
    std::lock_guard lock(mutex_);
    state_.store(State::kDetached, std::memory_order_release);
    queue.swap(queue_);
    wake.swap(wake_);
    queued_bytes_.store(0, std::memory_order_relaxed);
  }
  // Destroyed outside the lock: the wake-up holds only a weak pointer and an executor, but nothing
  // needs to run under the mutex.
}

// ---- StreamSession ----

StreamSession::StreamSession(Connection& connection, StreamType type, std::shared_ptr<StreamHandler> handler,
                             StreamOptions options, StreamQueue::Framing framing)
    : connection_(connection), type_(type), handler_(std::move(handler)), options_(options) {
  // The wake-up runs on the application's thread under the queue's mutex: it only posts, and reaches
  // the connection through a weak pointer so that a channel never keeps a connection alive.
  auto wake = [weak = connection.weak_from_this(), executor = connection.loop_.context.get_executor()] {
    boost::asio::post(executor, [weak] {
      if (auto c = weak.lock()) c->wake_stream();
    });
  };
  channel_ = std::make_shared<StreamQueue>(framing, options_.max_queued_bytes, std::move(wake));
  connection_.core_.metrics.streams_active[static_cast<std::size_t>(type_)]->add(1);
}

StreamSession::~StreamSession() = default;

std::chrono::milliseconds StreamSession::write_timeout() const noexcept {
  return connection_.core_.request_timeout();
}

Socket& StreamSession::socket() noexcept {
  return connection_.socket_;
}

boost::beast::flat_buffer& StreamSession::read_buffer() noexcept {
  return connection_.buffer_;
}

boost::asio::io_context& StreamSession::context() noexcept {
  return connection_.loop_.context;
}

ServerCore& StreamSession::core() noexcept {
  return connection_.core_;
}

const Request& StreamSession::request() const noexcept {
  return connection_.request_;
}

void StreamSession::log_handler_failure(std::string_view what, std::string_view error) noexcept {
  try {
    connection_.core_.log->error("stream handler {} failed for {} (request {}): {}", what,
                                 connection_.request_.raw_path(), connection_.request_.request_id(), error);
  } catch (...) {
    // Logging is best effort here: the stream closes either way.
  }
}

bool StreamSession::call_on_open() noexcept {
  if (!handler_) return true;
  try {
    handler_->on_open(channel_);
    return true;
  } catch (const std::exception& e) {
    log_handler_failure("on_open", e.what());
  } catch (...) {
    log_handler_failure("on_open", "unknown exception");
  }
  return false;
}

bool StreamSession::call_on_message(std::string_view text) noexcept {
  if (!handler_) return true;
  try {
    handler_->on_message(text);
    return true;
  } catch (const std::exception& e) {
    log_handler_failure("on_message", e.what());
  } catch (...) {
    log_handler_failure("on_message", "unknown exception");
  }
  return false;
}

void StreamSession::end(StreamEnd reason) noexcept {
  if (ended_) return;
  ended_ = true;
  channel_->detach();
  close_transport();
  connection_.close();  // ends here again through abort(), which finds the stream ended
  auto& metrics = connection_.core_.metrics;
  metrics.streams_active[static_cast<std::size_t>(type_)]->add(-1);
  metrics.streams_closed[static_cast<std::size_t>(type_)][static_cast<std::size_t>(reason)]->add();
  try {
    connection_.core_.log->debug("{} stream for {} (request {}) ended: {}", to_string(type_),
                                 connection_.request_.raw_path(), connection_.request_.request_id(),
                                 to_string(reason));
  } catch (...) {
  }
  // Released before the call returns: whatever the handler holds (the channel among it) goes with it.
  const std::shared_ptr<StreamHandler> handler = std::move(handler_);
  if (!handler) return;
  try {
    handler->on_close();
  } catch (const std::exception& e) {
    log_handler_failure("on_close", e.what());
  } catch (...) {
    log_handler_failure("on_close", "unknown exception");
  }
}

}  // namespace detail
}  // namespace samokoder::http
