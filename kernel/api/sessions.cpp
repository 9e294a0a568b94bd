#include "api/sessions.hpp"

#include <algorithm>
#include <tuple>

#include "api/context.hpp"
#include "core/file_util.hpp"
#include "security/csrf.hpp"
#include "security/random.hpp"

namespace samokoder::api {
namespace {

using Clock = std::chrono::system_clock;

std::int64_t epoch_seconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// Whole seconds from now until `t` (0 when past), for cookie Max-Age.
std::chrono::seconds seconds_until(Clock::time_point t, Clock::time_point now) {
  if (t <= now) return std::chrono::seconds(0);
  return std::chrono::duration_cast<std::chrono::seconds>(t - now);
}

}  // namespace

Sessions::Sessions(const ApiContext& context, std::unique_ptr<security::JwtKeyRing> keys)
    : context_(context),
      keys_(std::move(keys)),
      secure_(context.config().security.cookie_secure.value_or(context.config().environment ==
                                                               config::Environment::kProduction)) {
  if (secure_) {
    names_ = {"__Host-samokoder_access", "__Secure-samokoder_refresh",
              std::string(security::kCsrfCookieNameSecure)};
  } else {
    names_ = {"samokoder_access", "samokoder_refresh", std::string(security::kCsrfCookieName)};
  }
}

std::string Sessions::hash_refresh_token(std::string_view token) {
  return core::sha256_hex(token);
}

sdk::Result<IssuedTokens> Sessions::mint(std::string_view user_id, std::string_view session_id,
                                         Clock::time_point session_expires_at) const {
  const auto now = context_.now();
  IssuedTokens out;
  out.session_id = std::string(session_id);
  out.user_id = std::string(user_id);
  auto jti = security::random_hex_id(16);
  if (!jti.ok()) return jti.status();
  out.jti = std::move(jti).value();
  out.access_expires_at = now + std::chrono::seconds(context_.security().access_token_ttl_seconds);
  const nlohmann::json claims = {{"sub", user_id},
                                 {"sid", session_id},
                                 {"jti", out.jti},
                                 {"typ", security::kAccessTokenType},
                                 {"iat", epoch_seconds(now)},
                                 {"exp", epoch_seconds(out.access_expires_at)}};
  auto signed_token = keys_->sign(claims);
  if (!signed_token.ok()) return signed_token.status();
  out.access_token = std::move(signed_token).value();
  auto refresh = security::random_token(32);
  if (!refresh.ok()) return refresh.status();
  out.refresh_token = std::move(refresh).value();
  out.refresh_expires_at =
      std::min(now + std::chrono::seconds(context_.security().refresh_token_ttl_seconds), session_expires_at);
  auto csrf = security::generate_csrf_token();
  if (!csrf.ok()) return csrf.status();
  out.csrf_token = std::move(csrf).value();
  return out;
}

sdk::Result<IssuedTokens> Sessions::start(const sdk::User& user, std::string_view source_address,
                                          std::string_view user_agent) const {
  sdk::NewSession session;
  session.user_id = user.id;
  session.source_address = std::string(source_address);
  session.user_agent = std::string(user_agent.substr(0, 512));
  session.expires_at = context_.now() + std::chrono::seconds(context_.security().session_max_age_seconds);
  auto created = context_.store<sdk::SessionStore>(
      [&](sdk::SessionStore& sessions) { return sessions.create_session(session); });
  if (!created.ok()) return created.status();
  auto tokens = mint(user.id, created->id, created->expires_at);
  if (!tokens.ok()) return tokens.status();
  sdk::NewRefreshToken refresh;
  refresh.session_id = created->id;
  refresh.token_hash = hash_refresh_token(tokens->refresh_token);
  refresh.expires_at = tokens->refresh_expires_at;
  auto stored = context_.store<sdk::SessionStore>(
      [&](sdk::SessionStore& sessions) { return sessions.add_refresh_token(refresh); });
  if (!stored.ok()) return stored.status();
  return tokens;
}

sdk::Result<IssuedTokens> Sessions::refresh(std::string_view refresh_token, RefreshFailure& failure,
                                            std::string& reused_session, std::string& reused_user) const {
  failure = RefreshFailure::kNone;
  const auto unauthenticated = sdk::Status::unauthenticated("the refresh token is invalid or expired");
  // Our tokens are 43 base64url characters; anything else cannot be one, so storage is spared.
  if (refresh_token.size() != 43 || !std::all_of(refresh_token.begin(), refresh_token.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_';
      })) {
    failure = RefreshFailure::kUnknown;
    return unauthenticated;
  }
  const std::string old_hash = hash_refresh_token(refresh_token);
  auto current = context_.store<sdk::SessionStore>(
      [&](sdk::SessionStore& sessions) { return sessions.find_refresh_token(old_hash); });
  if (!current.ok()) {
    if (current.status().code() != sdk::StatusCode::kNotFound) return current.status();
    failure = RefreshFailure::kUnknown;
    return unauthenticated;
  }
  auto session = context_.store<sdk::SessionStore>(
      [&](sdk::SessionStore& sessions) { return sessions.get_session(current->session_id); });
  if (!session.ok()) {
    if (session.status().code() != sdk::StatusCode::kNotFound) return session.status();
    failure = RefreshFailure::kUnknown;
    return unauthenticated;
  }
  // A deleted or disabled account gets no new tokens, even from a valid refresh token.
  auto user =
      context_.store<sdk::UserStore>([&](sdk::UserStore& users) { return users.get_user(current->user_id); });
  if (!user.ok() && user.status().code() != sdk::StatusCode::kNotFound) return user.status();
  if (!user.ok() || user->disabled) {
    failure = RefreshFailure::kExpiredOrRevoked;
    return unauthenticated;
  }
  auto tokens = mint(current->user_id, session->id, session->expires_at);
  if (!tokens.ok()) return tokens.status();
  sdk::NewRefreshToken next;
  next.session_id = session->id;
  next.token_hash = hash_refresh_token(tokens->refresh_token);
  next.expires_at = tokens->refresh_expires_at;
  auto rotated = context_.store<sdk::SessionStore>(
      [&](sdk::SessionStore& sessions) { return sessions.rotate_refresh_token(old_hash, next); });
  if (rotated.ok()) return tokens;
  if (rotated.status().code() == sdk::StatusCode::kNotFound) {
    failure = RefreshFailure::kUnknown;
    return unauthenticated;
  }
  if (rotated.status().code() != sdk::StatusCode::kFailedPrecondition) return rotated.status();
  // Rotated before (reuse), or revoked or expired: read it again to tell which, as storage.hpp asks.
  auto again = context_.store<sdk::SessionStore>(
      [&](sdk::SessionStore& sessions) { return sessions.find_refresh_token(old_hash); });
  if (!again.ok()) return again.status();
  if (again->rotated && !again->revoked) {
    failure = RefreshFailure::kReuse;
    reused_session = again->session_id;
    reused_user = again->user_id;
    const sdk::Status revoked = context_.store<sdk::SessionStore>([&](sdk::SessionStore& sessions) {
      return sessions.revoke_session(again->session_id, "refresh_token_reuse");
    });
    context_.credentials_changed();
    SAMOKODER_RETURN_IF_ERROR(revoked);
    return unauthenticated;
  }
  failure = RefreshFailure::kExpiredOrRevoked;
  return unauthenticated;
}

sdk::Result<AccessClaims> Sessions::verify_access(std::string_view token) const {
  const Clock::time_point now = context_.now();
  if (auto known = verified_access_.find(token)) {
    // The same conditions JwtKeyRing::verify applies to the time claims; on any doubt verify in full,
    // which also gives the precise reason.
    const std::int64_t now_s = epoch_seconds(now);
    const std::int64_t leeway = keys_->leeway().count();
    const bool in_time = now_s < epoch_seconds(known->claims.expires_at) + leeway &&
                         known->issued_at <= now_s + leeway &&
                         (!known->not_before || *known->not_before <= now_s + leeway);
    if (in_time) return std::move(known->claims);
  }
  auto claims = keys_->verify(token, security::kAccessTokenType, now);
  if (!claims.ok()) return claims.status();
  const auto sid = claims->find("sid");
  if (sid == claims->end() || !sid->is_string() || sid->get_ref<const std::string&>().empty()) {
    return sdk::Status::unauthenticated("the access token names no session");
  }
  AccessClaims out;
  out.user_id = (*claims)["sub"].get<std::string>();
  out.session_id = sid->get<std::string>();
  out.jti = (*claims)["jti"].get<std::string>();
  out.expires_at = Clock::time_point(std::chrono::seconds((*claims)["exp"].get<std::int64_t>()));
  VerifiedAccess verified{out, (*claims)["iat"].get<std::int64_t>(), std::nullopt};
  if (const auto nbf = claims->find("nbf"); nbf != claims->end())
    verified.not_before = nbf->get<std::int64_t>();
  verified_access_.remember(token, verified);
  return out;
}

sdk::Status Sessions::end(std::string_view session_id, std::string_view jti,
                          Clock::time_point access_expires_at, std::string_view reason) const {
  sdk::Status ended =
      context_.store<sdk::TokenRevocationStore>([&](sdk::TokenRevocationStore& token_revocations) {
        return token_revocations.revoke_token_id(jti, access_expires_at, reason);
      });
  if (ended.ok())
    ended = context_.store<sdk::SessionStore>(
        [&](sdk::SessionStore& sessions) { return sessions.revoke_session(session_id, reason); });
  context_.credentials_changed();
  return ended;
}

sdk::Result<std::vector<std::string>> Sessions::set_cookies(const IssuedTokens& tokens) const {
  const auto now = context_.now();
  std::vector<std::string> out;
  security::CookieOptions options;
  options.secure = secure_;
  options.max_age = seconds_until(tokens.access_expires_at, now);
  auto access = security::format_set_cookie(names_.access, tokens.access_token, options);
  if (!access.ok()) return access.status();
  out.push_back(std::move(access).value());
  options.path = std::string(kRefreshCookiePath);
  options.max_age = seconds_until(tokens.refresh_expires_at, now);
  auto refresh = security::format_set_cookie(names_.refresh, tokens.refresh_token, options);
  if (!refresh.ok()) return refresh.status();
  out.push_back(std::move(refresh).value());
  // The page's script reads the CSRF cookie to echo it, so it is not httpOnly; it lives as long as
  // the refresh token, because a refreshed session still needs it.
  options.path = "/";
  options.http_only = false;
  auto csrf = security::format_set_cookie(names_.csrf, tokens.csrf_token, options);
  if (!csrf.ok()) return csrf.status();
  out.push_back(std::move(csrf).value());
  return out;
}

std::vector<std::string> Sessions::clear_cookies() const {
  std::vector<std::string> out;
  security::CookieOptions options;
  options.secure = secure_;
  options.max_age = std::chrono::seconds(0);
  for (const auto& [name, path, http_only] :
       {std::tuple{names_.access, std::string("/"), true},
        std::tuple{names_.refresh, std::string(kRefreshCookiePath), true},
        std::tuple{names_.csrf, std::string("/"), false}}) {
    options.path = path;
    options.http_only = http_only;
    // An empty value with Max-Age=0 always formats; the names and paths are ours.
    if (auto cookie = security::format_set_cookie(name, "", options); cookie.ok())
      out.push_back(std::move(cookie).value());
  }
  return out;
}

}  // namespace samokoder::api
