// LlmProvider: chat completion against one family of model APIs (OpenAI-compatible, Anthropic, ...).
//
// Draft for SDK 1.0: the LLM issue completes it (streaming details, tool calls). After release the
// interface is frozen (new capability comes as LlmProvider2).
//
// Ownership: requests and sinks are owned by the caller and valid for the duration of the call.
// Thread-safety: complete() is called concurrently from many runs; instances must be thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct CompletionRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  double temperature = 0.5;
  std::uint32_t max_tokens = 4096;
  std::string api_key;   // the user's own key (BYOK) or the server-wide fallback; never logged
  std::string base_url;  // empty: the provider's default endpoint
};

struct TokenUsage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
};

struct Completion {
  std::string content;
  std::string finish_reason;  // "stop", "length", ...
  std::string model;          // the model that actually answered
  TokenUsage usage;
};

// Receives streamed text as it arrives. Return false to stop the answer there (the call succeeds
// with what arrived); to abandon a call from another thread, stop its CancelToken instead.
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  virtual bool on_delta(std::string_view text) = 0;
};

class LlmProvider : public Plugin {
 public:
  // The provider name users store keys under, e.g. "openai".
  virtual std::string_view provider() const noexcept = 0;
  // Runs one completion; `sink` may be null (no streaming). Pass `cancel` to every HTTP call the
  // completion makes: once it is stopped the provider closes its connection and returns kCancelled.
  virtual Result<Completion> complete(const CompletionRequest& request, CompletionSink* sink,
                                      CancelToken cancel) = 0;
};

}  // namespace samokoder::sdk
