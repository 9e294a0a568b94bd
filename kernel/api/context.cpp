#include "api/context.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

#include <boost/beast/core/string.hpp>

#include <samokoder/sdk/auth.hpp>

#include "api/rate_limit.hpp"
#include "api/sessions.hpp"
#include "core/logging.hpp"
#include "http/field_value.hpp"
#include "http/router.hpp"
#include "security/csrf.hpp"
#include "security/jwt.hpp"
#include "security/random.hpp"

namespace samokoder::api {
namespace {

using boost::beast::http::verb;

struct ProblemShape {
  unsigned status;
  std::string_view title;
};

ProblemShape shape_of(sdk::StatusCode code) {
  switch (code) {
    case sdk::StatusCode::kInvalidArgument:
      return {400, "Bad Request"};
    case sdk::StatusCode::kNotFound:
      return {404, "Not Found"};
    case sdk::StatusCode::kAlreadyExists:
      return {409, "Conflict"};
    case sdk::StatusCode::kFailedPrecondition:
      return {409, "Conflict"};
    case sdk::StatusCode::kAborted:
      return {409, "Conflict"};
    case sdk::StatusCode::kPermissionDenied:
      return {403, "Forbidden"};
    case sdk::StatusCode::kUnauthenticated:
      return {401, "Unauthorized"};
    case sdk::StatusCode::kResourceExhausted:
      return {429, "Too Many Requests"};
    case sdk::StatusCode::kUnavailable:
      return {503, "Service Unavailable"};
    case sdk::StatusCode::kDeadlineExceeded:
      return {504, "Gateway Timeout"};
    case sdk::StatusCode::kUnimplemented:
      return {501, "Not Implemented"};
    default:
      return {500, "Internal Server Error"};
  }
}

bool is_safe_method(verb method) {
  return method == verb::get || method == verb::head || method == verb::options;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Reads exactly `digits` decimal digits at `pos`.
std::optional<int> read_digits(std::string_view text, std::size_t& pos, std::size_t digits) {
  if (pos + digits > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += digits;
  return value;
}

bool valid_address_text(std::string_view text) {
  if (text.empty() || text.size() > 45) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':';
  });
}

http::Response unauthorized(std::string_view detail) {
  auto response = http::Response::problem(401, "unauthenticated", "Unauthorized", detail);
  response.set_header("WWW-Authenticate", "Bearer");
  return response;
}

http::Response forbidden(std::string_view slug, std::string_view detail) {
  return http::Response::problem(403, slug, "Forbidden", detail);
}

// Storage failures while authenticating: "not found" means the credential is dead; anything else is
// the server's problem and must not look like a bad credential.
http::Response auth_storage_failure(const sdk::Status& status, std::string_view detail) {
  if (status.code() == sdk::StatusCode::kNotFound) return unauthorized(detail);
  return problem_from_status(status);
}

// Key material from one master secret: the JWT signing key and the AEAD key, each with its id.
struct DerivedKeys {
  std::string jwt_id, jwt_key, aead_id, aead_key, preview_key;
};

sdk::Result<DerivedKeys> derive(std::string_view secret) {
  DerivedKeys keys;
  auto jwt = security::derive_key(secret, security::kJwtKeyLabel, 32);
  if (!jwt.ok()) return jwt.status();
  auto aead = security::derive_key(secret, security::kAeadKeyLabel, security::kAeadKeyBytes);
  if (!aead.ok()) return aead.status();
  keys.jwt_key = std::move(jwt).value();
  keys.jwt_id = security::key_id_for(keys.jwt_key);
  keys.aead_key = std::move(aead).value();
  keys.aead_id = security::key_id_for(keys.aead_key);
  auto preview = security::derive_key(secret, security::kPreviewGrantKeyLabel, 32);
  if (!preview.ok()) return preview.status();
  keys.preview_key = std::move(preview).value();
  return keys;
}

}  // namespace

std::string_view auth_method_name(AuthMethod method) noexcept {
  switch (method) {
    case AuthMethod::kBearerSession:
      return "bearer_session";
    case AuthMethod::kCookieSession:
      return "cookie_session";
    case AuthMethod::kAccessToken:
      return "access_token";
  }
  return "unknown";
}

bool Principal::has_scope(std::string_view scope) const noexcept {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

http::Response problem_from_status(const sdk::Status& status) {
  const ProblemShape shape = shape_of(status.code());
  if (shape.status >= 500 && shape.status != 503 && shape.status != 501 && shape.status != 504) {
    core::logger("api")->error("request failed: {}", status.to_string());
    return http::Response::problem(
        500, "internal", shape.title,
        "The server failed to handle the request; quote the request id when reporting it.");
  }
  auto response = http::Response::problem(shape.status, sdk::status_code_name(status.code()), shape.title,
                                          status.message());
  if (shape.status == 401) response.set_header("WWW-Authenticate", "Bearer");
  if (shape.status == 503) {
    core::logger("api")->warn("dependency unavailable: {}", status.message());
    response.set_header("Retry-After", "5");
  }
  return response;
}

http::Response validation_problem(const std::vector<security::FieldError>& errors) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : errors)
    list.push_back(http::Response::field_error(e.path, e.message));
  std::string detail = "the request has invalid fields";
  if (errors.size() == 1) detail = errors.front().path + ": " + errors.front().message;
  return http::Response::problem(400, "validation_failed", "Bad Request", detail, std::move(list));
}

http::Response too_many_requests(std::chrono::seconds retry_after, std::string_view detail,
                                 std::string_view slug) {
  auto response = http::Response::problem(429, slug, "Too Many Requests", detail);
  response.set_header("Retry-After", std::to_string(std::max<std::int64_t>(1, retry_after.count())));
  return response;
}

bool plausible_email(std::string_view email) {
  const auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64 ||
      email.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  const std::string_view domain = email.substr(at + 1);
  const auto dot = domain.find('.');
  if (domain.size() < 3 || dot == std::string_view::npos || dot == 0 || domain.back() == '.') return false;
  return std::none_of(email.begin(), email.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F; });
}

std::string format_timestamp(Timestamp time) {
  // By hand rather than gmtime_r + snprintf: lists format several timestamps per item, and this was a
  // visible share of a list response's cost.
  using namespace std::chrono;
  const auto micros = floor<microseconds>(time);
  const auto day = floor<days>(micros);
  const year_month_day date(day);
  const hh_mm_ss<microseconds> clock_time(micros - day);
  const int year = static_cast<int>(date.year());
  std::string out = year >= 0 && year <= 9999 ? std::string(4, '0') : std::to_string(year);
  auto put = [&out](std::size_t at, long long value, std::size_t width) {
    for (std::size_t i = width; i-- > 0; value /= 10)
      out[at + i] = static_cast<char>('0' + value % 10);
  };
  if (year >= 0 && year <= 9999) put(0, year, 4);
  const std::size_t base = out.size();
  out += "-00-00T00:00:00.000000Z";
  put(base + 1, static_cast<unsigned>(date.month()), 2);
  put(base + 4, static_cast<unsigned>(date.day()), 2);
  put(base + 7, clock_time.hours().count(), 2);
  put(base + 10, clock_time.minutes().count(), 2);
  put(base + 13, clock_time.seconds().count(), 2);
  put(base + 16, clock_time.subseconds().count(), 6);
  return out;
}

std::optional<Timestamp> parse_timestamp(std::string_view text) {
  std::size_t pos = 0;
  const auto year = read_digits(text, pos, 4);
  if (!year || pos >= text.size() || text[pos++] != '-') return std::nullopt;
  const auto month = read_digits(text, pos, 2);
  if (!month || pos >= text.size() || text[pos++] != '-') return std::nullopt;
  const auto day = read_digits(text, pos, 2);
  if (!day || pos >= text.size() || (text[pos] != 'T' && text[pos] != 't')) return std::nullopt;
  ++pos;
  const auto hour = read_digits(text, pos, 2);
  if (!hour || pos >= text.size() || text[pos++] != ':') return std::nullopt;
  const auto minute = read_digits(text, pos, 2);
  if (!minute || pos >= text.size() || text[pos++] != ':') return std::nullopt;
  const auto second = read_digits(text, pos, 2);
  if (!second) return std::nullopt;
  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (*month < 1 || *month > 12 || *day < 1 || *day > kDaysInMonth[*month - 1] || *hour > 23 ||
      *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  std::int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 6; ++i)
      micros *= 10;
  }
  if (pos >= text.size()) return std::nullopt;
  std::int64_t offset_seconds = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int sign = text[pos] == '+' ? 1 : -1;
    ++pos;
    const auto oh = read_digits(text, pos, 2);
    if (!oh || pos >= text.size() || text[pos++] != ':') return std::nullopt;
    const auto om = read_digits(text, pos, 2);
    if (!om || *oh > 23 || *om > 59) return std::nullopt;
    offset_seconds = sign * (*oh * 3600 + *om * 60);
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  const std::int64_t days =
      days_from_civil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
  const std::int64_t seconds = days * 86400 + *hour * 3600 + *minute * 60 + *second - offset_seconds;
  return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::seconds(seconds) +
                                                                   std::chrono::microseconds(micros)));
}

nlohmann::json timestamp_json(const std::optional<Timestamp>& time) {
  if (!time) return nullptr;
  return format_timestamp(*time);
}

nlohmann::json page_json(nlohmann::json items, const std::string& next_cursor) {
  return {{"items", std::move(items)},
          {"next_cursor", next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(next_cursor)}};
}

// ---- ApiContext ---------------------------------------------------------------------------------------

ApiContext::ApiContext(Dependencies dependencies)
    : config_(*dependencies.config),
      clock_(*dependencies.clock),
      metrics_(*dependencies.metrics),
      plugins_(*dependencies.plugins),
      storage_(std::move(dependencies.storage)),
      verify_provider_key_(std::move(dependencies.verify_provider_key)),
      workspace_changed_(std::move(dependencies.workspace_changed)),
      log_(core::logger("security")) {
  for (std::size_t i = 0; i < kAuthFailureNames.size(); ++i) {
    auth_failures_[i] =
        &metrics_.counter("samokoder_auth_failures_total", "Requests refused by authentication, by reason",
                          {{"reason", std::string(kAuthFailureNames[i])}});
  }
}

ApiContext::~ApiContext() = default;

sdk::Result<std::unique_ptr<ApiContext>> ApiContext::create(Dependencies dependencies) {
  const config::Config& config = *dependencies.config;
  const bool production = config.environment == config::Environment::kProduction;
  auto log = core::logger("security");
  std::string secret = config.security.secret_key;
  if (secret.empty()) {
    if (production) {
      return sdk::Status::failed_precondition(
          "SAMOKODER_SECRET_KEY is not set; production needs a strong secret of at least 32 bytes "
          "(generate one with `openssl rand -base64 48`)");
    }
    auto random = security::random_token(48);
    if (!random.ok()) return random.status();
    secret = std::move(random).value();
    log->warn(
        "SAMOKODER_SECRET_KEY is not set: using a random secret for this process only; sessions and "
        "stored provider keys will not survive a restart (set it for anything but a quick try-out)");
  } else if (auto weak = security::validate_secret(secret); !weak.ok()) {
    if (production) return sdk::Status::failed_precondition("SAMOKODER_SECRET_KEY: " + weak.message());
    log->warn("SAMOKODER_SECRET_KEY is weak ({}); production would refuse to start", weak.message());
  }
  const std::string& previous = config.security.previous_secret_key;
  if (!previous.empty()) {
    if (auto weak = security::validate_secret(previous); !weak.ok() && production) {
      return sdk::Status::failed_precondition("SAMOKODER_PREVIOUS_SECRET_KEY: " + weak.message());
    }
  }

  auto current = derive(secret);
  if (!current.ok()) return current.status();
  auto jwt = std::make_unique<security::JwtKeyRing>();
  auto aead = std::make_unique<security::KeyRing>();
  SAMOKODER_RETURN_IF_ERROR(jwt->add_key(current->jwt_id, current->jwt_key));
  SAMOKODER_RETURN_IF_ERROR(aead->add(current->aead_id, current->aead_key));
  if (!previous.empty() && previous != secret) {
    auto old = derive(previous);
    if (!old.ok()) return old.status();
    SAMOKODER_RETURN_IF_ERROR(jwt->add_key(old->jwt_id, old->jwt_key));
    SAMOKODER_RETURN_IF_ERROR(aead->add(old->aead_id, old->aead_key));
  }

  auto limits = RateLimits::create(config.security.rate_limits);
  if (!limits.ok()) return limits.status();
  std::unique_ptr<ApiContext> context(new ApiContext(std::move(dependencies)));
  context->secret_ring_ = std::move(aead);
  context->preview_grant_key_ = current->preview_key;
  context->rate_limit_versions_.push_back(std::move(limits).value());
  context->rate_limits_.store(context->rate_limit_versions_.back().get());
  context->security_versions_.push_back(std::make_unique<const config::SecurityConfig>(config.security));
  context->security_.store(context->security_versions_.back().get());
  context->sessions_ = std::make_unique<Sessions>(*context, std::move(jwt));
  context->session_checks_ = std::make_unique<SessionCheckCache>(
      std::chrono::milliseconds(config.security.session_check_cache_ms), kSessionCheckCacheCapacity);
  return context;
}

sdk::Status ApiContext::apply_security(const config::SecurityConfig& next) {
  const config::SecurityConfig& running = security();
  auto snapshot = std::make_unique<config::SecurityConfig>(next);
  snapshot->cookie_secure = running.cookie_secure;
  snapshot->secret_key = running.secret_key;
  snapshot->previous_secret_key = running.previous_secret_key;
  if (next.rate_limits != running.rate_limits) {
    auto limits = RateLimits::create(next.rate_limits, &rate_limits());
    if (!limits.ok()) return limits.status();
    rate_limit_versions_.push_back(std::move(limits).value());
    rate_limits_.store(rate_limit_versions_.back().get(), std::memory_order_release);
  }
  session_checks_->set_ttl(std::chrono::milliseconds(next.session_check_cache_ms));
  security_versions_.push_back(std::move(snapshot));
  security_.store(security_versions_.back().get(), std::memory_order_release);
  return {};
}

plugins::Lease ApiContext::auth_provider(std::string_view scheme) const {
  try {
    for (const auto& id : plugins_.active_ids(SAMOKODER_KIND_AUTH)) {
      auto lease = plugins_.acquire(id);
      const auto* provider = lease.as<sdk::AuthProvider>();
      if (provider != nullptr && provider->scheme() == scheme) return lease;
    }
  } catch (...) {  // allocation only; no provider is the honest answer
  }
  return {};
}

std::string ApiContext::client_address(const http::Request& request) const {
  if (security().trust_forwarded_for) {
    std::string_view forwarded = request.header("X-Forwarded-For");
    const auto comma = forwarded.rfind(',');
    const std::string_view last =
        http::trim_ows(comma == std::string_view::npos ? forwarded : forwarded.substr(comma + 1));
    if (valid_address_text(last)) return std::string(last);
  }
  return request.remote_address();
}

std::shared_ptr<http::Middleware> ApiContext::address_rate_limit_middleware() const {
  return std::make_shared<AddressRateLimitMiddleware>(*this);
}

std::optional<http::Response> ApiContext::check_csrf(const http::Request& request) const {
  const auto cookie = security::find_cookie(request.header("Cookie"), sessions_->cookie_names().csrf);
  if (!cookie || !security::verify_csrf(*cookie, request.header(security::kCsrfHeaderName))) {
    count_auth_failure(AuthFailure::kCsrf);
    return forbidden("csrf_failed",
                     "cookie-authenticated writes need the X-CSRF-Token header equal to the CSRF cookie");
  }
  return std::nullopt;
}

AuthResult ApiContext::authenticate(const http::Request& request, Access needed) const {
  const std::string_view authorization = request.header("Authorization");
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "bearer ";
    if (authorization.size() <= kBearer.size() ||
        !boost::beast::iequals(authorization.substr(0, kBearer.size()), kBearer)) {
      return unauthorized("only the Bearer authorization scheme is supported");
    }
    const std::string_view token = http::trim_ows(authorization.substr(kBearer.size()));
    // A JWT has exactly two dots; personal access tokens have none.
    if (std::count(token.begin(), token.end(), '.') == 2) {
      return authenticate_session(request, token, AuthMethod::kBearerSession, needed);
    }
    return authenticate_access_token(request, token, needed);
  }
  const auto cookie = security::find_cookie(request.header("Cookie"), sessions_->cookie_names().access);
  if (cookie && !cookie->empty()) {
    if (!is_safe_method(request.method())) {
      if (auto refused = check_csrf(request)) return std::move(*refused);
    }
    return authenticate_session(request, *cookie, AuthMethod::kCookieSession, needed);
  }
  return unauthorized("authentication required: send Authorization: Bearer <token> or sign in");
}

AuthResult ApiContext::authenticate_session(const http::Request& request, std::string_view jwt,
                                            AuthMethod method, Access needed) const {
  constexpr std::string_view kInvalid = "the access token is invalid, expired or revoked";
  auto claims = sessions_->verify_access(jwt);
  if (!claims.ok()) {
    count_auth_failure(AuthFailure::kInvalidToken);
    return unauthorized(kInvalid);
  }
  auto verified = session_checks_->find(claims->jti, now());
  if (!verified) {
    const std::uint64_t epoch = session_checks_->epoch();
    const Timestamp checked_at = now();
    auto checked = check_session_in_storage(*claims);
    if (!checked) return checked.take_response();
    verified = std::move(*checked);
    session_checks_->store(claims->jti, *verified, epoch, checked_at);
  }
  Principal principal;
  principal.user_id = std::move(verified->user_id);
  principal.email = std::move(verified->email);
  principal.is_admin = verified->is_admin;
  principal.tier = std::move(verified->tier);
  principal.scopes = {std::string(kScopeRead), std::string(kScopeWrite)};
  if (principal.is_admin) principal.scopes.emplace_back(kScopeAdmin);
  principal.method = method;
  principal.session_id = claims->session_id;
  principal.token_id = claims->jti;
  principal.expires_at = claims->expires_at;
  return authorize(request, std::move(principal), needed);
}

Outcome<SessionCheckCache::Verified> ApiContext::check_session_in_storage(const AccessClaims& claims) const {
  constexpr std::string_view kInvalid = "the access token is invalid, expired or revoked";
  auto revoked = store<sdk::TokenRevocationStore>([&](sdk::TokenRevocationStore& token_revocations) {
    return token_revocations.is_token_id_revoked(claims.jti);
  });
  if (!revoked.ok()) return problem_from_status(revoked.status());
  if (*revoked) {
    count_auth_failure(AuthFailure::kRevokedToken);
    return unauthorized(kInvalid);
  }
  auto session = store<sdk::SessionStore>(
      [&](sdk::SessionStore& sessions) { return sessions.get_session(claims.session_id); });
  if (!session.ok()) return auth_storage_failure(session.status(), kInvalid);
  if (session->revoked_at || session->expires_at <= now() || session->user_id != claims.user_id) {
    count_auth_failure(AuthFailure::kRevokedSession);
    return unauthorized(kInvalid);
  }
  auto user = store<sdk::UserStore>([&](sdk::UserStore& users) { return users.get_user(claims.user_id); });
  if (!user.ok()) return auth_storage_failure(user.status(), kInvalid);
  if (user->disabled) {
    count_auth_failure(AuthFailure::kDisabledUser);
    return unauthorized(kInvalid);
  }
  SessionCheckCache::Verified verified;
  verified.user_id = user->id;
  verified.email = user->email;
  verified.tier = user->tier;
  verified.is_admin = user->is_admin;
  verified.session_id = session->id;
  verified.session_expires_at = session->expires_at;
  return verified;
}

sdk::Status ApiContext::verify_provider_key(const std::string& provider, const std::string& api_key) const {
  if (!verify_provider_key_) return sdk::Status::unimplemented("this server cannot verify provider keys");
  try {
    return verify_provider_key_(provider, api_key);
  } catch (const std::exception& error) {
    return sdk::Status::internal(std::string("verifying the key failed: ") + error.what());
  }
}

void ApiContext::credentials_changed() const {
  session_checks_->invalidate_all();
}

void ApiContext::count_auth_failure(AuthFailure reason) const {
  const auto index = static_cast<std::size_t>(reason);
  auth_failures_[index]->add();
  // Why a client was refused is what one needs while debugging it; at info it would flood the log.
  log_->debug("authentication refused: {}", kAuthFailureNames[index]);
}

AuthResult ApiContext::authenticate_access_token(const http::Request& request, std::string_view token,
                                                 Access needed) const {
  constexpr std::string_view kInvalid = "the access token is invalid, expired or revoked";
  const plugins::Lease provider = auth_provider("api_token");
  if (!provider) {
    count_auth_failure(AuthFailure::kAccessTokensDisabled);
    return unauthorized("personal access tokens are not enabled on this server");
  }
  if (!provider.call<sdk::AuthProvider>([&](sdk::AuthProvider& p) { return p.check_policy(token); }).ok()) {
    count_auth_failure(AuthFailure::kInvalidToken);
    return unauthorized(kInvalid);
  }
  auto hash = provider.call<sdk::AuthProvider>([&](sdk::AuthProvider& p) { return p.hash_secret(token); });
  if (!hash.ok()) return problem_from_status(hash.status());
  auto stored = store<sdk::AccessTokenStore>(
      [&](sdk::AccessTokenStore& access_tokens) { return access_tokens.find_access_token(*hash); });
  if (!stored.ok()) {
    if (stored.status().code() == sdk::StatusCode::kNotFound) count_auth_failure(AuthFailure::kInvalidToken);
    return auth_storage_failure(stored.status(), kInvalid);
  }
  auto matches = provider.call<sdk::AuthProvider>(
      [&](sdk::AuthProvider& p) { return p.verify_secret(token, stored->token_hash); });
  if (!matches.ok()) return problem_from_status(matches.status());
  if (!*matches || stored->revoked || (stored->expires_at && *stored->expires_at <= now())) {
    count_auth_failure(AuthFailure::kRevokedToken);
    return unauthorized(kInvalid);
  }
  auto user = store<sdk::UserStore>([&](sdk::UserStore& users) { return users.get_user(stored->user_id); });
  if (!user.ok()) return auth_storage_failure(user.status(), kInvalid);
  if (user->disabled) {
    count_auth_failure(AuthFailure::kDisabledUser);
    return unauthorized(kInvalid);
  }
  // last_used_at is informational: one write a minute per token is plenty, and a failed write must
  // not fail the request.
  if (!stored->last_used_at || now() - *stored->last_used_at >= std::chrono::minutes(1)) {
    static_cast<void>(store<sdk::AccessTokenStore>(
        [&](sdk::AccessTokenStore& access_tokens) { return access_tokens.touch_access_token(stored->id); }));
  }
  Principal principal;
  principal.user_id = user->id;
  principal.email = user->email;
  principal.is_admin = user->is_admin;
  principal.tier = user->tier;
  principal.scopes = stored->scopes;
  principal.method = AuthMethod::kAccessToken;
  principal.token_id = stored->id;
  principal.expires_at = stored->expires_at;
  return authorize(request, std::move(principal), needed);
}

AuthResult ApiContext::authorize(const http::Request& request, Principal principal, Access needed) const {
  // The problem's type is the metric's reason.
  auto refuse = [&](AuthFailure reason, std::string_view detail) {
    count_auth_failure(reason);
    return forbidden(kAuthFailureNames[static_cast<std::size_t>(reason)], detail);
  };
  switch (needed) {
    case Access::kRead:
      if (!principal.has_scope(kScopeRead) && !principal.has_scope(kScopeWrite)) {
        return refuse(AuthFailure::kInsufficientScope, "this credential lacks the \"read\" scope");
      }
      break;
    case Access::kWrite:
      if (!principal.has_scope(kScopeWrite)) {
        return refuse(AuthFailure::kInsufficientScope, "this credential lacks the \"write\" scope");
      }
      break;
    case Access::kAdmin:
      if (!principal.is_admin)
        return refuse(AuthFailure::kAdminRequired, "administrator privileges are required");
      if (!principal.has_scope(kScopeAdmin)) {
        return refuse(AuthFailure::kInsufficientScope, "this credential lacks the \"admin\" scope");
      }
      break;
  }
  const std::string_view group =
      request.route() != nullptr ? std::string_view(request.route()->options.group) : kGroupDefault;
  if (group != kUnlimitedGroup) {
    const auto decision = rate_limits().acquire_principal(group, principal.user_id, clock_.monotonic_now());
    if (!decision.allowed) {
      return too_many_requests(decision.retry_after, "too many requests for this account; retry later");
    }
  }
  return principal;
}

namespace {

void append_audit_event(const ApiContext& context, sdk::NewAuditEvent event, std::string_view request_id) {
  auto appended =
      context.store<sdk::AuditStore>([&](sdk::AuditStore& audit) { return audit.append_audit_event(event); });
  if (!appended.ok()) {
    core::logger("audit")->error(
        "audit event {} ({}) was not stored: {}", event.action,
        request_id.empty() ? std::string("no request") : "request " + std::string(request_id),
        appended.status().to_string());
  }
}

sdk::NewAuditEvent audit_event(std::string_view actor_id, std::string_view action, std::string_view target,
                               std::string source, nlohmann::json detail) {
  sdk::NewAuditEvent event;
  event.actor_id = std::string(actor_id);
  event.action = std::string(action);
  event.target = std::string(target);
  event.source_address = std::move(source);
  event.detail = detail.is_object() ? std::move(detail) : nlohmann::json::object();
  return event;
}

}  // namespace

void ApiContext::audit(std::string_view actor_id, std::string_view action, std::string_view target,
                       const http::Request& request, nlohmann::json detail) const {
  append_audit_event(*this, audit_event(actor_id, action, target, client_address(request), std::move(detail)),
                     request.request_id());
}

void ApiContext::audit_without_request(std::string_view actor_id, std::string_view action,
                                       std::string_view target, std::string_view source,
                                       nlohmann::json detail) const {
  append_audit_event(*this, audit_event(actor_id, action, target, std::string(source), std::move(detail)),
                     {});
}

Outcome<nlohmann::json> ApiContext::json_body(const http::Request& request) const {
  std::string_view type = request.header("Content-Type");
  type = http::trim_ows(type.substr(0, type.find(';')));
  if (!boost::beast::iequals(type, "application/json")) {
    return http::Response::problem(415, "unsupported_media_type", "Unsupported Media Type",
                                   "the request body must be application/json");
  }
  auto parsed = security::parse_json_object(request.body());
  if (!parsed.ok()) {
    return http::Response::problem(400, "malformed_body", "Bad Request", parsed.status().message());
  }
  return std::move(parsed).value();
}

Outcome<sdk::PageRequest> ApiContext::page_request(const http::Request& request) const {
  sdk::PageRequest page;
  std::vector<security::FieldError> errors;
  if (const auto limit = request.query_param("limit")) {
    const std::string_view text = *limit;
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > sdk::kMaxPageLimit) {
      errors.push_back({"/limit", "expected an integer from 1 to " + std::to_string(sdk::kMaxPageLimit)});
    } else {
      page.limit = value;
    }
  }
  if (auto cursor = request.query_param("cursor")) {
    if (cursor->size() > 1024) {
      errors.push_back({"/cursor", "is not a cursor this list issued"});
    } else {
      page.cursor = std::move(*cursor);
    }
  }
  if (!errors.empty()) return validation_problem(errors);
  return page;
}

}  // namespace samokoder::api
