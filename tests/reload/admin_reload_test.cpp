// The reload triggers of docs/ops.md over the admin API, against the real kernel: reload, enable,
// disable and config reload are admin-only, audited, refuse what would break the server, and an auth
// plugin reload under load fails no request and logs nobody out.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include <samokoder/sdk/storage.hpp>

#include "core/logging.hpp"
#include "security_fixture.hpp"
#include "wait_until.hpp"

namespace samokoder::security_test {
namespace {

using boost::beast::http::verb;

// The fixture's raised rate limits, so that a config file read by a reload differs from the running
// config only where a test means it to.
constexpr const char* kFixtureSecurity =
    R"("security": {"rate_limits": {"auth": {"capacity": 1000000, "refill_per_minute": 1000000},
                                    "default": {"capacity": 1000000, "refill_per_minute": 1000000}}})";
const std::string kFixtureMembers =
    std::string(R"("server": {"listen": "127.0.0.1:0"}, "log": {"access_log": false}, )") + kFixtureSecurity;

class AdminReloadTest : public SecurityApiTest {
 protected:
  // An admin's bearer token (signed in again after the promotion, so the session carries "admin").
  std::string admin_token() {
    const Login first = sign_up("root@example.com");
    make_admin(first.user_id);
    const auto again = login("root@example.com");
    EXPECT_EQ(again.status, 200u) << again.body;
    return again.json()["access_token"];
  }
  ClientResponse admin_post(const std::string& token, const std::string& path) {
    return send(verb::post, path, "", bearer(token));
  }
  // Writes the fixture's config as the file a reload reads: `members` are the top-level members ahead
  // of the plugin list (kFixtureMembers is what the fixture runs on), `memory_kib` is auth.local's
  // setting and `apitoken` the members of auth.apitoken's entry after its id.
  std::filesystem::path write_config(const std::string& members, int memory_kib = 1024,
                                     const std::string& apitoken = R"("file": "auth_apitoken.so")") {
    const auto file = dir_.path() / "samokoder.json";
    std::ofstream out(file);
    out << "{" << members << R"(, "plugin_dir": ")" SAMOKODER_PLUGIN_DIR R"(", "runtime_dir": ")"
        << (dir_.path() / "run").string() << R"(", "plugins": [
      {"id": "storage.sqlite", "file": "storage_sqlite.so", "required": true,
       "config": {"path": ")"
        << (dir_.path() / "samokoder.db").string() << R"("}},
      {"id": "auth.local", "file": "auth_local.so", "required": true,
       "config": {"memory_kib": )"
        << memory_kib << R"(, "iterations": 1, "parallelism": 1}},
      {"id": "auth.apitoken", )"
        << apitoken << "}]}";
    return file;
  }
  // Starts the fixture's kernel with `file` as its config's source, so reloads read it.
  void start_from(const std::filesystem::path& file) {
    start([&](config::Config& config) { config.source = file; });
  }
};

TEST_F(AdminReloadTest, ReloadIsAdminOnlyAuditedAndShowsTheNewGeneration) {
  start();
  const std::string admin = admin_token();
  const Login user = sign_up("user@example.com");
  EXPECT_EQ(admin_post(user.access_token, "/api/v1/admin/plugins/auth.apitoken/reload").status, 403u);
  EXPECT_EQ(send(verb::post, "/api/v1/admin/plugins/auth.apitoken/reload", "", {}).status, 401u);

  const auto reloaded = admin_post(admin, "/api/v1/admin/plugins/auth.apitoken/reload");
  ASSERT_EQ(reloaded.status, 200u) << reloaded.body;
  EXPECT_EQ(reloaded.json()["generation"], 2);
  EXPECT_TRUE(reloaded.json()["previous_unmapped"].get<bool>());
  EXPECT_GE(reloaded.json()["swap_ms"].get<double>(), 0.0);
  const auto plugin = get("/api/v1/plugins/auth.apitoken").json();
  EXPECT_EQ(plugin["generation"], 2);
  EXPECT_EQ(plugin["state"], "ACTIVE");
  EXPECT_EQ(audit_events(admin, "action=plugin.reloaded").size(), 1u);

  EXPECT_EQ(admin_post(admin, "/api/v1/admin/plugins/agent.nope/reload").status, 404u);
}

// Polls with a deadline generous enough for a shared CPU.
template <typename F>
bool eventually(F condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A reload runs on the plugin pool: one stuck in the new generation's init (the fixture blocks until
// released) leaves request work answering, and the kernel's shutdown returns in bounded time, names the
// call, and keeps what the call still uses, so it completes safely when it finally returns.
TEST_F(AdminReloadTest, AReloadStuckInInitBlocksNeitherRequestsNorShutdown) {
  const auto blocking_dir = dir_.path() / "blocking";
  std::filesystem::create_directories(blocking_dir);
  start([&](config::Config& config) {
    config.server.shutdown_grace_ms = 300;
    config.server.request_pool.threads = 1;
    config.server.plugin_pool.threads = 1;
    config::PluginEntry blocking;
    blocking.id = "agent.fixture_blocking";
    blocking.file = SAMOKODER_FIXTURE_DIR "/fixture_blocking.so";
    blocking.config = {{"dir", blocking_dir.string()}};
    config.plugins.plugins.push_back(blocking);
  });
  const std::string admin = admin_token();
  std::ofstream(blocking_dir / "block_init").put('1');
  auto stuck = std::async(std::launch::async, [port = app_->port(), headers = bearer(admin)] {
    testing::HttpClient client("127.0.0.1", port, std::chrono::milliseconds(60000));
    return client.request(verb::post, "/api/v1/admin/plugins/agent.fixture_blocking/reload", "", headers);
  });
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(blocking_dir / "init_entered"); }));

  // Request work (storage, hashing) goes on while the only plugin-pool thread is stuck.
  const Login user = sign_up("user@example.com");
  EXPECT_FALSE(user.access_token.empty());
  EXPECT_EQ(get("/api/v1/plugins/agent.fixture_blocking", bearer(user.access_token)).status, 200u);

  const auto began = std::chrono::steady_clock::now();
  app_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10)) << "the grace is 300 ms";
  EXPECT_THROW(stuck.get(), std::runtime_error);
  ASSERT_EQ(app_->unfinished_calls().size(), 1u);
  const auto& call = app_->unfinished_calls()[0];
  EXPECT_EQ(call.pool, "plugin");
  EXPECT_EQ(call.what, "POST /api/v1/admin/plugins/{id}/reload");
  EXPECT_EQ(call.plugin, "agent.fixture_blocking");

  // Released, the reload finishes in the manager and the API context kept for it, down to its audit
  // record, although the kernel stopped.
  std::ofstream(blocking_dir / "release").put('1');
  EXPECT_TRUE(eventually([&] { return std::filesystem::exists(blocking_dir / "init_returned"); }));
  EXPECT_TRUE(eventually([&] {
    sdk::AuditFilter filter;
    filter.action = "plugin.reloaded";
    auto page = app_->storage().call<sdk::Storage>(
        [&](sdk::Storage& s) { return s.audit().list_audit_events(filter, sdk::PageRequest{}); });
    return page.ok() && page->items.size() == 1;
  }));
  EXPECT_EQ(app_->plugins().find("agent.fixture_blocking")->generation, 2u);
}

TEST_F(AdminReloadTest, DisablingTheOnlyStorageIsRefusedAndOthersToggle) {
  start();
  const std::string admin = admin_token();
  const auto refused = admin_post(admin, "/api/v1/admin/plugins/storage.sqlite/disable");
  EXPECT_EQ(refused.status, 409u) << refused.body;
  EXPECT_NE(refused.json()["detail"].get<std::string>().find("only active storage backend"),
            std::string::npos);
  EXPECT_EQ(get("/api/v1/plugins/storage.sqlite").json()["state"], "ACTIVE");

  const auto disabled = admin_post(admin, "/api/v1/admin/plugins/auth.apitoken/disable");
  ASSERT_EQ(disabled.status, 200u) << disabled.body;
  EXPECT_EQ(disabled.json()["plugin"]["state"], "DISABLED");
  const auto enabled = admin_post(admin, "/api/v1/admin/plugins/auth.apitoken/enable");
  ASSERT_EQ(enabled.status, 200u) << enabled.body;
  EXPECT_EQ(enabled.json()["plugin"]["state"], "ACTIVE");
  EXPECT_EQ(audit_events(admin, "action=plugin.disabled").size(), 1u);
  EXPECT_EQ(audit_events(admin, "action=plugin.enabled").size(), 1u);
}

TEST_F(AdminReloadTest, ConfigReloadAppliesTheFileOrRejectsItWhole) {
  start_from(write_config(kFixtureMembers, 1024, R"("file": "auth_apitoken.so", "enabled": false)"));
  const std::string admin = admin_token();
  ASSERT_EQ(get("/api/v1/plugins/auth.apitoken").json()["state"], "ACTIVE");

  const auto applied = admin_post(admin, "/api/v1/admin/config/reload");
  ASSERT_EQ(applied.status, 200u) << applied.body;
  EXPECT_EQ(applied.json()["changes"], nlohmann::json::array({"disabled auth.apitoken"}));
  EXPECT_EQ(get("/api/v1/plugins/auth.apitoken").json()["state"], "DISABLED");

  write_config(kFixtureMembers, 1024, R"("file": "auth_apitoken.so", "enabled": false, "colour": "red")");
  const auto rejected = admin_post(admin, "/api/v1/admin/config/reload");
  EXPECT_EQ(rejected.status, 400u) << rejected.body;
  EXPECT_NE(rejected.json()["detail"].get<std::string>().find("/plugins/2/colour"), std::string::npos)
      << rejected.body;
  EXPECT_EQ(get("/api/v1/plugins/auth.local").json()["generation"], 1) << "a rejected file changes nothing";
  EXPECT_EQ(audit_events(admin, "action=config.reload_rejected").size(), 1u);
}

// A reload applies what the running server can take (the log level, a plugin's new config, reloaded
// with hand-over and audited with its trigger) and names what waits for a restart, in the answer and
// the audit record; the next reload names it again until the restart.
TEST_F(AdminReloadTest, ConfigReloadAppliesLiveSettingsAndNamesThoseThatNeedARestart) {
  auto members = [](const std::string& log_level, const std::string& io_threads) {
    return R"("server": {"listen": "127.0.0.1:0", "io_threads": )" + io_threads +
           R"(}, "log": {"access_log": false, "level": ")" + log_level + R"("}, )" + kFixtureSecurity;
  };
  start_from(write_config(members("info", "2")));
  const std::string admin = admin_token();
  ASSERT_FALSE(core::logger("kernel")->should_log(spdlog::level::debug));

  write_config(members("debug", "3"), 2048);
  const auto applied = admin_post(admin, "/api/v1/admin/config/reload");
  ASSERT_EQ(applied.status, 200u) << applied.body;
  EXPECT_EQ(applied.json()["applied"], nlohmann::json::array({"log.level"})) << applied.body;
  EXPECT_EQ(applied.json()["restart_required"], nlohmann::json::array({"server.io_threads"})) << applied.body;
  EXPECT_TRUE(core::logger("kernel")->should_log(spdlog::level::debug))
      << "the new log level was not applied";
  EXPECT_EQ(get("/api/v1/plugins/auth.local").json()["generation"], 2) << "the changed plugin config";

  const auto reloaded = audit_events(admin, "action=config.reloaded");
  ASSERT_EQ(reloaded.size(), 1u);
  EXPECT_EQ(reloaded[0]["detail"]["trigger"], "admin_api");
  EXPECT_EQ(reloaded[0]["detail"]["restart_required"], nlohmann::json::array({"server.io_threads"}));
  const auto plugin_reloads = audit_events(admin, "action=plugin.reloaded");
  ASSERT_EQ(plugin_reloads.size(), 1u);
  EXPECT_EQ(plugin_reloads[0]["target"], "auth.local");
  EXPECT_EQ(plugin_reloads[0]["detail"]["trigger"], "admin_api");
  EXPECT_EQ(plugin_reloads[0]["detail"]["generation"], 2);

  // The same file again: nothing more to apply, the restart still pending. A reload started by SIGHUP
  // (what `samokoder serve` calls on the signal) is audited with that trigger.
  auto again = app_->reload_config_file({"", "sighup", "sighup"});
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(again->restart_required, std::vector<std::string>{"server.io_threads"});
  const auto by_signal = audit_events(admin, "action=config.reloaded");
  ASSERT_EQ(by_signal.size(), 2u);
  // Both were recorded in the same instant of the test's clock, so their order is not defined.
  std::set<std::string> triggers;
  for (const auto& event : by_signal)
    triggers.insert(event["detail"]["trigger"].get<std::string>());
  EXPECT_EQ(triggers, (std::set<std::string>{"admin_api", "sighup"}));
  core::init_logging(config::LogConfig{});  // other tests expect the default level
}

// Security settings are read per request from what the last reload put in force: after a reload a
// login gets the new access-token lifetime, and the tightened auth rate limit refuses the third login.
TEST_F(AdminReloadTest, ConfigReloadPutsSecuritySettingsInForceForTheNextRequest) {
  start_from(write_config(kFixtureMembers));
  const std::string admin = admin_token();
  sign_up("user@example.com");
  const auto before = login("user@example.com");
  ASSERT_EQ(before.status, 200u) << before.body;
  EXPECT_EQ(before.json()["expires_in"], 900);

  write_config(R"("server": {"listen": "127.0.0.1:0"}, "log": {"access_log": false},
      "security": {"access_token_ttl_seconds": 120,
                   "rate_limits": {"auth": {"capacity": 2, "refill_per_minute": 1},
                                   "default": {"capacity": 1000000, "refill_per_minute": 1000000}}})");
  const auto reloaded = admin_post(admin, "/api/v1/admin/config/reload");
  ASSERT_EQ(reloaded.status, 200u) << reloaded.body;
  EXPECT_EQ(reloaded.json()["applied"],
            nlohmann::json::array({"security.access_token_ttl_seconds", "security.rate_limits"}))
      << reloaded.body;
  EXPECT_EQ(reloaded.json()["restart_required"], nlohmann::json::array()) << reloaded.body;

  const auto after = login("user@example.com");
  ASSERT_EQ(after.status, 200u) << after.body;
  EXPECT_EQ(after.json()["expires_in"], 120) << "the new access_token_ttl_seconds was not applied";
  EXPECT_EQ(login("user@example.com").status, 200u);
  // The test's clock stands still, so the new bucket of 2 does not refill.
  const auto refused = login("user@example.com");
  EXPECT_EQ(refused.status, 429u) << "the new auth rate limit was not applied: " << refused.body;
  // Other groups kept their buckets and limits.
  EXPECT_EQ(get("/api/v1/auth/me", bearer(after.json()["access_token"])).status, 200u);
}

// What cannot change while the server runs is named, in the answer and the audit record, and left as
// it was: the server keeps listening where it did.
TEST_F(AdminReloadTest, ConfigReloadNamesTheListenerAndTheWorkspaceRootAsNeedingARestart) {
  start_from(write_config(kFixtureMembers));
  const std::string admin = admin_token();
  write_config(R"("server": {"listen": "127.0.0.1:9"}, "log": {"access_log": false}, "workspace_root": ")" +
               (dir_.path() / "elsewhere").string() + R"(", )" + kFixtureSecurity);
  const auto reloaded = admin_post(admin, "/api/v1/admin/config/reload");
  ASSERT_EQ(reloaded.status, 200u) << reloaded.body;
  const auto restart = nlohmann::json::array({"server.listen", "workspace_root"});
  EXPECT_EQ(reloaded.json()["restart_required"], restart) << reloaded.body;
  EXPECT_EQ(reloaded.json()["applied"], nlohmann::json::array()) << reloaded.body;
  const auto changes = reloaded.json()["changes"].dump();
  EXPECT_NE(changes.find("server.listen: changed in the file; takes effect after a restart"),
            std::string::npos)
      << changes;
  const auto audited = audit_events(admin, "action=config.reloaded");
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_EQ(audited[0]["actor_id"], get("/api/v1/auth/me", bearer(admin)).json()["id"]);
  EXPECT_EQ(audited[0]["detail"]["restart_required"], restart);
  EXPECT_EQ(audited[0]["detail"]["trigger"], "admin_api");
  EXPECT_EQ(get("/healthz").status, 200u) << "still serving on the old address";
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "elsewhere"));
}

// A plugin reload that a config change starts is audited like an admin's reload, failed or not, with
// what started it: the admin (trigger admin_api) or the signal (trigger sighup, no actor).
TEST_F(AdminReloadTest, PluginReloadsStartedByAConfigChangeAreAuditedWithTheirTrigger) {
  start_from(write_config(kFixtureMembers));
  const std::string admin = admin_token();
  const std::string admin_id = get("/api/v1/auth/me", bearer(admin)).json()["id"];

  write_config(kFixtureMembers, 1024, R"("file": "no_such_plugin.so")");
  const auto failed = admin_post(admin, "/api/v1/admin/config/reload");
  EXPECT_EQ(failed.status, 409u) << failed.body;
  EXPECT_NE(failed.body.find("no other setting of the file was applied"), std::string::npos) << failed.body;
  const auto failures = audit_events(admin, "action=plugin.reload_failed");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0]["target"], "auth.apitoken");
  EXPECT_EQ(failures[0]["actor_id"], admin_id);
  EXPECT_EQ(failures[0]["detail"]["trigger"], "admin_api");
  EXPECT_EQ(get("/api/v1/plugins/auth.apitoken").json()["generation"], 1) << "the running one stays";

  write_config(kFixtureMembers, 2048);
  auto by_signal = app_->reload_config_file({"", "sighup", "sighup"});
  ASSERT_TRUE(by_signal.ok()) << by_signal.status().to_string();
  // auth.local for its new setting (auth.apitoken too: its entry differs from the one that failed).
  nlohmann::json local;
  for (const auto& event : audit_events(admin, "action=plugin.reloaded")) {
    EXPECT_EQ(event["detail"]["trigger"], "sighup") << event;
    EXPECT_TRUE(event["actor_id"].is_null() || event["actor_id"] == "") << event;
    if (event["target"] == "auth.local") local = event;
  }
  ASSERT_TRUE(local.is_object()) << "no plugin.reloaded record for auth.local";
  EXPECT_EQ(local["detail"]["generation"], 2);
}

TEST_F(AdminReloadTest, AuthPluginReloadUnderLoadFailsNothingAndKeepsSessions) {
  start();
  const std::string admin = admin_token();
  const Login user = sign_up("steady@example.com");
  std::atomic<bool> stop{false};
  std::atomic<long> ok{0};
  std::atomic<long> failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      testing::HttpClient client("127.0.0.1", app_->port());
      while (!stop.load()) {
        try {
          // Half the clients use their session (kernel-side JWT), half log in (through auth.local).
          const auto response =
              t % 2 == 0
                  ? client.get("/api/v1/auth/me", bearer(user.access_token))
                  : client.request(
                        verb::post, "/api/v1/auth/login",
                        nlohmann::json{{"email", "steady@example.com"}, {"password", kPassword}}.dump(),
                        {{"Content-Type", "application/json"}});
          (response.status == 200 ? ok : failed).fetch_add(1);
        } catch (const std::exception&) {
          failed.fetch_add(1);
        }
      }
    });
  }
  EXPECT_TRUE(testing::wait_until([&] { return ok.load() >= 40; }, std::chrono::seconds(60)))
      << "only " << ok.load() << " requests answered";
  testing::HttpClient admin_client("127.0.0.1", app_->port());
  for (int round = 0; round < 10; ++round) {
    const auto reloaded =
        admin_client.request(verb::post, "/api/v1/admin/plugins/auth.local/reload", "", bearer(admin));
    ASSERT_EQ(reloaded.status, 200u) << reloaded.body;
  }
  stop.store(true);
  for (auto& client : clients)
    client.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(get("/api/v1/plugins/auth.local").json()["generation"], 11);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(user.access_token)).status, 200u) << "the session survived";
}

}  // namespace
}  // namespace samokoder::security_test
