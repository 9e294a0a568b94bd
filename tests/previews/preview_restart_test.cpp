// A preview never outlives its server (ctest label preview): `samokoder serve` runs as a child with a
// Node app previewed in the sandbox, is killed with -9, and the app's processes are gone; started again
// on the same database, the server records the preview as stopped (not running on a dead node) and can
// start it anew.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <unistd.h>

#include "http_client.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::previews_test {
namespace {

using boost::beast::http::verb;
using nlohmann::json;
using testing::HeaderList;
using namespace std::chrono_literals;

constexpr const char* kPassword = "violet-anchor-47-quietly";

// Gone, or a zombie nobody reaped yet: either way nothing of it runs.
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

class PreviewRestartTest : public ::testing::Test {
 protected:
  std::filesystem::path write_config() {
    const json unlimited = {{"capacity", 1000000}, {"refill_per_minute", 1000000}};
    const json config = {
        {"log", {{"level", "info"}, {"access_log", false}}},
        {"plugin_dir", SAMOKODER_PLUGIN_DIR},
        {"runtime_dir", (dir_.path() / "run").string()},
        {"workspace_root", (dir_.path() / "workspaces").string()},
        {"housekeeping", {{"enabled", false}}},
        {"processes", {{"state_dir", (dir_.path() / "processes").string()}, {"kill_grace_ms", 500}}},
        {"security", {{"rate_limits", {{"auth", unlimited}, {"default", unlimited}, {"files", unlimited}}}}},
        {"previews", {{"runners", {"preview.sandbox"}}}},
        {"plugins",
         {{{"id", "storage.sqlite"},
           {"file", "storage_sqlite.so"},
           {"required", true},
           {"config", {{"path", (dir_.path() / "samokoder.db").string()}}}},
          {{"id", "auth.local"},
           {"file", "auth_local.so"},
           {"required", true},
           {"config", {{"memory_kib", 1024}, {"iterations", 1}, {"parallelism", 1}}}},
          {{"id", "preview.sandbox"},
           {"file", "preview_sandbox.so"},
           {"required", true},
           {"config", {{"socket_dir", socket_dir_.string()}, {"ready_timeout_ms", 20000}}}}}}};
    return dir_.write("samokoder.json", config.dump(2));
  }

  void TearDown() override {
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(socket_dir_, ignored);
  }

  testing::ServeProcess& start_server(const std::filesystem::path& config) {
    server_.reset();
    server_ = std::make_unique<testing::ServeProcess>(
        SAMOKODER_EXECUTABLE, config, dir_.path() / ("serve-" + std::to_string(++starts_)),
        std::vector<std::string>{"SAMOKODER_SECRET_KEY=" + secret_});
    return *server_;
  }

  HeaderList log_in(bool register_first) {
    testing::HttpClient client("127.0.0.1", server_->port());
    const json credentials = {{"email", "restart@example.com"}, {"password", kPassword}};
    const HeaderList headers = {{"Content-Type", "application/json"}};
    if (register_first) {
      EXPECT_EQ(client.request(verb::post, "/api/v1/auth/register", credentials.dump(), headers).status,
                202u);
    }
    const auto login = client.request(verb::post, "/api/v1/auth/login", credentials.dump(), headers);
    EXPECT_EQ(login.status, 200u) << login.body;
    return {{"Authorization", "Bearer " + login.json().value("access_token", "")},
            {"Content-Type", "application/json"}};
  }

  json preview(const HeaderList& auth, const std::string& project) {
    testing::HttpClient client("127.0.0.1", server_->port());
    const auto got = client.get("/api/v1/projects/" + project + "/preview", auth);
    return got.status == 200 ? got.json() : json{{"status", got.status}, {"body", got.body}};
  }

  testing::TempDir dir_{"samokoder-preview-restart"};
  std::filesystem::path socket_dir_ = std::filesystem::path("/tmp") / ("skr-" + std::to_string(::getpid()));
  std::string secret_ = testing::random_secret();
  std::unique_ptr<testing::ServeProcess> server_;
  int starts_ = 0;
};

TEST_F(PreviewRestartTest, AKilledServerLeavesNoAppRunningAndRecordsThePreviewAsStopped) {
  const auto config = write_config();
  start_server(config);
  ASSERT_NE(server_->port(), 0) << server_->log_tail();
  const HeaderList auth = log_in(true);
  testing::HttpClient client("127.0.0.1", server_->port());
  const auto created = client.request(verb::post, "/api/v1/projects", R"({"name": "restart"})", auth);
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string project = created.json()["id"];
  const HeaderList bearer = {auth.front()};
  for (const auto& [path, content] :
       {std::pair<std::string, std::string>{"package.json", R"({"scripts": {"start": "node server.js"}})"},
        {"server.js",
         "require('http').createServer((q, s) => s.end('up')).listen(+process.env.PORT, "
         "process.env.HOST);"}}) {
    const auto put =
        client.request(verb::put, "/api/v1/projects/" + project + "/files/" + path, content, bearer);
    ASSERT_TRUE(put.status == 200 || put.status == 201) << put.body;
  }
  ASSERT_EQ(client.request(verb::post, "/api/v1/projects/" + project + "/preview", "", bearer).status, 202u);
  json state;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        state = preview(bearer, project);
        return state.value("state", "") == "running";
      },
      40s))
      << state.dump() << server_->log_tail();
  const pid_t app = static_cast<pid_t>(state["pid"].get<std::int64_t>());
  ASSERT_TRUE(running(app));

  server_->kill_now();
  EXPECT_TRUE(testing::wait_until([&] { return !running(app); }, 10s)) << "the app outlived its server";

  start_server(config);
  ASSERT_NE(server_->port(), 0) << server_->log_tail();
  const HeaderList again = {log_in(false).front()};
  const json after = preview(again, project);
  EXPECT_EQ(after.value("state", ""), "stopped") << after.dump();
  EXPECT_TRUE(after["url"].is_null()) << after.dump();
  // And it can be started again on the new server.
  testing::HttpClient fresh("127.0.0.1", server_->port());
  ASSERT_EQ(fresh.request(verb::post, "/api/v1/projects/" + project + "/preview", "", again).status, 202u);
  EXPECT_TRUE(
      testing::wait_until([&] { return preview(again, project).value("state", "") == "running"; }, 40s));
}

}  // namespace
}  // namespace samokoder::previews_test
