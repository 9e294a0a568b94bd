// Register, login (JSON and form), refresh with rotation and reuse detection, logout, expiry, cookies
// and CSRF, body limits and the no-enumeration rules, against a real server.
#include <gmock/gmock.h>

#include <samokoder/sdk/storage.hpp>

#include "security_fixture.hpp"

namespace samokoder::security_test {
namespace {

using boost::beast::http::verb;
using ::testing::HasSubstr;

TEST_F(SecurityApiTest, RegisterThenLoginWithJsonGivesTokensAndCookies) {
  start();
  const auto registered = register_user("ada@example.com");
  ASSERT_EQ(registered.status, 202u) << registered.body;
  EXPECT_EQ(registered.json()["status"], "accepted");

  const auto response = login("ada@example.com");
  ASSERT_EQ(response.status, 200u) << response.body;
  const auto body = response.json();
  EXPECT_EQ(body["token_type"], "Bearer");
  EXPECT_EQ(body["expires_in"], 900);
  EXPECT_EQ(body["refresh_expires_in"], 7 * 24 * 3600);
  EXPECT_EQ(body["user"]["email"], "ada@example.com");
  EXPECT_FALSE(body["user"]["is_admin"].get<bool>());
  const std::string jwt = body["access_token"];
  EXPECT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2);

  const std::string access = set_cookie_line(response, "samokoder_access");
  EXPECT_THAT(access, HasSubstr("HttpOnly"));
  EXPECT_THAT(access, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(access, HasSubstr("Path=/;"));
  EXPECT_THAT(access, ::testing::Not(HasSubstr("Secure")));  // development
  EXPECT_THAT(set_cookie_line(response, "samokoder_refresh"), HasSubstr("Path=/api/v1/auth"));
  const std::string csrf = set_cookie_line(response, "samokoder_csrf");
  EXPECT_THAT(csrf, ::testing::Not(HasSubstr("HttpOnly")));  // the page's script echoes it
  EXPECT_EQ(cookie_value(response, "samokoder_access"), body["access_token"]);

  const auto me = get("/api/v1/auth/me", bearer(body["access_token"]));
  ASSERT_EQ(me.status, 200u) << me.body;
  EXPECT_EQ(me.json()["email"], "ada@example.com");
  EXPECT_EQ(me.json()["auth"]["method"], "bearer_session");
  EXPECT_EQ(me.json()["auth"]["scopes"], nlohmann::json::array({"read", "write"}));
}

TEST_F(SecurityApiTest, LoginAcceptsAnOAuth2StyleForm) {
  start();
  ASSERT_EQ(register_user("form@example.com").status, 202u);
  const auto response =
      send(verb::post, "/api/v1/auth/login",
           "grant_type=password&username=FORM%40example.com&password=violet-anchor-47-quietly",
           {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(response.status, 200u) << response.body;
  EXPECT_EQ(response.json()["user"]["email"], "form@example.com");
}

TEST_F(SecurityApiTest, WrongPasswordAndUnknownEmailAnswerAlike) {
  start();
  ASSERT_EQ(register_user("real@example.com").status, 202u);
  const auto wrong = login("real@example.com", "not-the-password-at-all");
  const auto unknown = login("nobody@example.com", "not-the-password-at-all");
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_EQ(unknown.status, 401u);
  EXPECT_EQ(stable_problem(wrong), stable_problem(unknown));
  EXPECT_EQ(wrong.header("WWW-Authenticate"), unknown.header("WWW-Authenticate"));
  EXPECT_EQ(stable_problem(wrong)["detail"], "invalid email or password");
}

TEST_F(SecurityApiTest, RegisteringATakenEmailLooksLikeANewRegistrationAndChangesNothing) {
  start();
  const auto first = register_user("taken@example.com");
  const auto second = register_user("TAKEN@example.com", "another-strong-passphrase-9");
  EXPECT_EQ(first.status, 202u);
  EXPECT_EQ(second.status, first.status);
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(login("taken@example.com").status, 200u);
  EXPECT_EQ(login("taken@example.com", "another-strong-passphrase-9").status, 401u);
}

TEST_F(SecurityApiTest, RegisterValidatesEmailAndPasswordPolicyWithFieldErrors) {
  start();
  const auto response = register_user("not-an-email", "password");
  ASSERT_EQ(response.status, 400u) << response.body;
  const auto doc = response.json();
  EXPECT_EQ(doc["type"], "https://samokoder.dev/problems/validation_failed");
  std::vector<std::string> paths;
  for (const auto& e : doc["errors"])
    paths.push_back(e["path"]);
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("/email", "/password"));
  EXPECT_THAT(response.body, ::testing::Not(HasSubstr("\"password\"")));  // never echoes the value

  EXPECT_EQ(register_user("short@example.com", "Sh0rt!").status, 400u);
  EXPECT_EQ(post_json("/api/v1/auth/register",
                      {{"email", "a@example.com"}, {"password", kPassword}, {"admin", true}})
                .status,
            400u);
}

TEST_F(SecurityApiTest, RefreshRotatesAndTheOldTokenStopsWorking) {
  start();
  const Login session = sign_up("rot@example.com");
  const auto refreshed = post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}});
  ASSERT_EQ(refreshed.status, 200u) << refreshed.body;
  const auto next = refreshed.json();
  EXPECT_NE(next["refresh_token"], session.refresh_token);
  EXPECT_NE(next["access_token"], session.access_token);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(next["access_token"])).status, 200u);
  EXPECT_FALSE(cookie_value(refreshed, "samokoder_refresh").empty());

  // Rotating the rotated-to token works once more, as a chain.
  const auto again = post_json("/api/v1/auth/refresh", {{"refresh_token", next["refresh_token"]}});
  EXPECT_EQ(again.status, 200u) << again.body;
}

TEST_F(SecurityApiTest, ReusingARotatedRefreshTokenRevokesTheWholeFamily) {
  start();
  const Login session = sign_up("reuse@example.com");
  const auto refreshed = post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}});
  ASSERT_EQ(refreshed.status, 200u);
  const std::string next_refresh = refreshed.json()["refresh_token"];
  const std::string next_access = refreshed.json()["access_token"];

  // The stolen copy of the first token comes back.
  const auto reused = post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}});
  EXPECT_EQ(reused.status, 401u);
  // Everything of that login is dead now: the rotated-to refresh token and the access tokens.
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", next_refresh}}).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(next_access)).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 401u);
  // Another login of the same user is untouched.
  const auto other = login("reuse@example.com");
  ASSERT_EQ(other.status, 200u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(other.json()["access_token"])).status, 200u);
}

TEST_F(SecurityApiTest, UnknownAndMalformedRefreshTokensAre401) {
  start();
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", std::string(43, 'A')}}).status, 401u);
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", "x"}}).status, 401u);
  EXPECT_EQ(send(verb::post, "/api/v1/auth/refresh", "", {}).status, 401u);
}

TEST_F(SecurityApiTest, LogoutRevokesTheAccessTokenAndTheRefreshToken) {
  start();
  const Login session = sign_up("bye@example.com");
  const auto out = send(verb::post, "/api/v1/auth/logout", "", bearer(session.access_token));
  ASSERT_EQ(out.status, 204u) << out.body;
  EXPECT_THAT(set_cookie_line(out, "samokoder_access"), HasSubstr("Max-Age=0"));
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 401u);
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}}).status, 401u);
  EXPECT_EQ(send(verb::post, "/api/v1/auth/logout", "", bearer(session.access_token)).status, 401u);
}

// What another node (or the CLI) changes in storage: this node reuses its last check of a token for
// security.session_check_cache_ms (1 s by default), then reads storage again.
void disable_in_storage(app::Application& app, const std::string& user_id) {
  sdk::UserUpdate update;
  update.disabled = true;
  const auto lease = app.storage();
  auto updated =
      lease.call<sdk::Storage>([&](sdk::Storage& s) { return s.users().update_user(user_id, update); });
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
}

TEST_F(SecurityApiTest, AChangeMadeByAnotherNodeArrivesWithinTheSessionCheckCacheTime) {
  start();
  const Login session = sign_up("elsewhere@example.com");
  ASSERT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u);
  disable_in_storage(*app_, session.user_id);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u)
      << "within session_check_cache_ms this node answers from its last check";
  clock_.advance(std::chrono::milliseconds(1000));
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 401u);
}

TEST_F(SecurityApiTest, WithTheSessionCheckCacheOffEveryRequestReadsStorage) {
  start([](config::Config& config) { config.security.session_check_cache_ms = 0; });
  const Login session = sign_up("strict@example.com");
  ASSERT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u);
  disable_in_storage(*app_, session.user_id);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 401u);
}

TEST_F(SecurityApiTest, LogoutAppliesAtOnceToEveryTokenOfTheSessionDespiteCachedChecks) {
  start();
  const Login session = sign_up("twice@example.com");
  const auto refreshed = post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}});
  ASSERT_EQ(refreshed.status, 200u) << refreshed.body;
  const std::string second_access = refreshed.json()["access_token"];
  // Both access tokens checked once, so both checks are cached.
  ASSERT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u);
  ASSERT_EQ(get("/api/v1/auth/me", bearer(second_access)).status, 200u);
  ASSERT_EQ(send(verb::post, "/api/v1/auth/logout", "", bearer(second_access)).status, 204u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(second_access)).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 401u)
      << "the session was revoked, so its older access token must stop working too";
}

TEST_F(SecurityApiTest, AnAccessTokenExpiresAfterFifteenMinutesAndRefreshStillWorks) {
  start();
  const Login session = sign_up("late@example.com");
  clock_.advance(std::chrono::minutes(14));
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u);
  clock_.advance(std::chrono::minutes(1) + std::chrono::seconds(6));  // past exp plus the 5 s leeway
  const auto expired = get("/api/v1/auth/me", bearer(session.access_token));
  EXPECT_EQ(expired.status, 401u);
  EXPECT_EQ(expired.header("WWW-Authenticate"), "Bearer");
  const auto refreshed = post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}});
  ASSERT_EQ(refreshed.status, 200u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(refreshed.json()["access_token"])).status, 200u);
}

// With one worker every request verifies on the same thread, so the second and later ones are
// answered from that thread's memo of verified tokens; expiry must still apply to them.
TEST_F(SecurityApiTest, ATokenRememberedAsVerifiedStillExpiresAndTamperingStillFails) {
  start([](config::Config& config) { config.server.request_pool.threads = 1; });
  const Login session = sign_up("memo@example.com");
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u);
  clock_.advance(std::chrono::minutes(14));
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u);
  std::string tampered = session.access_token;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(get("/api/v1/auth/me", bearer(tampered)).status, 401u);
  clock_.advance(std::chrono::minutes(1) + std::chrono::seconds(6));  // past exp plus the 5 s leeway
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 401u);
}

TEST_F(SecurityApiTest, ARefreshTokenExpiresAfterSevenDays) {
  start();
  const Login session = sign_up("week@example.com");
  clock_.advance(std::chrono::hours(7 * 24) + std::chrono::seconds(1));
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}}).status, 401u);
}

TEST_F(SecurityApiTest, TamperedOrForeignTokensAreRefused) {
  start();
  const Login session = sign_up("tamper@example.com");
  std::string tampered = session.access_token;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(get("/api/v1/auth/me", bearer(tampered)).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me", {{"Authorization", "Basic dXNlcjpwYXNz"}}).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me").status, 401u);
  // A token signed by another server (another secret) means nothing here.
  app_->stop();
  start();
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 401u);
}

TEST_F(SecurityApiTest, CookieSessionsNeedTheCsrfHeaderOnWritesButBearerDoesNot) {
  start();
  const Login session = sign_up("cookie@example.com");
  const std::string cookies =
      "samokoder_access=" + session.access_cookie + "; samokoder_csrf=" + session.csrf_cookie;
  // Reads need no CSRF token.
  const auto me = get("/api/v1/auth/me", {{"Cookie", cookies}});
  ASSERT_EQ(me.status, 200u) << me.body;
  EXPECT_EQ(me.json()["auth"]["method"], "cookie_session");

  const auto missing =
      post_json("/api/v1/tokens", {{"name", "ci"}, {"scopes", {"read"}}}, {{"Cookie", cookies}});
  EXPECT_EQ(missing.status, 403u);
  EXPECT_EQ(missing.json()["type"], "https://samokoder.dev/problems/csrf_failed");
  std::string wrong = session.csrf_cookie;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(post_json("/api/v1/tokens", {{"name", "ci"}, {"scopes", {"read"}}},
                      {{"Cookie", cookies}, {"X-CSRF-Token", wrong}})
                .status,
            403u);
  EXPECT_EQ(post_json("/api/v1/tokens", {{"name", "ci"}, {"scopes", {"read"}}},
                      {{"Cookie", cookies}, {"X-CSRF-Token", session.csrf_cookie}})
                .status,
            201u);
  // The same write with a Bearer header needs no CSRF token: browsers never attach it by themselves.
  EXPECT_EQ(post_json("/api/v1/tokens", {{"name", "ci2"}, {"scopes", {"read"}}}, bearer(session.access_token))
                .status,
            201u);

  // Logout by cookie: refused without the header, done with it.
  EXPECT_EQ(send(verb::post, "/api/v1/auth/logout", "", {{"Cookie", cookies}}).status, 403u);
  EXPECT_EQ(send(verb::post, "/api/v1/auth/logout", "",
                 {{"Cookie", cookies}, {"X-CSRF-Token", session.csrf_cookie}})
                .status,
            204u);
}

TEST_F(SecurityApiTest, RefreshByCookieNeedsTheCsrfHeader) {
  start();
  const Login session = sign_up("crumb@example.com");
  const std::string cookies =
      "samokoder_refresh=" + session.refresh_cookie + "; samokoder_csrf=" + session.csrf_cookie;
  EXPECT_EQ(send(verb::post, "/api/v1/auth/refresh", "", {{"Cookie", cookies}}).status, 403u);
  const auto ok = send(verb::post, "/api/v1/auth/refresh", "",
                       {{"Cookie", cookies}, {"X-CSRF-Token", session.csrf_cookie}});
  ASSERT_EQ(ok.status, 200u) << ok.body;
  EXPECT_FALSE(cookie_value(ok, "samokoder_access").empty());
  EXPECT_FALSE(cookie_value(ok, "samokoder_refresh").empty());
  // The tokens stay in the HttpOnly cookies: a script in the page cannot read a refresh token from the body.
  const auto body = nlohmann::json::parse(ok.body);
  EXPECT_FALSE(body.contains("access_token")) << ok.body;
  EXPECT_FALSE(body.contains("refresh_token")) << ok.body;
  EXPECT_GT(body.value("expires_in", 0), 0) << ok.body;
}

TEST_F(SecurityApiTest, AuthBodiesOverOneKilobyteAre413) {
  start();
  const std::string big =
      nlohmann::json{{"email", "big@example.com"}, {"password", std::string(2000, 'x')}}.dump();
  const auto response = send(verb::post, "/api/v1/auth/login", big, {{"Content-Type", "application/json"}});
  EXPECT_EQ(response.status, 413u);
  restart_client();  // the server closes the connection after a 413
  const auto registered =
      send(verb::post, "/api/v1/auth/register", big, {{"Content-Type", "application/json"}});
  EXPECT_EQ(registered.status, 413u);
  restart_client();
  EXPECT_EQ(register_user("fits@example.com").status, 202u);
}

TEST_F(SecurityApiTest, LoginNeedsJsonOrAForm) {
  start();
  const auto response = send(verb::post, "/api/v1/auth/login", "email=a", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(response.status, 415u);
  EXPECT_EQ(
      send(verb::post, "/api/v1/auth/login", "{\"email\":", {{"Content-Type", "application/json"}}).status,
      400u);
}

TEST_F(SecurityApiTest, ProblemResponsesCarrySecurityHeaders) {
  start();
  const auto response = get("/api/v1/auth/me");
  ASSERT_EQ(response.status, 401u);
  EXPECT_EQ(response.header("Content-Type"), "application/problem+json");
  EXPECT_EQ(response.header("X-Content-Type-Options"), "nosniff");
  EXPECT_FALSE(response.header("Content-Security-Policy").empty());
  EXPECT_EQ(response.header("Cache-Control"), "no-store");
}

}  // namespace
}  // namespace samokoder::security_test
