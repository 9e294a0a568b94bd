// ApiContext: what every /api/v1 route module gets from the kernel: storage access, the clock and
// config, authentication of the caller (sessions, cookies with CSRF, personal access tokens), the
// per-principal rate limit, the audit log, the key ring for secrets at rest, and the one mapping of
// sdk::Status to problem+json that every handler uses.
//
// A route module is a function `void add_<area>_routes(http::Router&, ApiContext&)` called from
// api::add_routes (routes.hpp). Its handlers run on the request pool (RouteOptions::dispatch kRequest, the
// default), because everything below may block on storage or hashing:
//
//   router.add(verb::get, "/api/v1/projects/{id}", [&context](http::Request& request) {
//     auto auth = context.authenticate(request, Access::kRead);
//     if (!auth) return auth.take_response();                  // 401 / 403 / 429, ready to send
//     auto project = context.store<sdk::ProjectStore>([&](sdk::ProjectStore& projects) {
//       return projects.get_project(auth->user_id, request.param("id"));
//     });
//     if (!project.ok()) return problem_from_status(project.status());
//     return http::Response::json(200, ...);
//   });
//
// Authentication (authenticate): `Authorization: Bearer <access JWT>` or `Bearer skp_...` (a personal
// access token), else the access-token cookie. The JWT's jti must not be revoked, its session (login)
// must be neither revoked nor expired, and the user must exist and not be disabled. That storage check
// is reused for up to security.session_check_cache_ms per token (session_check_cache.hpp); whatever
// revokes a token or session or changes a user calls credentials_changed(), so on this node logout and
// refresh-token reuse take effect at once, and changes made by other nodes within that time. A cookie
// session additionally needs a valid X-CSRF-Token header on every unsafe method (anything but GET,
// HEAD, OPTIONS). After authentication the principal's token bucket for the route's group is charged
// (429 + Retry-After when empty).
//
// Live security settings: config().security is what the server started with; security() is what is in
// force now. A config reload (apply_security) publishes a new immutable snapshot through an atomic
// pointer, and new rate limits the same way; the versions it replaces are kept until the context is
// destroyed, so a request that loaded one may read it to the end without a lock or a reference count.
// Reloads are rare and a snapshot is small, so keeping them costs nothing worth a reclamation scheme.
//
// Ownership: the Application owns the ApiContext and keeps it alive for as long as its router serves;
// route handlers capture it by reference. It references the Config, Clock, Registry and PluginManager,
// which outlive it.
// Thread-safety: every const method and authenticate/audit may be called concurrently from any
// worker thread. None of them may be called on an HTTP I/O thread (they block on storage), except
// client_address, now and the problem helpers.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage.hpp>

#include "api/session_check_cache.hpp"
#include "config/config.hpp"
#include "core/clock.hpp"
#include "http/middleware.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "security/aead.hpp"
#include "security/json_input.hpp"

namespace samokoder::api {

using Timestamp = std::chrono::system_clock::time_point;

// The route groups the identity routes use (RouteOptions::group). Groups are free-form; the rate
// limits of a group come from config security.rate_limits.<group>, falling back to "default".
inline constexpr std::string_view kGroupDefault = "default";
inline constexpr std::string_view kGroupAuth = "auth";

// Token scopes (personal access tokens carry a subset; sessions carry read and write, plus admin for
// admins).
inline constexpr std::string_view kScopeRead = "read";
inline constexpr std::string_view kScopeWrite = "write";
inline constexpr std::string_view kScopeAdmin = "admin";

// What a handler needs the caller to be allowed to do.
enum class Access {
  kRead,   // read the caller's own data: scope "read"
  kWrite,  // change the caller's own data: scope "write" (a read-only token gets 403)
  kAdmin,  // admin routes: the user is an admin and the credential carries scope "admin"
};

// How the caller proved who it is.
enum class AuthMethod {
  kBearerSession,  // Authorization: Bearer <access JWT>
  kCookieSession,  // the access JWT in the httpOnly cookie (CSRF header required on writes)
  kAccessToken,    // Authorization: Bearer skp_... (personal access token)
};

// "bearer_session", "cookie_session", "access_token".
std::string_view auth_method_name(AuthMethod method) noexcept;

// The authenticated caller, as read from storage for this request.
struct Principal {
  std::string user_id;
  std::string email;
  bool is_admin = false;
  std::string tier;
  std::vector<std::string> scopes;
  AuthMethod method = AuthMethod::kBearerSession;
  std::string session_id;  // sessions: the login (refresh-token family); empty for access tokens
  std::string token_id;    // sessions: the access JWT's jti; access tokens: the token's id
  // When the credential stops being valid: the JWT's exp, or the access token's expiry (nullopt: it
  // does not expire).
  std::optional<Timestamp> expires_at;

  bool has_scope(std::string_view scope) const noexcept;
};

// A value, or the response to send instead (an authentication failure, a malformed body...).
template <typename T>
class Outcome {
 public:
  // NOLINTNEXTLINE(google-explicit-constructor): `return value;` and `return response;` both work.
  Outcome(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Outcome(http::Response response) : state_(std::in_place_index<1>, std::move(response)) {}

  explicit operator bool() const noexcept { return state_.index() == 0; }
  T& operator*() { return std::get<0>(state_); }
  const T& operator*() const { return std::get<0>(state_); }
  T* operator->() { return &std::get<0>(state_); }
  const T* operator->() const { return &std::get<0>(state_); }
  // REQUIRES: !*this. Moves the response out.
  http::Response take_response() { return std::move(std::get<1>(state_)); }

 private:
  std::variant<T, http::Response> state_;
};

using AuthResult = Outcome<Principal>;

// ---- problem+json ----------------------------------------------------------------------------------

// The one mapping of a failed Status to a problem+json response (type slug = status_code_name):
//   kInvalidArgument 400, kNotFound 404, kAlreadyExists 409, kFailedPrecondition 409, kAborted 409,
//   kPermissionDenied 403, kUnauthenticated 401 (with WWW-Authenticate: Bearer), kResourceExhausted
//   429, kUnavailable 503, kDeadlineExceeded 504, kUnimplemented 501; anything else (kInternal,
//   kDataLoss, kCancelled) is 500 with a generic detail, and the Status is logged instead of being
//   shown (the response carries the request id to correlate). Client-side codes (4xx) show the
//   Status message as `detail`, so storage and handler messages must never contain secrets.
http::Response problem_from_status(const sdk::Status& status);
// 400 "validation_failed" with one errors[] entry {path, message} per field failure.
http::Response validation_problem(const std::vector<security::FieldError>& errors);
// 429 "rate_limited" (or the given slug) with Retry-After in whole seconds (at least 1).
http::Response too_many_requests(std::chrono::seconds retry_after, std::string_view detail,
                                 std::string_view slug = "rate_limited");

// A deliberately plain email check (one '@', a non-empty local part of at most 64 bytes, a dotted
// domain, no spaces or control characters): deliverability is not ours to judge.
bool plausible_email(std::string_view email);

// RFC 3339 in UTC with microseconds: "2026-01-01T00:00:00.000000Z".
std::string format_timestamp(Timestamp time);
// Parses RFC 3339 ("2026-01-01T00:00:00Z", fractional seconds and a numeric offset allowed).
std::optional<Timestamp> parse_timestamp(std::string_view text);
// null for an empty optional, else format_timestamp.
nlohmann::json timestamp_json(const std::optional<Timestamp>& time);
// A page of a list as every list route answers it: {"items": [...], "next_cursor": "..." or null}.
nlohmann::json page_json(nlohmann::json items, const std::string& next_cursor);

class RateLimits;
class Sessions;
struct AccessClaims;

class ApiContext {
 public:
  struct Dependencies {
    const config::Config* config = nullptr;
    const core::Clock* clock = nullptr;
    metrics::Registry* metrics = nullptr;
    plugins::PluginManager* plugins = nullptr;
    // The active storage backend (Application::storage); an empty lease means none.
    std::function<plugins::Lease()> storage;
    // Asks a provider's endpoint whether it accepts a key (llm::LlmGateway::verify_key), for
    // PUT /api/v1/keys/{provider} with "verify": true; empty: such a request gets 501.
    std::function<sdk::Status(const std::string& provider, const std::string& api_key)> verify_provider_key;
    // Told of every workspace file the files API writes or deletes (live previews follow them).
    std::function<void(std::string_view project_id, std::string_view path)> workspace_changed;
  };

  // Builds the signing and encryption keys from config.security (SAMOKODER_SECRET_KEY and the
  // optional previous secret): in production a missing or weak secret fails with
  // kFailedPrecondition (the server refuses to start); in development a missing secret is replaced
  // by a random one for this process, with a warning (sessions then end with the process).
  static sdk::Result<std::unique_ptr<ApiContext>> create(Dependencies dependencies);
  ~ApiContext();
  ApiContext(const ApiContext&) = delete;
  ApiContext& operator=(const ApiContext&) = delete;

  // The config the server started with. Read its security settings through security(), never here.
  const config::Config& config() const noexcept { return config_; }
  // The security settings in force (see the header comment): one atomic load, no lock.
  const config::SecurityConfig& security() const noexcept {
    return *security_.load(std::memory_order_acquire);
  }
  // Puts `next` in force for the requests that follow (a config reload): token lifetimes, lockout and
  // address throttle, rate limits (a group whose limit changed starts with full buckets), the
  // session-check cache's TTL and trust_forwarded_for. cookie_secure (it names the cookies every
  // client holds) and the secrets keep their startup values: they need a restart. Called by one
  // thread at a time.
  sdk::Status apply_security(const config::SecurityConfig& next);
  const core::Clock& clock() const noexcept { return clock_; }
  Timestamp now() const noexcept { return clock_.now(); }
  metrics::Registry& metrics() const noexcept { return metrics_; }
  plugins::PluginManager& plugins() const noexcept { return plugins_; }

  // Calls fn(S&) with the store S (sdk::ProjectStore, sdk::UserStore, ...) of the active storage
  // backend under a lease, and returns its Status or Result; kUnavailable when no backend is active,
  // kInternal when it throws. Routes name the store they work on, never the whole port.
  template <typename S, typename F>
  auto store(F&& fn) const {
    const plugins::Lease lease = storage_();
    return lease.call<sdk::Storage>([&](sdk::Storage& storage) { return fn(storage.store<S>()); });
  }

  // A lease on the ACTIVE auth plugin serving `scheme` ("password": auth.local, "api_token":
  // auth.apitoken); empty when none is active.
  plugins::Lease auth_provider(std::string_view scheme) const;

  // Authenticates the request and checks `needed` (see the header comment). On failure the outcome
  // holds a ready problem response: 401 (no or invalid credentials, with WWW-Authenticate), 403
  // (missing scope, not an admin, CSRF failure), 429 (the principal's rate limit) or 503 (storage down).
  AuthResult authenticate(const http::Request& request, Access needed) const;

  // The CSRF check alone: nullopt when the request carries a CSRF cookie and an equal X-CSRF-Token
  // header, else a 403 problem. authenticate() applies it to cookie sessions itself.
  std::optional<http::Response> check_csrf(const http::Request& request) const;

  // Appends an audit event (occurred now, from the caller's address). Never put secrets in `detail`.
  // A storage failure is logged (with the request id) and does not fail the caller's request.
  void audit(std::string_view actor_id, std::string_view action, std::string_view target,
             const http::Request& request, nlohmann::json detail = nlohmann::json::object()) const;
  // The same for what no request started (a signal, the plugin file watcher): `source` stands where a
  // client address would, e.g. "sighup".
  void audit_without_request(std::string_view actor_id, std::string_view action, std::string_view target,
                             std::string_view source, nlohmann::json detail = nlohmann::json::object()) const;

  // The client's address: the peer address, or with security.trust_forwarded_for the last hop of
  // X-Forwarded-For (the address the trusted proxy saw).
  std::string client_address(const http::Request& request) const;

  // The request body as a JSON object: 415 unless Content-Type is application/json, 400 when it is
  // not one strict JSON object (security::parse_json_object).
  Outcome<nlohmann::json> json_body(const http::Request& request) const;
  // ?limit= (1..sdk::kMaxPageLimit, default 50) and ?cursor=; 400 with field errors otherwise.
  Outcome<sdk::PageRequest> page_request(const http::Request& request) const;

  // AES-256-GCM ring for secrets at rest (BYOK provider keys), derived from SAMOKODER_SECRET_KEY; the
  // previous secret's key stays in the ring for opening until values are re-sealed.
  const security::KeyRing& secret_ring() const noexcept { return *secret_ring_; }
  // The HMAC key of preview grants (kernel/previews/grant.hpp), derived from SAMOKODER_SECRET_KEY so a
  // grant outlives a restart; a rotated secret ends every grant (the console asks for a new one).
  const std::string& preview_grant_key() const noexcept { return preview_grant_key_; }

  // The middleware that applies per-address rate limits of each route group before dispatch (on the
  // I/O thread; non-blocking). The Application installs it on its server.
  std::shared_ptr<http::Middleware> address_rate_limit_middleware() const;

  // To be called after any change that can fail an access token's storage check (a revoked token id
  // or session, a user disabled, demoted or deleted): forgets the cached checks (session_check_cache.hpp)
  // so the change takes effect on this node's next request.
  void credentials_changed() const;

  // See Dependencies::workspace_changed (empty when nobody listens).
  const std::function<void(std::string_view, std::string_view)>& workspace_observer() const noexcept {
    return workspace_changed_;
  }

  // See Dependencies::verify_provider_key; kUnimplemented when the server has none.
  sdk::Status verify_provider_key(const std::string& provider, const std::string& api_key) const;

  // Sessions and their tokens (used by the auth routes).
  Sessions& sessions() const noexcept { return *sessions_; }
  RateLimits& rate_limits() const noexcept { return *rate_limits_.load(std::memory_order_acquire); }

 private:
  ApiContext(Dependencies dependencies);

  AuthResult authenticate_access_token(const http::Request& request, std::string_view token,
                                       Access needed) const;
  AuthResult authenticate_session(const http::Request& request, std::string_view jwt, AuthMethod method,
                                  Access needed) const;
  // The storage half of authenticating an access JWT: jti not revoked, session live, user enabled.
  Outcome<SessionCheckCache::Verified> check_session_in_storage(const AccessClaims& claims) const;
  // The reasons of samokoder_auth_failures_total; their counters are resolved once, at construction,
  // so a refused request touches one atomic and never the registry's lock.
  enum class AuthFailure {
    kAccessTokensDisabled,
    kAdminRequired,
    kCsrf,
    kDisabledUser,
    kInsufficientScope,
    kInvalidToken,
    kRevokedSession,
    kRevokedToken,
  };
  static constexpr std::size_t kAuthFailureReasons = 8;
  // Their label values (and words in the debug line), in the same order.
  static constexpr std::array<std::string_view, kAuthFailureReasons> kAuthFailureNames = {
      "access_tokens_disabled", "admin_required",  "csrf",         "disabled_user", "insufficient_scope",
      "invalid_token",          "revoked_session", "revoked_token"};
  // Counts a refused request in samokoder_auth_failures_total{reason}.
  void count_auth_failure(AuthFailure reason) const;
  // Scope, admin and per-principal rate-limit checks shared by both kinds of credential.
  AuthResult authorize(const http::Request& request, Principal principal, Access needed) const;

  const config::Config& config_;
  const core::Clock& clock_;
  metrics::Registry& metrics_;
  plugins::PluginManager& plugins_;
  std::function<plugins::Lease()> storage_;
  std::function<sdk::Status(const std::string&, const std::string&)> verify_provider_key_;
  std::function<void(std::string_view, std::string_view)> workspace_changed_;
  std::unique_ptr<security::KeyRing> secret_ring_;
  std::string preview_grant_key_;
  std::unique_ptr<Sessions> sessions_;
  std::unique_ptr<SessionCheckCache> session_checks_;
  // What security() and rate_limits() return: the newest of the versions below.
  std::atomic<const config::SecurityConfig*> security_{nullptr};
  std::atomic<RateLimits*> rate_limits_{nullptr};
  // Every version ever published, oldest first, kept until destruction (see the header comment).
  std::vector<std::unique_ptr<const config::SecurityConfig>> security_versions_;
  std::vector<std::unique_ptr<RateLimits>> rate_limit_versions_;
  std::array<metrics::Counter*, kAuthFailureReasons> auth_failures_{};
  std::shared_ptr<spdlog::logger> log_;  // "security": each refusal at debug
};

}  // namespace samokoder::api
