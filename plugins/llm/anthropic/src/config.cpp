#include "config.hpp"

#include <samokoder/llm_common/provider_kit.hpp>

namespace samokoder::llm_anthropic {

sdk::Result<ProviderConfig> parse_config(const nlohmann::json& config, const char* env_base_url) {
  constexpr std::string_view kSection = "llm.anthropic config";
  if (!config.is_object()) return sdk::Status::invalid_argument("llm.anthropic config must be a JSON object");
  SAMOKODER_RETURN_IF_ERROR(llm_common::reject_unknown_keys(
      config, kSection,
      {"base_url", "connect_timeout_ms", "first_token_timeout_ms", "idle_timeout_ms", "total_timeout_ms",
       "cache_system_prompt_min_chars"}));
  ProviderConfig out;
  auto base_url =
      llm_common::read_base_url(config, kSection, "ANTHROPIC_BASE_URL", env_base_url, kDefaultBaseUrl);
  if (!base_url.ok()) return base_url.status();
  out.base_url = std::move(*base_url);
  SAMOKODER_RETURN_IF_ERROR(llm_common::read_timeouts(config, kSection, out.timeouts));
  std::uint64_t min_chars = out.cache_system_prompt_min_chars;
  SAMOKODER_RETURN_IF_ERROR(
      llm_common::read_count(config, kSection, "cache_system_prompt_min_chars", 1ULL << 32, min_chars));
  out.cache_system_prompt_min_chars = static_cast<std::size_t>(min_chars);
  return out;
}

}  // namespace samokoder::llm_anthropic
