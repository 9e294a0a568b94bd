// Clients of a run's event streams for the tests: an SSE reader (chunked text/event-stream, parsed
// into events and heartbeat comments) and a WebSocket reader, both blocking with a timeout per read,
// both sending their credentials in a header as a real client does.
//
// Ownership: each owns its socket. Thread-safety: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace samokoder::runs_test {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct StreamEvent {
  std::string id;    // SSE only; empty for a transient event
  std::string type;  // SSE "event:" or the document's "type"
  nlohmann::json document;
};

class SseClient {
 public:
  SseClient(std::uint16_t port, const std::string& target, const Headers& headers);
  ~SseClient();
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  unsigned status() const noexcept { return status_; }
  std::string header(const std::string& name) const;
  // The next event (comments are counted, not returned); nullopt on timeout or when the stream ended.
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout);
  bool ended() const noexcept { return ended_; }
  std::size_t comments() const noexcept { return comments_; }
  void close();

 private:
  bool fill(std::chrono::milliseconds timeout);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  unsigned status_ = 0;
  bool ended_ = false;
  std::size_t comments_ = 0;
  std::string pending_;  // decoded body not yet parsed into events
};

class WsClient {
 public:
  WsClient(std::uint16_t port, const std::string& target, const Headers& headers);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  bool connected() const noexcept { return connected_; }
  unsigned handshake_status() const noexcept { return handshake_status_; }
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool connected_ = false;
  unsigned handshake_status_ = 0;
};

}  // namespace samokoder::runs_test
