// The identity endpoints: register, login, refresh, logout, me (docs/api.md "Authentication").
//
// Enumeration: register answers 202 with the same body whether or not the email was taken, and
// hashes the password either way; login answers the same 401 for an unknown email and a wrong
// password, and verifies against a hash of equal cost when the account does not exist (the auth
// provider's contract for an empty stored hash). Lockout is counted per subject (the email tried),
// so an unknown email locks exactly like a real one.
//
// Lockout: an account is locked while it has lockout.max_failures failed logins within
// lockout.window_seconds, counted from the later of the window start and the account's last change
// (a successful login or an admin unlock rewrites the record, which resets the count). Attempts
// refused while locked are recorded as failures too, so hammering a locked account keeps it locked;
// Retry-After is the window, the time after which an idle client is sure to be let in. A source
// address with address_throttle.max_failures failures within its window is refused the same way,
// whatever account it tries.
#include <algorithm>

#include <boost/beast/http/verb.hpp>

#include <samokoder/sdk/auth.hpp>

#include "api/context.hpp"
#include "api/routes.hpp"
#include "api/sessions.hpp"
#include "core/logging.hpp"
#include "security/csrf.hpp"
#include "security/json_input.hpp"

namespace samokoder::api {
namespace {

using boost::beast::http::verb;

// The auth group's body limit: credentials are tiny, and a small limit keeps the cost of a flood of
// fake logins low before any hashing happens.
constexpr std::size_t kAuthBodyLimit = 1024;
constexpr std::size_t kMaxEmailLength = 254;
constexpr std::size_t kMaxPasswordLength = 128;  // code points, as the password policy counts

constexpr std::string_view kInvalidCredentials = "invalid email or password";
constexpr std::string_view kRegisterAccepted =
    "registration accepted: if the address was not registered yet, the account now exists; sign in with "
    "your email and password";

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

std::string user_agent(const http::Request& request) {
  return std::string(request.header("User-Agent").substr(0, 512));
}

http::Response invalid_credentials() {
  auto response = http::Response::problem(401, "invalid_credentials", "Unauthorized", kInvalidCredentials);
  response.set_header("WWW-Authenticate", "Bearer");
  return response;
}

http::Response provider_unavailable() {
  return http::Response::problem(503, "unavailable", "Service Unavailable",
                                 "password sign-in is not available right now");
}

struct Credentials {
  std::string email;
  std::string password;
  std::string format;  // "json" or "form", for the audit log
};

// JSON {email, password} or an HTML/OAuth2-style form (username, password; other OAuth2 password-grant
// fields are tolerated and ignored).
Outcome<Credentials> read_credentials(const ApiContext& context, const http::Request& request) {
  std::string_view type = request.header("Content-Type");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ')
    type.remove_suffix(1);
  if (boost::beast::iequals(type, "application/x-www-form-urlencoded")) {
    auto form = security::parse_form_urlencoded(request.body());
    if (!form.ok())
      return http::Response::problem(400, "malformed_body", "Bad Request", form.status().message());
    std::vector<security::FieldError> errors;
    for (const auto& [name, value] : *form) {
      if (name != "username" && name != "password" && name != "grant_type" && name != "scope" &&
          name != "client_id") {
        errors.push_back({"/" + name, "unknown field"});
      }
    }
    Credentials out;
    out.format = "form";
    auto field = [&](const char* name, std::size_t max_length, std::string& into) {
      const auto it = form->find(name);
      if (it == form->end() || it->second.empty()) {
        errors.push_back({std::string("/") + name, "required"});
      } else if (it->second.size() > max_length * 4) {
        errors.push_back({std::string("/") + name, "is too long"});
      } else {
        into = it->second;
      }
    };
    field("username", kMaxEmailLength, out.email);
    field("password", kMaxPasswordLength, out.password);
    if (!errors.empty()) return validation_problem(errors);
    return out;
  }
  auto body = context.json_body(request);
  if (!body) return body.take_response();
  security::FieldReader reader(*body);
  auto email = reader.required_string("/email", 1, kMaxEmailLength);
  auto password = reader.required_string("/password", 1, kMaxPasswordLength);
  reader.reject_unknown({"email", "password"});
  if (!reader.ok()) return validation_problem(reader.errors());
  return Credentials{std::move(*email), std::move(*password), "json"};
}

// Whether an answer carrying new tokens repeats them in its body, or leaves them to its cookies.
enum class TokensInBody { kYes, kNo };

nlohmann::json token_body(const IssuedTokens& tokens, const ApiContext& context, TokensInBody in_body) {
  const auto now = context.now();
  auto seconds = [&](std::chrono::system_clock::time_point t) {
    return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(t - now).count());
  };
  nlohmann::json body = {{"token_type", "Bearer"},
                         {"expires_in", seconds(tokens.access_expires_at)},
                         {"refresh_expires_in", seconds(tokens.refresh_expires_at)}};
  if (in_body == TokensInBody::kYes) {
    body["access_token"] = tokens.access_token;
    body["refresh_token"] = tokens.refresh_token;
  }
  return body;
}

// 200 with the token body and the three cookies.
http::Response tokens_response(const ApiContext& context, const IssuedTokens& tokens, nlohmann::json extra,
                               TokensInBody in_body = TokensInBody::kYes) {
  nlohmann::json body = token_body(tokens, context, in_body);
  if (extra.is_object()) body.update(extra);
  auto cookies = context.sessions().set_cookies(tokens);
  if (!cookies.ok()) return problem_from_status(cookies.status());
  auto response = http::Response::json(200, body);
  for (auto& cookie : *cookies)
    response.add_header("Set-Cookie", std::move(cookie));
  return response;
}

nlohmann::json user_json(const sdk::User& user) {
  return {{"id", user.id},
          {"email", user.email},
          {"is_admin", user.is_admin},
          {"tier", user.tier},
          {"created_at", format_timestamp(user.created_at)}};
}

http::Response login(ApiContext& context, http::Request& request) {
  auto credentials = read_credentials(context, request);
  if (!credentials) return credentials.take_response();
  const auto& security = context.security();
  const std::string subject = ascii_lower(credentials->email);
  const std::string address = context.client_address(request);
  const auto now = context.now();
  auto record = [&](bool success) {
    const sdk::LoginAttempt attempt{subject, address, success, user_agent(request)};
    const auto status = context.store<sdk::LoginAttemptStore>(
        [&](sdk::LoginAttemptStore& login_attempts) { return login_attempts.record_login_attempt(attempt); });
    if (!status.ok()) core::logger("security")->error("login attempt not recorded: {}", status.to_string());
  };

  auto address_failures = context.store<sdk::LoginAttemptStore>([&](sdk::LoginAttemptStore& login_attempts) {
    return login_attempts.count_failed_logins_for_address(
        address, now - std::chrono::seconds(security.address_window_seconds));
  });
  if (!address_failures.ok()) return problem_from_status(address_failures.status());
  if (*address_failures >= security.address_max_failures) {
    record(false);
    context.audit("", "auth.login_failed", subject, request, {{"reason", "address_throttled"}});
    return too_many_requests(std::chrono::seconds(security.address_window_seconds),
                             "too many failed sign-ins from this address; retry later", "login_throttled");
  }

  std::optional<sdk::User> user;
  if (auto found = context.store<sdk::UserStore>(
          [&](sdk::UserStore& users) { return users.find_user_by_email(credentials->email); });
      found.ok()) {
    user = std::move(found).value();
  } else if (found.status().code() != sdk::StatusCode::kNotFound) {
    return problem_from_status(found.status());
  }
  const std::string actor = user ? user->id : std::string();
  auto since = now - std::chrono::seconds(security.lockout_window_seconds);
  if (user) since = std::max(since, user->updated_at);
  auto failures = context.store<sdk::LoginAttemptStore>([&](sdk::LoginAttemptStore& login_attempts) {
    return login_attempts.count_failed_logins_for_subject(subject, since);
  });
  if (!failures.ok()) return problem_from_status(failures.status());
  if (*failures >= security.lockout_max_failures) {
    record(false);
    context.audit(actor, "auth.login_failed", subject, request, {{"reason", "locked"}});
    return too_many_requests(std::chrono::seconds(security.lockout_window_seconds),
                             "this account is temporarily locked after too many failed sign-ins; retry later",
                             "account_locked");
  }

  const plugins::Lease provider = context.auth_provider("password");
  if (!provider) return provider_unavailable();
  const std::string stored_hash = user ? user->password_hash : std::string();
  auto verified = provider.call<sdk::AuthProvider>(
      [&](sdk::AuthProvider& p) { return p.verify_secret(credentials->password, stored_hash); });
  if (!verified.ok()) {
    if (verified.status().code() != sdk::StatusCode::kDataLoss) return problem_from_status(verified.status());
    // A corrupt stored hash must not let anyone in nor tell the caller anything: a failed login.
    core::logger("security")
        ->error("stored password hash of user {} is unreadable: {}", actor, verified.status().message());
  }
  const bool password_ok = verified.ok() && *verified;
  if (!password_ok || !user || user->disabled) {
    record(false);
    context.audit(actor, "auth.login_failed", subject, request,
                  {{"reason", password_ok ? "disabled" : "bad_credentials"}});
    if (*failures + 1 == security.lockout_max_failures) {
      context.audit(actor, "auth.lockout", subject, request,
                    {{"failures", *failures + 1}, {"window_seconds", security.lockout_window_seconds}});
    }
    return invalid_credentials();
  }

  record(true);
  // Rewriting the record marks the success (it resets the failure count, see above) and is where a
  // hash made with older parameters is replaced.
  sdk::UserUpdate update;
  update.locked_until = std::optional<sdk::Timestamp>();
  if (provider.as<sdk::AuthProvider>()->needs_rehash(user->password_hash)) {
    auto rehashed = provider.call<sdk::AuthProvider>(
        [&](sdk::AuthProvider& p) { return p.hash_secret(credentials->password); });
    if (rehashed.ok()) update.password_hash = std::move(rehashed).value();
  }
  auto updated = context.store<sdk::UserStore>(
      [&](sdk::UserStore& users) { return users.update_user(user->id, update); });
  if (!updated.ok()) return problem_from_status(updated.status());
  auto tokens = context.sessions().start(*updated, address, user_agent(request));
  if (!tokens.ok()) return problem_from_status(tokens.status());
  context.audit(user->id, "auth.login", user->id, request,
                {{"session_id", tokens->session_id}, {"format", credentials->format}});
  return tokens_response(context, *tokens, {{"user", user_json(*updated)}});
}

http::Response register_user(ApiContext& context, http::Request& request) {
  auto body = context.json_body(request);
  if (!body) return body.take_response();
  security::FieldReader reader(*body);
  auto email = reader.required_string("/email", 3, kMaxEmailLength);
  auto password = reader.required_string("/password", 1, kMaxPasswordLength);
  reader.reject_unknown({"email", "password"});
  if (email && !plausible_email(*email)) reader.add_error("/email", "is not an email address");
  const plugins::Lease provider = context.auth_provider("password");
  if (!provider) return provider_unavailable();
  if (password) {
    const auto policy =
        provider.call<sdk::AuthProvider>([&](sdk::AuthProvider& p) { return p.check_policy(*password); });
    if (policy.code() == sdk::StatusCode::kInvalidArgument) {
      reader.add_error("/password", policy.message());
    } else if (!policy.ok()) {
      return problem_from_status(policy);
    }
  }
  if (!reader.ok()) return validation_problem(reader.errors());

  // Hashed before we know whether the email is taken, so both answers cost the same.
  auto hash =
      provider.call<sdk::AuthProvider>([&](sdk::AuthProvider& p) { return p.hash_secret(*password); });
  if (!hash.ok()) return problem_from_status(hash.status());
  sdk::NewUser user;
  user.email = *email;
  user.password_hash = std::move(hash).value();
  auto created =
      context.store<sdk::UserStore>([&](sdk::UserStore& users) { return users.create_user(user); });
  if (created.ok()) {
    context.audit(created->id, "auth.register", created->id, request);
  } else if (created.status().code() == sdk::StatusCode::kAlreadyExists) {
    context.audit("", "auth.register_existing", ascii_lower(*email), request);
  } else {
    return problem_from_status(created.status());
  }
  return http::Response::json(202, {{"status", "accepted"}, {"message", kRegisterAccepted}});
}

http::Response refresh(ApiContext& context, http::Request& request) {
  Sessions& sessions = context.sessions();
  std::string token;
  bool from_cookie = false;
  if (!request.body().empty()) {
    auto body = context.json_body(request);
    if (!body) return body.take_response();
    security::FieldReader reader(*body);
    auto field = reader.required_string("/refresh_token", 1, 256);
    reader.reject_unknown({"refresh_token"});
    if (!reader.ok()) return validation_problem(reader.errors());
    token = std::move(*field);
  } else if (auto cookie = security::find_cookie(request.header("Cookie"), sessions.cookie_names().refresh)) {
    if (auto refused = context.check_csrf(request)) return std::move(*refused);
    token = std::string(*cookie);
    from_cookie = true;
  } else {
    auto response =
        http::Response::problem(401, "unauthenticated", "Unauthorized",
                                "send the refresh token as {\"refresh_token\": ...} or in its cookie");
    response.set_header("WWW-Authenticate", "Bearer");
    return response;
  }
  RefreshFailure failure = RefreshFailure::kNone;
  std::string reused_session;
  std::string reused_user;
  auto tokens = sessions.refresh(token, failure, reused_session, reused_user);
  if (!tokens.ok()) {
    if (failure == RefreshFailure::kReuse) {
      core::logger("security")
          ->warn("refresh token reuse: session {} of user {} revoked", reused_session, reused_user);
      context.audit(reused_user, "auth.refresh_reuse", reused_session, request,
                    {{"session_id", reused_session}});
    }
    auto response = problem_from_status(tokens.status());
    if (from_cookie && failure != RefreshFailure::kNone) {
      for (auto& cookie : sessions.clear_cookies())
        response.add_header("Set-Cookie", std::move(cookie));
    }
    return response;
  }
  // A browser holds its tokens in HttpOnly cookies; in the body they would only hand a script running in
  // the page (an injected one) a refresh token good for days, to use from anywhere.
  return tokens_response(context, *tokens, nlohmann::json::object(),
                         from_cookie ? TokensInBody::kNo : TokensInBody::kYes);
}

http::Response logout(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kRead);
  if (!auth) return auth.take_response();
  if (auth->method == AuthMethod::kAccessToken) {
    return http::Response::problem(400, "not_a_session", "Bad Request",
                                   "personal access tokens have no session; revoke one with DELETE "
                                   "/api/v1/tokens/{id}");
  }
  const auto ended = context.sessions().end(auth->session_id, auth->token_id,
                                            auth->expires_at.value_or(context.now()), "logout");
  if (!ended.ok()) return problem_from_status(ended);
  context.audit(auth->user_id, "auth.logout", auth->session_id, request, {{"session_id", auth->session_id}});
  auto response = http::Response::no_content();
  for (auto& cookie : context.sessions().clear_cookies())
    response.add_header("Set-Cookie", std::move(cookie));
  return response;
}

http::Response me(ApiContext& context, http::Request& request) {
  auto auth = context.authenticate(request, Access::kRead);
  if (!auth) return auth.take_response();
  auto user =
      context.store<sdk::UserStore>([&](sdk::UserStore& users) { return users.get_user(auth->user_id); });
  if (!user.ok()) return problem_from_status(user.status());
  nlohmann::json body = user_json(*user);
  body["auth"] = {{"method", auth_method_name(auth->method)},
                  {"scopes", auth->scopes},
                  {"expires_at", timestamp_json(auth->expires_at)}};
  if (!auth->session_id.empty()) body["auth"]["session_id"] = auth->session_id;
  if (auth->method == AuthMethod::kAccessToken) body["auth"]["token_id"] = auth->token_id;
  return http::Response::json(200, body);
}

}  // namespace

void add_auth_routes(http::Router& router, ApiContext& context) {
  http::RouteOptions credentials;
  credentials.group = std::string(kGroupAuth);
  credentials.max_body_bytes = kAuthBodyLimit;
  http::RouteOptions session;
  session.max_body_bytes = kAuthBodyLimit;
  router.add(
      verb::post, "/api/v1/auth/register", [&context](http::Request& r) { return register_user(context, r); },
      credentials);
  router.add(
      verb::post, "/api/v1/auth/login", [&context](http::Request& r) { return login(context, r); },
      credentials);
  router.add(
      verb::post, "/api/v1/auth/refresh", [&context](http::Request& r) { return refresh(context, r); },
      credentials);
  router.add(
      verb::post, "/api/v1/auth/logout", [&context](http::Request& r) { return logout(context, r); },
      session);
  router.add(
      verb::get, "/api/v1/auth/me", [&context](http::Request& r) { return me(context, r); }, session);
}

}  // namespace samokoder::api
