// Housekeeping in the assembled kernel, on both storage backends: passes run on their own, purge what
// expired and what a deleted project left, stand aside while another node holds the lease, and never
// hold up shutdown for the rest of the interval.
#include <atomic>
#include <sstream>

#include <gtest/gtest.h>

#include <samokoder/sdk/storage.hpp>

#include "app/application.hpp"
#include "postgres_server.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::app {
namespace {

using namespace std::chrono_literals;

class HousekeepingAppTest : public ::testing::TestWithParam<std::string> {
 protected:
  void start(config::HousekeepingConfig housekeeping) {
    config::PluginEntry storage;
    storage.required = true;
    if (GetParam() == "sqlite") {
      storage.id = "storage.sqlite";
      storage.file = "storage_sqlite.so";
      storage.config = {{"path", (dir_.path() / "samokoder.db").string()}};
    } else {
      static std::atomic<int> databases{0};
      storage.id = "storage.postgres";
      storage.file = "storage_postgres.so";
      storage.config = {{"url", testing::PostgresServer::shared().create_database(
                                    "housekeeping_" + std::to_string(databases.fetch_add(1)))}};
    }
    config::Config config;
    config.server.listen = {"127.0.0.1", 0};
    config.log.access_log = false;
    config.plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
    config.plugins.runtime_dir = dir_.path() / "run";
    config.plugins.plugins = {storage};
    config.workspace_root = dir_.path() / "workspaces";
    config.housekeeping = housekeeping;
    app_ = std::make_unique<Application>(std::move(config), clock_);
    const sdk::Status status = app_->start();
    ASSERT_TRUE(status.ok()) << status.to_string();
  }

  void TearDown() override {
    if (app_) app_->stop();
  }

  // A pass every second, no jitter: the tests see several passes within their deadlines.
  static config::HousekeepingConfig every_second() {
    config::HousekeepingConfig housekeeping;
    housekeeping.interval_seconds = 1;
    housekeeping.jitter_seconds = 0;
    return housekeeping;
  }

  template <typename F>
  auto with_storage(F&& fn) {
    return app_->storage().call<sdk::Storage>(std::forward<F>(fn));
  }

  // A new user and a session of theirs that expires at `expires_at`.
  static sdk::Result<sdk::Session> user_with_session(sdk::Storage& s, const std::string& email,
                                                     sdk::Timestamp expires_at) {
    auto user = s.users().create_user(sdk::NewUser{email, "", false, "free"});
    if (!user.ok()) return user.status();
    return s.sessions().create_session(sdk::NewSession{user->id, "127.0.0.1", "test", expires_at});
  }

  // The value of one sample of /metrics, e.g. `samokoder_housekeeping_passes_total{outcome="ran"}`; 0 when
  // absent.
  double metric(const std::string& series) const {
    std::istringstream text(app_->metrics().render());
    for (std::string line; std::getline(text, line);) {
      if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
          line[series.size()] == ' ')
        return std::stod(line.substr(series.size() + 1));
    }
    return 0;
  }
  static std::string purged(const std::string& kind) {
    return "samokoder_housekeeping_rows_purged_total{kind=\"" + kind + "\"}";
  }
  static std::string passes(const std::string& outcome) {
    return "samokoder_housekeeping_passes_total{outcome=\"" + outcome + "\"}";
  }

  // Polls until `done` holds, for at most 30 s.
  template <typename F>
  static bool eventually(F&& done) {
    return testing::wait_until(std::forward<F>(done), 30s);
  }

  testing::TempDir dir_{"samokoder-housekeeping"};
  core::ManualClock clock_;
  std::unique_ptr<Application> app_;
};

INSTANTIATE_TEST_SUITE_P(Backends, HousekeepingAppTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& backend) { return backend.param; });

TEST_P(HousekeepingAppTest, PassesPurgeWhatExpiredAndTheContentOfADeletedProject) {
  ASSERT_NO_FATAL_FAILURE(start(every_second()));
  std::string session_id;
  const auto seeded = with_storage([&](sdk::Storage& s) -> sdk::Status {
    auto session = user_with_session(s, "old@example.com", clock_.now() + 1h);
    if (!session.ok()) return session.status();
    session_id = session->id;
    SAMOKODER_RETURN_IF_ERROR(s.token_revocations().revoke_token_id("jti-1", clock_.now() + 1h, "logout"));
    SAMOKODER_RETURN_IF_ERROR(s.login_attempts().record_login_attempt(
        sdk::LoginAttempt{"old@example.com", "127.0.0.1", false, ""}));
    auto project = s.projects().create_project(sdk::NewProject{session->user_id, "doomed", ""});
    if (!project.ok()) return project.status();
    auto file = s.files().put_file(session->user_id, project->id, "src/main.cpp",
                                   "content of the deleted project only", "");
    if (!file.ok()) return file.status();
    return s.projects().delete_project(session->user_id, project->id);
  });
  ASSERT_TRUE(seeded.ok()) << seeded.to_string();
  EXPECT_EQ(metric(purged("sessions")), 0);
  // Past the session's and the revocation's expiry, and past the login-attempt retention.
  clock_.advance(8 * 24h);

  // A pass counts itself once its purges are counted: wait for both.
  ASSERT_TRUE(eventually([&] {
    return metric(purged("sessions")) >= 1 && metric(purged("token_revocations")) >= 1 &&
           metric(purged("login_attempts")) >= 1 && metric(purged("blobs")) >= 1 &&
           metric(passes("ran")) >= 1;
  })) << app_->metrics().render();
  EXPECT_EQ(metric(purged("sessions")), 1);
  EXPECT_EQ(metric(purged("token_revocations")), 1);
  EXPECT_EQ(metric(purged("login_attempts")), 1);
  EXPECT_EQ(metric(purged("blobs")), 1);
  EXPECT_EQ(metric(passes("failed")), 0);

  auto stats = with_storage([](sdk::Storage& s) { return s.stats(); });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->blobs, 0);
  EXPECT_EQ(stats->file_versions, 0);
  EXPECT_EQ(
      with_storage([&](sdk::Storage& s) { return s.sessions().get_session(session_id); }).status().code(),
      sdk::StatusCode::kNotFound);
  auto revoked =
      with_storage([](sdk::Storage& s) { return s.token_revocations().is_token_id_revoked("jti-1"); });
  ASSERT_TRUE(revoked.ok());
  EXPECT_FALSE(*revoked);
}

// Another node holding the lease: this one skips its passes and purges nothing, until the lease is free.
TEST_P(HousekeepingAppTest, PassesStandAsideWhileAnotherNodeHoldsTheLease) {
  ASSERT_NO_FATAL_FAILURE(start(every_second()));
  // Take the lease as another node would. A pass of ours holds it for one (manual) second after it ran:
  // move past that, and try again if one slips in between.
  ASSERT_TRUE(eventually([&] {
    clock_.advance(2s);
    auto taken = with_storage([&](sdk::Storage& s) {
      return s.leases().try_acquire_lease(Housekeeping::kLeaseName, "other-node", clock_.now() + 1h);
    });
    return taken.ok() && *taken;
  }));
  auto session = with_storage(
      [&](sdk::Storage& s) { return user_with_session(s, "idle@example.com", clock_.now() + 1min); });
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  const std::string session_id = session->id;
  clock_.advance(2min);  // the session expired; the other node's lease has not
  const double skipped = metric(passes("skipped"));
  ASSERT_TRUE(eventually([&] { return metric(passes("skipped")) >= skipped + 2; }))
      << app_->metrics().render();
  EXPECT_EQ(metric(purged("sessions")), 0);
  EXPECT_TRUE(with_storage([&](sdk::Storage& s) { return s.sessions().get_session(session_id); }).ok());

  ASSERT_TRUE(with_storage([](sdk::Storage& s) {
                return s.leases().release_lease(Housekeeping::kLeaseName, "other-node");
              }).ok());
  ASSERT_TRUE(eventually([&] { return metric(purged("sessions")) >= 1; })) << app_->metrics().render();
  EXPECT_EQ(
      with_storage([&](sdk::Storage& s) { return s.sessions().get_session(session_id); }).status().code(),
      sdk::StatusCode::kNotFound);
}

TEST_P(HousekeepingAppTest, ShutdownDoesNotWaitForTheInterval) {
  config::HousekeepingConfig daily;
  daily.interval_seconds = 24 * 3600;
  daily.jitter_seconds = 3600;
  ASSERT_NO_FATAL_FAILURE(start(daily));
  // The component is there, and its thread waits a day or more for its first pass; stopping must wake it.
  const std::string metrics = app_->metrics().render();
  EXPECT_NE(metrics.find(passes("ran") + " 0\n"), std::string::npos) << metrics;
  const auto before = std::chrono::steady_clock::now();
  app_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
}

}  // namespace
}  // namespace samokoder::app
