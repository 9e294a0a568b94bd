#include "config.hpp"

#include <algorithm>
#include <array>

#include <samokoder/sdk/redact.hpp>

namespace samokoder::llm_openai {
namespace {

constexpr std::array<std::string_view, 7> kKeys = {
    "base_url",     "connect_timeout_ms", "first_token_timeout_ms", "idle_timeout_ms", "total_timeout_ms",
    "stream_usage", "json_mode"};
// A day: past that a timeout is a typo in units, not a plan.
constexpr std::uint64_t kMaxTimeoutMs = 24ULL * 60 * 60 * 1000;

sdk::Status read_timeout(const nlohmann::json& config, const char* key, std::chrono::milliseconds& out) {
  const auto it = config.find(key);
  if (it == config.end()) return {};
  // JSON parsed from a file or written as a literal makes 300 a signed integer; both count.
  const bool non_negative =
      it->is_number_unsigned() || (it->is_number_integer() && it->get<std::int64_t>() >= 0);
  if (!non_negative || it->get<std::uint64_t>() > kMaxTimeoutMs)
    return sdk::Status::invalid_argument(std::string("llm.openai config: ") + key +
                                         " must be an integer from 0 to " + std::to_string(kMaxTimeoutMs) +
                                         ", got " + it->dump());
  out = std::chrono::milliseconds(it->get<std::uint64_t>());
  return {};
}

}  // namespace

sdk::Result<std::string> normalized_base_url(std::string_view url, std::string_view origin) {
  if (url.substr(0, 7) != "http://" && url.substr(0, 8) != "https://")
    return sdk::Status::invalid_argument(std::string(origin) + " must be an http:// or https:// URL, got \"" +
                                         sdk::redact_credentials(url) + "\"");
  while (!url.empty() && url.back() == '/')
    url.remove_suffix(1);
  return std::string(url);
}

sdk::Result<ProviderConfig> parse_config(const nlohmann::json& config, const char* env_base_url) {
  if (!config.is_object()) return sdk::Status::invalid_argument("llm.openai config must be a JSON object");
  for (const auto& [key, value] : config.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end())
      return sdk::Status::invalid_argument("llm.openai config: unknown key \"" + key +
                                           "\" (known: base_url, connect_timeout_ms, first_token_timeout_ms, "
                                           "idle_timeout_ms, total_timeout_ms, stream_usage, json_mode)");
  }
  ProviderConfig out;
  if (config.contains("base_url")) {
    if (!config["base_url"].is_string())
      return sdk::Status::invalid_argument("llm.openai config: base_url must be a string");
    auto url = normalized_base_url(config["base_url"].get<std::string>(), "llm.openai config: base_url");
    if (!url.ok()) return url.status();
    out.base_url = std::move(*url);
  } else if (env_base_url != nullptr && *env_base_url != '\0') {
    auto url = normalized_base_url(env_base_url, "OPENAI_BASE_URL");
    if (!url.ok()) return url.status();
    out.base_url = std::move(*url);
  } else {
    out.base_url = kDefaultBaseUrl;
  }
  SAMOKODER_RETURN_IF_ERROR(read_timeout(config, "connect_timeout_ms", out.timeouts.connect));
  SAMOKODER_RETURN_IF_ERROR(read_timeout(config, "first_token_timeout_ms", out.timeouts.first_token));
  SAMOKODER_RETURN_IF_ERROR(read_timeout(config, "idle_timeout_ms", out.timeouts.idle));
  SAMOKODER_RETURN_IF_ERROR(read_timeout(config, "total_timeout_ms", out.timeouts.total));
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
