// Streams: responses that stay open after their head, for server-sent events (text/event-stream over
// chunked transfer encoding) and WebSocket (RFC 6455 on Boost.Beast). A handler answers with
// Response::event_stream(handler) or Response::websocket(handler); the connection writes the head (or
// completes the WebSocket handshake) and from then on belongs to the stream.
//
// The application talks to an open stream through a StreamChannel: send() queues one message from any
// thread and never blocks; the connection's I/O thread writes the queue out. A client that reads
// slower than the application sends lets the queue grow only to StreamOptions::max_queued_bytes: past
// it the stream closes (SSE: the response ends; WebSocket: close code 1008) rather than holding
// unbounded memory, and the client resumes with Last-Event-ID. The server sends a heartbeat (an SSE
// comment line, a WebSocket ping) every StreamOptions::heartbeat while the stream is idle, so proxies
// keep it open and a dead peer is noticed; a WebSocket whose pongs stop for two heartbeats closes. A
// client that goes away (EOF, reset, a failed write) closes the stream at once, which
// StreamHandler::on_close reports. A server stop closes every stream (WebSocket code 1001).
//
// An SSE response always ends its connection when the stream ends (Connection: close), so a stream
// never has to hand a connection back to keep-alive reading.
//
// Ownership: the response shares the handler with the connection until on_close returned; the
// channel is shared by the connection and whoever the handler hands it to, and outlives the
// connection harmlessly (send() then returns false).
// Thread-safety: StreamChannel methods are safe from any thread. StreamHandler methods run on the
// connection's I/O thread, one at a time, and must not block (post real work elsewhere).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace samokoder::http {

// WebSocket close codes the server uses (RFC 6455 section 7.4.1).
inline constexpr std::uint16_t kCloseNormal = 1000;
inline constexpr std::uint16_t kCloseGoingAway = 1001;      // the server is stopping
inline constexpr std::uint16_t kCloseProtocolError = 1002;  // a frame the protocol forbids
inline constexpr std::uint16_t kClosePolicy = 1008;         // too slow a reader, or a message refused
inline constexpr std::uint16_t kCloseTooBig = 1009;         // a message over max_message_bytes
inline constexpr std::uint16_t kCloseInternal = 1011;

class StreamChannel {
 public:
  virtual ~StreamChannel() = default;
  // Queues one message: for SSE a complete event block ("id: 7\nevent: step.committed\ndata: {...}\n\n",
  // see format_sse_event), for WebSocket one text message. Returns false when the stream is closed or
  // this message would take the queue past max_queued_bytes (the stream then closes with kClosePolicy).
  virtual bool send(std::string message) = 0;
  // Ends the stream after what is queued was written (SSE: the last chunk; WebSocket: a close frame with
  // `code` and `reason`, which is at most 123 bytes). Idempotent.
  virtual void close(std::uint16_t code = kCloseNormal, std::string_view reason = {}) = 0;
  virtual bool is_open() const noexcept = 0;
  // Bytes queued and not yet written to the socket.
  virtual std::size_t queued_bytes() const noexcept = 0;
};

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Once, after the head was written or the handshake completed.
  virtual void on_open(std::shared_ptr<StreamChannel> channel) = 0;
  // WebSocket only: one complete text message from the client (binary messages close with 1003).
  virtual void on_message(std::string_view text) { static_cast<void>(text); }
  // Once, when the stream ended for any reason; also when it closed before on_open (a failed handshake).
  virtual void on_close() = 0;
};

struct StreamOptions {
  std::size_t max_queued_bytes = 1024 * 1024;
  std::chrono::milliseconds heartbeat{15000};
  std::size_t max_message_bytes = 64 * 1024;  // WebSocket: the largest message a client may send
};

// One SSE event block: "id: <id>\n" when id is not empty, "event: <type>\n" when type is not empty,
// one "data: " line per line of `data`, then a blank line. `id` and `type` must hold no line break.
std::string format_sse_event(std::string_view id, std::string_view type, std::string_view data);

}  // namespace samokoder::http
