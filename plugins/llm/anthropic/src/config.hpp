// The provider's config section (HostServices::config()) and the endpoint it defaults to.
//
// Ownership: a plain value, read once in init and never changed, so concurrent calls share it
// without locks.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/llm.hpp>

namespace samokoder::llm_anthropic {

inline constexpr std::string_view kDefaultBaseUrl = "https://api.anthropic.com";

struct ProviderConfig {
  std::string base_url;  // without a trailing '/'; requests go to {base_url}/v1/messages
  sdk::LlmTimeouts timeouts{std::chrono::seconds(10), std::chrono::seconds(120), std::chrono::seconds(60),
                            std::chrono::minutes(10)};
  // Shorter system prompts are not worth a cache write (the API caches nothing under about 1024 tokens).
  std::size_t cache_system_prompt_min_chars = 4096;
};

// `env_base_url` is ANTHROPIC_BASE_URL as the official SDKs read it (null when unset); the config's
// base_url wins over it. kInvalidArgument names the key and what was wrong with it.
sdk::Result<ProviderConfig> parse_config(const nlohmann::json& config, const char* env_base_url);

}  // namespace samokoder::llm_anthropic
