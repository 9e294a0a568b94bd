// HS256 JSON Web Tokens (RFC 7519 / RFC 7515 compact form) signed with HMAC-SHA256 over OpenSSL, with
// a key ring so the signing key can be rotated without logging everybody out.
//
// We implement the few lines of JWS ourselves rather than use a JWT library so that validation is
// exactly this and nothing more: the header must say alg "HS256" (never "none", never another
// algorithm), name a key id we hold, carry no "crit"; the signature must be 32 bytes in canonical
// base64url and match in constant time; the claims must be a strict JSON object (no duplicate keys)
// with sub, jti, typ, iat and exp, typ equal to what the caller expects (an access token is never
// accepted where a refresh token is required, and the reverse); exp, nbf and iat are checked against
// the caller's clock with a small leeway. Tokens over 4 KiB are refused before any parsing.
//
// Keys: one secret per key id, at least 32 bytes. In production they come from the environment: one
// SAMOKODER_SECRET_KEY is stretched with derive_key(secret, kJwtKeyLabel) (aead.hpp), so the JWT key
// and the AEAD key differ even though the operator manages one secret.
//
// Ownership: JwtKeyRing owns copies of its secrets.
// Thread-safety: build the ring at startup (add_key, set_current are not synchronised), then share it
// as const: sign and verify may run concurrently. To rotate at runtime, build a new ring and swap a
// std::shared_ptr<const JwtKeyRing>.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

inline constexpr std::size_t kMaxJwtBytes = 4096;
inline constexpr std::size_t kMinJwtSecretBytes = 32;
inline constexpr std::chrono::seconds kDefaultJwtLeeway{5};
inline constexpr std::chrono::seconds kMaxJwtLeeway{30};

// The token types the identity layer mints; the `typ` claim carries one of them.
inline constexpr std::string_view kAccessTokenType = "access";
inline constexpr std::string_view kRefreshTokenType = "refresh";

// HMAC-SHA256(key, data): 32 raw bytes. kInternal only if OpenSSL fails.
sdk::Result<std::string> hmac_sha256(std::string_view key, std::string_view data);

// Refuses a secret unfit to sign tokens or derive keys: shorter than 32 bytes, fewer than 8 distinct
// bytes ("aaaa...", "abab..."), or containing a well-known placeholder word ("changeme", "secret",
// "password", "example", ...; case, '-', '_' and spaces ignored). kFailedPrecondition with a message
// that never quotes the secret. Used to refuse a production start with a weak SAMOKODER_SECRET_KEY;
// generate one with `openssl rand -base64 48`.
sdk::Status validate_secret(std::string_view secret);

class JwtKeyRing {
 public:
  // `leeway` tolerates clock skew between nodes on exp, nbf and iat; clamped to 0..kMaxJwtLeeway.
  explicit JwtKeyRing(std::chrono::seconds leeway = kDefaultJwtLeeway);

  // Adds a key. key_id: 1..64 characters of [A-Za-z0-9_-]; secret: at least kMinJwtSecretBytes
  // bytes. kInvalidArgument on either, kAlreadyExists on a duplicate id. The first key becomes current.
  sdk::Status add_key(std::string key_id, std::string secret);
  // Selects the key that sign() uses; the others still verify. kNotFound for an unknown id.
  sdk::Status set_current(std::string_view key_id);
  // Drops a retired key: tokens signed with it stop verifying. The current key cannot be removed.
  sdk::Status remove_key(std::string_view key_id);

  bool has_key(std::string_view key_id) const;
  // Empty while the ring has no key.
  const std::string& current_key_id() const noexcept { return current_; }
  std::chrono::seconds leeway() const noexcept { return leeway_; }

  // Signs `claims` with the current key: header {"alg":"HS256","typ":"JWT","kid":<current>}.
  // `claims` must be an object holding sub (non-empty string), jti (non-empty string), typ (non-empty
  // string), iat and exp (integers, seconds since the epoch) so that every token we mint is one verify
  // accepts. kInvalidArgument otherwise, kFailedPrecondition when the ring is empty.
  sdk::Result<std::string> sign(const nlohmann::json& claims) const;

  // The claims of a valid token of type `expected_type` at time `now`; kUnauthenticated with the
  // reason otherwise (the token itself never appears in the message).
  sdk::Result<nlohmann::json> verify(std::string_view token, std::string_view expected_type,
                                     std::chrono::system_clock::time_point now) const;

 private:
  std::chrono::seconds leeway_;
  std::map<std::string, std::string, std::less<>> keys_;  // key id -> secret
  std::string current_;
};

}  // namespace samokoder::security
