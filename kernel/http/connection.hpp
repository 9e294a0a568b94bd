// Internal to samokoder_http: one accepted TCP connection, serving HTTP/1.1 requests one at a time in
// arrival order (pipelined requests wait in the read buffer until the previous response is written).
//
// A connection reads and parses with its own loop over Beast's parser, so it can route on the header
// before the body arrives (per-route body limits, 413 without reading the body, 100-continue) and
// track deadlines without a timer per operation: its IoLoop's sweep calls check_deadline().
//
// A response that is a stream (Response::event_stream, Response::websocket) ends the request/response
// cycle: the connection hands itself to a StreamSession (stream_session.hpp), which writes the SSE head
// or completes the WebSocket handshake and owns the socket until the stream ends, and with it the
// connection. A stream is never idle in the keep-alive sense and has no request deadline: the sweep
// asks the session instead, which ends a stream whose writes stall.
//
// Ownership: shared by the pending asynchronous operations and a pool job's completion; the IoLoop
// lists it (raw pointer) while it is open. A handler on a pool thread never sees the connection: the
// request moves into a PendingCall for the call and back with the response. A stream's session is
// owned by the connection. Thread-safety: every method runs on its loop's thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/router.hpp"
#include "http/server_core.hpp"

namespace samokoder::http::detail {

using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

struct PendingCall;
class StreamSession;

class Connection final : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore& core, IoLoop& loop, Socket socket);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  // Acts on an expired deadline: 408 for a request still arriving, close otherwise.
  void check_deadline(std::chrono::steady_clock::time_point now);
  // For a graceful stop: closes the connection if it waits for a new request.
  void close_if_idle();
  // For a graceful stop: ends an open stream after what it queued (SSE: the last chunk; WebSocket:
  // close 1001). Other connections are left alone.
  void shutdown_stream();
  void close();

 private:
  friend struct IoLoop;
  friend class StreamSession;
  using Clock = std::chrono::steady_clock;
  using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;
  enum class Phase { kIdle, kReading, kHandling, kWriting, kDraining, kStreaming, kClosed };
  // How the head frames the body: Content-Length, chunked (an SSE stream), or up to the close (an SSE
  // stream to an HTTP/1.0 client).
  enum class Framing { kLength, kChunked, kUntilClose };

  void begin_request();
  void read_some();
  void on_read(const boost::system::error_code& ec, std::size_t bytes);
  void parse();
  void on_parse_error(const boost::system::error_code& ec);
  bool on_header();
  void on_request();
  void dispatch();
  void answer_options();
  void dispatch_to_pool(const Route& route);
  void on_call_finished(WorkPool::Outcome outcome, PendingCall& call);
  void respond_error(unsigned status, std::string_view slug, std::string_view title, std::string detail);
  void finish();
  void vet_stream();
  void finalize_response();
  bool starts_stream();
  void start_stream();
  void wake_stream();
  void serialize_head(Framing framing = Framing::kLength);
  void record(Clock::time_point now);
  void write(Clock::time_point now);
  void on_write(const boost::system::error_code& ec);
  void complete_request() noexcept;
  void start_drain();
  void drain_some();

  ServerCore& core_;
  IoLoop& loop_;
  Socket socket_;
  std::string remote_;
  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  Request request_;
  Response response_;
  RouteMatch match_;
  std::string head_;                       // serialized status line and headers of the response being written
  std::unique_ptr<StreamSession> stream_;  // once the response became a stream

  Phase phase_ = Phase::kIdle;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point started_;
  std::size_t label_ = 0;  // metrics route label, see HttpMetrics
  std::size_t drained_ = 0;
  bool first_request_ = true;
  bool header_done_ = false;
  bool timed_out_ = false;
  bool in_flight_ = false;
  bool close_after_ = false;
  bool linger_ = false;  // the client may still be sending: drain before closing
  bool send_body_ = true;

  // IoLoop's intrusive list.
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  bool linked_ = false;
};

}  // namespace samokoder::http::detail
