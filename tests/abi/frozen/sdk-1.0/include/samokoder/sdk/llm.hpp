// LlmProvider: chat completion against one family of model APIs (OpenAI-compatible Chat Completions,
// Anthropic Messages, ...), a plugin kind.
//
// A provider translates one CompletionRequest into its wire format, sends it through the host's
// outbound HTTP service (HostServices::http(), never a library of its own), streams the answer into
// the caller's CompletionObserver and returns the whole Completion. It does not retry, pick models,
// resolve keys or count budgets: the kernel's LLM gateway does that around every call, so a provider
// stays a translator and every provider gets the same retries, accounting and timeouts.
//
// What the gateway needs from a failed call is in its Status code, and in the observer's hints:
//   kResourceExhausted   the endpoint said 429 (rate limit or quota); on_retry_after() carries its
//                        Retry-After when it sent one
//   kUnavailable         5xx, an overloaded answer, a connection that failed or closed mid-stream
//   kDeadlineExceeded    a timeout passed; the message names it (connect, first_token, idle, total)
//   kCancelled           the CancelToken was stopped; the upstream connection was closed at once
//   kUnauthenticated     the endpoint refused the key (401); kPermissionDenied for 403
//   kInvalidArgument     the endpoint refused the request (400, 404 model not found, 422): retrying
//                        it unchanged fails again
//   kInternal            the answer could not be understood (malformed JSON or SSE)
// Messages quote the endpoint's own error message, never the key, a header or the request body.
//
// Compatibility: frozen since SDK 1.0 (new capability comes as a new interface).
//
// Ownership: requests and observers belong to the caller and live for the duration of the call.
// Thread-safety: complete() and list_models() are called concurrently from many runs; an instance
// must be thread-safe. Observer methods are called on whichever thread the provider reads the answer
// on (often a thread of the HTTP service), one at a time for a given call.
// Exceptions: none cross the interface; the kernel turns a thrown exception into a failed call.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/http_client.hpp>
#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

struct ChatMessage {
  std::string role;  // "user" or "assistant" (the system prompt has its own field)
  std::string content;
  // The prefix up to and including this message is stable across calls (instructions, a spec, file
  // contents): a provider with explicit prompt caching marks it (Anthropic cache_control); providers
  // that cache on their own ignore it.
  bool cache_prefix = false;
};

// Asks for an answer that is one JSON value matching `schema` (JSON Schema, draft 2020-12 subset the
// endpoints accept). OpenAI-compatible endpoints get response_format json_schema; Anthropic gets a tool
// whose input_schema is `schema` and is made to call it. The provider returns the JSON text as
// Completion::content; validating it against the schema is the gateway's job.
struct JsonOutput {
  std::string name;  // [a-zA-Z0-9_-]{1,64}, e.g. "project_spec"
  nlohmann::json schema;
};

// 0 takes the provider's configured default.
struct LlmTimeouts {
  std::chrono::milliseconds connect{0};      // DNS, TCP and TLS handshake
  std::chrono::milliseconds first_token{0};  // from the request sent to the first content delta
  std::chrono::milliseconds idle{0};         // the longest silence between two chunks of the stream
  std::chrono::milliseconds total{0};        // the whole call
};

struct CompletionRequest {
  std::string model;
  std::string system;  // the system prompt; empty: none
  std::vector<ChatMessage> messages;
  std::optional<double> temperature;  // unset: the endpoint's default
  std::uint32_t max_tokens = 4096;
  std::optional<JsonOutput> json_output;
  std::string api_key;   // the user's own key (BYOK) or the server-wide one; never logged or quoted
  std::string base_url;  // empty: the provider's configured endpoint (e.g. https://api.openai.com/v1)
  LlmTimeouts timeouts;
  bool stream = true;  // false: one buffered answer (endpoints without streaming); deltas still arrive
};

struct TokenUsage {
  std::uint64_t prompt_tokens = 0;         // input tokens, cached ones included
  std::uint64_t completion_tokens = 0;     // output tokens
  std::uint64_t cached_prompt_tokens = 0;  // input tokens read from the provider's prompt cache
  std::uint64_t cache_write_tokens = 0;    // input tokens written to it (Anthropic bills them apart)
  // The endpoint reported no usage, so the provider counted (about four characters a token).
  bool estimated = false;
};

struct Completion {
  std::string content;  // the text, or the JSON text when json_output was asked for
  std::string
      finish_reason;  // normalised: "stop", "length", "content_filter", "tool_use", or the endpoint's own
  std::string model;  // the model that actually answered, as the endpoint names it
  TokenUsage usage;
};

// What a provider tells its caller while a call runs. Every method has a default, so a caller
// overrides only what it uses.
class CompletionObserver {
 public:
  virtual ~CompletionObserver() = default;
  // A piece of the answer's text, in order. Return false to stop reading: the call ends at once,
  // successfully, with the text received so far and finish_reason "stopped".
  virtual bool on_delta(std::string_view text) { return static_cast<void>(text), true; }
  // The endpoint asked to wait this long before retrying (Retry-After of a 429 or 503), called before
  // the call fails.
  virtual void on_retry_after(std::chrono::milliseconds delay) { static_cast<void>(delay); }
  // Usage as far as it is known, also when the call then fails or is cancelled after tokens were
  // spent, so they are still accounted.
  virtual void on_usage(const TokenUsage& usage) { static_cast<void>(usage); }
};

struct ModelInfo {
  std::string id;        // what CompletionRequest::model takes
  std::string owned_by;  // as the endpoint says, may be empty
};

struct ModelListRequest {
  std::string api_key;
  std::string base_url;  // empty: the configured endpoint
  // connect and total bound the listing (first_token: the response's headers); 0 takes the provider's
  // configured default. A user waits on it (key verification, the models page), so callers bound it.
  LlmTimeouts timeouts{};
};

class LlmProvider : public Plugin {
 public:
  // The provider name users store keys under and config refers to, e.g. "openai".
  virtual std::string_view provider() const noexcept = 0;
  // Runs one completion. `observer` may be null. Pass `cancel` to the HTTP call: once it is stopped
  // the provider closes its connection and returns kCancelled.
  virtual Result<Completion> complete(const CompletionRequest& request, CompletionObserver* observer,
                                      CancelToken cancel) = 0;
  // The endpoint's models (GET /models). kUnimplemented where the endpoint has no such list;
  // kUnauthenticated when the key is refused, which is how a key is verified before it is stored.
  virtual Result<std::vector<ModelInfo>> list_models(const ModelListRequest& request, CancelToken cancel) = 0;
};

}  // namespace samokoder::sdk
