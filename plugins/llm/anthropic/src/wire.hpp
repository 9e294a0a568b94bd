// The Anthropic Messages wire format (POST /v1/messages, GET /v1/models): what the provider sends and
// how it reads what comes back, kept apart from the HTTP calls so every rule here is plain data in,
// data out.
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

namespace samokoder::llm_anthropic {

inline constexpr std::string_view kApiVersion = "2023-06-01";
// The API caches at most this many prefixes per request and refuses a fifth cache_control.
inline constexpr std::size_t kMaxCacheBreakpoints = 4;

// The request body. A system prompt of at least `cache_system_min_chars` characters and the last
// block of every cache_prefix message get cache_control, at most kMaxCacheBreakpoints of them: the
// system prompt first (shared by every conversation), then the latest messages (the longest prefixes).
nlohmann::json request_body(const sdk::CompletionRequest& request, std::size_t cache_system_min_chars);

// Anthropic's stop_reason in the SDK's words; `forced_tool` when the call forced the JSON tool, whose
// use is the normal end of the answer.
std::string finish_reason_of(std::string_view stop_reason, bool forced_tool);

// The Status for an error the endpoint reported, as an HTTP status (`http_status`, 0 for an error
// event inside a stream) with its JSON body ({"type":"error","error":{"type","message"}}) or a body
// that is not JSON. The quoted message is cut to about 300 characters; the caller scrubs the key.
sdk::Status error_status(unsigned http_status, std::string_view body);

using llm_common::estimated_tokens;
using llm_common::prompt_chars;
using llm_common::scrubbed;

// Reads a streamed answer event by event and keeps what the Completion needs.
class StreamDecoder {
 public:
  explicit StreamDecoder(const sdk::CompletionRequest& request);

  // What one event means for the call.
  struct Step {
    sdk::Status status;                  // not OK: the call fails with it
    std::optional<std::string> content;  // a content piece, to hand to on_delta
    bool usage_changed = false;          // usage() is new: tell the observer
  };
  Step on_event(std::string_view event_name, std::string_view data);

  bool finished() const noexcept { return finished_; }  // message_stop arrived
  bool usage_known() const noexcept { return usage_known_; }
  const sdk::TokenUsage& usage() const noexcept { return usage_; }
  const std::string& model() const noexcept { return model_; }
  const std::string& content() const noexcept { return content_; }
  std::string finish_reason() const { return finish_reason_of(stop_reason_, json_tool_); }

 private:
  bool json_tool_;
  std::string tool_name_;
  bool finished_ = false;
  bool usage_known_ = false;
  std::uint64_t input_tokens_ = 0;
  sdk::TokenUsage usage_;
  std::string model_;
  std::string content_;
  std::string stop_reason_;
  // The content block being streamed is one whose deltas are the answer (text, or the forced tool's
  // input JSON).
  bool answer_block_ = false;
};

// A buffered (non-streamed) answer, or kInternal when it is not a message. `usage_reported` says
// whether the answer carried usage (otherwise Completion::usage is all zero).
sdk::Result<sdk::Completion> parse_message(std::string_view body, const sdk::CompletionRequest& request,
                                           bool& usage_reported);

}  // namespace samokoder::llm_anthropic
