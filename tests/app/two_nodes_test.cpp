// Two nodes on one PostgreSQL and one workspace root: two Applications in this process with their
// own ports and runtime dirs, the same database, secret key and workspace root, as an operator runs
// them behind a load balancer. File writes through both race project deletions through either; each
// answer is a success or 404, and nothing of a deleted project survives, neither a file version in
// the database nor a directory or file in the shared workspace root.
#include <array>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <samokoder/sdk/storage.hpp>

#include "app/application.hpp"
#include "http_client.hpp"
#include "postgres_server.hpp"
#include "security/random.hpp"
#include "temp_dir.hpp"

namespace samokoder::app {
namespace {

using boost::beast::http::verb;
using testing::HeaderList;

constexpr const char* kPassword = "violet-anchor-47-quietly";

class TwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string url = testing::PostgresServer::shared().create_database("two_nodes");
    const std::string secret = security::random_token(48).value();
    for (std::size_t node = 0; node < nodes_.size(); ++node) {
      config::Config config;
      config.server.listen = {"127.0.0.1", 0};
      config.log.access_log = false;
      config.plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
      config.plugins.runtime_dir = dir_.path() / ("run-" + std::to_string(node));
      config.plugins.plugins = {
          {.id = "storage.postgres",
           .file = "storage_postgres.so",
           .required = true,
           .config = {{"url", url}}},
          {.id = "auth.local",
           .file = "auth_local.so",
           .required = true,
           .config = {{"memory_kib", 1024u}, {"iterations", 1u}, {"parallelism", 1u}}},
      };
      config.security.secret_key = secret;
      for (const char* group : {"auth", "default", "files"})
        config.security.rate_limits[group] = {1'000'000, 1'000'000};
      config.workspace_root = workspace_root();
      nodes_[node] = std::make_unique<Application>(std::move(config), clock_);
      const sdk::Status status = nodes_[node]->start();
      ASSERT_TRUE(status.ok()) << status.to_string();
    }
  }

  void TearDown() override {
    for (auto& node : nodes_)
      if (node) node->stop();
  }

  std::filesystem::path workspace_root() const { return dir_.path() / "workspaces"; }

  // Registers on node 0 and logs in on node 1: the token is good on both.
  std::string sign_up(const std::string& email) {
    const nlohmann::json credentials = {{"email", email}, {"password", kPassword}};
    const HeaderList json = {{"Content-Type", "application/json"}};
    testing::HttpClient first("127.0.0.1", nodes_[0]->port());
    testing::HttpClient second("127.0.0.1", nodes_[1]->port());
    const auto registered = first.request(verb::post, "/api/v1/auth/register", credentials.dump(), json);
    EXPECT_EQ(registered.status, 202u) << registered.body;
    const auto login = second.request(verb::post, "/api/v1/auth/login", credentials.dump(), json);
    EXPECT_EQ(login.status, 200u) << login.body;
    return login.status == 200 ? login.json().value("access_token", "") : std::string();
  }

  testing::TempDir dir_{"samokoder-two-nodes"};
  core::ManualClock clock_;
  std::array<std::unique_ptr<Application>, 2> nodes_;
};

TEST_F(TwoNodesTest, FileWritesRacingProjectDeletionLeaveNoErrorAndNothingBehind) {
  constexpr int kProjects = 20;
  constexpr int kProjectsAtOnce = 5;
  constexpr int kWritersPerProject = 3;
  constexpr int kWritesPerWriter = 8;
  const std::string token = sign_up("racer@example.com");
  ASSERT_FALSE(token.empty());
  const HeaderList json = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  const HeaderList bearer = {{"Authorization", "Bearer " + token}};
  const HeaderList octets = {{"Authorization", "Bearer " + token},
                             {"Content-Type", "application/octet-stream"}};

  std::vector<std::string> projects;
  testing::HttpClient creator("127.0.0.1", nodes_[0]->port());
  for (int p = 0; p < kProjects; ++p) {
    const auto created = creator.request(verb::post, "/api/v1/projects",
                                         nlohmann::json{{"name", "race-" + std::to_string(p)}}.dump(), json);
    ASSERT_EQ(created.status, 201u) << created.body;
    projects.push_back(created.json().value("id", ""));
  }

  std::atomic<int> writes_stored{0};
  std::atomic<int> writes_refused{0};
  std::vector<std::string> unexpected;  // "<request>: <status> <body>", filled after the threads joined
  for (int first = 0; first < kProjects; first += kProjectsAtOnce) {
    constexpr int kThreadsPerProject = kWritersPerProject + 1;
    std::vector<std::string> answers(kProjectsAtOnce * kThreadsPerProject);
    std::vector<std::thread> threads;
    for (int p = first; p < first + kProjectsAtOnce; ++p) {
      const std::string& id = projects[static_cast<std::size_t>(p)];
      const std::size_t base = static_cast<std::size_t>((p - first) * kThreadsPerProject);
      for (int w = 0; w < kWritersPerProject; ++w) {
        threads.emplace_back([&, id, w, slot = base + static_cast<std::size_t>(w)] {
          testing::HttpClient client("127.0.0.1", nodes_[static_cast<std::size_t>(w) % 2]->port());
          for (int i = 0; i < kWritesPerWriter; ++i) {
            const std::string target = "/api/v1/projects/" + id + "/files/w" + std::to_string(w) + "/f" +
                                       std::to_string(i % 3) + ".txt";
            const auto answer = client.request(verb::put, target, "content " + std::to_string(i), octets);
            if (answer.status == 200) {
              writes_stored.fetch_add(1);
              continue;
            }
            if (answer.status == 404) {
              writes_refused.fetch_add(1);
            } else {
              answers[slot] = "PUT " + target + ": " + std::to_string(answer.status) + " " + answer.body;
            }
            return;  // the project is gone (or the answer was wrong): this writer is done
          }
        });
      }
      threads.emplace_back([&, id, p, slot = base + kWritersPerProject] {
        testing::HttpClient client("127.0.0.1", nodes_[static_cast<std::size_t>(p) % 2]->port());
        // A read or two first, so the deletion lands among the writes rather than before them.
        for (int i = 0; i < p % 3; ++i)
          static_cast<void>(client.request(verb::get, "/api/v1/projects/" + id, "", bearer));
        const auto answer = client.request(verb::delete_, "/api/v1/projects/" + id, "", bearer);
        if (answer.status != 204 && answer.status != 404)
          answers[slot] = "DELETE " + id + ": " + std::to_string(answer.status) + " " + answer.body;
      });
    }
    for (auto& thread : threads)
      thread.join();
    for (const auto& answer : answers)
      if (!answer.empty()) unexpected.push_back(answer);
  }
  EXPECT_TRUE(unexpected.empty()) << unexpected.size()
                                  << " answers other than 200/204/404, first: " << unexpected.front();
  EXPECT_GT(writes_stored.load() + writes_refused.load(), 0);

  // The database: every project is gone, and with it every file version.
  const sdk::Status checked = nodes_[1]->storage().call<sdk::Storage>([&](sdk::Storage& s) -> sdk::Status {
    auto stats = s.stats();
    if (!stats.ok()) return stats.status();
    EXPECT_EQ(stats->projects, 0);
    EXPECT_EQ(stats->file_versions, 0);
    return {};
  });
  EXPECT_TRUE(checked.ok()) << checked.to_string();
  // The shared workspace root: no directory (nor file in one) of a deleted project.
  for (const std::string& id : projects)
    EXPECT_FALSE(std::filesystem::exists(workspace_root() / id)) << "workspace of deleted project " << id;
}

}  // namespace
}  // namespace samokoder::app
