// Response: what a handler or middleware answers: status, content type, body and extra headers, plus
// helpers for JSON, text and RFC 9457 problem+json answers, or a stream (server-sent events or a
// WebSocket, see stream.hpp) that takes the connection over once the head is written.
//
// The server owns the framing and the always-on headers (Content-Length, Transfer-Encoding,
// Connection, Date, Server, X-Request-Id, security and CORS headers; see server.hpp); extra headers with
// those framing names are ignored, and a security header a handler sets itself replaces the default.
//
// Ownership: a plain value; a stream response shares its StreamHandler. Thread-safety: none; one thread
// at a time, like Request.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/stream.hpp"

namespace samokoder::http {

// Prefix of every problem "type"; the slug names the problem ("not_found", "validation_failed").
inline constexpr std::string_view kProblemTypeBase = "https://samokoder.dev/problems/";

struct Response {
  unsigned status = 200;
  std::string content_type;  // empty: no Content-Type header
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Set by problem(): the document is rendered into `body` by the server once the request path and id
  // are known (members "instance" and "request_id" are added unless already present), then cleared.
  std::optional<nlohmann::json> problem_document;

  // Set by event_stream() and websocket(). The server starts the stream only for the answer it would
  // have sent anyway: SSE for a 200 to a GET (a HEAD gets the head alone), WebSocket for a 101 to an
  // upgrade request (anything else is answered 426). A stream the server does not start still hears
  // on_close, so a handler never waits for an on_open that will not come.
  enum class StreamKind { kNone, kServerSentEvents, kWebSocket };
  StreamKind stream_kind = StreamKind::kNone;
  std::shared_ptr<StreamHandler> stream;
  StreamOptions stream_options;

  // Replaces every header of that name (case-insensitive) with one value.
  void set_header(std::string_view name, std::string value);
  // Appends a header even if one of that name exists (Set-Cookie).
  void add_header(std::string name, std::string value);
  // The first value of a header, case-insensitive; empty when missing.
  std::string_view header(std::string_view name) const noexcept;
  bool has_header(std::string_view name) const noexcept;

  static Response json(unsigned status, const nlohmann::json& document);
  static Response text(unsigned status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  static Response no_content();  // 204
  // 200 text/event-stream with Cache-Control: no-store and X-Accel-Buffering: no (headers a handler may
  // still replace); the body is the events the handler sends. Throws std::invalid_argument for a null
  // handler.
  static Response event_stream(std::shared_ptr<StreamHandler> handler, StreamOptions options = {});
  // 101 Switching Protocols to a WebSocket; extra headers (Sec-WebSocket-Protocol) go into the
  // handshake answer. Throws std::invalid_argument for a null handler.
  static Response websocket(std::shared_ptr<StreamHandler> handler, StreamOptions options = {});
  // An application/problem+json answer: {type, title, status, detail, errors[, instance, request_id]}.
  // `errors` lists field failures as {"path": "/email", "message": "..."}; see field_error().
  static Response problem(unsigned status, std::string_view type_slug, std::string_view title,
                          std::string_view detail, nlohmann::json errors = nlohmann::json::array());
  // One element of a problem's errors array; `path` is a JSON pointer into the request document.
  static nlohmann::json field_error(std::string_view path, std::string_view message);

  // Renders problem_document into body, adding instance and request_id unless present (empty values
  // are left out). Called by the server; a no-op without a problem document.
  void render_problem(std::string_view instance, std::string_view request_id);
};

// Serializes JSON as the server sends it: compact, invalid UTF-8 replaced rather than thrown on.
std::string dump_json(const nlohmann::json& document);

}  // namespace samokoder::http
