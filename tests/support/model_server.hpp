// ScriptedModelServer: a real model API on 127.0.0.1 for tests, speaking the OpenAI Chat Completions
// and the Anthropic Messages wire formats, streamed (server-sent events) and buffered, answering from a
// per-test script and misbehaving on demand. Every suite that needs a model (providers, the gateway,
// runs, the agent pipeline, the browser test) talks to this instead of the internet.
//
// Routes (one server answers both formats: an OpenAI client takes url("/v1") as its base URL, an
// Anthropic client url("") as the official SDKs do):
//   POST /v1/chat/completions  OpenAI format; "stream": true gives SSE chunks ending in "data: [DONE]",
//                              with a usage chunk when stream_options.include_usage is true
//   POST /v1/messages          Anthropic format; "stream": true gives message_start,
//                              content_block_start/delta/stop, message_delta (usage), message_stop
//   GET  /v1/models            both formats' model list (the models given to the constructor); the
//                              Anthropic one in pages of ?limit= (default 20, as the API's), capped by
//                              Options::models_page_size, with has_more and last_id, the next page
//                              asked for with ?after_id=
// Control routes, for a test that runs the server in another process (scripted_model_server):
//   POST /__script             a JSON array of replies (model_reply_from_json), appended to the script
//   GET  /__calls              the calls so far, as JSON
// Anything else is 404. A request is answered by the next reply of the script (or by the responder
// function); when neither has one, it gets 500 with the message "script exhausted", which fails the
// test loudly instead of hanging it.
//
// Authentication: when `expected_key` is set, a request without "Authorization: Bearer <key>"
// (OpenAI) or "x-api-key: <key>" (Anthropic) gets 401 in that format's error shape.
//
// Ownership: the server owns its sockets and threads; the destructor closes every connection (a
// stalled one included) and joins. Thread-safety: every method may be called from any thread while
// requests are served; replies are taken from the script in the order requests arrive.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "loopback_http.hpp"

namespace samokoder::testing {

enum class WireFormat { kOpenAi, kAnthropic };

// Input tokens count cached ones too, as OpenAI reports them; the Anthropic rendering subtracts the
// cache counts from input_tokens, as that API reports them apart.
struct ScriptedUsage {
  std::uint64_t prompt_tokens = 10;
  std::uint64_t completion_tokens = 5;
  std::uint64_t cached_prompt_tokens =
      0;  // OpenAI prompt_tokens_details.cached_tokens; Anthropic cache_read_input_tokens
  std::uint64_t cache_write_tokens = 0;  // Anthropic cache_creation_input_tokens
};

// One answer of the script. The defaults give a well-formed answer "hello" with usage.
struct ModelReply {
  // --- a normal answer ---------------------------------------------------------------------------
  // The text, in the pieces it is streamed in (one content delta event each); concatenated for a
  // buffered answer. For an Anthropic answer with `tool_json`, the pieces are input_json_delta
  // fragments of a tool_use block named by the request's forced tool instead of text.
  std::vector<std::string> deltas = {"hello"};
  bool tool_json = false;
  std::string finish_reason = "stop";  // OpenAI finish_reason; mapped to Anthropic stop_reason
                                       // ("stop" -> "end_turn", "length" -> "max_tokens", "tool_use")
  std::string model;                   // answered model name; empty: the request's model
  std::optional<ScriptedUsage> usage = ScriptedUsage{};  // nullopt: the answer reports no usage at all

  // --- an HTTP error instead of an answer --------------------------------------------------------
  unsigned status = 200;  // not 200: an error body in the request's format, with `error_message`
  std::string error_message = "scripted failure";
  std::optional<int> retry_after_seconds;  // sent as Retry-After with the error
  // Retry-After as an HTTP date (IMF-fixdate, now + retry_after_seconds) instead of a number of
  // seconds: RFC 9110 allows both, and proxies and some gateways send the date.
  bool retry_after_as_date = false;
  // The error's type in its body (OpenAI error.type, Anthropic error.type), for an HTTP error and for
  // error_after's event; empty: the type each format uses for the status (stream_error_status in a
  // stream).
  std::string error_type;

  // --- misbehaviour while answering --------------------------------------------------------------
  std::chrono::milliseconds delay_before_headers{0};  // a model that thinks before answering
  std::chrono::milliseconds delay_between_events{0};  // a slow stream
  // Streamed bytes are written in pieces of this size, splitting events (and UTF-8 sequences)
  // anywhere; 0 writes one event per write.
  std::size_t split_bytes = 0;
  bool merge_events = false;  // all events in a single write
  // Before each event an SSE comment line (": keep-alive", what proxies and some servers send) and, for
  // Anthropic, a ping event as well.
  bool keep_alives = false;
  std::optional<std::size_t>
      malformed_after;                     // after this many content events, one event whose data is not JSON
  std::optional<std::size_t> error_after;  // after this many content events, an error event in the stream
  // What error_after's event stands for: its type when error_type is empty, and OpenAI's error.code as
  // the number vLLM and OpenRouter put there. 0: 500 (server_error, code null) for OpenAI, 529
  // (overloaded_error) for Anthropic.
  unsigned stream_error_status = 0;
  // OpenAI: end the stream cleanly after its last chunk (finish reason, usage) without "data: [DONE]",
  // as some compatible servers do.
  bool omit_done = false;
  std::optional<std::size_t> stall_after;  // after this many content events, hold the connection silent
  std::optional<std::size_t> close_after;  // after this many content events, close the connection
  bool stall_before_headers = false;       // accept the request and never answer
  bool close_before_headers = false;       // read the request and close without a byte
};

// A request the server received, in arrival order.
struct ModelCall {
  WireFormat format = WireFormat::kOpenAi;
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lowercase names
  nlohmann::json body;                         // null for GET or a body that is not JSON
  std::string query;                           // the target after '?', as sent (percent-encoded)
  std::string model() const;                   // body["model"], or ""
  bool streamed() const;                       // body["stream"] == true
  // The text of every message (system prompt included), joined: what a responder matches prompts on.
  std::string prompt_text() const;
};

class ScriptedModelServer {
 public:
  using Responder = std::function<ModelReply(const ModelCall&)>;

  struct Options {
    const TestPki* tls = nullptr;  // HTTPS with this PKI's server certificate
    std::string expected_key;      // empty: any key (or none) is accepted
    std::vector<std::string> models = {"test-model", "test-model-mini"};
    std::size_t models_page_size = 0;  // the most models an Anthropic page holds; 0: as ?limit= says
  };

  ScriptedModelServer();
  explicit ScriptedModelServer(Options options);
  ~ScriptedModelServer();
  ScriptedModelServer(const ScriptedModelServer&) = delete;
  ScriptedModelServer& operator=(const ScriptedModelServer&) = delete;

  // Appends replies to the script; each request takes the next one.
  void script(std::vector<ModelReply> replies);
  // Answers every request the script has no reply for (an agent pipeline keyed on prompts).
  void respond_with(Responder responder);

  std::uint16_t port() const noexcept;
  // "http://127.0.0.1:<port><path>" (https://localhost:<port><path> with TLS).
  std::string url(std::string_view path = "/v1") const;

  std::size_t request_count() const;  // POSTs to a completion route
  std::vector<ModelCall> calls() const;
  std::size_t connections_accepted() const;
  std::size_t connections_closed() const;  // seen ended (by the client or the server)

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::unique_ptr<LoopbackHttpServer> server_;
};

// A reply from JSON ({"deltas": [...], "status": 429, "retry_after_seconds": 1, ...}, the field names
// above), for the scripted_model_server program and for scripts kept in files.
ModelReply model_reply_from_json(const nlohmann::json& reply);

}  // namespace samokoder::testing
