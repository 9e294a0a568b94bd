// storage.sqlite specifics: config, the default path, WAL, the writer discipline (never "database is
// locked"), group commit, re-entrancy, backup and restore, refusing a newer schema, WAL checkpoint on
// shutdown.
#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include "plugin_harness.hpp"
#include "temp_dir.hpp"
#include "test_host.hpp"
#include "wait_until.hpp"

namespace samokoder::testing {
namespace {

namespace fs = std::filesystem;
using sdk::Status;
using sdk::StatusCode;

// A raw connection to the same file, as another process would have.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // First column of the first row, or "" when there is none; fails the test on error.
  std::string value(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db_);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  void exec(const std::string& sql) {
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStorageTest : public ::testing::Test {
 protected:
  fs::path db_path() const { return dir_.path() / "db" / "samokoder.db"; }
  nlohmann::json config(nlohmann::json extra = nlohmann::json::object()) const {
    nlohmann::json c = {{"path", db_path().string()}};
    c.update(extra);
    return c;
  }
  sdk::Result<std::unique_ptr<LoadedStorage>> load(const nlohmann::json& plugin_config) {
    hosts_.push_back(std::make_unique<TestHost>("storage.sqlite", plugin_config));
    return LoadedStorage::load(SAMOKODER_STORAGE_SQLITE_PLUGIN, *hosts_.back());
  }
  TestHost& last_host() { return *hosts_.back(); }

  TempDir dir_{"storage-sqlite-specific"};
  std::vector<std::unique_ptr<TestHost>> hosts_;
};

TEST_F(SqliteStorageTest, DefaultConfigCreatesVarSamokoderDbInTheWorkingDirectory) {
  const fs::path previous = fs::current_path();
  fs::current_path(dir_.path());
  {
    auto loaded = load(nlohmann::json::object());
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    EXPECT_TRUE(fs::exists(dir_.path() / "var" / "samokoder.db"));
    RawDb raw(dir_.path() / "var" / "samokoder.db");
    EXPECT_EQ(raw.value("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(raw.value("SELECT description FROM schema_migrations WHERE version = 1"), "initial schema");
  }
  fs::current_path(previous);
  bool logged_open = false;
  for (const auto& line : last_host().logs())
    logged_open |= line.message.find("opened var/samokoder.db") == 0;
  EXPECT_TRUE(logged_open);
}

TEST_F(SqliteStorageTest, ConfigIsValidatedKeyByKey) {
  const std::vector<std::pair<nlohmann::json, std::string>> bad = {
      {config({{"colour", "blue"}}), "/colour"},
      {config({{"path", ""}}), "/path"},
      {config({{"path", 42}}), "/path"},
      {config({{"path", ":memory:"}}), "/path"},
      {config({{"busy_timeout_ms", -1}}), "/busy_timeout_ms"},
      {config({{"busy_timeout_ms", "5s"}}), "/busy_timeout_ms"},
      {config({{"synchronous", "off"}}), "/synchronous"},
      {config({{"read_connections", 0}}), "/read_connections"},
      {config({{"read_connections", 65}}), "/read_connections"},
      {config({{"auto_migrate", "no"}}), "/auto_migrate"},
      {nlohmann::json::array({1}), "object"},
  };
  for (const auto& [section, named] : bad) {
    auto loaded = load(section);
    ASSERT_FALSE(loaded.ok()) << section.dump();
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << section.dump();
    EXPECT_NE(loaded.status().message().find(named), std::string::npos) << loaded.status().message();
  }
  auto good = load(config({{"synchronous", "full"}, {"read_connections", 1}, {"busy_timeout_ms", 0}}));
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  EXPECT_TRUE((*good)->storage().health().ok());
}

TEST_F(SqliteStorageTest, CallsFromInsideATransactionOnTheStorageItselfAreRefused) {
  auto loaded = load(config());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  sdk::Storage& storage = (*loaded)->storage();
  Status read_inside;
  Status write_inside;
  const Status result = storage.transaction([&](sdk::Stores& ops) -> Status {
    auto user = ops.users().create_user(sdk::NewUser{"inside@example.com", "", false, "free"});
    if (!user.ok()) return user.status();
    read_inside = storage.users().get_user(user->id).status();
    write_inside = storage.users().create_user(sdk::NewUser{"other@example.com", "", false, "free"}).status();
    return Status{};
  });
  ASSERT_TRUE(result.ok()) << result.to_string();
  EXPECT_EQ(read_inside.code(), StatusCode::kFailedPrecondition) << read_inside.to_string();
  EXPECT_EQ(write_inside.code(), StatusCode::kFailedPrecondition) << write_inside.to_string();
  EXPECT_TRUE(storage.users().find_user_by_email("inside@example.com").ok());
  EXPECT_EQ(storage.users().find_user_by_email("other@example.com").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStorageTest, ABusyDatabaseIsUnavailableAndNeverSaysLocked) {
  auto loaded = load(config({{"busy_timeout_ms", 200}}));
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  sdk::Storage& storage = (*loaded)->storage();
  auto existing = storage.users().create_user(sdk::NewUser{"before@example.com", "", false, "free"});
  ASSERT_TRUE(existing.ok());

  RawDb other_process(db_path());
  other_process.exec("BEGIN IMMEDIATE");  // holds SQLite's write lock
  const Status blocked =
      storage.users().create_user(sdk::NewUser{"during@example.com", "", false, "free"}).status();
  EXPECT_EQ(blocked.code(), StatusCode::kUnavailable) << blocked.to_string();
  EXPECT_EQ(blocked.message().find("locked"), std::string::npos) << blocked.message();
  // Readers are not blocked by a writer in WAL mode.
  EXPECT_TRUE(storage.users().get_user(existing->id).ok());
  other_process.exec("ROLLBACK");
  EXPECT_TRUE(storage.users().create_user(sdk::NewUser{"after@example.com", "", false, "free"}).ok());
}

// Polls the host's metric until it has the value; false after ten seconds.
bool wait_for_gauge(const TestHost& host, const std::string& key, double value) {
  return wait_until([&] { return host.gauge(key) == value; }, std::chrono::seconds(10),
                    std::chrono::milliseconds(2));
}

constexpr const char* kQueueDepth = "storage_write_queue_depth{}";
constexpr const char* kWriterBusy = "storage_connections_in_use{pool=write}";
constexpr const char* kBatches = "storage_write_batches_total{}";

sdk::NewUser user_named(const std::string& name) {
  return sdk::NewUser{name + "@example.com", "", false, "free"};
}

// Another process holds SQLite's write lock, so the storage's first write waits inside its
// transaction on the writer and every later write queues behind it until release(): the queue's
// shape is then known when the writes go.
class GroupCommitTest : public SqliteStorageTest {
 protected:
  void SetUp() override {
    auto loaded = load(config({{"busy_timeout_ms", 30000}}));
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    loaded_ = std::move(*loaded);
  }
  void TearDown() override { release(); }

  sdk::Storage& storage() { return loaded_->storage(); }
  TestHost& host() { return last_host(); }

  // Takes the lock and starts the first write; true once that write holds the writer.
  bool block_first_write() {
    other_process_.emplace(db_path());
    other_process_->exec("BEGIN IMMEDIATE");
    batches_before_ = host().counter(kBatches);
    start([this] { return storage().users().create_user(user_named("first")).status(); });
    return wait_for_gauge(host(), kWriterBusy, 1);
  }
  // Starts `write` on a thread of its own; true once it waits in the queue.
  bool queue(std::function<Status()> write) {
    start(std::move(write));
    return wait_for_gauge(host(), kQueueDepth, static_cast<double>(threads_.size()));
  }
  // Lets the writes go and waits for them; their outcomes in the order they were started.
  std::vector<Status> release() {
    if (other_process_) other_process_->exec("ROLLBACK");
    for (auto& thread : threads_)
      thread.join();
    threads_.clear();
    other_process_.reset();
    return {outcomes_.begin(), outcomes_.end()};
  }
  double batches_since_blocked() { return host().counter(kBatches) - batches_before_; }

 private:
  void start(std::function<Status()> write) {
    Status& outcome = outcomes_.emplace_back();
    threads_.emplace_back([&outcome, write = std::move(write)] { outcome = write(); });
  }

  std::unique_ptr<LoadedStorage> loaded_;
  std::optional<RawDb> other_process_;
  std::deque<Status> outcomes_;  // a deque: each thread keeps a reference to its own element
  std::vector<std::thread> threads_;
  double batches_before_ = 0;
};

// Once the lock is gone the queued writes must commit together, one failure among them undone alone.
TEST_F(GroupCommitTest, WritesQueuedBehindARunningOneCommitTogetherAndAFailureStaysItsOwn) {
  ASSERT_TRUE(storage().users().create_user(user_named("taken")).ok());
  ASSERT_TRUE(block_first_write()) << "the first write never reached the writer";
  constexpr int kQueued = 6;  // the last one takes an email that is already registered
  for (int i = 0; i < kQueued; ++i) {
    const std::string name = i == kQueued - 1 ? "taken" : "queued" + std::to_string(i);
    ASSERT_TRUE(queue([this, name] { return storage().users().create_user(user_named(name)).status(); }))
        << "write " << i << " never queued";
  }
  const std::vector<Status> outcomes = release();

  ASSERT_EQ(outcomes.size(), 1U + kQueued);
  for (int i = 0; i < kQueued; ++i)
    EXPECT_TRUE(outcomes[i].ok()) << "write " << i << ": " << outcomes[i].to_string();
  EXPECT_EQ(outcomes[kQueued].code(), StatusCode::kAlreadyExists) << outcomes[kQueued].to_string();
  EXPECT_EQ(batches_since_blocked(), 2) << "the first write alone, then the queued ones";
  RawDb raw(db_path());
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM users"), std::to_string(1 + kQueued));
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM users WHERE email = 'taken@example.com'"), "1");
  EXPECT_EQ(host().gauge(kQueueDepth), 0.0);
}

// A transaction's function is the caller's code: it must run on the caller's thread and never share
// a COMMIT with the writes queued before and after it.
TEST_F(GroupCommitTest, ATransactionNeverJoinsABatchAndRunsOnItsCallersThread) {
  ASSERT_TRUE(block_first_write()) << "the first write never reached the writer";
  ASSERT_TRUE(queue([this] { return storage().users().create_user(user_named("before")).status(); }));
  std::thread::id caller;
  std::thread::id ran_on;
  ASSERT_TRUE(queue([&] {
    caller = std::this_thread::get_id();
    return storage().transaction([&](sdk::Stores& ops) -> Status {
      ran_on = std::this_thread::get_id();
      return ops.users().create_user(user_named("in-transaction")).status();
    });
  }));
  ASSERT_TRUE(queue([this] { return storage().users().create_user(user_named("after")).status(); }));
  const std::vector<Status> outcomes = release();

  for (std::size_t i = 0; i < outcomes.size(); ++i)
    EXPECT_TRUE(outcomes[i].ok()) << "write " << i << ": " << outcomes[i].to_string();
  EXPECT_EQ(ran_on, caller);
  EXPECT_EQ(batches_since_blocked(), 4) << "each write in a batch of its own";
  RawDb raw(db_path());
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM users"), "4");
}

TEST_F(SqliteStorageTest, BackupIsAConsistentCopyThatOpensAsADatabase) {
  auto loaded = load(config());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  sdk::Storage& storage = (*loaded)->storage();
  auto user = storage.users().create_user(sdk::NewUser{"backup@example.com", "", false, "free"});
  ASSERT_TRUE(user.ok());
  auto project = storage.projects().create_project(sdk::NewProject{user->id, "saved", ""});
  ASSERT_TRUE(project.ok());
  auto run = storage.runs().create_run(user->id, sdk::NewRun{project->id, "", "running"});
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(storage.files().put_file(user->id, project->id, "main.py", "print('hi')", "").ok());

  // A writer keeps appending while the backup runs.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) {
      if (!storage.runs().append_run_event(user->id, run->id, "log", {{"x", 1}}).ok()) return;
    }
  });
  const fs::path backup = dir_.path() / "backups" / "samokoder-backup.db";
  fs::create_directories(backup.parent_path());
  const Status written = storage.backup(backup.string());
  stop.store(true);
  writer.join();
  ASSERT_TRUE(written.ok()) << written.to_string();
  for (const auto& entry : fs::directory_iterator(backup.parent_path())) {
    EXPECT_EQ(entry.path(), backup) << "left behind: " << entry.path();
  }
  {
    RawDb raw(backup);
    EXPECT_EQ(raw.value("PRAGMA integrity_check"), "ok");
    // The events in the copy form a gapless prefix: a consistent snapshot.
    EXPECT_EQ(raw.value("SELECT COUNT(*) = COALESCE(MAX(seq), 0) FROM run_events"), "1");
    EXPECT_EQ(raw.value("SELECT last_event_seq = (SELECT COALESCE(MAX(seq), 0) FROM run_events) FROM runs"),
              "1");
  }

  // Restore = point a storage at the copy.
  auto restored = load(nlohmann::json{{"path", backup.string()}});
  ASSERT_TRUE(restored.ok()) << restored.status().to_string();
  auto file = (*restored)->storage().files().get_file(user->id, project->id, "main.py", {});
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_EQ(file->content, "print('hi')");
}

TEST_F(SqliteStorageTest, ANewerSchemaIsRefusedWithTheExactMessage) {
  std::int64_t supported = 0;
  {
    auto loaded = load(config());
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    auto schema = (*loaded)->storage().schema_status();
    ASSERT_TRUE(schema.ok());
    supported = schema->supported_version;
  }
  {
    RawDb raw(db_path());
    raw.exec("INSERT INTO schema_migrations (version, applied_at, description) VALUES (" +
             std::to_string(supported + 5) + ", 0, 'future')");
  }
  auto refused = load(config());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status(), Status::failed_precondition(
                                  "database schema version " + std::to_string(supported + 5) +
                                  " is newer than this storage.sqlite supports (" +
                                  std::to_string(supported) + "); upgrade Samokoder or restore a backup"));
}

// Migration 3 on a database at version 2: LLM request records made before it read back with the
// accounting fields' "nothing known" values and count in the new totals.
TEST_F(SqliteStorageTest, MigrationThreeGivesEarlierLlmRequestsTheNothingKnownValues) {
  std::string user_id;
  {
    auto loaded = load(config());
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    auto user = (*loaded)->storage().users().create_user(sdk::NewUser{"old@example.com", "", false, "free"});
    ASSERT_TRUE(user.ok()) << user.status().to_string();
    user_id = user->id;
    sdk::NewLlmRequest request;
    request.user_id = user_id;
    request.provider = "openai";
    request.model = "gpt-4o";
    request.prompt_tokens = 12;
    ASSERT_TRUE((*loaded)->storage().llm_requests().record_llm_request(request).ok());
  }
  {
    // Back to what version 2 left.
    RawDb raw(db_path());
    raw.exec(
        "DROP INDEX llm_requests_by_time;"
        "ALTER TABLE llm_requests DROP COLUMN step_id;"
        "ALTER TABLE llm_requests DROP COLUMN cached_prompt_tokens;"
        "ALTER TABLE llm_requests DROP COLUMN cache_write_tokens;"
        "ALTER TABLE llm_requests DROP COLUMN usage_estimated;"
        "ALTER TABLE llm_requests DROP COLUMN time_to_first_token_ms;"
        "ALTER TABLE llm_requests DROP COLUMN cost_micro_usd;"
        "ALTER TABLE llm_requests DROP COLUMN attempt;"
        "DELETE FROM schema_migrations WHERE version = 3;");
  }
  auto loaded = load(config());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  sdk::Storage& storage = (*loaded)->storage();
  auto schema = storage.schema_status();
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(schema->current_version, 3);
  ASSERT_EQ(schema->applied.size(), 3u);
  EXPECT_EQ(schema->applied[2].description, "LLM request accounting");
  auto listed = storage.llm_requests().list_llm_requests(user_id, {10, ""});
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  ASSERT_EQ(listed->items.size(), 1u);
  const sdk::LlmRequest& old = listed->items[0];
  EXPECT_EQ(old.prompt_tokens, 12);
  EXPECT_EQ(old.step_id, "");
  EXPECT_EQ(old.cached_prompt_tokens, 0);
  EXPECT_EQ(old.cache_write_tokens, 0);
  EXPECT_FALSE(old.usage_estimated);
  EXPECT_EQ(old.time_to_first_token_ms, -1);
  EXPECT_EQ(old.cost_micro_usd, 0);
  EXPECT_EQ(old.attempt, 1);
  auto sum = storage.llm_requests().usage_of_user(user_id, std::nullopt);
  ASSERT_TRUE(sum.ok()) << sum.status().to_string();
  EXPECT_EQ(sum->requests, 1);
  EXPECT_EQ(sum->prompt_tokens, 12);
  RawDb raw(db_path());
  EXPECT_EQ(raw.value("SELECT count(*) FROM sqlite_master WHERE name = 'llm_requests_by_time'"), "1");
}

// `samokoder db status` on a path with no database yet: the file is created, empty (no tables, not even
// schema_migrations), so status shows every migration pending and `db migrate` then fills it.
TEST_F(SqliteStorageTest, WithoutAutoMigrateAMissingFileIsCreatedEmpty) {
  ASSERT_FALSE(fs::exists(db_path()));
  {
    auto loaded = load(config({{"auto_migrate", false}}));
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    auto schema = (*loaded)->storage().schema_status();
    ASSERT_TRUE(schema.ok()) << schema.status().to_string();
    EXPECT_EQ(schema->current_version, 0);
    EXPECT_TRUE((*loaded)->storage().health().ok());
  }
  ASSERT_TRUE(fs::exists(db_path()));
  {
    RawDb raw(db_path());
    EXPECT_EQ(raw.value("SELECT count(*) FROM sqlite_master"), "0");
    EXPECT_EQ(raw.value("PRAGMA journal_mode"), "wal");
  }
  auto migrating = load(config({{"auto_migrate", false}}));
  ASSERT_TRUE(migrating.ok()) << migrating.status().to_string();
  ASSERT_TRUE((*migrating)->storage().migrate().ok());
  RawDb raw(db_path());
  EXPECT_EQ(raw.value("SELECT count(*) FROM sqlite_master WHERE name = 'users'"), "1");
}

TEST_F(SqliteStorageTest, AFileThatIsNotADatabaseIsDataLoss) {
  fs::create_directories(db_path().parent_path());
  std::ofstream(db_path()) << std::string(8192, 'x');
  auto loaded = load(config());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kDataLoss) << loaded.status().to_string();
}

TEST_F(SqliteStorageTest, ShutdownCheckpointsTheWalAndPoolGaugesReturnToZero) {
  {
    auto loaded = load(config());
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    sdk::Storage& storage = (*loaded)->storage();
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(storage.users()
                      .create_user(sdk::NewUser{"u" + std::to_string(i) + "@example.com", "", false, "free"})
                      .ok());
      ASSERT_TRUE(storage.users().list_users(sdk::PageRequest{5, ""}).ok());
    }
    EXPECT_EQ(last_host().gauge("storage_connections_in_use{pool=read}"), 0.0);
    EXPECT_EQ(last_host().gauge("storage_connections_in_use{pool=write}"), 0.0);
  }
  const fs::path wal = db_path().string() + "-wal";
  EXPECT_TRUE(!fs::exists(wal) || fs::file_size(wal) == 0);
  RawDb raw(db_path());
  EXPECT_EQ(raw.value("SELECT COUNT(*) FROM users"), "20");
}

}  // namespace
}  // namespace samokoder::testing
