// The runner engine's parts on their own: LogRing, parse_runner_options, detect(), the readiness probe.
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "detect.hpp"
#include "log_ring.hpp"
#include "probe.hpp"

namespace samokoder::preview_common {
namespace {

namespace fs = std::filesystem;
using internal::LogRing;

TEST(LogRing, ReadsFromAnOffsetAndSaysWhatWasDropped) {
  LogRing ring(16);
  ring.append_line("abc");    // offsets 0..3
  ring.append_line("defgh");  // 4..9
  auto all = ring.read(0, 100);
  EXPECT_EQ(all.text, "abc\ndefgh\n");
  EXPECT_EQ(all.end_offset, 10u);
  EXPECT_FALSE(all.truncated);
  EXPECT_EQ(ring.read(4, 100).text, "defgh\n");
  EXPECT_EQ(ring.read(10, 100).text, "");
  EXPECT_EQ(ring.read(99, 100).end_offset, 10u);
  auto newest = ring.read(0, 3);
  EXPECT_EQ(newest.text, "gh\n");
  EXPECT_TRUE(newest.truncated);

  ring.append_line("ijklmnop");  // 10..18: the ring keeps 3..18
  auto wrapped = ring.read(0, 100);
  EXPECT_EQ(wrapped.text, "\ndefgh\nijklmnop\n");
  EXPECT_TRUE(wrapped.truncated);
  EXPECT_EQ(wrapped.end_offset, 19u);
  EXPECT_FALSE(ring.read(3, 100).truncated);
  EXPECT_EQ(ring.read(12, 100).text, "klmnop\n");
}

TEST(LogRing, StaysBoundedWhateverIsWritten) {
  LogRing ring(64);
  const std::string huge(1000, 'z');
  ring.append_line(huge);
  EXPECT_EQ(ring.kept(), 64u);
  EXPECT_EQ(ring.read(0, 1000).text, std::string(63, 'z') + "\n");
  for (int i = 0; i < 10000; ++i)
    ring.append_line("line " + std::to_string(i));
  EXPECT_EQ(ring.kept(), 64u);
  EXPECT_EQ(ring.tail(2), "line 9998\nline 9999");
}

TEST(RunnerOptions, DefaultsAndStrictKeys) {
  auto defaults = parse_runner_options(nlohmann::json::object());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->ready_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(defaults->install_timeout, std::chrono::milliseconds(300000));
  EXPECT_EQ(defaults->max_restarts, 5u);
  EXPECT_EQ(defaults->log_buffer_bytes, 256u * 1024);
  EXPECT_EQ(defaults->python, "/usr/bin/python3");

  auto set = parse_runner_options({{"ready_timeout_ms", 500}, {"limits", {{"open_files", 64}}}});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->ready_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(set->limits.open_files, 64u);
  EXPECT_FALSE(set->limits.processes.has_value());

  for (const auto& [config, key] : std::vector<std::pair<nlohmann::json, std::string>>{
           {{{"readiness", 1}}, "readiness"},
           {{{"ready_timeout_ms", "5"}}, "ready_timeout_ms"},
           {{{"ready_timeout_ms", -5}}, "ready_timeout_ms"},
           {{{"ready_timeout_ms", 1.5}}, "ready_timeout_ms"},
           {{{"max_restarts", true}}, "max_restarts"},
           {{{"node", "node"}}, "node"},
           {{{"limits", {{"stack", 1}}}}, "limits.stack"},
           {{{"limits", {{"processes", -1}}}}, "limits.processes"},
       }) {
    auto parsed = parse_runner_options(config);
    ASSERT_FALSE(parsed.ok()) << config.dump();
    EXPECT_EQ(parsed.status().code(), sdk::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(key), std::string::npos) << parsed.status().message();
  }
  EXPECT_TRUE(parse_runner_options({{"network", false}}, {"network"}).ok());
}

TEST(Watchers, DevServersThatReloadThemselves) {
  for (const char* command :
       {"vite", "vite --port 3000", "nodemon server.js", "next dev", "node --watch app.js",
        "webpack serve --hot", "uvicorn main:app --reload", "./node_modules/.bin/vite"})
    EXPECT_TRUE(internal::mentions_watcher(command)) << command;
  for (const char* command : {"node server.js", "python3 main.py", "node nextgen.js", "npm run serve"})
    EXPECT_FALSE(internal::mentions_watcher(command)) << command;
}

class DetectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = fs::temp_directory_path() / ("samokoder-detect-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(ws_);
    fs::create_directories(ws_);
    spec_.project_id = "p";
    spec_.workspace_dir = ws_.string();
    spec_.port = 4321;
  }
  void TearDown() override { fs::remove_all(ws_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(ws_ / name) << text; }

  fs::path ws_;
  sdk::PreviewSpec spec_;
  RunnerOptions options_;
};

TEST_F(DetectTest, DevScriptWinsOverStartAndNothingToInstallWithoutDependencies) {
  write("package.json", R"({"scripts": {"start": "node server.js", "dev": "vite"}, "dependencies": {}})");
  auto plan = internal::detect(spec_, options_, false);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(plan->app, (std::vector<std::string>{"/usr/bin/npm", "run", "dev"}));
  EXPECT_TRUE(plan->install.empty());
  EXPECT_TRUE(plan->reloads_itself);
}

TEST_F(DetectTest, DependenciesAreInstalledUntilTheStampMatches) {
  write("package.json", R"({"scripts": {"start": "node server.js"}, "devDependencies": {"x": "1"}})");
  auto plan = internal::detect(spec_, options_, false);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->install.size(), 1u);
  EXPECT_EQ(plan->install[0],
            (std::vector<std::string>{"/usr/bin/npm", "install", "--no-audit", "--no-fund"}));
  EXPECT_FALSE(plan->reloads_itself);
  fs::create_directories(ws_ / "node_modules");
  ASSERT_TRUE(internal::write_stamp(*plan));
  EXPECT_TRUE(internal::detect(spec_, options_, false)->install.empty());
  EXPECT_EQ(internal::detect(spec_, options_, true)->install.size(), 1u);
  write("package-lock.json", "{}");
  EXPECT_EQ(internal::detect(spec_, options_, false)->install.size(), 1u);
}

TEST_F(DetectTest, FastApiAppRunsUnderUvicorn) {
  write("main.py", "from fastapi import FastAPI\napp = FastAPI()\n");
  auto plan = internal::detect(spec_, options_, false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->app, (std::vector<std::string>{"/usr/bin/python3", "-m", "uvicorn", "main:app", "--host",
                                                 "127.0.0.1", "--port", "4321"}));
}

TEST_F(DetectTest, RequirementsGetAVenvThatSeesSystemPackages) {
  write("requirements.txt", "# web\nflask\n");
  write("server.py", "print('hi')\n");
  auto plan = internal::detect(spec_, options_, false);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->install.size(), 2u);
  EXPECT_EQ(plan->install[0],
            (std::vector<std::string>{"/usr/bin/python3", "-m", "venv", "--system-site-packages", ".venv"}));
  EXPECT_EQ(plan->app, (std::vector<std::string>{(ws_ / ".venv/bin/python3").string(), "server.py"}));
}

TEST_F(DetectTest, EnvironmentIsCompleteAndTheSpecWins) {
  write("app.py", "print('hi')\n");
  spec_.environment = {{"HOST", "0.0.0.0"}, {"EXTRA", "1"}};
  auto plan = internal::detect(spec_, options_, false);
  ASSERT_TRUE(plan.ok());
  std::map<std::string, std::string> env(plan->environment.begin(), plan->environment.end());
  EXPECT_EQ(env["PATH"], "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(env["HOME"], ws_.string());
  EXPECT_EQ(env["PORT"], "4321");
  EXPECT_EQ(env["HOST"], "0.0.0.0");
  EXPECT_EQ(env["EXTRA"], "1");
  EXPECT_EQ(env["NODE_ENV"], "development");
}

TEST_F(DetectTest, NothingToRunIsNotFound) {
  write("index.html", "<p>");
  auto plan = internal::detect(spec_, options_, false);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), sdk::StatusCode::kNotFound);
  write("package.json", "{not json");
  EXPECT_EQ(internal::detect(spec_, options_, false).status().code(), sdk::StatusCode::kInvalidArgument);
}

// A listening Unix socket whose one connection gets `answer` (or nothing, holding the connection open,
// when empty).
class UnixServer {
 public:
  UnixServer(const fs::path& path, std::string answer) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    thread_ = std::thread([this, answer = std::move(answer)] {
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      char buffer[1024];
      (void)::recv(client, buffer, sizeof(buffer), 0);
      if (!answer.empty()) (void)::send(client, answer.data(), answer.size(), MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(answer.empty() ? 500 : 0));
      ::close(client);
    });
  }
  ~UnixServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    fs::remove(path_);
  }
  UnixServer(const UnixServer&) = delete;
  UnixServer& operator=(const UnixServer&) = delete;

 private:
  fs::path path_;
  int fd_ = -1;
  std::thread thread_;
};

fs::path socket_path(const char* name) {
  return fs::temp_directory_path() / ("samokoder-probe-" + std::to_string(::getpid()) + "-" + name + ".sock");
}

TEST(Probe, AnyStatusLineOnAUnixSocketMeansReady) {
  const auto path = socket_path("ready");
  UnixServer server(path, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  sdk::PreviewEndpoint endpoint;
  endpoint.socket_path = path.string();
  EXPECT_TRUE(internal::http_answers(endpoint, std::chrono::milliseconds(1000)));
}

TEST(Probe, SilenceOrSomethingElseIsNotReady) {
  const auto silent = socket_path("silent");
  {
    UnixServer server(silent, "");
    sdk::PreviewEndpoint endpoint;
    endpoint.socket_path = silent.string();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(internal::http_answers(endpoint, std::chrono::milliseconds(200)));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(450));
  }
  const auto garbage = socket_path("garbage");
  {
    UnixServer server(garbage, "SSH-2.0-OpenSSH_9.2\r\n");
    sdk::PreviewEndpoint endpoint;
    endpoint.socket_path = garbage.string();
    EXPECT_FALSE(internal::http_answers(endpoint, std::chrono::milliseconds(1000)));
  }
  sdk::PreviewEndpoint nobody;
  nobody.socket_path = socket_path("nobody").string();
  EXPECT_FALSE(internal::http_answers(nobody, std::chrono::milliseconds(200)));
}

TEST(Probe, RefusedTcpPortIsNotReady) {
  // Bind a port and do not listen on it: connecting is refused at once.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  sdk::PreviewEndpoint endpoint;
  endpoint.port = ntohs(address.sin_port);
  EXPECT_FALSE(internal::http_answers(endpoint, std::chrono::milliseconds(1000)));
  ::close(fd);
}

}  // namespace
}  // namespace samokoder::preview_common
