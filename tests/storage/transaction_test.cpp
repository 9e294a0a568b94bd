// Conformance: transactions (commit, rollback on error and on throw, per-call atomicity inside a
// transaction, isolation), schema migrations (idempotent, refusal of a newer schema), health,
// metrics, backup, timestamp precision.
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "storage_fixture.hpp"
#include "temp_dir.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;
using sdk::Status;
using sdk::StatusCode;

class TransactionTest : public StorageTest {};
SAMOKODER_STORAGE_TEST_SUITE(TransactionTest);

TEST_P(TransactionTest, CommitsEveryWriteTogether) {
  const sdk::User owner = make_user("tx@example.com");
  std::string project_id;
  std::string run_id;
  ASSERT_OK(storage().transaction([&](sdk::Stores& ops) -> Status {
    auto project = ops.projects().create_project(sdk::NewProject{owner.id, "atomic", ""});
    if (!project.ok()) return project.status();
    project_id = project->id;
    SAMOKODER_RETURN_IF_ERROR(
        ops.files().put_file(owner.id, project_id, "index.html", "<h1>hi</h1>", "").status());
    auto run = ops.runs().create_run(owner.id, sdk::NewRun{project_id, "x", "queued"});
    if (!run.ok()) return run.status();
    run_id = run->id;
    // Reads inside the transaction see its own writes.
    auto file = ops.files().get_file(owner.id, project_id, "index.html", {});
    if (!file.ok()) return file.status();
    return ops.runs().append_run_event(owner.id, run_id, "created", {{"file", file->version.path}}).status();
  }));
  EXPECT_OK(storage().projects().get_project(owner.id, project_id).status());
  ASSERT_OK_AND_ASSIGN(sdk::FileContent file,
                       storage().files().get_file(owner.id, project_id, "index.html", {}));
  EXPECT_EQ(file.content, "<h1>hi</h1>");
  ASSERT_OK_AND_ASSIGN(auto events, storage().runs().list_run_events(owner.id, run_id, 0, 10));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload["file"], "index.html");
}

TEST_P(TransactionTest, ErrorStatusRollsBackAndIsReturnedUnchanged) {
  const sdk::User owner = make_user("rollback@example.com");
  const sdk::Project existing = make_project(owner, "existing");
  const Status result = storage().transaction([&](sdk::Stores& ops) -> Status {
    SAMOKODER_RETURN_IF_ERROR(
        ops.projects().create_project(sdk::NewProject{owner.id, "doomed", ""}).status());
    SAMOKODER_RETURN_IF_ERROR(ops.files().put_file(owner.id, existing.id, "doomed.txt", "x", "").status());
    SAMOKODER_RETURN_IF_ERROR(ops.projects().delete_project(owner.id, existing.id));
    return Status::aborted("changed my mind");
  });
  EXPECT_EQ(result, Status::aborted("changed my mind"));
  ASSERT_OK_AND_ASSIGN(auto projects, storage().projects().list_projects(owner.id, sdk::PageRequest{10, ""}));
  ASSERT_EQ(projects.items.size(), 1u);
  EXPECT_EQ(projects.items[0].id, existing.id);
  EXPECT_CODE(storage().files().get_file(owner.id, existing.id, "doomed.txt", {}), kNotFound);
}

TEST_P(TransactionTest, ThrowRollsBackAndBecomesInternal) {
  const sdk::User owner = make_user("throw@example.com");
  const Status result = storage().transaction([&](sdk::Stores& ops) -> Status {
    SAMOKODER_RETURN_IF_ERROR(
        ops.projects().create_project(sdk::NewProject{owner.id, "doomed", ""}).status());
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(result.code(), StatusCode::kInternal);
  EXPECT_NE(result.message().find("boom"), std::string::npos) << result.message();
  ASSERT_OK_AND_ASSIGN(auto projects, storage().projects().list_projects(owner.id, sdk::PageRequest{10, ""}));
  EXPECT_TRUE(projects.items.empty());
  // The storage is fully usable afterwards.
  EXPECT_OK(storage().projects().create_project(sdk::NewProject{owner.id, "after", ""}).status());
  EXPECT_CODE(storage().transaction(nullptr), kInvalidArgument);
}

TEST_P(TransactionTest, AFailedCallInsideIsUndoneAloneAndTheTransactionGoesOn) {
  const sdk::User owner = make_user("goes-on@example.com");
  const sdk::Project project = make_project(owner);
  const sdk::Run run = make_run(project);
  ASSERT_OK(storage().transaction([&](sdk::Stores& ops) -> Status {
    // Get-or-create: the collision is an answer, not a broken transaction.
    auto duplicate = ops.users().create_user(sdk::NewUser{"GOES-ON@example.com", "", false, "free"});
    if (duplicate.status().code() != StatusCode::kAlreadyExists)
      return Status::internal("expected a collision");
    // A refused event consumes no seq.
    auto refused = ops.runs().append_run_event(owner.id, run.id, "log", {{"bad", "\xff"}});
    if (refused.status().code() != StatusCode::kInvalidArgument)
      return Status::internal("expected a refusal");
    // A refresh rotation onto an existing hash leaves the old token unrotated.
    auto session = ops.sessions().create_session(sdk::NewSession{owner.id, "", "", host().now() + 1h});
    if (!session.ok()) return session.status();
    SAMOKODER_RETURN_IF_ERROR(
        ops.sessions()
            .add_refresh_token(sdk::NewRefreshToken{session->id, "t1", host().now() + 1h})
            .status());
    SAMOKODER_RETURN_IF_ERROR(
        ops.sessions()
            .add_refresh_token(sdk::NewRefreshToken{session->id, "t2", host().now() + 1h})
            .status());
    auto collided =
        ops.sessions().rotate_refresh_token("t1", sdk::NewRefreshToken{"", "t2", host().now() + 1h});
    if (collided.status().code() != StatusCode::kAlreadyExists)
      return Status::internal("expected a collision");
    auto event = ops.runs().append_run_event(owner.id, run.id, "log", {{"ok", true}});
    if (!event.ok()) return event.status();
    if (event->seq != 1)
      return Status::internal("seq " + std::to_string(event->seq) + " after a refused append");
    return ops.projects().create_project(sdk::NewProject{owner.id, "second", ""}).status();
  }));
  ASSERT_OK_AND_ASSIGN(auto projects, storage().projects().list_projects(owner.id, sdk::PageRequest{10, ""}));
  EXPECT_EQ(projects.items.size(), 2u);
  ASSERT_OK_AND_ASSIGN(sdk::RefreshToken t1, storage().sessions().find_refresh_token("t1"));
  EXPECT_FALSE(t1.rotated);
  ASSERT_OK_AND_ASSIGN(sdk::Run fetched, storage().runs().get_run(owner.id, run.id));
  EXPECT_EQ(fetched.last_event_seq, 1);
}

TEST_P(TransactionTest, OthersDoNotSeeUncommittedWrites) {
  const sdk::User owner = make_user("isolation@example.com");
  std::string project_id;
  Status seen_from_outside;
  ASSERT_OK(storage().transaction([&](sdk::Stores& ops) -> Status {
    auto project = ops.projects().create_project(sdk::NewProject{owner.id, "invisible", ""});
    if (!project.ok()) return project.status();
    project_id = project->id;
    // Another thread reads while this transaction is open; it must not see the project yet.
    std::thread reader(
        [&] { seen_from_outside = storage().projects().get_project(owner.id, project_id).status(); });
    reader.join();
    return Status{};
  }));
  EXPECT_EQ(seen_from_outside.code(), StatusCode::kNotFound) << seen_from_outside.to_string();
  EXPECT_OK(storage().projects().get_project(owner.id, project_id).status());
}

TEST_P(TransactionTest, ConcurrentTransactionsDoNotLoseUpdates) {
  const sdk::User owner = make_user("counter@example.com");
  const sdk::Project project = make_project(owner);
  ASSERT_OK(storage().files().put_file(owner.id, project.id, "counter", "0", "").status());
  constexpr int kThreads = 4;
  constexpr int kIncrements = 25;
  constexpr int kMaxAttempts = 1000;
  std::atomic<int> aborted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        for (int attempt = 1;; ++attempt) {
          const Status s = storage().transaction([&](sdk::Stores& ops) -> Status {
            auto current = ops.files().get_file(owner.id, project.id, "counter", {});
            if (!current.ok()) return current.status();
            const int value = std::stoi(current->content);
            return ops.files()
                .put_file(owner.id, project.id, "counter", std::to_string(value + 1), "")
                .status();
          });
          if (s.ok()) break;
          // Retrying forever would hide a backend that aborts every conflicting transaction (a livelock).
          if (s.code() != StatusCode::kAborted || attempt == kMaxAttempts) {
            ADD_FAILURE() << "attempt " << attempt << ": " << s.to_string();
            return;
          }
          ++aborted;  // a backend may refuse a conflicting transaction; the caller retries
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_OK_AND_ASSIGN(sdk::FileContent counter,
                       storage().files().get_file(owner.id, project.id, "counter", {}));
  EXPECT_EQ(counter.content, std::to_string(kThreads * kIncrements));
  EXPECT_EQ(counter.version.version, kThreads * kIncrements + 1);
}

// ---- schema -----------------------------------------------------------------------------------------

TEST_P(TransactionTest, MigrationsAreIdempotent) {
  ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus first, storage().schema_status());
  EXPECT_GE(first.supported_version, 1);
  EXPECT_EQ(first.current_version, first.supported_version);
  ASSERT_EQ(first.applied.size(), static_cast<std::size_t>(first.supported_version));
  for (std::size_t i = 0; i < first.applied.size(); ++i) {
    EXPECT_EQ(first.applied[i].version, static_cast<std::int64_t>(i + 1));
    EXPECT_FALSE(first.applied[i].description.empty());
  }
  const sdk::User user = make_user("migrate@example.com");
  ASSERT_OK(storage().migrate());
  host().advance(1h);
  ASSERT_NO_FATAL_FAILURE(reopen());  // init runs migrations again
  ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus second, storage().schema_status());
  ASSERT_EQ(second.applied.size(), first.applied.size());
  for (std::size_t i = 0; i < first.applied.size(); ++i) {
    EXPECT_EQ(second.applied[i].applied_at, first.applied[i].applied_at);
  }
  EXPECT_OK(storage().users().get_user(user.id).status());
}

TEST_P(TransactionTest, ANewerSchemaIsRefusedAtInit) {
  ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus status, storage().schema_status());
  const std::int64_t newer = status.supported_version + 6;
  close();
  ASSERT_OK(database().force_schema_version(newer));
  TestHost other("storage." + GetParam().name, database().plugin_config());
  auto refused = load_another(other);
  ASSERT_FALSE(refused.ok());
  const Status& s = refused.status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      s.message().find("database schema version " + std::to_string(newer) + " is newer than this storage."),
      std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("supports (" + std::to_string(status.supported_version) + ")"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("upgrade Samokoder or restore a backup"), std::string::npos) << s.message();
}

TEST_P(TransactionTest, HealthAndMetrics) {
  EXPECT_OK(storage().health());
  EXPECT_OK(storage().self_test());
  make_user("metrics@example.com");
  EXPECT_CODE(storage().users().get_user("0190f1d2a3b47c5d8e9f00112233aabb"), kNotFound);
  EXPECT_GE(host().counter("storage_operations_total{operation=create_user,outcome=ok}"), 1.0);
  EXPECT_GE(host().counter("storage_operations_total{operation=get_user,outcome=not_found}"), 1.0);
  EXPECT_GE(host().histogram_count("storage_operation_seconds{operation=create_user}"), 1u);
}

TEST_P(TransactionTest, BackupWritesACopyOrIsUnimplemented) {
  const sdk::User user = make_user("backup@example.com");
  TempDir dir("storage-backup");
  const auto target = dir.path() / "copy.db";
  const Status s = storage().backup(target.string());
  if (s.code() == StatusCode::kUnimplemented) {
    // A backend that delegates backups to external tools (storage.postgres: pg_dump) says how, and
    // writes nothing.
    EXPECT_FALSE(s.message().empty());
    EXPECT_FALSE(std::filesystem::exists(target));
    return;
  }
  ASSERT_OK(s);
  EXPECT_TRUE(std::filesystem::exists(target));
  EXPECT_CODE(storage().backup(target.string()), kAlreadyExists);
  EXPECT_CODE(storage().backup((dir.path() / "missing" / "copy.db").string()), kNotFound);
  EXPECT_CODE(storage().backup(""), kInvalidArgument);
  EXPECT_OK(storage().users().get_user(user.id).status());
}

TEST_P(TransactionTest, TimestampsAreKeptToTheMicrosecond) {
  const sdk::User user = make_user("time@example.com");
  host().set_now(TestHost::kStart + 123456789ns);
  const auto expires = TestHost::kStart + 1h + 987654321ns;
  ASSERT_OK_AND_ASSIGN(sdk::Session created,
                       storage().sessions().create_session(sdk::NewSession{user.id, "", "", expires}));
  EXPECT_EQ(created.created_at, TestHost::kStart + 123456us);
  EXPECT_EQ(created.expires_at, sdk::to_storage_precision(expires));
  ASSERT_OK_AND_ASSIGN(sdk::Session fetched, storage().sessions().get_session(created.id));
  EXPECT_EQ(fetched.created_at, TestHost::kStart + 123456us);
  EXPECT_EQ(fetched.expires_at, TestHost::kStart + 1h + 987654us);
  // Before the epoch too.
  sdk::UserUpdate update;
  update.locked_until = sdk::Timestamp(-1500ms);
  ASSERT_OK(storage().users().update_user(user.id, update).status());
  ASSERT_OK_AND_ASSIGN(sdk::User u, storage().users().get_user(user.id));
  EXPECT_EQ(*u.locked_until, sdk::Timestamp(-1500ms));
}

}  // namespace
}  // namespace samokoder::testing
