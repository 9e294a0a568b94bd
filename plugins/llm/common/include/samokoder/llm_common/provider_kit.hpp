// provider_kit: what every LLM provider plugin needs around its wire format, in one place so the
// providers stay translators: config values (base URL with its environment fallback, the four
// timeouts), the first-token timer shared with a call, and the small rules for errors, scrubbing and
// token estimates.
//
// Not part of the SDK: plugin code shared by plugins/llm/* (linked statically into each).
// Ownership: values are plain; CallShared is held by a call and its timer through shared_ptr.
// Thread-safety: the functions are pure; CallShared may be used from the call's thread and the timer's
// pool thread at once; a TimerGuard belongs to one call's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/http_client.hpp>
#include <samokoder/sdk/llm.hpp>
#include <samokoder/sdk/scheduler.hpp>

namespace samokoder::llm_common {

// --- config ------------------------------------------------------------------------------------------

// `url` as an http:// or https:// base without a trailing '/'; `origin` names where it came from in
// the error ("llm.openai config: base_url", "OPENAI_BASE_URL").
sdk::Result<std::string> normalized_base_url(std::string_view url, std::string_view origin);

// The base URL from config key "base_url", else from the environment variable `env_name` (its value
// `env_value`, null when unset), else `fallback`. `section` prefixes errors ("llm.openai config").
sdk::Result<std::string> read_base_url(const nlohmann::json& config, std::string_view section,
                                       const char* env_name, const char* env_value,
                                       std::string_view fallback);

// An integer 0..max under `key`, left unchanged when absent.
sdk::Status read_count(const nlohmann::json& config, std::string_view section, const char* key,
                       std::uint64_t max, std::uint64_t& out);

// connect_timeout_ms, first_token_timeout_ms, idle_timeout_ms, total_timeout_ms (each at most a day),
// each left unchanged when absent.
sdk::Status read_timeouts(const nlohmann::json& config, std::string_view section, sdk::LlmTimeouts& out);

// Rejects a key not in `known`, naming the known ones.
sdk::Status reject_unknown_keys(const nlohmann::json& config, std::string_view section,
                                const std::vector<std::string_view>& known);

// --- a call ------------------------------------------------------------------------------------------

inline std::chrono::milliseconds or_default(std::chrono::milliseconds value,
                                            std::chrono::milliseconds fallback) {
  return value.count() > 0 ? value : fallback;
}

// Statuses after which the gateway may try again (rate limits and server-side failures).
inline bool retryable_http_status(unsigned status) {
  return status == 429 || status >= 500;
}

// A server that ignores "stream": true answers with one JSON body instead of events.
bool is_json_content_type(const std::vector<sdk::HttpHeader>& headers);

// What a call shares with its first-token timer, which may still fire on a pool thread after the call
// returned: the timer holds a reference, never the call's stack.
struct CallShared {
  enum Phase : int { kWaiting, kAnswered, kExpired };
  sdk::CancelSource source;  // stops the HTTP call: the caller's token, or the timer
  std::atomic<int> phase{kWaiting};

  // The first content arrived; false when the timer already expired the call.
  bool answered() {
    int expected = kWaiting;
    return phase.compare_exchange_strong(expected, kAnswered) || expected == kAnswered;
  }
  void expire() {
    int expected = kWaiting;
    if (phase.compare_exchange_strong(expected, kExpired)) source.request_stop();
  }
};

// Cancels the first-token timer when the call ends, however it ends.
class TimerGuard {
 public:
  TimerGuard(sdk::Scheduler& scheduler, std::optional<sdk::Scheduler::TimerId> id)
      : scheduler_(scheduler), id_(id) {}
  ~TimerGuard() {
    if (id_) scheduler_.cancel_timer(*id_);
  }
  TimerGuard(const TimerGuard&) = delete;
  TimerGuard& operator=(const TimerGuard&) = delete;

 private:
  sdk::Scheduler& scheduler_;
  std::optional<sdk::Scheduler::TimerId> id_;
};

// --- messages and usage ------------------------------------------------------------------------------

// `text` with every occurrence of `api_key` and every URL credential replaced by ***.
std::string scrubbed(std::string_view text, std::string_view api_key);

// `text` cut to about 300 characters at a character boundary, so the quoted text stays valid UTF-8,
// with "..." where it was cut: as much of an endpoint's error message as a Status quotes.
std::string quoted_message(std::string_view text);

// The unsigned count under `key` of a JSON usage object; 0 when it is absent or not a count.
std::uint64_t count_of(const nlohmann::json& object, const char* key);

// About four characters a token: the estimate when an endpoint reports no usage.
inline std::uint64_t estimated_tokens(std::size_t chars) {
  return (chars + 3) / 4;
}

// Characters of the system prompt and every message.
std::size_t prompt_chars(const sdk::CompletionRequest& request);

}  // namespace samokoder::llm_common
