// Personal access tokens (scopes, expiry, revocation, shown once), admin routes (403 for others),
// and the audit log with its filters and pagination.
#include <set>

#include <gmock/gmock.h>

#include "api/context.hpp"
#include "security_fixture.hpp"

namespace samokoder::security_test {
namespace {

using boost::beast::http::verb;
using ::testing::HasSubstr;

class TokenTest : public SecurityApiTest {
 protected:
  ClientResponse create(const std::string& access, const nlohmann::json& body) {
    return post_json("/api/v1/tokens", body, bearer(access));
  }
};

TEST_F(TokenTest, ATokenIsShownOnceAndAuthenticatesWithItsScopes) {
  start();
  const Login owner = sign_up("ci@example.com");
  const auto created = create(owner.access_token, {{"name", "ci"}, {"scopes", {"read"}}});
  ASSERT_EQ(created.status, 201u) << created.body;
  const auto doc = created.json();
  const std::string token = doc["token"];
  EXPECT_EQ(token.rfind("skp_", 0), 0u);
  EXPECT_EQ(token.size(), 47u);
  EXPECT_EQ(doc["scopes"], nlohmann::json::array({"read"}));
  EXPECT_TRUE(doc["expires_at"].is_null());
  EXPECT_EQ(created.header("Location"), "/api/v1/tokens/" + doc["id"].get<std::string>());

  const auto listed = get("/api/v1/tokens", bearer(owner.access_token));
  ASSERT_EQ(listed.status, 200u);
  ASSERT_EQ(listed.json()["items"].size(), 1u);
  EXPECT_FALSE(listed.json()["items"][0].contains("token"));
  EXPECT_THAT(listed.body, ::testing::Not(HasSubstr(token)));

  const auto me = get("/api/v1/auth/me", bearer(token));
  ASSERT_EQ(me.status, 200u) << me.body;
  EXPECT_EQ(me.json()["auth"]["method"], "access_token");
  EXPECT_EQ(me.json()["auth"]["token_id"], doc["id"]);
  EXPECT_FALSE(listed.json()["items"][0]["revoked"].get<bool>());
  const auto used = get("/api/v1/tokens", bearer(owner.access_token));
  EXPECT_FALSE(used.json()["items"][0]["last_used_at"].is_null());
}

TEST_F(TokenTest, AReadTokenCannotWrite) {
  start();
  const Login owner = sign_up("reader@example.com");
  const std::string reader =
      create(owner.access_token, {{"name", "r"}, {"scopes", {"read"}}}).json()["token"];
  const auto writer_doc = create(owner.access_token, {{"name", "w"}, {"scopes", {"read", "write"}}}).json();
  const auto refused =
      send(verb::delete_, "/api/v1/tokens/" + writer_doc["id"].get<std::string>(), "", bearer(reader));
  EXPECT_EQ(refused.status, 403u);
  EXPECT_EQ(refused.json()["type"], "https://samokoder.dev/problems/insufficient_scope");
  EXPECT_EQ(get("/api/v1/tokens", bearer(reader)).status, 200u);
  // Tokens never mint tokens, whatever their scopes.
  EXPECT_EQ(create(writer_doc["token"].get<std::string>(), {{"name", "x"}, {"scopes", {"read"}}}).status,
            403u);
  // A write token can revoke (a CI job cleaning up after itself).
  EXPECT_EQ(send(verb::delete_, "/api/v1/tokens/" + writer_doc["id"].get<std::string>(), "",
                 bearer(writer_doc["token"].get<std::string>()))
                .status,
            204u);
}

TEST_F(TokenTest, ARevokedTokenStopsWorkingAndOthersCannotRevokeIt) {
  start();
  const Login owner = sign_up("owner@example.com");
  const Login stranger = sign_up("stranger@example.com");
  const auto doc = create(owner.access_token, {{"name", "deploy"}, {"scopes", {"read", "write"}}}).json();
  const std::string path = "/api/v1/tokens/" + doc["id"].get<std::string>();
  EXPECT_EQ(send(verb::delete_, path, "", bearer(stranger.access_token)).status, 404u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(doc["token"].get<std::string>())).status, 200u);
  EXPECT_EQ(send(verb::delete_, path, "", bearer(owner.access_token)).status, 204u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(doc["token"].get<std::string>())).status, 401u);
  EXPECT_EQ(
      send(verb::delete_, "/api/v1/tokens/00000000000000000000000000000000", "", bearer(owner.access_token))
          .status,
      404u);
  const auto listed = get("/api/v1/tokens", bearer(owner.access_token)).json();
  EXPECT_TRUE(listed["items"][0]["revoked"].get<bool>());
}

TEST_F(TokenTest, AnExpiredTokenStopsWorking) {
  start();
  const Login owner = sign_up("expiry@example.com");
  const auto in_an_hour = api::format_timestamp(clock_.now() + std::chrono::hours(1));
  const auto doc =
      create(owner.access_token, {{"name", "short"}, {"scopes", {"read"}}, {"expires_at", in_an_hour}});
  ASSERT_EQ(doc.status, 201u) << doc.body;
  const std::string token = doc.json()["token"];
  EXPECT_EQ(create(owner.access_token,
                   {{"name", "past"}, {"scopes", {"read"}}, {"expires_at", "2001-01-01T00:00:00Z"}})
                .status,
            400u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(token)).status, 200u);
  clock_.advance(std::chrono::hours(1));
  EXPECT_EQ(get("/api/v1/auth/me", bearer(token)).status, 401u);
}

TEST_F(TokenTest, ScopesAreValidatedAndAdminScopeIsForAdmins) {
  start();
  const Login user = sign_up("plain@example.com");
  EXPECT_EQ(create(user.access_token, {{"name", "x"}, {"scopes", {"root"}}}).status, 400u);
  EXPECT_EQ(create(user.access_token, {{"name", "x"}, {"scopes", nlohmann::json::array()}}).status, 400u);
  EXPECT_EQ(create(user.access_token, {{"name", "x"}, {"scopes", {"read", "read"}}}).status, 400u);
  EXPECT_EQ(create(user.access_token, {{"name", "x"}}).status, 400u);
  EXPECT_EQ(create(user.access_token, {{"name", "x"}, {"scopes", {"admin"}}}).status, 403u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer("skp_" + std::string(43, 'A'))).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer("skp_short")).status, 401u);
}

class AdminTest : public SecurityApiTest {};

TEST_F(AdminTest, NonAdminsGet403OnEveryAdminRoute) {
  start();
  const Login user = sign_up("user@example.com");
  EXPECT_EQ(get("/api/v1/admin/users", bearer(user.access_token)).status, 403u);
  EXPECT_EQ(get("/api/v1/admin/audit", bearer(user.access_token)).status, 403u);
  const auto patch =
      send(verb::patch, "/api/v1/admin/users/" + user.user_id, R"({"is_admin":true})",
           {{"Authorization", "Bearer " + user.access_token}, {"Content-Type", "application/json"}});
  EXPECT_EQ(patch.status, 403u);
  EXPECT_EQ(patch.json()["type"], "https://samokoder.dev/problems/admin_required");
  EXPECT_EQ(get("/api/v1/admin/users").status, 401u);
}

TEST_F(AdminTest, ADemotionAppliesToTheNextRequestDespiteACachedCheck) {
  start();
  const Login first = sign_up("first-admin@example.com");
  const Login second = sign_up("second-admin@example.com");
  make_admin(first.user_id);
  make_admin(second.user_id);
  ASSERT_EQ(get("/api/v1/admin/users", bearer(second.access_token)).status, 200u);
  const auto demoted =
      send(verb::patch, "/api/v1/admin/users/" + second.user_id, R"({"is_admin":false})",
           {{"Authorization", "Bearer " + first.access_token}, {"Content-Type", "application/json"}});
  ASSERT_EQ(demoted.status, 200u) << demoted.body;
  EXPECT_EQ(get("/api/v1/admin/users", bearer(second.access_token)).status, 403u);
}

TEST_F(AdminTest, DisablingAnAccountRefusesItAtOnceAndEndsItsSessions) {
  start();
  const Login admin = sign_up("keeper@example.com");
  make_admin(admin.user_id);
  const Login user = sign_up("leaving@example.com");
  ASSERT_EQ(get("/api/v1/auth/me", bearer(user.access_token)).status, 200u);  // its check is cached now
  auto patch = [&](const std::string& id, const std::string& body) {
    return send(verb::patch, "/api/v1/admin/users/" + id, body,
                {{"Authorization", "Bearer " + admin.access_token}, {"Content-Type", "application/json"}});
  };

  const auto disabled = patch(user.user_id, R"({"disabled":true})");
  ASSERT_EQ(disabled.status, 200u) << disabled.body;
  EXPECT_TRUE(disabled.json()["disabled"].get<bool>());
  EXPECT_EQ(get("/api/v1/auth/me", bearer(user.access_token)).status, 401u);
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", user.refresh_token}}).status, 401u);
  EXPECT_EQ(login("leaving@example.com").status, 401u);

  const auto enabled = patch(user.user_id, R"({"disabled":false})");
  ASSERT_EQ(enabled.status, 200u) << enabled.body;
  EXPECT_FALSE(enabled.json()["disabled"].get<bool>());
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", user.refresh_token}}).status, 401u)
      << "disabling ended the session; enabling does not bring it back";
  EXPECT_EQ(get("/api/v1/auth/me", bearer(user.access_token)).status, 401u);
  const auto again = login("leaving@example.com");
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(get("/api/v1/auth/me", bearer(again.json()["access_token"])).status, 200u);

  EXPECT_EQ(patch(admin.user_id, R"({"disabled":true})").status, 409u)
      << "an admin cannot disable themselves";
  EXPECT_EQ(patch(user.user_id, R"({"disabled":"yes"})").status, 400u);
  // Both changes happened at the same (manual) time, so their order in the log is not defined.
  nlohmann::json disabling, enabling;
  for (const auto& event : audit_events(admin.access_token, "action=admin.user_updated")) {
    const auto& changes = event["detail"]["changes"];
    if (changes.value("disabled", false)) disabling = changes;
    if (changes.contains("disabled") && !changes["disabled"].get<bool>()) enabling = changes;
  }
  EXPECT_EQ(disabling["sessions_revoked"], 1) << disabling.dump();
  EXPECT_FALSE(enabling.is_null()) << "the re-enable was not audited";
  EXPECT_FALSE(enabling.contains("sessions_revoked")) << enabling.dump();
}

TEST_F(AdminTest, AdminsListUsersChangeThemAndUnlockThem) {
  start();
  const Login admin = sign_up("root@example.com");
  make_admin(admin.user_id);
  const Login user = sign_up("member@example.com");
  ASSERT_EQ(register_user("third@example.com").status, 202u);

  const auto page1 = get("/api/v1/admin/users?limit=2", bearer(admin.access_token));
  ASSERT_EQ(page1.status, 200u) << page1.body;
  ASSERT_EQ(page1.json()["items"].size(), 2u);
  EXPECT_THAT(page1.body, ::testing::Not(HasSubstr("argon2")));  // hashes never leave storage
  const std::string cursor = page1.json()["next_cursor"];
  const auto page2 = get("/api/v1/admin/users?limit=2&cursor=" + cursor, bearer(admin.access_token));
  ASSERT_EQ(page2.status, 200u);
  ASSERT_EQ(page2.json()["items"].size(), 1u);
  EXPECT_TRUE(page2.json()["next_cursor"].is_null());
  std::set<std::string> emails;
  for (const auto& page : {page1.json(), page2.json()}) {
    for (const auto& u : page["items"])
      emails.insert(u["email"]);
  }
  EXPECT_EQ(emails, (std::set<std::string>{"root@example.com", "member@example.com", "third@example.com"}));
  EXPECT_EQ(get("/api/v1/admin/users?limit=0", bearer(admin.access_token)).status, 400u);

  auto patch = [&](const std::string& id, const std::string& body) {
    return send(verb::patch, "/api/v1/admin/users/" + id, body,
                {{"Authorization", "Bearer " + admin.access_token}, {"Content-Type", "application/json"}});
  };
  const auto changed = patch(user.user_id, R"({"tier":"pro","is_admin":true})");
  ASSERT_EQ(changed.status, 200u) << changed.body;
  EXPECT_EQ(changed.json()["tier"], "pro");
  EXPECT_TRUE(changed.json()["is_admin"].get<bool>());
  // The change takes effect on the user's existing session at once.
  EXPECT_EQ(get("/api/v1/admin/users", bearer(user.access_token)).status, 200u);
  EXPECT_EQ(patch(user.user_id, R"({"tier":"gold"})").status, 400u);
  EXPECT_EQ(patch(user.user_id, R"({})").status, 400u);
  EXPECT_EQ(patch("00000000000000000000000000000000", R"({"tier":"pro"})").status, 404u);
  EXPECT_EQ(patch(admin.user_id, R"({"is_admin":false})").status, 409u);

  // Unlock: a locked account signs in again at once.
  for (int i = 0; i < 5; ++i)
    login("member@example.com", "wrong-password-here");
  ASSERT_EQ(login("member@example.com").status, 429u);
  clock_.advance(std::chrono::seconds(1));
  ASSERT_EQ(patch(user.user_id, R"({"unlock":true})").status, 200u);
  clock_.advance(std::chrono::seconds(1));
  EXPECT_EQ(login("member@example.com").status, 200u);
}

TEST_F(AdminTest, AnAdminTokenNeedsTheAdminScopeAndAnAdminUser) {
  start();
  const Login admin = sign_up("boss@example.com");
  make_admin(admin.user_id);
  const auto scoped = post_json("/api/v1/tokens", {{"name", "ops"}, {"scopes", {"read", "admin"}}},
                                bearer(admin.access_token));
  ASSERT_EQ(scoped.status, 201u) << scoped.body;
  const auto plain =
      post_json("/api/v1/tokens", {{"name", "r"}, {"scopes", {"read"}}}, bearer(admin.access_token));
  EXPECT_EQ(get("/api/v1/admin/users", bearer(scoped.json()["token"].get<std::string>())).status, 200u);
  EXPECT_EQ(get("/api/v1/admin/users", bearer(plain.json()["token"].get<std::string>())).status, 403u);
}

TEST_F(AdminTest, EveryAuditedActionIsRecordedAndFilterable) {
  start();
  const Login admin = sign_up("auditor@example.com");
  make_admin(admin.user_id);
  const Login user = sign_up("subject@example.com");
  EXPECT_EQ(register_user("subject@example.com").status, 202u);  // an existing email: the same answer
  for (int i = 0; i < 5; ++i)                                    // the 5th locks
    EXPECT_EQ(login("subject@example.com", "wrong-password-here").status, 401u) << "attempt " << i + 1;
  clock_.advance(std::chrono::seconds(1));
  EXPECT_EQ(login("subject@example.com").status, 429u);  // refused while locked
  const auto refreshed = post_json("/api/v1/auth/refresh", {{"refresh_token", user.refresh_token}});
  ASSERT_EQ(refreshed.status, 200u);
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", user.refresh_token}}).status,
            401u);  // reuse
  const auto token =
      post_json("/api/v1/tokens", {{"name", "t"}, {"scopes", {"read"}}}, bearer(admin.access_token));
  ASSERT_EQ(token.status, 201u) << token.body;
  EXPECT_EQ(send(verb::delete_, "/api/v1/tokens/" + token.json()["id"].get<std::string>(), "",
                 bearer(admin.access_token))
                .status,
            204u);
  EXPECT_EQ(send(verb::patch, "/api/v1/admin/users/" + user.user_id, R"({"tier":"team"})",
                 {{"Authorization", "Bearer " + admin.access_token}, {"Content-Type", "application/json"}})
                .status,
            200u);
  const Login leaving = sign_up("leaving@example.com");
  EXPECT_EQ(send(verb::post, "/api/v1/auth/logout", "", bearer(leaving.access_token)).status, 204u);

  const auto all = audit_events(admin.access_token, "limit=500");
  std::set<std::string> actions;
  for (const auto& e : all)
    actions.insert(e["action"]);
  for (const char* expected :
       {"auth.register", "auth.register_existing", "auth.login", "auth.login_failed", "auth.lockout",
        "auth.refresh_reuse", "token.created", "token.revoked", "admin.user_updated", "auth.logout"}) {
    EXPECT_TRUE(actions.contains(expected)) << expected << " missing from " << nlohmann::json(actions).dump();
  }
  EXPECT_THAT(nlohmann::json(all).dump(), ::testing::Not(HasSubstr(kPassword)));
  EXPECT_THAT(nlohmann::json(all).dump(), ::testing::Not(HasSubstr(user.refresh_token)));

  const auto failed = audit_events(admin.access_token, "action=auth.login_failed");
  ASSERT_EQ(failed.size(), 6u);
  for (const auto& e : failed)
    EXPECT_EQ(e["action"], "auth.login_failed");
  EXPECT_EQ(failed[0]["detail"]["reason"], "locked");  // newest first
  EXPECT_EQ(failed[0]["target"], "subject@example.com");
  EXPECT_EQ(failed[0]["source_address"], "127.0.0.1");

  const auto by_admin = audit_events(admin.access_token, "actor=" + admin.user_id);
  for (const auto& e : by_admin)
    EXPECT_EQ(e["actor_id"], admin.user_id);
  EXPECT_GE(by_admin.size(), 4u);  // register, login, token created and revoked, admin change

  const auto reuse = audit_events(admin.access_token, "action=auth.refresh_reuse");
  ASSERT_EQ(reuse.size(), 1u);
  EXPECT_EQ(reuse[0]["actor_id"], user.user_id);

  // Time filters: nothing happened in the future, everything since an hour ago.
  EXPECT_TRUE(
      audit_events(admin.access_token, "since=" + api::format_timestamp(clock_.now() + std::chrono::hours(1)))
          .empty());
  EXPECT_EQ(audit_events(admin.access_token,
                         "limit=500&since=" + api::format_timestamp(clock_.now() - std::chrono::hours(1)) +
                             "&until=" + api::format_timestamp(clock_.now() + std::chrono::hours(1)))
                .size(),
            all.size());
  EXPECT_EQ(get("/api/v1/admin/audit?since=yesterday", bearer(admin.access_token)).status, 400u);

  // Pagination: pages of 3 cover everything exactly once.
  std::set<std::string> seen;
  std::string cursor;
  for (int pages = 0; pages < 100; ++pages) {
    const auto page = get("/api/v1/admin/audit?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor),
                          bearer(admin.access_token));
    ASSERT_EQ(page.status, 200u) << page.body;
    const auto doc = page.json();
    for (const auto& e : doc["items"])
      EXPECT_TRUE(seen.insert(e["id"]).second);
    if (doc["next_cursor"].is_null()) break;
    cursor = doc["next_cursor"];
  }
  EXPECT_EQ(seen.size(), all.size());
}

}  // namespace
}  // namespace samokoder::security_test
