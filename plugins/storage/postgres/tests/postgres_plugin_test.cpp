// What only storage.postgres has, beyond the shared conformance suite: config and URL handling (the
// environment variable, TLS mode, no password in messages), the bounded pool, the statement timeout,
// two nodes migrating one database at once, upgrading an older schema, serialization failures, and a crash of
// the database server in the middle of writes.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <samokoder/sdk/storage.hpp>

#include "plugin_harness.hpp"
#include "postgres_server.hpp"
#include "test_host.hpp"

namespace samokoder::testing {
namespace {

using sdk::StatusCode;

constexpr const char* kPlugin = SAMOKODER_STORAGE_POSTGRES_PLUGIN;
constexpr const char* kUrlVariable = "SAMOKODER_DATABASE_URL";

std::string fresh_database(PostgresServer& server = PostgresServer::shared()) {
  static std::atomic<int> counter{0};
  return server.create_database("plugin_" + std::to_string(counter.fetch_add(1)));
}

// Runs one statement on its own connection and returns the first column of the first row.
std::string query(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
  EXPECT_EQ(PQresultStatus(result.get()), PGRES_TUPLES_OK)
      << sql << ": " << PQresultErrorMessage(result.get());
  return PQntuples(result.get()) > 0 ? PQgetvalue(result.get(), 0, 0) : "";
}

// Runs statements that return no rows on their own connection.
void execute(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
  EXPECT_EQ(PQresultStatus(result.get()), PGRES_COMMAND_OK)
      << sql << ": " << PQresultErrorMessage(result.get());
}

// Sets an environment variable for one test and restores the previous state.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A plugin instance with its own host.
struct Node {
  explicit Node(nlohmann::json config) : host("storage.postgres", std::move(config)) {}
  sdk::Status open() {
    auto loaded = LoadedStorage::load(kPlugin, host);
    if (!loaded.ok()) return loaded.status();
    storage = std::move(*loaded);
    return {};
  }
  sdk::Storage& operator*() { return storage->storage(); }
  sdk::Storage* operator->() { return &storage->storage(); }

  TestHost host;
  std::unique_ptr<LoadedStorage> storage;
};

// Counts acknowledged writes; the test thread waits for a number without polling.
class AckCounter {
 public:
  void add() {
    {
      std::lock_guard lock(mutex_);
      ++count_;
    }
    changed_.notify_all();
  }
  int value() {
    std::lock_guard lock(mutex_);
    return count_;
  }
  // False if fewer than n writes were acknowledged within a minute (the writers are stuck).
  bool wait_for(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::minutes(1), [&] { return count_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int count_ = 0;
};

sdk::NewUser new_user(const std::string& email) {
  sdk::NewUser user;
  user.email = email;
  user.password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA";
  return user;
}

TEST(PostgresPlugin, RefusesUnknownKeysAndWrongTypesNamingTheKey) {
  Node unknown(nlohmann::json{{"url", PostgresServer::shared().url()}, {"pool_sise", 4}});
  const auto status = unknown.open();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("pool_sise"), std::string::npos) << status.message();

  Node wrong_type(nlohmann::json{{"url", PostgresServer::shared().url()}, {"statement_timeout_ms", "30s"}});
  const auto typed = wrong_type.open();
  EXPECT_EQ(typed.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(typed.message().find("statement_timeout_ms"), std::string::npos) << typed.message();

  Node bad_mode(nlohmann::json{{"url", PostgresServer::shared().url()}, {"sslmode", "always"}});
  EXPECT_EQ(bad_mode.open().code(), StatusCode::kInvalidArgument);
}

TEST(PostgresPlugin, NeedsAUrl) {
  Node node(nlohmann::json::object());
  const auto status = node.open();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(kUrlVariable), std::string::npos) << status.message();
}

TEST(PostgresPlugin, EnvironmentUrlTakesPrecedenceOverConfig) {
  const std::string url = fresh_database();
  ScopedEnv env(kUrlVariable, url);
  // The config points at a port nothing listens on; only the environment's URL can work.
  Node node(nlohmann::json{{"url", "postgresql://postgres@127.0.0.1:1/nowhere"}});
  ASSERT_TRUE(node.open().ok());
  ASSERT_TRUE(node->users().create_user(new_user("env@example.com")).ok());
  EXPECT_EQ(query(url, "SELECT count(*) FROM users WHERE email = 'env@example.com'"), "1");
}

TEST(PostgresPlugin, UnreachableServerIsUnavailableAndThePasswordStaysSecret) {
  Node node(nlohmann::json{{"url", "postgresql://samokoder:s3cret-pass@127.0.0.1:1/samokoder"},
                           {"connect_timeout_ms", 2000}});
  const auto status = node.open();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("127.0.0.1:1/samokoder"), std::string::npos) << status.message();
  EXPECT_EQ(status.message().find("s3cret-pass"), std::string::npos) << status.message();
  for (const auto& line : node.host.logs())
    EXPECT_EQ(line.message.find("s3cret-pass"), std::string::npos);
}

TEST(PostgresPlugin, SslModeFromConfigIsAppliedAndTheUrlOverridesIt) {
  // The test server has no TLS: requiring it must fail, which proves the setting reaches libpq.
  Node required(nlohmann::json{{"url", fresh_database()}, {"sslmode", "require"}});
  const auto status = required.open();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("SSL"), std::string::npos) << status.message();

  Node overridden(nlohmann::json{{"url", fresh_database() + "?sslmode=disable"}, {"sslmode", "require"}});
  EXPECT_TRUE(overridden.open().ok());
}

TEST(PostgresPlugin, ExhaustedPoolFailsWithUnavailableAfterTheAcquireTimeout) {
  Node node(nlohmann::json{{"url", fresh_database()}, {"pool_size", 1}, {"acquire_timeout_ms", 200}});
  ASSERT_TRUE(node.open().ok());
  std::promise<void> holding;
  std::promise<void> release;
  // The transaction keeps the only connection until the main thread has seen the pool exhausted.
  std::thread holder([&] {
    const auto status = node->transaction([&](sdk::Stores&) -> sdk::Status {
      holding.set_value();
      release.get_future().wait();
      return {};
    });
    EXPECT_TRUE(status.ok()) << status.to_string();
  });
  holding.get_future().wait();
  EXPECT_EQ(node.host.gauge("storage_connections_in_use{pool=main}"), 1.0);
  const auto blocked = node->users().get_user("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(blocked.status().code(), StatusCode::kUnavailable) << blocked.status().to_string();
  release.set_value();
  holder.join();
  EXPECT_EQ(node.host.gauge("storage_connections_in_use{pool=main}"), 0.0);
  EXPECT_TRUE(node->users().create_user(new_user("after@example.com")).ok());
}

TEST(PostgresPlugin, StatementTimeoutTurnsAStuckStatementIntoUnavailable) {
  const std::string url = fresh_database();
  Node node(nlohmann::json{{"url", url}, {"statement_timeout_ms", 200}});
  ASSERT_TRUE(node.open().ok());
  // Another session holds an exclusive lock on users, so the plugin's insert waits until its timeout.
  std::unique_ptr<PGconn, decltype(&PQfinish)> blocker(PQconnectdb(url.c_str()), &PQfinish);
  ASSERT_EQ(PQstatus(blocker.get()), CONNECTION_OK);
  std::unique_ptr<PGresult, decltype(&PQclear)> locked(
      PQexec(blocker.get(), "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE"), &PQclear);
  ASSERT_EQ(PQresultStatus(locked.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(locked.get());
  const auto created = node->users().create_user(new_user("stuck@example.com"));
  EXPECT_EQ(created.status().code(), StatusCode::kUnavailable) << created.status().to_string();
  PQclear(PQexec(blocker.get(), "ROLLBACK"));
  EXPECT_TRUE(node->users().create_user(new_user("stuck@example.com")).ok());
}

TEST(PostgresPlugin, TwoNodesMigratingAtOnceApplyEachMigrationOnce) {
  const std::string url = fresh_database();
  constexpr int kNodes = 4;
  std::vector<std::unique_ptr<Node>> nodes;
  for (int i = 0; i < kNodes; ++i)
    nodes.push_back(std::make_unique<Node>(nlohmann::json{{"url", url}}));
  std::latch start(kNodes);
  std::vector<std::thread> threads;
  std::vector<sdk::Status> results(kNodes);
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[static_cast<std::size_t>(i)] = nodes[static_cast<std::size_t>(i)]->open();
    });
  }
  for (auto& t : threads)
    t.join();
  for (const auto& status : results)
    EXPECT_TRUE(status.ok()) << status.to_string();
  auto schema = (*nodes[0])->schema_status();
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(schema->current_version, schema->supported_version);
  EXPECT_EQ(
      query(url,
            "SELECT count(*) = count(DISTINCT version) AND count(*) = max(version) FROM schema_migrations"),
      "t");
}

// Migration 2 on a database written by the initial schema, where deleting a user left its LLM request
// records behind with user_id NULL: with auto_migrate off the upgrade waits for migrate(), which removes
// those rows and makes deleting a user delete its records from then on. Migration 4 then gives the
// records kept the accounting fields' "nothing known" values.
TEST(PostgresPlugin, MigrationTwoRemovesLlmRequestsOrphanedByTheInitialSchema) {
  const std::string url = fresh_database();
  std::string kept_id;
  {
    Node node(nlohmann::json{{"url", url}});
    ASSERT_TRUE(node.open().ok());
    auto gone = node->users().create_user(new_user("orphan@example.com"));
    auto kept = node->users().create_user(new_user("kept@example.com"));
    ASSERT_TRUE(gone.ok() && kept.ok());
    kept_id = kept->id;
    for (const auto& id : {gone->id, kept->id}) {
      ASSERT_TRUE(
          node->llm_requests()
              .record_llm_request(sdk::NewLlmRequest{id, "", "", "openai", "gpt", "", 1, 2, 3, "ok", ""})
              .ok());
    }
    // Back to what version 1 left: SET NULL on user deletion, and a deleted user's orphaned row.
    execute(url,
            "ALTER TABLE llm_requests DROP CONSTRAINT llm_requests_user_id_fkey;"
            "ALTER TABLE llm_requests ALTER COLUMN user_id DROP NOT NULL;"
            "ALTER TABLE llm_requests ADD CONSTRAINT llm_requests_user_id_fkey FOREIGN KEY (user_id) "
            "  REFERENCES users (id) ON DELETE SET NULL;"
            "DROP TABLE leases;"
            "DROP INDEX llm_requests_by_time;"
            "ALTER TABLE llm_requests DROP COLUMN step_id, DROP COLUMN cached_prompt_tokens,"
            "  DROP COLUMN cache_write_tokens, DROP COLUMN usage_estimated,"
            "  DROP COLUMN time_to_first_token_ms, DROP COLUMN cost_micro_usd, DROP COLUMN attempt;"
            "DELETE FROM schema_migrations WHERE version > 1;");
    execute(url, "DELETE FROM users WHERE id = '" + gone->id + "'");
  }
  ASSERT_EQ(query(url, "SELECT count(*) FROM llm_requests WHERE user_id IS NULL"), "1");

  Node node(nlohmann::json{{"url", url}, {"auto_migrate", false}});
  ASSERT_TRUE(node.open().ok());
  auto pending = node->schema_status();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->current_version, 1);
  EXPECT_EQ(pending->supported_version, 4);
  bool warned = false;
  for (const auto& line : node.host.logs())
    warned |= line.level == sdk::LogLevel::kWarn &&
              line.message.find("3 schema migration(s) pending") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_EQ(query(url, "SELECT count(*) FROM llm_requests WHERE user_id IS NULL"), "1");

  ASSERT_TRUE(node->migrate().ok());
  auto migrated = node->schema_status();
  ASSERT_TRUE(migrated.ok());
  EXPECT_EQ(migrated->current_version, 4);
  EXPECT_EQ(query(url, "SELECT count(*) FROM llm_requests"), "1");
  auto kept_requests = node->llm_requests().list_llm_requests(kept_id, {10, ""});
  ASSERT_TRUE(kept_requests.ok()) << kept_requests.status().to_string();
  ASSERT_EQ(kept_requests->items.size(), 1u);
  const sdk::LlmRequest& old = kept_requests->items[0];
  EXPECT_EQ(old.prompt_tokens, 1);
  EXPECT_EQ(old.step_id, "");
  EXPECT_EQ(old.cached_prompt_tokens, 0);
  EXPECT_EQ(old.cache_write_tokens, 0);
  EXPECT_FALSE(old.usage_estimated);
  EXPECT_EQ(old.time_to_first_token_ms, -1);
  EXPECT_EQ(old.cost_micro_usd, 0);
  EXPECT_EQ(old.attempt, 1);
  EXPECT_EQ(query(url,
                  "SELECT is_nullable FROM information_schema.columns "
                  "WHERE table_name = 'llm_requests' AND column_name = 'user_id'"),
            "NO");
  ASSERT_TRUE(node->users().delete_user(kept_id).ok());
  EXPECT_EQ(query(url, "SELECT count(*) FROM llm_requests"), "0");
}

TEST(PostgresPlugin, WriteSkewBetweenTransactionsAbortsOne) {
  Node node(nlohmann::json{{"url", fresh_database()}});
  ASSERT_TRUE(node.open().ok());
  auto owner = node->users().create_user(new_user("owner@example.com"));
  ASSERT_TRUE(owner.ok());
  // Both transactions read the owner's projects, then each adds one: serializable execution cannot
  // allow both, so one must come back kAborted.
  std::latch have_read(2);
  auto create_if_first = [&](const std::string& name) {
    return node->transaction([&](sdk::Stores& ops) -> sdk::Status {
      auto projects = ops.projects().list_projects(owner->id, {50, ""});
      if (!projects.ok()) return projects.status();
      have_read.arrive_and_wait();
      if (!projects->items.empty()) return sdk::Status::already_exists("a project exists");
      sdk::NewProject project;
      project.owner_id = owner->id;
      project.name = name;
      return ops.projects().create_project(project).status();
    });
  };
  auto first = std::async(std::launch::async, create_if_first, "first");
  auto second = std::async(std::launch::async, create_if_first, "second");
  const auto a = first.get();
  const auto b = second.get();
  EXPECT_FALSE(a.ok() && b.ok()) << "both transactions committed";
  for (const auto& status : {a, b}) {
    EXPECT_TRUE(status.ok() || status.code() == StatusCode::kAborted) << status.to_string();
  }
  auto projects = node->projects().list_projects(owner->id, {50, ""});
  ASSERT_TRUE(projects.ok());
  EXPECT_EQ(projects->items.size(), 1u);
}

TEST(PostgresPlugin, ServerCrashLosesNoAcknowledgedWriteAndThePoolRecovers) {
  PostgresServer server;  // its own server: this test kills it
  Node node(nlohmann::json{{"url", server.url()}, {"pool_size", 4}, {"connect_timeout_ms", 2000}});
  ASSERT_TRUE(node.open().ok());

  std::atomic<bool> stop{false};
  AckCounter acknowledged_count;
  std::vector<std::vector<std::string>> acknowledged(2);
  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < acknowledged.size(); ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        auto user = node->users().create_user(
            new_user("w" + std::to_string(w) + "-" + std::to_string(i) + "@example.com"));
        if (user.ok()) {
          acknowledged[w].push_back(user->id);
          acknowledged_count.add();
        } else {
          EXPECT_EQ(user.status().code(), StatusCode::kUnavailable) << user.status().to_string();
        }
      }
    });
  }
  const bool before = acknowledged_count.wait_for(50);
  if (before) server.kill_and_restart();
  // Writers keep going against the restarted server: stale pooled connections must be replaced.
  const bool after = before && acknowledged_count.wait_for(acknowledged_count.value() + 50);
  stop = true;
  for (auto& t : writers)
    t.join();
  ASSERT_TRUE(before) << "writers made no progress before the crash";
  ASSERT_TRUE(after) << "writers made no progress after the restart";

  EXPECT_TRUE(node->health().ok());
  std::size_t checked = 0;
  for (const auto& ids : acknowledged) {
    for (const auto& id : ids) {
      EXPECT_TRUE(node->users().get_user(id).ok()) << "acknowledged user " << id << " was lost";
      ++checked;
    }
  }
  EXPECT_GE(checked, 100u);
}

TEST(PostgresPlugin, ReportsOperationMetricsThroughTheHost) {
  Node node(nlohmann::json{{"url", fresh_database()}});
  ASSERT_TRUE(node.open().ok());
  ASSERT_TRUE(node->users().create_user(new_user("m@example.com")).ok());
  EXPECT_EQ(node->users().create_user(new_user("M@example.com")).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(node.host.counter("storage_operations_total{operation=create_user,outcome=ok}"), 1.0);
  EXPECT_EQ(node.host.counter("storage_operations_total{operation=create_user,outcome=already_exists}"), 1.0);
  EXPECT_EQ(node.host.histogram_count("storage_operation_seconds{operation=create_user}"), 2u);
  EXPECT_EQ(node.host.gauge("storage_connections_in_use{pool=main}"), 0.0);
}

TEST(PostgresPlugin, BackupIsLeftToPgDump) {
  Node node(nlohmann::json{{"url", fresh_database()}});
  ASSERT_TRUE(node.open().ok());
  const auto status = node->backup("/tmp/never-written.db");
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  EXPECT_NE(status.message().find("pg_dump"), std::string::npos);
}

}  // namespace
}  // namespace samokoder::testing
