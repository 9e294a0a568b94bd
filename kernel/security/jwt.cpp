#include "security/jwt.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "security/encoding.hpp"
#include "security/json_input.hpp"

namespace samokoder::security {
namespace {

using json = nlohmann::json;

constexpr std::size_t kHmacBytes = 32;
constexpr std::size_t kMaxKeyIdLength = 64;
// Claim times are seconds since the epoch; the bound (year 9999) keeps exp + leeway from overflowing.
constexpr std::int64_t kMaxClaimTime = 253402300799;
constexpr std::size_t kMaxHeaderDepth = 2;

constexpr std::array<std::string_view, 11> kPlaceholderWords = {
    "changeme", "changeit", "secret",  "password", "passwd",   "placeholder",
    "example",  "default",  "replace", "insecure", "samokoder"};

bool valid_key_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxKeyIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

sdk::Status unauthenticated(std::string reason) {
  return sdk::Status::unauthenticated(std::move(reason));
}

// An integer claim within [0, kMaxClaimTime]; nullopt when absent, not an integer, or out of range.
std::optional<std::int64_t> time_claim(const json& claims, const char* name) {
  const auto it = claims.find(name);
  if (it == claims.end() || !it->is_number_integer()) return std::nullopt;
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(kMaxClaimTime)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  const auto v = it->get<std::int64_t>();
  if (v < 0 || v > kMaxClaimTime) return std::nullopt;
  return v;
}

bool non_empty_string_claim(const json& claims, const char* name) {
  const auto it = claims.find(name);
  return it != claims.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
}

// What is wrong with the shape every token must have, or an empty string when nothing is.
std::string claims_problem(const json& claims) {
  if (!claims.is_object()) return "claims must be a JSON object";
  for (const char* name : {"sub", "jti", "typ"}) {
    if (!non_empty_string_claim(claims, name))
      return std::string("claim '") + name + "' must be a non-empty string";
  }
  for (const char* name : {"iat", "exp"}) {
    if (!time_claim(claims, name)) return std::string("claim '") + name + "' must be an integer time";
  }
  if (claims.contains("nbf") && !time_claim(claims, "nbf")) return "claim 'nbf' must be an integer time";
  return {};
}

}  // namespace

namespace {

// HMAC keyed once per thread and key. EVP_Q_mac looked the algorithm up in OpenSSL's provider tables
// and derived the key's pads on every call, a visible share of an authenticated request; re-initialising
// a keyed context with a NULL key reuses the pads.
class HmacSha256Context {
 public:
  HmacSha256Context() = default;
  HmacSha256Context(const HmacSha256Context&) = delete;
  HmacSha256Context& operator=(const HmacSha256Context&) = delete;
  ~HmacSha256Context() {
    EVP_MAC_CTX_free(ctx_);
    OPENSSL_cleanse(key_.data(), key_.size());
  }

  bool compute(std::string_view key, std::string_view data, unsigned char* out, std::size_t out_size,
               std::size_t& out_len) {
    if (ctx_ == nullptr || key != key_) {
      if (!rekey(key)) return false;
    } else if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) {
      return false;
    }
    return EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
           EVP_MAC_final(ctx_, out, &out_len, out_size) == 1;
  }

 private:
  bool rekey(std::string_view key) {
    static EVP_MAC* const algorithm = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (algorithm == nullptr) return false;
    EVP_MAC_CTX_free(ctx_);
    OPENSSL_cleanse(key_.data(), key_.size());
    key_.clear();
    ctx_ = EVP_MAC_CTX_new(algorithm);
    if (ctx_ == nullptr) return false;
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    // A NULL key pointer would mean "keep the current key"; point an empty key at a byte instead.
    static const unsigned char kEmpty = 0;
    const unsigned char* key_bytes =
        key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
    if (EVP_MAC_init(ctx_, key_bytes, key.size(), params) != 1) {
      EVP_MAC_CTX_free(ctx_);
      ctx_ = nullptr;
      return false;
    }
    key_.assign(key);
    return true;
  }

  EVP_MAC_CTX* ctx_ = nullptr;
  std::string key_;
};

}  // namespace

sdk::Result<std::string> hmac_sha256(std::string_view key, std::string_view data) {
  thread_local HmacSha256Context context;
  std::string out(kHmacBytes, '\0');
  std::size_t out_len = 0;
  if (!context.compute(key, data, reinterpret_cast<unsigned char*>(out.data()), out.size(), out_len) ||
      out_len != kHmacBytes) {
    return sdk::Status::internal("HMAC-SHA256 failed in OpenSSL");
  }
  return out;
}

sdk::Status validate_secret(std::string_view secret) {
  if (secret.size() < kMinJwtSecretBytes) {
    return sdk::Status::failed_precondition("secret is " + std::to_string(secret.size()) +
                                            " bytes long; at least " + std::to_string(kMinJwtSecretBytes) +
                                            " are required (generate one with `openssl rand -base64 48`)");
  }
  const std::set<char> distinct(secret.begin(), secret.end());
  if (distinct.size() < 8) {
    return sdk::Status::failed_precondition("secret repeats too few distinct characters to be random");
  }
  std::string folded;
  for (const char c : secret) {
    if (c == '-' || c == '_' || c == ' ' || c == '.') continue;
    folded += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  for (const std::string_view word : kPlaceholderWords) {
    if (folded.find(word) != std::string::npos) {
      return sdk::Status::failed_precondition("secret contains the placeholder word \"" + std::string(word) +
                                              "\"; use a randomly generated secret");
    }
  }
  return {};
}

JwtKeyRing::JwtKeyRing(std::chrono::seconds leeway)
    : leeway_(std::clamp(leeway, std::chrono::seconds(0), kMaxJwtLeeway)) {}

sdk::Status JwtKeyRing::add_key(std::string key_id, std::string secret) {
  if (!valid_key_id(key_id)) {
    return sdk::Status::invalid_argument("JWT key id must be 1..64 characters of [A-Za-z0-9_-]");
  }
  if (secret.size() < kMinJwtSecretBytes) {
    return sdk::Status::invalid_argument("JWT key '" + key_id + "' is shorter than " +
                                         std::to_string(kMinJwtSecretBytes) + " bytes");
  }
  if (keys_.contains(key_id))
    return sdk::Status::already_exists("JWT key '" + key_id + "' is already in the ring");
  if (current_.empty()) current_ = key_id;
  keys_.emplace(std::move(key_id), std::move(secret));
  return {};
}

sdk::Status JwtKeyRing::set_current(std::string_view key_id) {
  if (!keys_.contains(key_id))
    return sdk::Status::not_found("JWT key '" + std::string(key_id) + "' is not in the ring");
  current_ = std::string(key_id);
  return {};
}

sdk::Status JwtKeyRing::remove_key(std::string_view key_id) {
  const auto it = keys_.find(key_id);
  if (it == keys_.end())
    return sdk::Status::not_found("JWT key '" + std::string(key_id) + "' is not in the ring");
  if (key_id == current_) {
    return sdk::Status::failed_precondition("JWT key '" + current_ +
                                            "' is current; select another key first");
  }
  keys_.erase(it);
  return {};
}

bool JwtKeyRing::has_key(std::string_view key_id) const {
  return keys_.contains(key_id);
}

sdk::Result<std::string> JwtKeyRing::sign(const nlohmann::json& claims) const {
  if (current_.empty()) return sdk::Status::failed_precondition("JWT key ring has no key to sign with");
  if (const std::string problem = claims_problem(claims); !problem.empty()) {
    return sdk::Status::invalid_argument("cannot sign token: " + problem);
  }
  if (*time_claim(claims, "exp") <= *time_claim(claims, "iat")) {
    return sdk::Status::invalid_argument("cannot sign token: exp must be after iat");
  }
  std::string payload;
  try {
    payload = claims.dump();
  } catch (const json::exception&) {
    return sdk::Status::invalid_argument("cannot sign token: claims hold a string that is not valid UTF-8");
  }
  // The key id is restricted to [A-Za-z0-9_-], so it needs no JSON escaping.
  const std::string header = R"({"alg":"HS256","typ":"JWT","kid":")" + current_ + "\"}";
  std::string token = base64url_encode(header) + "." + base64url_encode(payload);
  auto mac = hmac_sha256(keys_.find(current_)->second, token);
  if (!mac.ok()) return mac.status();
  token += ".";
  token += base64url_encode(*mac);
  if (token.size() > kMaxJwtBytes) {
    return sdk::Status::invalid_argument("cannot sign token: it would be longer than " +
                                         std::to_string(kMaxJwtBytes) + " bytes");
  }
  return token;
}

sdk::Result<nlohmann::json> JwtKeyRing::verify(std::string_view token, std::string_view expected_type,
                                               std::chrono::system_clock::time_point now) const {
  if (expected_type.empty()) return sdk::Status::invalid_argument("JWT verify needs an expected token type");
  if (token.size() > kMaxJwtBytes) {
    return unauthenticated("token is longer than " + std::to_string(kMaxJwtBytes) + " bytes");
  }
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos || dot1 == 0 ||
      dot2 == dot1 + 1 || dot2 + 1 == token.size()) {
    return unauthenticated("token is not three non-empty base64url parts");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);

  auto header_text = base64url_decode(header_b64);
  if (!header_text.ok()) return unauthenticated("token header is not base64url");
  auto header = parse_json_object(*header_text, kMaxHeaderDepth);
  if (!header.ok()) return unauthenticated("token header is not a strict JSON object");
  const auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || alg->get_ref<const std::string&>() != "HS256") {
    return unauthenticated("token algorithm is not HS256");
  }
  if (header->contains("crit")) return unauthenticated("token header has critical extensions");
  if (const auto typ = header->find("typ");
      typ != header->end() && (!typ->is_string() || typ->get_ref<const std::string&>() != "JWT")) {
    return unauthenticated("token header type is not JWT");
  }
  const auto kid = header->find("kid");
  if (kid == header->end() || !kid->is_string()) return unauthenticated("token header has no key id");
  const auto key = keys_.find(kid->get_ref<const std::string&>());
  if (key == keys_.end()) return unauthenticated("token key id is not in the key ring");

  auto signature = base64url_decode(signature_b64);
  if (!signature.ok() || signature->size() != kHmacBytes) {
    return unauthenticated("token signature is not 32 bytes of base64url");
  }
  auto expected = hmac_sha256(key->second, token.substr(0, dot2));
  if (!expected.ok()) return expected.status();
  if (!constant_time_equals(*signature, *expected)) return unauthenticated("token signature does not match");

  auto payload_text = base64url_decode(payload_b64);
  if (!payload_text.ok()) return unauthenticated("token claims are not base64url");
  auto claims = parse_json_object(*payload_text);
  if (!claims.ok()) return unauthenticated("token claims are not a strict JSON object");
  if (const std::string problem = claims_problem(*claims); !problem.empty()) {
    return unauthenticated("token " + problem);
  }
  if (claims->at("typ").get_ref<const std::string&>() != expected_type) {
    return unauthenticated("token type is not '" + std::string(expected_type) + "'");
  }
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::int64_t leeway = leeway_.count();
  if (now_s >= *time_claim(*claims, "exp") + leeway) return unauthenticated("token has expired");
  if (*time_claim(*claims, "iat") > now_s + leeway) return unauthenticated("token was issued in the future");
  if (claims->contains("nbf") && *time_claim(*claims, "nbf") > now_s + leeway) {
    return unauthenticated("token is not valid yet");
  }
  return claims;
}

}  // namespace samokoder::security
