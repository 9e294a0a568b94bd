#include "app/application.hpp"

#include <csignal>
#include <fstream>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <samokoder/sdk/storage.hpp>

#include "abi_versions.hpp"
#include "app/ops_routes.hpp"
#include "http_client.hpp"
#include "processes/child.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::app {
namespace {

using testing::HttpClient;

config::PluginEntry entry(std::string id, std::string file, bool required = false) {
  config::PluginEntry e;
  e.id = std::move(id);
  e.file = std::move(file) + ".so";
  e.required = required;
  return e;
}

// The real embedded storage backend, on a database in the test's own directory.
config::PluginEntry sqlite_entry(const std::filesystem::path& dir) {
  config::PluginEntry e;
  e.id = "storage.sqlite";
  e.file = SAMOKODER_PLUGIN_DIR "/storage_sqlite.so";
  e.required = true;
  e.config = {{"path", (dir / "samokoder.db").string()}};
  return e;
}

class ApplicationTest : public ::testing::Test {
 protected:
  void start(std::vector<config::PluginEntry> plugins) {
    plugins.insert(plugins.begin(), sqlite_entry(runtime_.path()));
    config::Config config;
    config.server.listen = {"127.0.0.1", 0};
    config.log.access_log = false;
    config.plugins.plugin_dir = SAMOKODER_FIXTURE_DIR;
    config.plugins.runtime_dir = runtime_.path();
    config.plugins.plugins = std::move(plugins);
    config.processes.state_dir = process_records();
    application_ = std::make_unique<Application>(std::move(config), clock_);
    const sdk::Status status = application_->start();
    ASSERT_TRUE(status.ok()) << status.to_string();
    client_ = std::make_unique<HttpClient>("127.0.0.1", application_->port());
  }

  std::filesystem::path process_records() const { return runtime_.path() / "processes"; }

  testing::TempDir runtime_{"samokoder-app"};
  core::SystemClock clock_;
  std::unique_ptr<Application> application_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ApplicationTest, HealthzAndReadyzAnswerWhenRequiredPluginsAreActive) {
  start({entry("agent.fixture_echo", "fixture_echo_v1", true)});
  const auto health = client_->get("/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.json()["status"], "ok");
  const auto ready = client_->get("/readyz");
  EXPECT_EQ(ready.status, 200u) << ready.body;
  EXPECT_EQ(ready.json()["status"], "ready");
}

TEST_F(ApplicationTest, ReadyzIs503WhenARequiredPluginIsNoLongerActive) {
  start({entry("agent.fixture_echo", "fixture_echo_v1", true)});
  ASSERT_TRUE(application_->plugins().unload("agent.fixture_echo").ok());
  const auto ready = client_->get("/readyz");
  EXPECT_EQ(ready.status, 503u);
  EXPECT_EQ(ready.json()["checks"][0]["plugin"], "agent.fixture_echo");
  EXPECT_EQ(ready.json()["checks"][0]["state"], "UNLOADED");
}

TEST_F(ApplicationTest, ReadyzIs503WithoutStorage) {
  start({});
  ASSERT_TRUE(application_->plugins().unload("storage.sqlite").ok());
  const auto ready = client_->get("/readyz");
  EXPECT_EQ(ready.status, 503u);
  const auto checks = ready.json()["checks"];
  ASSERT_EQ(checks.size(), 2u) << ready.body;
  EXPECT_EQ(checks[1]["check"], "storage");
  EXPECT_EQ(checks[1]["detail"], "no storage plugin is active");
}

// A server killed with -9 left a child running; the next start ends it before plugins load.
TEST_F(ApplicationTest, StartEndsTheChildrenAnEarlierRunLeft) {
  const pid_t orphan = ::fork();
  ASSERT_GE(orphan, 0);
  if (orphan == 0) {
    ::setsid();
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::uint64_t start_time = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto fields = processes::stat_fields(orphan);
        start_time = processes::process_start_time(orphan);
        return fields.size() > 1 && start_time != 0;
      },
      std::chrono::seconds(5)));
  std::filesystem::create_directories(process_records());
  // Written by a server that is gone: its start time is not the one its pid has now.
  std::ofstream(process_records() / (std::to_string(orphan) + "-" + std::to_string(start_time) + ".child"))
      << orphan << ' ' << start_time << " agent.old#1 " << ::getpid() << " 1\n";

  start({});
  int status = 0;
  ASSERT_TRUE(testing::wait_until([&] { return ::waitpid(orphan, &status, WNOHANG) == orphan; },
                                  std::chrono::seconds(5)));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(std::filesystem::is_empty(process_records()));
}

TEST_F(ApplicationTest, StorageIsTheEmbeddedSqliteBackendAndAnswers) {
  start({});
  auto lease = application_->storage();
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease.generation().descriptor().id, "storage.sqlite");
  EXPECT_TRUE(application_->storage_health().ok());
  EXPECT_TRUE(std::filesystem::exists(runtime_.path() / "samokoder.db"));
}

TEST_F(ApplicationTest, PluginsApiShowsEveryPluginWithStateReasonGenerationAndDigest) {
  start({entry("agent.fixture_echo", "fixture_echo_v1", true),
         entry("agent.fixture_abi_major", "fixture_abi_major"), entry("auth.fixture", "fixture_auth")});
  const auto list = client_->get("/api/v1/plugins");
  ASSERT_EQ(list.status, 200u);
  auto items = list.json()["items"];
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0]["id"], "storage.sqlite");
  EXPECT_EQ(items[0]["state"], "ACTIVE");
  items.erase(0);
  EXPECT_EQ(items[0]["id"], "agent.fixture_echo");
  EXPECT_EQ(items[0]["kind"], "agent");
  EXPECT_EQ(items[0]["version"], "1.0.0");
  EXPECT_EQ(items[0]["state"], "ACTIVE");
  EXPECT_EQ(items[0]["generation"], 1);
  EXPECT_EQ(items[0]["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(items[0]["failure_reason"].is_null());
  EXPECT_EQ(items[1]["state"], "FAILED");
  EXPECT_EQ(items[1]["failure_reason"], "abi_major");
  EXPECT_FALSE(items[1].contains("failure_message")) << "the failure text is for admins only";
  const auto failed = application_->plugins().find("agent.fixture_abi_major");
  ASSERT_TRUE(failed);
  EXPECT_NE(plugin_to_json(*failed, PluginView::kAdmin)["failure_message"].get<std::string>().find(
                testing::next_major_refusal()),
            std::string::npos);
  EXPECT_EQ(items[2]["state"], "ACTIVE");

  const auto one = client_->get("/api/v1/plugins/auth.fixture");
  ASSERT_EQ(one.status, 200u);
  EXPECT_EQ(one.json()["id"], "auth.fixture");
  EXPECT_EQ(one.json()["kind"], "auth");

  const auto missing = client_->get("/api/v1/plugins/agent.nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.header("Content-Type"), "application/problem+json");
  EXPECT_NE(missing.json()["detail"].get<std::string>().find("agent.nope"), std::string::npos);
}

TEST_F(ApplicationTest, MetricsShowPluginStatesLoadFailuresAndRequests) {
  start({entry("agent.fixture_echo", "fixture_echo_v1"),
         entry("agent.fixture_fingerprint", "fixture_fingerprint")});
  ASSERT_EQ(client_->get("/healthz").status, 200u);
  const auto metrics = client_->get("/metrics");
  ASSERT_EQ(metrics.status, 200u);
  EXPECT_EQ(metrics.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = metrics.body;
  EXPECT_NE(text.find("samokoder_plugin_state{plugin=\"agent.fixture_echo\",state=\"ACTIVE\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("samokoder_plugin_state{plugin=\"agent.fixture_fingerprint\",state=\"FAILED\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("samokoder_plugin_load_failures_total{reason=\"fingerprint\"} 1"), std::string::npos);
  EXPECT_NE(text.find("samokoder_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("samokoder_http_request_duration_seconds_bucket{route=\"/healthz\""),
            std::string::npos);
}

TEST_F(ApplicationTest, RequiredPluginFailureStopsStartupWithItsReason) {
  config::Config config;
  config.server.listen = {"127.0.0.1", 0};
  config.plugins.plugin_dir = SAMOKODER_FIXTURE_DIR;
  config.plugins.runtime_dir = runtime_.path();
  config.plugins.plugins = {sqlite_entry(runtime_.path()),
                            entry("agent.fixture_init_error", "fixture_init_error", true)};
  Application application(std::move(config), clock_);
  const sdk::Status status = application.start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("fixture: the api_key setting is missing"), std::string::npos)
      << status.message();
  EXPECT_EQ(application.port(), 0u);
}

TEST_F(ApplicationTest, AnUnreadableExtraCaFileStopsStartup) {
  config::Config config;
  config.server.listen = {"127.0.0.1", 0};
  config.plugins.plugin_dir = SAMOKODER_FIXTURE_DIR;
  config.plugins.runtime_dir = runtime_.path();
  config.plugins.plugins = {sqlite_entry(runtime_.path())};
  config.http_client.extra_ca_file = (runtime_.path() / "no-such-ca.pem").string();
  Application application(std::move(config), clock_);
  const sdk::Status status = application.start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("http_client.extra_ca_file"), std::string::npos) << status.message();
  EXPECT_EQ(application.port(), 0u);
}

}  // namespace
}  // namespace samokoder::app

namespace samokoder::app {
namespace {

TEST(ApplicationWatch, ChangedPluginFileIsReloadedWhenWatchIsOn) {
  testing::TempDir dir("samokoder-watch");
  const auto file = dir.path() / "agent_echo.so";
  std::filesystem::copy_file(SAMOKODER_FIXTURE_DIR "/fixture_echo_v1.so", file);
  config::Config config;
  config.server.listen = {"127.0.0.1", 0};
  config.log.access_log = false;
  config.plugins.runtime_dir = dir.path() / "run";
  config.plugins.watch = true;
  config::PluginEntry echo;
  echo.id = "agent.fixture_echo";
  echo.file = file.string();
  config.plugins.plugins = {sqlite_entry(dir.path()), echo};
  core::SystemClock clock;
  Application application(std::move(config), clock);
  ASSERT_TRUE(application.start().ok());
  ASSERT_EQ(application.plugins().find("agent.fixture_echo")->version, "1.0.0");

  // A build replaces the file by rename, as compilers and `install` do.
  std::filesystem::copy_file(SAMOKODER_FIXTURE_DIR "/fixture_echo_v2.so", dir.path() / "next.so");
  std::filesystem::rename(dir.path() / "next.so", file);
  EXPECT_TRUE(testing::wait_until(
      [&] { return application.plugins().find("agent.fixture_echo")->version == "2.0.0"; },
      std::chrono::seconds(20)))
      << "the watcher did not reload the replaced file";
  const auto plugin = application.plugins().find("agent.fixture_echo");
  EXPECT_EQ(plugin->version, "2.0.0");
  EXPECT_EQ(plugin->generation, 2u);
  // Audited like an admin's reload, with the watcher as what started it.
  sdk::AuditFilter filter;
  filter.action = "plugin.reloaded";
  std::vector<sdk::AuditEvent> events;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        auto page = application.storage().call<sdk::Storage>(
            [&](sdk::Storage& s) { return s.audit().list_audit_events(filter, sdk::PageRequest{}); });
        if (page.ok()) events = page->items;
        return events.size() == 1;
      },
      std::chrono::seconds(20)));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].target, "agent.fixture_echo");
  EXPECT_EQ(events[0].source_address, "file_watcher");
  EXPECT_EQ(events[0].detail["trigger"], "file_watcher");
  EXPECT_EQ(events[0].detail["generation"], 2);
}

}  // namespace
}  // namespace samokoder::app
