#include "config.hpp"

#include <samokoder/llm_common/provider_kit.hpp>

namespace samokoder::llm_openai {

sdk::Result<ProviderConfig> parse_config(const nlohmann::json& config, const char* env_base_url) {
  constexpr std::string_view kSection = "llm.openai config";
  if (!config.is_object()) return sdk::Status::invalid_argument("llm.openai config must be a JSON object");
  SAMOKODER_RETURN_IF_ERROR(
      llm_common::reject_unknown_keys(config, kSection,
                                      {"base_url", "connect_timeout_ms", "first_token_timeout_ms",
                                       "idle_timeout_ms", "total_timeout_ms", "stream_usage", "json_mode"}));
  ProviderConfig out;
  auto base_url =
      llm_common::read_base_url(config, kSection, "OPENAI_BASE_URL", env_base_url, kDefaultBaseUrl);
  if (!base_url.ok()) return base_url.status();
  out.base_url = std::move(*base_url);
  SAMOKODER_RETURN_IF_ERROR(llm_common::read_timeouts(config, kSection, out.timeouts));
  if (config.contains("stream_usage")) {
    if (!config["stream_usage"].is_boolean())
      return sdk::Status::invalid_argument("llm.openai config: stream_usage must be true or false, got " +
                                           config["stream_usage"].dump());
    out.stream_usage = config["stream_usage"].get<bool>();
  }
  if (config.contains("json_mode")) {
    const auto& mode = config["json_mode"];
    if (mode == "json_schema") {
      out.json_mode = JsonMode::kJsonSchema;
    } else if (mode == "json_object") {
      out.json_mode = JsonMode::kJsonObject;
    } else if (mode == "prompt") {
      out.json_mode = JsonMode::kPrompt;
    } else {
      return sdk::Status::invalid_argument(
          "llm.openai config: json_mode must be \"json_schema\", \"json_object\" or \"prompt\", got " +
          mode.dump());
    }
  }
  return out;
}

}  // namespace samokoder::llm_openai
