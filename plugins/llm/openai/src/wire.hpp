// The OpenAI Chat Completions wire format (POST /chat/completions, GET /models) as OpenAI and the
// compatible servers speak it: what the provider sends and how it reads what comes back, kept apart
// from the HTTP calls so every rule here is plain data in, data out.
//
// Ownership: plain values. Thread-safety: StreamDecoder is one per call, used by one thread at a time;
// the free functions are reentrant.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <samokoder/llm_common/provider_kit.hpp>
#include <samokoder/sdk/llm.hpp>

#include "config.hpp"

namespace samokoder::llm_openai {

// The request body: the system prompt first as role "system" (carrying the schema where `json_mode`
// has no response_format for it), then the messages; stream_options only when streaming with usage.
nlohmann::json request_body(const sdk::CompletionRequest& request, const ProviderConfig& config);

// finish_reason in the SDK's words: tool_calls and function_call become "tool_use", "eos" (some local
// servers) "stop"; the rest stays as sent.
std::string finish_reason_of(std::string_view finish_reason);

// The Status for an error the endpoint reported, as an HTTP status (`http_status`, 0 for an error
// object inside a stream) with its body ({"error": {"message", "type", "code"}}, or what compatible
// servers send instead). The quoted message is cut to about 300 characters; the caller scrubs the key.
sdk::Status error_status(unsigned http_status, std::string_view body);

using llm_common::estimated_tokens;
using llm_common::prompt_chars;
using llm_common::scrubbed;

// Reads a streamed answer chunk by chunk and keeps what the Completion needs.
class StreamDecoder {
 public:
  // What one event means for the call.
  struct Step {
    sdk::Status status;                  // not OK: the call fails with it
    std::optional<std::string> content;  // a non-empty content piece, to hand to on_delta
    bool usage_changed = false;          // usage() is new: tell the observer
  };
  Step on_event(std::string_view data);

  // The stream said it is complete: "data: [DONE]", or a finish_reason (servers that omit [DONE]).
  bool finished() const noexcept { return done_ || !finish_reason_.empty(); }
  bool usage_known() const noexcept { return usage_known_; }
  const sdk::TokenUsage& usage() const noexcept { return usage_; }
  const std::string& model() const noexcept { return model_; }
  const std::string& content() const noexcept { return content_; }
  std::string finish_reason() const { return finish_reason_of(finish_reason_); }

 private:
  bool done_ = false;
  bool usage_known_ = false;
  sdk::TokenUsage usage_;
  std::string model_;
  std::string content_;
  std::string finish_reason_;
};

// A buffered (non-streamed) answer, or kInternal when it is not a chat completion. `usage_reported`
// says whether the answer carried usage (otherwise Completion::usage is all zero).
sdk::Result<sdk::Completion> parse_completion(std::string_view body, bool& usage_reported);

// GET /models's answer, or kInternal when it has no data array.
sdk::Result<std::vector<sdk::ModelInfo>> parse_models(std::string_view body);

}  // namespace samokoder::llm_openai
