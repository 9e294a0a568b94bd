#include "samokoder/llm_common/provider_kit.hpp"

#include <algorithm>
#include <cctype>

#include <samokoder/sdk/redact.hpp>

namespace samokoder::llm_common {
namespace {

// A day: past that a timeout is a typo in units, not a plan.
constexpr std::uint64_t kMaxTimeoutMs = 24ULL * 60 * 60 * 1000;

constexpr std::size_t kQuotedMessageChars = 300;

sdk::Status read_timeout(const nlohmann::json& config, std::string_view section, const char* key,
                         std::chrono::milliseconds& out) {
  std::uint64_t ms = static_cast<std::uint64_t>(out.count());
  SAMOKODER_RETURN_IF_ERROR(read_count(config, section, key, kMaxTimeoutMs, ms));
  out = std::chrono::milliseconds(ms);
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

sdk::Result<std::string> read_base_url(const nlohmann::json& config, std::string_view section,
                                       const char* env_name, const char* env_value,
                                       std::string_view fallback) {
  if (const auto it = config.find("base_url"); it != config.end()) {
    if (!it->is_string())
      return sdk::Status::invalid_argument(std::string(section) + ": base_url must be a string");
    return normalized_base_url(it->get<std::string>(), std::string(section) + ": base_url");
  }
  if (env_value != nullptr && *env_value != '\0') return normalized_base_url(env_value, env_name);
  return std::string(fallback);
}

sdk::Status read_count(const nlohmann::json& config, std::string_view section, const char* key,
                       std::uint64_t max, std::uint64_t& out) {
  const auto it = config.find(key);
  if (it == config.end()) return {};
  // JSON parsed from a file or written as a literal makes 300 a signed integer; both count.
  const bool non_negative =
      it->is_number_unsigned() || (it->is_number_integer() && it->get<std::int64_t>() >= 0);
  if (!non_negative || it->get<std::uint64_t>() > max)
    return sdk::Status::invalid_argument(std::string(section) + ": " + key +
                                         " must be an integer from 0 to " + std::to_string(max) + ", got " +
                                         it->dump());
  out = it->get<std::uint64_t>();
  return {};
}

sdk::Status read_timeouts(const nlohmann::json& config, std::string_view section, sdk::LlmTimeouts& out) {
  SAMOKODER_RETURN_IF_ERROR(read_timeout(config, section, "connect_timeout_ms", out.connect));
  SAMOKODER_RETURN_IF_ERROR(read_timeout(config, section, "first_token_timeout_ms", out.first_token));
  SAMOKODER_RETURN_IF_ERROR(read_timeout(config, section, "idle_timeout_ms", out.idle));
  return read_timeout(config, section, "total_timeout_ms", out.total);
}

sdk::Status reject_unknown_keys(const nlohmann::json& config, std::string_view section,
                                const std::vector<std::string_view>& known) {
  for (const auto& [key, value] : config.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (const auto name : known)
      list += (list.empty() ? "" : ", ") + std::string(name);
    return sdk::Status::invalid_argument(std::string(section) + ": unknown key \"" + key +
                                         "\" (known: " + list + ")");
  }
  return {};
}

bool is_json_content_type(const std::vector<sdk::HttpHeader>& headers) {
  for (const auto& header : headers) {
    if (header.name.size() != 12) continue;
    std::string name = header.name;
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "content-type") return header.value.rfind("application/json", 0) == 0;
  }
  return false;
}

std::string scrubbed(std::string_view text, std::string_view api_key) {
  std::string out(text);
  if (!api_key.empty()) {
    for (std::size_t at = out.find(api_key); at != std::string::npos;
         at = out.find(api_key, at + sdk::kRedacted.size()))
      out.replace(at, api_key.size(), sdk::kRedacted);
  }
  return sdk::redact_credentials(out);
}

std::string quoted_message(std::string_view text) {
  if (text.size() <= kQuotedMessageChars) return std::string(text);
  std::size_t end = kQuotedMessageChars;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U)
    --end;
  return std::string(text.substr(0, end)) + "...";
}

std::uint64_t count_of(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::size_t prompt_chars(const sdk::CompletionRequest& request) {
  std::size_t chars = request.system.size();
  for (const auto& message : request.messages)
    chars += message.content.size();
  return chars;
}

}  // namespace samokoder::llm_common
