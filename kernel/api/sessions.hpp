// Sessions: the kernel's logins and their tokens (docs/security.md), independent of any auth plugin so that
// reloading one logs nobody out.
//
// A login is one storage Session (the refresh-token family) and yields:
//   - an access token: an HS256 JWT {sub: user id, sid: session id, jti, typ "access", iat, exp},
//     valid access_token_ttl_seconds, signed with a key derived from SAMOKODER_SECRET_KEY (HKDF,
//     label security::kJwtKeyLabel) under kid = key_id_for(key); a previous secret's key still
//     verifies, so a rotation does not end every session at once;
//   - a refresh token: 32 random bytes (base64url), stored only as its SHA-256, valid
//     refresh_token_ttl_seconds and never beyond the session's end (session_max_age_seconds after
//     login). Each refresh rotates it: the old one is marked rotated and a new one is issued in the
//     same family. Presenting a rotated token again is reuse (someone kept a copy): the whole family
//     (session) is revoked, so the thief's and the owner's tokens all stop working;
//   - a CSRF token for cookie clients (double submit, security/csrf.hpp).
// Logout revokes the access token's jti and the session (all refresh tokens of the family).
//
// Cookies: access (httpOnly, Path=/), refresh (httpOnly, Path=/api/v1/auth, the only place it is
// used) and CSRF (readable by the page's script, Path=/), all SameSite=Strict; with Secure cookies
// (production, or security.cookie_secure) the names carry the __Host-/__Secure- prefixes.
//
// Ownership: owned by the ApiContext, which it references for storage and the clock.
// Thread-safety: every method may be called concurrently (from worker threads: they use storage).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage.hpp>

#include "api/token_memo.hpp"
#include "config/config.hpp"
#include "security/jwt.hpp"

namespace samokoder::api {

class ApiContext;

// What a client receives after login or refresh. Secrets: send them to the client, never log them.
struct IssuedTokens {
  std::string session_id;
  std::string user_id;
  std::string access_token;
  std::string jti;
  std::chrono::system_clock::time_point access_expires_at;
  std::string refresh_token;
  std::chrono::system_clock::time_point refresh_expires_at;
  std::string csrf_token;
};

// The verified claims of an access token.
struct AccessClaims {
  std::string user_id;
  std::string session_id;
  std::string jti;
  std::chrono::system_clock::time_point expires_at;
};

// Why a refresh failed, for the audit log and metrics; the client always sees the same 401.
enum class RefreshFailure { kNone, kUnknown, kExpiredOrRevoked, kReuse };

struct CookieNames {
  std::string access;
  std::string refresh;
  std::string csrf;
};

inline constexpr std::string_view kRefreshCookiePath = "/api/v1/auth";

class Sessions {
 public:
  Sessions(const ApiContext& context, std::unique_ptr<security::JwtKeyRing> keys);

  // Creates a session for the user and its first tokens.
  sdk::Result<IssuedTokens> start(const sdk::User& user, std::string_view source_address,
                                  std::string_view user_agent) const;

  // Exchanges a refresh token for new tokens (rotation). kUnauthenticated for anything but a
  // current token of a live session; `failure` says why. On reuse the family is revoked before
  // returning, and `reused_session` / `reused_user` name it for the audit log.
  sdk::Result<IssuedTokens> refresh(std::string_view refresh_token, RefreshFailure& failure,
                                    std::string& reused_session, std::string& reused_user) const;

  // Verifies signature, type and expiry (no storage access); kUnauthenticated otherwise.
  sdk::Result<AccessClaims> verify_access(std::string_view token) const;

  // Logout: revokes the access token id until its expiry and the session with all its refresh tokens.
  sdk::Status end(std::string_view session_id, std::string_view jti,
                  std::chrono::system_clock::time_point access_expires_at, std::string_view reason) const;

  // The Set-Cookie values for issued tokens, and the ones that delete all three cookies.
  sdk::Result<std::vector<std::string>> set_cookies(const IssuedTokens& tokens) const;
  std::vector<std::string> clear_cookies() const;
  bool cookies_secure() const noexcept { return secure_; }
  const CookieNames& cookie_names() const noexcept { return names_; }

  // Lowercase hex SHA-256: what storage keeps of a refresh token.
  static std::string hash_refresh_token(std::string_view token);

 private:
  // A new access token for (user, session) and a new refresh token (not yet stored).
  sdk::Result<IssuedTokens> mint(std::string_view user_id, std::string_view session_id,
                                 std::chrono::system_clock::time_point session_expires_at) const;

  // An access token's claims as verify_access last found them, with the time claims it checks again.
  struct VerifiedAccess {
    AccessClaims claims;
    std::int64_t issued_at = 0;
    std::optional<std::int64_t> not_before;
  };

  const ApiContext& context_;
  // Never changed after construction: verified_access_ answers for tokens this ring verified.
  std::unique_ptr<const security::JwtKeyRing> keys_;
  TokenMemo<VerifiedAccess> verified_access_;
  bool secure_;
  CookieNames names_;
};

}  // namespace samokoder::api
