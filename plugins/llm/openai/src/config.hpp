// The provider's config section (HostServices::config()) and the endpoint it defaults to.
//
// Ownership: a plain value, read once in init and never changed, so concurrent calls share it
// without locks.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/llm.hpp>

namespace samokoder::llm_openai {

inline constexpr std::string_view kDefaultBaseUrl = "https://api.openai.com/v1";

// How a JsonOutput reaches the endpoint: not every compatible server knows json_schema.
enum class JsonMode {
  kJsonSchema,  // response_format {"type": "json_schema", ...}, strict (OpenAI, vLLM, Ollama, ...)
  kJsonObject,  // response_format {"type": "json_object"}; the schema goes into the system prompt
  kPrompt,      // no response_format at all; the schema goes into the system prompt
};

struct ProviderConfig {
  std::string base_url;  // with its version path, without a trailing '/': {base_url}/chat/completions
  sdk::LlmTimeouts timeouts{std::chrono::seconds(10), std::chrono::seconds(120), std::chrono::seconds(60),
                            std::chrono::minutes(10)};
  bool stream_usage = true;  // stream_options.include_usage, which some compatible servers refuse
  JsonMode json_mode = JsonMode::kJsonSchema;
};

// `env_base_url` is OPENAI_BASE_URL as the official client libraries read it (null when unset); the
// config's base_url wins over it. kInvalidArgument names the key and what was wrong with it.
sdk::Result<ProviderConfig> parse_config(const nlohmann::json& config, const char* env_base_url);

}  // namespace samokoder::llm_openai
