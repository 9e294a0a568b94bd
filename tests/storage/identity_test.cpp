// Conformance: users, sessions and refresh-token families, revoked token ids, login attempts, audit
// events, provider keys, personal access tokens and notifications.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "storage_fixture.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;
using sdk::StatusCode;

class IdentityTest : public StorageTest {};
SAMOKODER_STORAGE_TEST_SUITE(IdentityTest);

// ---- users --------------------------------------------------------------------------------------

TEST_P(IdentityTest, UserRoundTripAndCaseInsensitiveEmail) {
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::User created, storage().users().create_user(sdk::NewUser{
                                              "Alice@Example.COM", "$argon2id$hash", true, "pro"}));
  EXPECT_EQ(created.id.size(), 32u);
  EXPECT_EQ(created.id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(created.created_at, t0);
  EXPECT_EQ(created.updated_at, t0);

  ASSERT_OK_AND_ASSIGN(sdk::User fetched, storage().users().get_user(created.id));
  EXPECT_EQ(fetched.email, "Alice@Example.COM");
  EXPECT_EQ(fetched.password_hash, "$argon2id$hash");
  EXPECT_TRUE(fetched.is_admin);
  EXPECT_EQ(fetched.tier, "pro");
  EXPECT_FALSE(fetched.disabled);
  EXPECT_FALSE(fetched.locked_until.has_value());
  EXPECT_EQ(fetched.created_at, t0);

  ASSERT_OK_AND_ASSIGN(sdk::User by_email, storage().users().find_user_by_email("alice@example.com"));
  EXPECT_EQ(by_email.id, created.id);
  ASSERT_OK_AND_ASSIGN(by_email, storage().users().find_user_by_email("ALICE@EXAMPLE.COM"));
  EXPECT_EQ(by_email.id, created.id);
}

TEST_P(IdentityTest, EmailIsUniqueIgnoringCase) {
  make_user("bob@example.com");
  EXPECT_CODE(storage().users().create_user(sdk::NewUser{"BOB@example.com", "", false, "free"}),
              kAlreadyExists);
  const sdk::User carol = make_user("carol@example.com");
  sdk::UserUpdate update;
  update.email = "Bob@Example.com";
  EXPECT_CODE(storage().users().update_user(carol.id, update), kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(sdk::User unchanged, storage().users().get_user(carol.id));
  EXPECT_EQ(unchanged.email, "carol@example.com");
}

TEST_P(IdentityTest, UnknownAndMalformedIdsAreNotFound) {
  EXPECT_CODE(storage().users().get_user(kUnknownId), kNotFound);
  EXPECT_CODE(storage().users().get_user("42"), kNotFound);
  EXPECT_CODE(storage().users().get_user(""), kNotFound);
  EXPECT_CODE(storage().users().get_user("' OR 1=1 --"), kNotFound);
  EXPECT_CODE(storage().users().get_user("0190F1D2A3B47C5D8E9F00112233AABB"), kNotFound);
  EXPECT_CODE(storage().users().find_user_by_email("nobody@example.com"), kNotFound);
  EXPECT_CODE(storage().users().delete_user(kUnknownId), kNotFound);
  EXPECT_CODE(storage().users().update_user(kUnknownId, sdk::UserUpdate{}), kNotFound);
}

TEST_P(IdentityTest, UserInputIsValidated) {
  EXPECT_CODE(storage().users().create_user(sdk::NewUser{"", "", false, "free"}), kInvalidArgument);
  EXPECT_CODE(storage().users().create_user(sdk::NewUser{"a@example.com", "", false, ""}), kInvalidArgument);
  EXPECT_CODE(storage().users().create_user(sdk::NewUser{"bad\xff@example.com", "", false, "free"}),
              kInvalidArgument);
  EXPECT_CODE(
      storage().users().create_user(sdk::NewUser{std::string("nul\0@example.com", 16), "", false, "free"}),
      kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(sdk::Page<sdk::User> none, storage().users().list_users(sdk::PageRequest{10, ""}));
  EXPECT_TRUE(none.items.empty());
}

TEST_P(IdentityTest, UpdateUserChangesOnlyGivenFields) {
  const sdk::User dave = make_user("dave@example.com");
  host().advance(5s);
  const auto lock_until = host().now() + 15min + 123ns;
  sdk::UserUpdate update;
  update.tier = "team";
  update.disabled = true;
  update.locked_until = lock_until;
  ASSERT_OK_AND_ASSIGN(sdk::User updated, storage().users().update_user(dave.id, update));
  EXPECT_EQ(updated.tier, "team");
  EXPECT_TRUE(updated.disabled);
  EXPECT_EQ(updated.email, "dave@example.com");
  EXPECT_EQ(updated.password_hash, dave.password_hash);
  EXPECT_EQ(updated.created_at, dave.created_at);
  EXPECT_EQ(updated.updated_at, dave.created_at + 5s);

  ASSERT_OK_AND_ASSIGN(sdk::User fetched, storage().users().get_user(dave.id));
  ASSERT_TRUE(fetched.locked_until.has_value());
  EXPECT_EQ(*fetched.locked_until, sdk::to_storage_precision(lock_until));
  EXPECT_EQ(fetched.updated_at, updated.updated_at);

  sdk::UserUpdate unlock;
  unlock.locked_until = std::optional<sdk::Timestamp>();
  unlock.password_hash = "$argon2id$new";
  unlock.is_admin = true;
  ASSERT_OK(storage().users().update_user(dave.id, unlock).status());
  ASSERT_OK_AND_ASSIGN(fetched, storage().users().get_user(dave.id));
  EXPECT_FALSE(fetched.locked_until.has_value());
  EXPECT_EQ(fetched.password_hash, "$argon2id$new");
  EXPECT_TRUE(fetched.is_admin);
  EXPECT_TRUE(fetched.disabled);
}

TEST_P(IdentityTest, ListUsersPaginatesWithoutGapsOrDuplicates) {
  std::vector<std::string> expected;
  // Several users share a timestamp, so order must fall back to the id.
  for (int i = 0; i < 11; ++i) {
    if (i % 4 == 0) host().advance(1s);
    expected.push_back(make_user("user" + std::to_string(i) + "@example.com").id);
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(sdk::Page<sdk::User> page,
                         storage().users().list_users(sdk::PageRequest{3, cursor}));
    ASSERT_LE(page.items.size(), 3u);
    for (const auto& u : page.items)
      seen.push_back(u.id);
    cursor = page.next_cursor;
    ++pages;
  } while (!cursor.empty() && pages < 20);
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen.size(), expected.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()),
            std::set<std::string>(expected.begin(), expected.end()));
  ASSERT_OK_AND_ASSIGN(sdk::Page<sdk::User> all, storage().users().list_users(sdk::PageRequest{500, ""}));
  ASSERT_EQ(all.items.size(), 11u);
  EXPECT_TRUE(all.next_cursor.empty());
  for (std::size_t i = 1; i < all.items.size(); ++i) {
    const auto& a = all.items[i - 1];
    const auto& b = all.items[i];
    EXPECT_TRUE(a.created_at < b.created_at || (a.created_at == b.created_at && a.id < b.id));
    EXPECT_EQ(seen[i], b.id);
  }
  // An exact fit: the last page has no cursor.
  ASSERT_OK_AND_ASSIGN(sdk::Page<sdk::User> exact, storage().users().list_users(sdk::PageRequest{11, ""}));
  EXPECT_EQ(exact.items.size(), 11u);
  EXPECT_TRUE(exact.next_cursor.empty());
}

TEST_P(IdentityTest, PageLimitsAndCursorsAreValidated) {
  make_user("e@example.com");
  EXPECT_CODE(storage().users().list_users(sdk::PageRequest{0, ""}), kInvalidArgument);
  EXPECT_CODE(storage().users().list_users(sdk::PageRequest{sdk::kMaxPageLimit + 1, ""}), kInvalidArgument);
  EXPECT_OK(storage().users().list_users(sdk::PageRequest{sdk::kMaxPageLimit, ""}).status());
  EXPECT_CODE(storage().users().list_users(sdk::PageRequest{10, "garbage"}), kInvalidArgument);
  // A cursor of another list is refused.
  const sdk::User owner = make_user("f@example.com");
  make_project(owner, "one");
  make_project(owner, "two");
  ASSERT_OK_AND_ASSIGN(sdk::Page<sdk::Project> projects,
                       storage().projects().list_projects(owner.id, sdk::PageRequest{1, ""}));
  ASSERT_FALSE(projects.next_cursor.empty());
  EXPECT_CODE(storage().users().list_users(sdk::PageRequest{10, projects.next_cursor}), kInvalidArgument);
}

TEST_P(IdentityTest, DeleteUserCascadesToEverythingItOwns) {
  const sdk::User gone = make_user("gone@example.com");
  const sdk::User stays = make_user("stays@example.com");
  const sdk::Project project = make_project(gone);
  const sdk::Run run = make_run(project);
  ASSERT_OK(storage().files().put_file(gone.id, project.id, "a.txt", "content", "").status());
  ASSERT_OK_AND_ASSIGN(sdk::Session session, storage().sessions().create_session(sdk::NewSession{
                                                 gone.id, "10.0.0.1", "ua", host().now() + 1h}));
  ASSERT_OK(storage()
                .sessions()
                .add_refresh_token(sdk::NewRefreshToken{session.id, "rt-hash", host().now() + 1h})
                .status());
  ASSERT_OK(storage()
                .provider_keys()
                .put_provider_key(sdk::NewProviderKey{gone.id, "openai", "k1", "ct", "nonce", "sk-...1"})
                .status());
  ASSERT_OK(storage()
                .access_tokens()
                .create_access_token(sdk::NewAccessToken{gone.id, "ci", "pat-hash", {"read"}, {}})
                .status());
  ASSERT_OK(
      storage().notifications().create_notification(sdk::NewNotification{gone.id, "hello", {}}).status());
  ASSERT_OK(storage()
                .llm_requests()
                .record_llm_request(sdk::NewLlmRequest{gone.id, project.id, run.id, "openai", "gpt", "dev", 1,
                                                       2, 3, "ok", ""})
                .status());
  ASSERT_OK(storage()
                .audit()
                .append_audit_event(sdk::NewAuditEvent{gone.id, "auth.login", "", "10.0.0.1", {}})
                .status());
  ASSERT_OK(storage().projects().create_project(sdk::NewProject{stays.id, "kept", ""}).status());

  ASSERT_OK(storage().users().delete_user(gone.id));
  EXPECT_CODE(storage().users().get_user(gone.id), kNotFound);
  EXPECT_CODE(storage().projects().get_project(gone.id, project.id), kNotFound);
  EXPECT_CODE(storage().sessions().get_session(session.id), kNotFound);
  EXPECT_CODE(storage().sessions().find_refresh_token("rt-hash"), kNotFound);
  EXPECT_CODE(storage().access_tokens().find_access_token("pat-hash"), kNotFound);
  ASSERT_OK_AND_ASSIGN(auto keys, storage().provider_keys().list_provider_keys(gone.id));
  EXPECT_TRUE(keys.empty());
  ASSERT_OK_AND_ASSIGN(auto notes, storage().notifications().count_unread_notifications(gone.id));
  EXPECT_EQ(notes, 0);
  ASSERT_OK_AND_ASSIGN(auto usage, storage().llm_requests().usage_by_model(gone.id, {}, {}));
  EXPECT_TRUE(usage.empty());
  ASSERT_OK_AND_ASSIGN(sdk::StorageStats stats, storage().stats());
  EXPECT_EQ(stats.users, 1);
  EXPECT_EQ(stats.projects, 1);
  EXPECT_EQ(stats.runs, 0);
  EXPECT_EQ(stats.file_versions, 0);
  // Audit events outlive the actor.
  sdk::AuditFilter filter;
  filter.actor_id = gone.id;
  ASSERT_OK_AND_ASSIGN(auto audit, storage().audit().list_audit_events(filter, sdk::PageRequest{10, ""}));
  EXPECT_EQ(audit.items.size(), 1u);
  EXPECT_CODE(storage().users().delete_user(gone.id), kNotFound);
}

// No call can list another user's LLM requests, so whether a deleted user's records are really gone
// (and not kept with emptied references) is checked in the database itself.
TEST_P(IdentityTest, DeleteUserDeletesItsLlmRequestRecords) {
  const sdk::User gone = make_user("llm-gone@example.com");
  const sdk::User stays = make_user("llm-stays@example.com");
  const sdk::Project project = make_project(gone);
  const sdk::Run run = make_run(project);
  const auto record = [&](const sdk::User& user, const std::string& project_id, const std::string& run_id) {
    return storage()
        .llm_requests()
        .record_llm_request(
            sdk::NewLlmRequest{user.id, project_id, run_id, "openai", "gpt-4o", "dev", 10, 20, 30, "ok", ""})
        .status();
  };
  ASSERT_OK(record(gone, project.id, run.id));
  ASSERT_OK(record(gone, project.id, ""));
  ASSERT_OK(record(gone, "", ""));
  ASSERT_OK(record(stays, "", ""));
  ASSERT_OK_AND_ASSIGN(std::int64_t before, database().count_rows("llm_requests"));
  ASSERT_EQ(before, 4);

  ASSERT_OK(storage().users().delete_user(gone.id));
  ASSERT_OK_AND_ASSIGN(std::int64_t after, database().count_rows("llm_requests"));
  EXPECT_EQ(after, 1);
  ASSERT_OK_AND_ASSIGN(auto kept,
                       storage().llm_requests().list_llm_requests(stays.id, sdk::PageRequest{10, ""}));
  ASSERT_EQ(kept.items.size(), 1u);
  EXPECT_EQ(kept.items[0].user_id, stays.id);
  ASSERT_OK_AND_ASSIGN(auto usage, storage().llm_requests().usage_by_model(stays.id, {}, {}));
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].requests, 1);
  EXPECT_EQ(usage[0].prompt_tokens, 10);

  // The same inside a transaction.
  const sdk::User gone_in_tx = make_user("llm-gone-tx@example.com");
  ASSERT_OK(record(gone_in_tx, "", ""));
  ASSERT_OK(storage().transaction([&](sdk::Stores& ops) { return ops.users().delete_user(gone_in_tx.id); }));
  ASSERT_OK_AND_ASSIGN(std::int64_t last, database().count_rows("llm_requests"));
  EXPECT_EQ(last, 1);
}

// ---- sessions and refresh tokens -----------------------------------------------------------------

TEST_P(IdentityTest, SessionsListRevokeAndPurge) {
  const sdk::User user = make_user("s@example.com");
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::Session first, storage().sessions().create_session(
                                               sdk::NewSession{user.id, "10.0.0.1", "firefox", t0 + 1h}));
  host().advance(1s);
  ASSERT_OK_AND_ASSIGN(sdk::Session second, storage().sessions().create_session(
                                                sdk::NewSession{user.id, "10.0.0.2", "curl", t0 + 2h}));
  host().advance(1s);
  ASSERT_OK_AND_ASSIGN(sdk::Session short_lived, storage().sessions().create_session(
                                                     sdk::NewSession{user.id, "10.0.0.3", "cli", t0 + 10s}));
  EXPECT_CODE(storage().sessions().create_session(sdk::NewSession{kUnknownId, "", "", t0 + 1h}), kNotFound);

  ASSERT_OK_AND_ASSIGN(sdk::Session fetched, storage().sessions().get_session(first.id));
  EXPECT_EQ(fetched.user_id, user.id);
  EXPECT_EQ(fetched.source_address, "10.0.0.1");
  EXPECT_EQ(fetched.user_agent, "firefox");
  EXPECT_EQ(fetched.created_at, t0);
  EXPECT_EQ(fetched.expires_at, t0 + 1h);
  EXPECT_FALSE(fetched.revoked_at.has_value());

  ASSERT_OK_AND_ASSIGN(auto active, storage().sessions().list_active_sessions(user.id));
  ASSERT_EQ(active.size(), 3u);
  EXPECT_EQ(active[0].id, short_lived.id);  // newest first
  EXPECT_EQ(active[2].id, first.id);

  host().advance(30s);  // short_lived expired
  ASSERT_OK(storage().sessions().revoke_session(second.id, "logout"));
  const auto revoked_at = host().now();
  host().advance(1s);
  ASSERT_OK(storage().sessions().revoke_session(second.id, "again"));  // idempotent, keeps the first
  ASSERT_OK_AND_ASSIGN(fetched, storage().sessions().get_session(second.id));
  ASSERT_TRUE(fetched.revoked_at.has_value());
  EXPECT_EQ(*fetched.revoked_at, revoked_at);
  EXPECT_EQ(fetched.revoke_reason, "logout");
  EXPECT_CODE(storage().sessions().revoke_session(kUnknownId, "x"), kNotFound);

  ASSERT_OK_AND_ASSIGN(active, storage().sessions().list_active_sessions(user.id));
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id, first.id);

  ASSERT_OK_AND_ASSIGN(std::int64_t revoked,
                       storage().sessions().revoke_user_sessions(user.id, "password_changed"));
  EXPECT_EQ(revoked, 2);  // first and short_lived (expired but not revoked)
  ASSERT_OK_AND_ASSIGN(active, storage().sessions().list_active_sessions(user.id));
  EXPECT_TRUE(active.empty());

  ASSERT_OK_AND_ASSIGN(std::int64_t purged, storage().sessions().purge_expired_sessions());
  EXPECT_EQ(purged, 1);  // only short_lived has expired
  EXPECT_CODE(storage().sessions().get_session(short_lived.id), kNotFound);
  EXPECT_OK(storage().sessions().get_session(first.id).status());
}

TEST_P(IdentityTest, RefreshTokenRotationAndReuse) {
  const sdk::User user = make_user("r@example.com");
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::Session session, storage().sessions().create_session(
                                                 sdk::NewSession{user.id, "ip", "ua", t0 + 7 * 24h}));
  ASSERT_OK_AND_ASSIGN(sdk::RefreshToken first, storage().sessions().add_refresh_token(
                                                    sdk::NewRefreshToken{session.id, "hash-1", t0 + 24h}));
  EXPECT_EQ(first.session_id, session.id);
  EXPECT_EQ(first.user_id, user.id);
  EXPECT_FALSE(first.rotated);
  EXPECT_FALSE(first.revoked);
  EXPECT_CODE(storage().sessions().add_refresh_token(sdk::NewRefreshToken{session.id, "hash-1", t0 + 24h}),
              kAlreadyExists);
  EXPECT_CODE(storage().sessions().add_refresh_token(sdk::NewRefreshToken{kUnknownId, "hash-x", t0 + 24h}),
              kNotFound);
  EXPECT_CODE(storage().sessions().add_refresh_token(sdk::NewRefreshToken{session.id, "", t0 + 24h}),
              kInvalidArgument);

  host().advance(1min);
  ASSERT_OK_AND_ASSIGN(sdk::RefreshToken second,
                       storage().sessions().rotate_refresh_token(
                           "hash-1", sdk::NewRefreshToken{"ignored", "hash-2", t0 + 25h}));
  EXPECT_EQ(second.session_id, session.id);
  EXPECT_EQ(second.token_hash, "hash-2");
  EXPECT_EQ(second.expires_at, t0 + 25h);
  ASSERT_OK_AND_ASSIGN(sdk::RefreshToken old, storage().sessions().find_refresh_token("hash-1"));
  EXPECT_TRUE(old.rotated);
  ASSERT_TRUE(old.rotated_at.has_value());
  EXPECT_EQ(*old.rotated_at, t0 + 1min);

  // Reuse of the rotated token is refused and recognisable.
  EXPECT_CODE(
      storage().sessions().rotate_refresh_token("hash-1", sdk::NewRefreshToken{"", "hash-3", t0 + 26h}),
      kFailedPrecondition);
  EXPECT_CODE(storage().sessions().find_refresh_token("hash-3"), kNotFound);
  // A rotation onto an existing hash fails as a whole: the old token stays unrotated.
  EXPECT_CODE(
      storage().sessions().rotate_refresh_token("hash-2", sdk::NewRefreshToken{"", "hash-1", t0 + 26h}),
      kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(sdk::RefreshToken still, storage().sessions().find_refresh_token("hash-2"));
  EXPECT_FALSE(still.rotated);

  // Revoking the family revokes every token of it.
  ASSERT_OK(storage().sessions().revoke_session(session.id, "refresh_token_reuse"));
  ASSERT_OK_AND_ASSIGN(still, storage().sessions().find_refresh_token("hash-2"));
  EXPECT_TRUE(still.revoked);
  EXPECT_CODE(
      storage().sessions().rotate_refresh_token("hash-2", sdk::NewRefreshToken{"", "hash-4", t0 + 26h}),
      kFailedPrecondition);
  EXPECT_CODE(
      storage().sessions().rotate_refresh_token("unknown", sdk::NewRefreshToken{"", "hash-5", t0 + 26h}),
      kNotFound);
}

TEST_P(IdentityTest, ExpiredRefreshTokenCannotRotate) {
  const sdk::User user = make_user("x@example.com");
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::Session session,
                       storage().sessions().create_session(sdk::NewSession{user.id, "", "", t0 + 1h}));
  ASSERT_OK(storage()
                .sessions()
                .add_refresh_token(sdk::NewRefreshToken{session.id, "token-short", t0 + 10min})
                .status());
  ASSERT_OK(storage()
                .sessions()
                .add_refresh_token(sdk::NewRefreshToken{session.id, "token-long", t0 + 5h})
                .status());
  host().advance(10min);
  EXPECT_CODE(
      storage().sessions().rotate_refresh_token("token-short", sdk::NewRefreshToken{"", "n1", t0 + 2h}),
      kFailedPrecondition);
  // The token itself is valid for 5h but its family ends after 1h.
  host().advance(55min);
  EXPECT_CODE(
      storage().sessions().rotate_refresh_token("token-long", sdk::NewRefreshToken{"", "n2", t0 + 6h}),
      kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(sdk::RefreshToken unchanged, storage().sessions().find_refresh_token("token-long"));
  EXPECT_FALSE(unchanged.rotated);
}

TEST_P(IdentityTest, ConcurrentRotationsOfOneTokenHaveOneWinner) {
  const sdk::User user = make_user("race@example.com");
  ASSERT_OK_AND_ASSIGN(sdk::Session session, storage().sessions().create_session(
                                                 sdk::NewSession{user.id, "", "", host().now() + 1h}));
  ASSERT_OK(storage()
                .sessions()
                .add_refresh_token(sdk::NewRefreshToken{session.id, "contested", host().now() + 1h})
                .status());
  constexpr int kThreads = 8;
  std::atomic<int> winners{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = storage().sessions().rotate_refresh_token(
          "contested", sdk::NewRefreshToken{"", "successor-" + std::to_string(i), host().now() + 1h});
      if (r.ok()) {
        ++winners;
      } else if (r.status().code() == StatusCode::kFailedPrecondition) {
        ++refused;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
}

TEST_P(IdentityTest, RevokedTokenIdsAndPurge) {
  const auto t0 = host().now();
  ASSERT_OK(storage().token_revocations().revoke_token_id("jti-a", t0 + 10min, "logout"));
  ASSERT_OK(storage().token_revocations().revoke_token_id("jti-b", t0 + 30min, "logout"));
  ASSERT_OK(storage().token_revocations().revoke_token_id("jti-c", t0 + 5min, "logout"));
  ASSERT_OK(storage().token_revocations().revoke_token_id("jti-c", t0 + 20min, "logout"));  // extends
  ASSERT_OK(storage().token_revocations().revoke_token_id("jti-b", t0 + 1min, "logout"));   // never shortens
  EXPECT_CODE(storage().token_revocations().revoke_token_id("", t0, "x"), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(bool revoked, storage().token_revocations().is_token_id_revoked("jti-a"));
  EXPECT_TRUE(revoked);
  ASSERT_OK_AND_ASSIGN(revoked, storage().token_revocations().is_token_id_revoked("jti-unknown"));
  EXPECT_FALSE(revoked);

  host().advance(10min);  // jti-a expires exactly now
  ASSERT_OK_AND_ASSIGN(std::int64_t purged, storage().token_revocations().purge_expired_token_revocations());
  EXPECT_EQ(purged, 1);
  ASSERT_OK_AND_ASSIGN(revoked, storage().token_revocations().is_token_id_revoked("jti-a"));
  EXPECT_FALSE(revoked);
  ASSERT_OK_AND_ASSIGN(revoked, storage().token_revocations().is_token_id_revoked("jti-c"));
  EXPECT_TRUE(revoked);
  host().advance(15min);
  ASSERT_OK_AND_ASSIGN(purged, storage().token_revocations().purge_expired_token_revocations());
  EXPECT_EQ(purged, 1);  // jti-c (20min); jti-b (30min) stays
  ASSERT_OK_AND_ASSIGN(revoked, storage().token_revocations().is_token_id_revoked("jti-b"));
  EXPECT_TRUE(revoked);
}

// ---- login attempts -------------------------------------------------------------------------------

TEST_P(IdentityTest, FailedLoginsAreCountedPerSubjectAndAddressInAWindow) {
  const auto t0 = host().now();
  const auto attempt = [&](const std::string& subject, const std::string& address, bool success) {
    EXPECT_OK(
        storage().login_attempts().record_login_attempt(sdk::LoginAttempt{subject, address, success, "ua"}));
  };
  attempt("eve@example.com", "10.0.0.1", false);  // t0
  host().advance(5min);
  attempt("EVE@example.com", "10.0.0.2", false);  // t0+5
  attempt("eve@example.com", "10.0.0.1", true);   // successes never count
  host().advance(5min);
  attempt("eve@example.com", "10.0.0.1", false);  // t0+10
  attempt("mallory@example.com", "10.0.0.1", false);

  const auto count_subject = [&](std::string_view subject, sdk::Timestamp since) {
    auto n = storage().login_attempts().count_failed_logins_for_subject(subject, since);
    EXPECT_TRUE(n.ok()) << n.status().to_string();
    return n.value_or(-1);
  };
  const auto count_address = [&](std::string_view address, sdk::Timestamp since) {
    auto n = storage().login_attempts().count_failed_logins_for_address(address, since);
    EXPECT_TRUE(n.ok()) << n.status().to_string();
    return n.value_or(-1);
  };
  EXPECT_EQ(count_subject("eve@example.com", t0), 3);
  EXPECT_EQ(count_subject("Eve@Example.com", t0), 3);
  EXPECT_EQ(count_subject("eve@example.com", t0 + 1min), 2);
  EXPECT_EQ(count_subject("eve@example.com", t0 + 5min), 2);  // since is inclusive
  EXPECT_EQ(count_subject("eve@example.com", t0 + 6min), 1);
  EXPECT_EQ(count_subject("nobody@example.com", t0), 0);
  EXPECT_EQ(count_address("10.0.0.1", t0), 3);
  EXPECT_EQ(count_address("10.0.0.1", t0 + 10min), 2);
  EXPECT_EQ(count_address("10.0.0.2", t0), 1);

  ASSERT_OK_AND_ASSIGN(std::int64_t purged, storage().login_attempts().purge_login_attempts(t0 + 5min));
  EXPECT_EQ(purged, 1);
  EXPECT_EQ(count_subject("eve@example.com", t0), 2);
}

// ---- audit ----------------------------------------------------------------------------------------

TEST_P(IdentityTest, AuditEventsFilterAndPaginate) {
  const sdk::User admin = make_user("admin@example.com");
  const sdk::User user = make_user("user@example.com");
  const auto t0 = host().now();
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    const sdk::User& actor = i % 3 == 0 ? admin : user;
    const std::string action = i % 2 == 0 ? "auth.login" : "project.created";
    nlohmann::json detail = {{"i", i}, {"nested", {{"ok", true}, {"list", {1, 2.5, "three"}}}}};
    ASSERT_OK_AND_ASSIGN(sdk::AuditEvent e,
                         storage().audit().append_audit_event(sdk::NewAuditEvent{
                             actor.id, action, "target-" + std::to_string(i), "10.1.1.1", detail}));
    EXPECT_EQ(e.occurred_at, host().now());
    ids.push_back(e.id);
    if (i % 2 == 1) host().advance(1min);  // pairs share a timestamp
  }
  ASSERT_OK(
      storage().audit().append_audit_event(sdk::NewAuditEvent{"", "system.started", "", "", {}}).status());
  EXPECT_CODE(storage().audit().append_audit_event(sdk::NewAuditEvent{"", "", "", "", {}}), kInvalidArgument);

  // Everything, newest first, across pages.
  std::vector<sdk::AuditEvent> all;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(
        auto page, storage().audit().list_audit_events(sdk::AuditFilter{}, sdk::PageRequest{5, cursor}));
    all.insert(all.end(), page.items.begin(), page.items.end());
    cursor = page.next_cursor;
  } while (!cursor.empty());
  ASSERT_EQ(all.size(), 13u);
  EXPECT_EQ(all.front().action, "system.started");
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_TRUE(all[i - 1].occurred_at > all[i].occurred_at ||
                (all[i - 1].occurred_at == all[i].occurred_at && all[i - 1].id > all[i].id));
  }
  // The two oldest share a timestamp; find the first one by id.
  const auto first =
      std::find_if(all.begin(), all.end(), [&](const sdk::AuditEvent& e) { return e.id == ids[0]; });
  ASSERT_NE(first, all.end());
  EXPECT_GE(first - all.begin(), 11);
  const sdk::AuditEvent& oldest = *first;
  EXPECT_EQ(oldest.occurred_at, t0);
  EXPECT_EQ(oldest.actor_id, admin.id);
  EXPECT_EQ(oldest.target, "target-0");
  EXPECT_EQ(oldest.source_address, "10.1.1.1");
  EXPECT_EQ(oldest.detail,
            (nlohmann::json{{"i", 0}, {"nested", {{"ok", true}, {"list", {1, 2.5, "three"}}}}}));

  sdk::AuditFilter by_actor;
  by_actor.actor_id = admin.id;
  ASSERT_OK_AND_ASSIGN(auto admin_events,
                       storage().audit().list_audit_events(by_actor, sdk::PageRequest{100, ""}));
  EXPECT_EQ(admin_events.items.size(), 4u);  // i = 0, 3, 6, 9
  for (const auto& e : admin_events.items)
    EXPECT_EQ(e.actor_id, admin.id);

  sdk::AuditFilter combined;
  combined.actor_id = user.id;
  combined.action = "auth.login";
  std::size_t combined_count = 0;
  cursor.clear();
  do {
    ASSERT_OK_AND_ASSIGN(auto page,
                         storage().audit().list_audit_events(combined, sdk::PageRequest{2, cursor}));
    for (const auto& e : page.items) {
      EXPECT_EQ(e.actor_id, user.id);
      EXPECT_EQ(e.action, "auth.login");
      ++combined_count;
    }
    cursor = page.next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(combined_count, 4u);  // i = 2, 4, 8, 10

  sdk::AuditFilter window;
  window.since = t0 + 1min;
  window.until = t0 + 3min;
  ASSERT_OK_AND_ASSIGN(auto windowed, storage().audit().list_audit_events(window, sdk::PageRequest{100, ""}));
  EXPECT_EQ(windowed.items.size(), 4u);  // i = 2..5
  for (const auto& e : windowed.items) {
    EXPECT_GE(e.occurred_at, t0 + 1min);
    EXPECT_LT(e.occurred_at, t0 + 3min);
  }
}

// ---- provider keys --------------------------------------------------------------------------------

TEST_P(IdentityTest, ProviderKeysRoundTripReplaceAndDelete) {
  const sdk::User user = make_user("k@example.com");
  const sdk::User other = make_user("other@example.com");
  const std::string ciphertext("\x00\x01\xfe\xff secret \x00 bytes", 20);
  const std::string nonce("\x00\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0", 12);
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::ProviderKey key,
                       storage().provider_keys().put_provider_key(sdk::NewProviderKey{
                           user.id, "openai", "key-2025", ciphertext, nonce, "sk-...3f9a"}));
  EXPECT_EQ(key.ciphertext, ciphertext);
  EXPECT_EQ(key.nonce, nonce);
  EXPECT_EQ(key.created_at, t0);
  ASSERT_OK(storage()
                .provider_keys()
                .put_provider_key(sdk::NewProviderKey{user.id, "anthropic", "key-2025", "c2", "n2", "sk-ant"})
                .status());
  ASSERT_OK(storage()
                .provider_keys()
                .put_provider_key(sdk::NewProviderKey{other.id, "openai", "key-2024", "c3", "n3", "sk-o"})
                .status());
  EXPECT_CODE(storage().provider_keys().put_provider_key(
                  sdk::NewProviderKey{kUnknownId, "openai", "k", "c", "n", "h"}),
              kNotFound);
  EXPECT_CODE(
      storage().provider_keys().put_provider_key(sdk::NewProviderKey{user.id, "", "k", "c", "n", "h"}),
      kInvalidArgument);

  host().advance(1h);
  ASSERT_OK_AND_ASSIGN(sdk::ProviderKey replaced,
                       storage().provider_keys().put_provider_key(sdk::NewProviderKey{
                           user.id, "openai", "key-2026", "new-ct", "new-nonce", "sk-...0000"}));
  EXPECT_EQ(replaced.created_at, t0);
  EXPECT_EQ(replaced.updated_at, t0 + 1h);
  EXPECT_EQ(replaced.key_id, "key-2026");
  ASSERT_OK_AND_ASSIGN(sdk::ProviderKey fetched,
                       storage().provider_keys().get_provider_key(user.id, "openai"));
  EXPECT_EQ(fetched.ciphertext, "new-ct");
  EXPECT_EQ(fetched.masked_hint, "sk-...0000");

  ASSERT_OK_AND_ASSIGN(auto listed, storage().provider_keys().list_provider_keys(user.id));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].provider, "anthropic");
  EXPECT_EQ(listed[1].provider, "openai");

  // Scoped by user: the other user's key is not reachable under this user.
  EXPECT_CODE(storage().provider_keys().get_provider_key(other.id, "anthropic"), kNotFound);
  ASSERT_OK(storage().provider_keys().delete_provider_key(user.id, "anthropic"));
  EXPECT_CODE(storage().provider_keys().delete_provider_key(user.id, "anthropic"), kNotFound);
  EXPECT_CODE(storage().provider_keys().get_provider_key(user.id, "anthropic"), kNotFound);
  EXPECT_OK(storage().provider_keys().get_provider_key(other.id, "openai").status());
}

TEST_P(IdentityTest, ProviderKeysByEncryptionKeyIdPaginate) {
  std::set<std::pair<std::string, std::string>> expected;
  for (int u = 0; u < 4; ++u) {
    const sdk::User user = make_user("rot" + std::to_string(u) + "@example.com");
    for (const char* provider : {"anthropic", "groq", "openai"}) {
      const std::string key_id = (u + provider[0]) % 2 == 0 ? "old" : "new";
      ASSERT_OK(storage()
                    .provider_keys()
                    .put_provider_key(sdk::NewProviderKey{user.id, provider, key_id, "c", "n", "h"})
                    .status());
      if (key_id == "old") expected.insert({user.id, provider});
    }
  }
  std::set<std::pair<std::string, std::string>> seen;
  std::string cursor;
  std::pair<std::string, std::string> previous;
  do {
    ASSERT_OK_AND_ASSIGN(auto page, storage().provider_keys().list_provider_keys_by_key_id(
                                        "old", sdk::PageRequest{2, cursor}));
    for (const auto& k : page.items) {
      EXPECT_EQ(k.key_id, "old");
      const std::pair<std::string, std::string> pos{k.user_id, k.provider};
      EXPECT_LT(previous, pos);
      previous = pos;
      EXPECT_TRUE(seen.insert(pos).second);
    }
    cursor = page.next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(seen, expected);
}

// ---- personal access tokens -----------------------------------------------------------------------

TEST_P(IdentityTest, AccessTokensLifecycle) {
  const sdk::User user = make_user("pat@example.com");
  const sdk::User other = make_user("pat-other@example.com");
  const auto t0 = host().now();
  ASSERT_OK_AND_ASSIGN(sdk::AccessToken ci, storage().access_tokens().create_access_token(sdk::NewAccessToken{
                                                user.id, "ci", "hash-ci", {"write", "read"}, t0 + 90 * 24h}));
  host().advance(1s);
  ASSERT_OK_AND_ASSIGN(sdk::AccessToken cli, storage().access_tokens().create_access_token(
                                                 sdk::NewAccessToken{user.id, "cli", "hash-cli", {}, {}}));
  EXPECT_CODE(
      storage().access_tokens().create_access_token(sdk::NewAccessToken{other.id, "dup", "hash-ci", {}, {}}),
      kAlreadyExists);
  EXPECT_CODE(
      storage().access_tokens().create_access_token(sdk::NewAccessToken{user.id, "", "hash-x", {}, {}}),
      kInvalidArgument);
  EXPECT_CODE(
      storage().access_tokens().create_access_token(sdk::NewAccessToken{kUnknownId, "n", "hash-y", {}, {}}),
      kNotFound);

  ASSERT_OK_AND_ASSIGN(sdk::AccessToken found, storage().access_tokens().find_access_token("hash-ci"));
  EXPECT_EQ(found.id, ci.id);
  EXPECT_EQ(found.name, "ci");
  EXPECT_EQ(found.scopes, (std::vector<std::string>{"write", "read"}));
  ASSERT_TRUE(found.expires_at.has_value());
  EXPECT_EQ(*found.expires_at, t0 + 90 * 24h);
  EXPECT_FALSE(found.revoked);
  EXPECT_FALSE(found.last_used_at.has_value());
  EXPECT_CODE(storage().access_tokens().find_access_token("nope"), kNotFound);

  host().advance(1min);
  ASSERT_OK(storage().access_tokens().touch_access_token(ci.id));
  ASSERT_OK_AND_ASSIGN(found, storage().access_tokens().find_access_token("hash-ci"));
  ASSERT_TRUE(found.last_used_at.has_value());
  EXPECT_EQ(*found.last_used_at, t0 + 1s + 1min);
  EXPECT_CODE(storage().access_tokens().touch_access_token(kUnknownId), kNotFound);

  EXPECT_CODE(storage().access_tokens().revoke_access_token(other.id, ci.id), kNotFound);
  ASSERT_OK(storage().access_tokens().revoke_access_token(user.id, ci.id));
  ASSERT_OK(storage().access_tokens().revoke_access_token(user.id, ci.id));
  ASSERT_OK_AND_ASSIGN(found, storage().access_tokens().find_access_token("hash-ci"));
  EXPECT_TRUE(found.revoked);

  ASSERT_OK_AND_ASSIGN(auto listed, storage().access_tokens().list_access_tokens(user.id));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].id, cli.id);
  EXPECT_EQ(listed[1].id, ci.id);
  EXPECT_FALSE(listed[0].expires_at.has_value());
  ASSERT_OK_AND_ASSIGN(auto none, storage().access_tokens().list_access_tokens(other.id));
  EXPECT_TRUE(none.empty());
}

// ---- notifications -------------------------------------------------------------------------------

TEST_P(IdentityTest, NotificationsUnreadReadAndPagination) {
  const sdk::User user = make_user("n@example.com");
  const sdk::User other = make_user("n-other@example.com");
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ASSERT_OK_AND_ASSIGN(sdk::Notification n,
                         storage().notifications().create_notification(sdk::NewNotification{
                             user.id, "run.finished", {{"run", i}, {"text", "готово ✓"}}}));
    ids.push_back(n.id);
    host().advance(1s);
  }
  ASSERT_OK(
      storage().notifications().create_notification(sdk::NewNotification{other.id, "welcome", {}}).status());
  EXPECT_CODE(storage().notifications().create_notification(sdk::NewNotification{user.id, "", {}}),
              kInvalidArgument);
  EXPECT_CODE(storage().notifications().create_notification(sdk::NewNotification{kUnknownId, "x", {}}),
              kNotFound);

  ASSERT_OK_AND_ASSIGN(std::int64_t unread, storage().notifications().count_unread_notifications(user.id));
  EXPECT_EQ(unread, 7);
  ASSERT_OK(storage().notifications().mark_notification_read(user.id, ids[6]));
  ASSERT_OK(storage().notifications().mark_notification_read(user.id, ids[6]));
  ASSERT_OK(storage().notifications().mark_notification_read(user.id, ids[0]));
  EXPECT_CODE(storage().notifications().mark_notification_read(other.id, ids[1]), kNotFound);
  ASSERT_OK_AND_ASSIGN(unread, storage().notifications().count_unread_notifications(user.id));
  EXPECT_EQ(unread, 5);

  std::vector<std::string> unread_ids;
  std::string cursor;
  do {
    ASSERT_OK_AND_ASSIGN(
        auto page, storage().notifications().list_notifications(user.id, true, sdk::PageRequest{2, cursor}));
    for (const auto& n : page.items) {
      EXPECT_FALSE(n.read);
      unread_ids.push_back(n.id);
    }
    cursor = page.next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(unread_ids, (std::vector<std::string>{ids[5], ids[4], ids[3], ids[2], ids[1]}));

  ASSERT_OK_AND_ASSIGN(
      auto all, storage().notifications().list_notifications(user.id, false, sdk::PageRequest{50, ""}));
  ASSERT_EQ(all.items.size(), 7u);
  EXPECT_EQ(all.items.front().id, ids[6]);
  EXPECT_TRUE(all.items.front().read);
  EXPECT_EQ(all.items.back().payload, (nlohmann::json{{"run", 0}, {"text", "готово ✓"}}));

  ASSERT_OK_AND_ASSIGN(std::int64_t marked, storage().notifications().mark_all_notifications_read(user.id));
  EXPECT_EQ(marked, 5);
  ASSERT_OK_AND_ASSIGN(unread, storage().notifications().count_unread_notifications(user.id));
  EXPECT_EQ(unread, 0);
  ASSERT_OK_AND_ASSIGN(unread, storage().notifications().count_unread_notifications(other.id));
  EXPECT_EQ(unread, 1);
}

}  // namespace
}  // namespace samokoder::testing
