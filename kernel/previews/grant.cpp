#include "previews/grant.hpp"

#include <charconv>
#include <cstdint>

#include "security/encoding.hpp"
#include "security/jwt.hpp"

namespace samokoder::previews {

namespace {

std::optional<std::string> mac(std::string_view key, std::string_view payload) {
  auto digest = security::hmac_sha256(key, payload);
  if (!digest.ok()) return std::nullopt;
  return security::base64url_encode(*digest);
}

// Ids are hex, so '.' never occurs inside a field.
bool plain_field(std::string_view field) {
  if (field.empty() || field.size() > 64) return false;
  for (const char c : field) {
    const bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string mint_grant(std::string_view key, std::string_view user_id, std::string_view project_id,
                       GrantClock::time_point expires) {
  if (!plain_field(user_id) || !plain_field(project_id)) return {};
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(expires.time_since_epoch()).count();
  std::string payload = std::string(user_id) + "." + std::string(project_id) + "." + std::to_string(seconds);
  const auto tag = mac(key, payload);
  if (!tag) return {};
  return payload + "." + *tag;
}

std::optional<VerifiedGrant> verify_grant(std::string_view key, std::string_view grant,
                                          std::string_view project_id, GrantClock::time_point now) {
  const auto last_dot = grant.rfind('.');
  if (last_dot == std::string_view::npos || grant.size() > 256) return std::nullopt;
  const std::string_view payload = grant.substr(0, last_dot);
  const auto expected = mac(key, payload);
  if (!expected || !security::constant_time_equals(*expected, grant.substr(last_dot + 1)))
    return std::nullopt;
  const auto first = payload.find('.');
  const auto second = payload.find('.', first == std::string_view::npos ? first : first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos) return std::nullopt;
  const std::string_view user = payload.substr(0, first);
  const std::string_view project = payload.substr(first + 1, second - first - 1);
  const std::string_view expiry = payload.substr(second + 1);
  std::int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(expiry.data(), expiry.data() + expiry.size(), seconds);
  if (ec != std::errc() || end != expiry.data() + expiry.size()) return std::nullopt;
  if (project != project_id) return std::nullopt;
  const GrantClock::time_point expires{std::chrono::seconds(seconds)};
  if (expires <= now) return std::nullopt;
  return VerifiedGrant{std::string(user), expires};
}

}  // namespace samokoder::previews
