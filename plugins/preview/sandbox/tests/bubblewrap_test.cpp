// The bubblewrap Containment against hostile children run through the kernel's real process service:
// each test starts a small shell or python program in a temporary workspace and asserts what it could
// not do (exceed its processes or memory, survive the kill, read the server's environment or files,
// write outside its workspace, reach or be reached over the network) and what it still can (write its
// workspace, answer HTTP through the endpoint).
#include "bubblewrap.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <samokoder/abi.h>
#include <samokoder/sdk/host.hpp>

#include "outbound_http/service.hpp"
#include "processes/process_service.hpp"
#include "scheduling/task_scheduler.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::preview_sandbox {
namespace {

using namespace std::chrono_literals;
using preview_common::Containment;
using preview_common::Launch;
using preview_common::Step;
using testing::wait_until;
namespace fs = std::filesystem;

// The HostServices a Containment uses: the real process service, and nothing else that works.
class SandboxHost final : public sdk::HostServices {
 public:
  explicit SandboxHost(sdk::ProcessRunner& processes) : processes_(processes) {}
  std::string_view plugin_id() const noexcept override { return "preview.sandbox"; }
  std::uint32_t host_abi_minor() const noexcept override { return SAMOKODER_ABI_MINOR; }
  void log(sdk::LogLevel, std::string_view message) noexcept override {
    std::lock_guard lock(mutex_);
    logs_.emplace_back(message);
  }
  const nlohmann::json& config() const noexcept override { return config_; }
  void counter_add(std::string_view, std::span<const sdk::MetricLabel>, double) noexcept override {}
  void gauge_set(std::string_view, std::span<const sdk::MetricLabel>, double) noexcept override {}
  void histogram_observe(std::string_view, std::span<const sdk::MetricLabel>, double) noexcept override {}
  std::chrono::system_clock::time_point now() const noexcept override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point monotonic_now() const noexcept override {
    return std::chrono::steady_clock::now();
  }
  sdk::Scheduler& scheduler() noexcept override { return scheduling::unavailable_scheduler(); }
  sdk::HttpClient& http() noexcept override { return outbound_http::unavailable_client(); }
  sdk::ProcessRunner& processes() noexcept override { return processes_; }

 private:
  sdk::ProcessRunner& processes_;
  const nlohmann::json config_ = nlohmann::json::object();
  std::mutex mutex_;
  std::vector<std::string> logs_;
};

std::string random_id(std::size_t length = 32) {
  static std::mt19937_64 engine{std::random_device{}()};
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  for (std::size_t i = 0; i < length; ++i)
    id += kAlphabet[std::uniform_int_distribution<std::size_t>(0, 35)(engine)];
  return id;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Host pids whose /proc/<pid>/<file> contains `needle` (cgroup: the preview's cgroup is named after the
// project; cmdline: a marker the hostile program carries in its argv). Zombies are not counted.
std::vector<int> pids_where(const char* file, const std::string& needle) {
  std::vector<int> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string text = read_all(entry.path() / file);
    std::replace(text.begin(), text.end(), '\0', ' ');
    if (text.find(needle) == std::string::npos) continue;
    const std::string stat = read_all(entry.path() / "stat");
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') continue;
    pids.push_back(std::stoi(name));
  }
  return pids;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Sends one GET / on a connected socket and returns everything the server answered ("" on failure).
std::string http_get(int fd) {
  timeval timeout{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const std::string request = "GET / HTTP/1.0\r\nHost: preview\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return "";
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;)
    answer.append(buffer, static_cast<std::size_t>(n));
  return answer;
}

std::string http_get_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) answer = http_get(fd);
  ::close(fd);
  return answer;
}

int connect_tcp(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
  ::close(fd);
  return -1;
}

std::string http_get_tcp(std::uint16_t port) {
  const int fd = connect_tcp(port);
  if (fd < 0) return "";
  std::string answer = http_get(fd);
  ::close(fd);
  return answer;
}

bool reachable_tcp(std::uint16_t port) {
  const int fd = connect_tcp(port);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

// A python app: listens on PORT (serving the workspace), and with arguments also listens on another
// port and tries to connect out to a port of the host's loopback, printing what happened.
constexpr const char* kApp = R"(
import http.server, os, socket, sys
if len(sys.argv) > 2:
    other = socket.socket()
    other.bind(('127.0.0.1', int(sys.argv[1])))
    other.listen()
    try:
        socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=2)
        print('CONNECT-OUT-OK', flush=True)
    except OSError as error:
        print('CONNECT-OUT-FAILED', error, flush=True)
print('READY', flush=True)
http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])),
                                http.server.SimpleHTTPRequestHandler).serve_forever()
)";

class SandboxTest : public ::testing::Test {
 protected:
  SandboxTest() {
    config_.state_dir = dir_.path() / "state";
    config_.kill_grace_ms = 300;
    config_.default_timeout_ms = 30000;
    config_.output_limit_bytes = 256 * 1024;
    service_ = std::make_unique<processes::ProcessService>(config_, registry_);
    runner_ = std::make_unique<processes::PluginProcesses>(*service_, processes::Owner{"preview.sandbox", 1});
    host_ = std::make_unique<SandboxHost>(*runner_);
    fs::create_directories(workspace_);
  }

  // A containment with small limits, checked against this machine (a failure there fails the test).
  std::unique_ptr<Containment> containment(nlohmann::json overrides = nlohmann::json::object()) {
    nlohmann::json json = {{"pids_max", 32},
                           {"memory_bytes", 256 * 1024 * 1024},
                           {"socket_dir", (dir_.path() / "sockets").string()}};
    json.update(overrides);
    auto options = parse_sandbox_options(json);
    if (!options.ok()) {
      ADD_FAILURE() << options.status().to_string();
      return nullptr;
    }
    auto made = make_bubblewrap_containment(*host_, *options);
    if (auto checked = made->check_machine(); !checked.ok()) {
      ADD_FAILURE() << "this machine cannot run the sandbox: " << checked.to_string();
      return nullptr;
    }
    return made;
  }

  sdk::ProcessSpec child(std::vector<std::string> argv) const {
    sdk::ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.working_directory = workspace_.string();
    spec.environment = {{"PATH", "/usr/bin:/bin"}, {"HOME", workspace_.string()}, {"LANG", "C.UTF-8"}};
    spec.timeout = 20s;
    return spec;
  }
  sdk::ProcessSpec shell(std::string script) const { return child({"/bin/sh", "-c", std::move(script)}); }

  // Contains and runs `spec` to its end, then cleans up.
  sdk::ProcessResult run_contained(Containment& sandbox, const sdk::ProcessSpec& spec,
                                   Step step = Step::kInstall, std::uint16_t port = 0) {
    auto launch = sandbox.contain(spec, project_, port == 0 ? free_port() : port, step);
    if (!launch.ok()) {
      ADD_FAILURE() << launch.status().to_string();
      return {};
    }
    auto result = runner_->run(launch->spec, sdk::never_cancelled());
    if (launch->cleanup) launch->cleanup();
    if (!result.ok()) {
      ADD_FAILURE() << result.status().to_string();
      return {};
    }
    return *result;
  }

  testing::TempDir dir_{"samokoder-sandbox"};
  const fs::path workspace_ = fs::canonical(dir_.path()) / "workspace";
  const std::string project_ = random_id();
  metrics::Registry registry_;
  config::ProcessesConfig config_;
  std::unique_ptr<processes::ProcessService> service_;
  std::unique_ptr<processes::PluginProcesses> runner_;
  std::unique_ptr<SandboxHost> host_;
};

TEST_F(SandboxTest, PassesTheArgvThroughWithoutAShell) {
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  auto result = run_contained(*sandbox, child({"/bin/echo", "a  b", "$(id)", ";", "*", "'\""}));
  EXPECT_TRUE(result.succeeded()) << result.stderr_data;
  EXPECT_EQ(result.stdout_data, "a  b $(id) ; * '\"\n");
}

TEST_F(SandboxTest, ForkBombStaysUnderPidsMax) {
  constexpr int kPidsMax = 24;
  auto sandbox = containment({{"pids_max", kPidsMax}});
  ASSERT_TRUE(sandbox);
  const std::string marker = "bomb" + random_id(12);
  // Forks until the kernel refuses, every child staying alive, and reports how many it got.
  std::ofstream(workspace_ / (marker + ".py")) << R"(
import os, time
count = 0
while count < 5000:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    count += 1
print('forked', count, flush=True)
time.sleep(60)
)";
  std::atomic<int> forked{-1};
  auto spec = child({"python3", marker + ".py"});
  spec.on_line = [&](sdk::OutputStream stream, std::string_view line) {
    if (stream == sdk::OutputStream::kStdout && line.rfind("forked ", 0) == 0)
      forked = std::stoi(std::string(line.substr(7)));
  };
  auto launch = sandbox->contain(spec, project_, free_port(), Step::kApp);
  ASSERT_TRUE(launch.ok()) << launch.status().to_string();
  auto started = runner_->start(launch->spec);
  ASSERT_TRUE(started.ok()) << started.status().to_string();
  ASSERT_TRUE(wait_until([&] { return forked >= 0; }, 15s)) << "the bomb never reported";

  // Everything of the preview is in its cgroup: bwrap, sh, socat, python and its children.
  const auto in_cgroup = pids_where("cgroup", project_);
  EXPECT_LE(static_cast<int>(in_cgroup.size()), kPidsMax);
  EXPECT_GE(static_cast<int>(in_cgroup.size()), kPidsMax / 2) << "the bomb did not run";
  EXPECT_LT(forked.load(), kPidsMax);
  EXPECT_GE(forked.load(), kPidsMax / 2);

  // The server can still fork.
  auto after = runner_->run(shell("echo still-forking"), sdk::never_cancelled());
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(after->stdout_data, "still-forking\n");

  (*started)->terminate();
  ASSERT_TRUE((*started)->wait_for(5s).has_value());
  launch->cleanup();
  EXPECT_TRUE(wait_until([&] { return pids_where("cmdline", marker).empty(); }, 5s));
  EXPECT_TRUE(pids_where("cgroup", project_).empty());
}

TEST_F(SandboxTest, MemoryHogEndsUnderItsLimit) {
  auto sandbox = containment({{"memory_bytes", 64 * 1024 * 1024}});
  ASSERT_TRUE(sandbox);
  // Touches every byte it allocates (bytes(n) alone could stay unbacked zero pages).
  std::ofstream(workspace_ / "hog.py") << R"(
import sys
chunks = []
try:
    for i in range(1024):
        chunks.append(b'\x01' * (1 << 20))
        print('allocated', i + 1, flush=True)
    print('REACHED-1GIB', flush=True)
except MemoryError:
    print('MemoryError', flush=True)
    sys.exit(3)
)";
  auto result = run_contained(*sandbox, child({"python3", "hog.py"}));
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.stdout_data.find("REACHED-1GIB"), std::string::npos);
  // The OOM killer's SIGKILL reaches bwrap as its child's death, which bwrap reports as exit 128 + 9.
  EXPECT_TRUE(result.signal == SIGKILL || result.exit_code == 128 + SIGKILL ||
              result.stdout_data.find("MemoryError") != std::string::npos)
      << "exit " << result.exit_code.value_or(-1) << " signal " << result.signal.value_or(0) << "\n"
      << result.stderr_data;
  // It never got near what it asked for: 64 MiB, less what python itself takes.
  int last = 0;
  std::istringstream out(result.stdout_data);
  for (std::string word; out >> word;)
    if (word == "allocated") out >> last;
  EXPECT_GT(last, 0) << "the hog did not run";
  EXPECT_LT(last, 80);
  // The test process is unharmed.
  std::vector<char> mine(32 * 1024 * 1024, 1);
  EXPECT_EQ(mine.back(), 1);
}

TEST_F(SandboxTest, ChildIgnoringSigtermIsGoneWithItsGrandchildren) {
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  const std::string marker = "stubborn" + random_id(12);
  // A grandchild in a session of its own, and the child, both ignore SIGTERM.
  auto spec = shell("trap '' TERM; setsid sh -c 'trap \"\" TERM; while :; do sleep 1; done' " + marker +
                    " & sh -c 'trap \"\" TERM; while :; do sleep 1; done' " + marker + "-child");
  auto launch = sandbox->contain(spec, project_, free_port(), Step::kApp);
  ASSERT_TRUE(launch.ok()) << launch.status().to_string();
  auto started = runner_->start(launch->spec);
  ASSERT_TRUE(started.ok()) << started.status().to_string();
  ASSERT_TRUE(wait_until([&] { return pids_where("cmdline", marker).size() >= 2; }, 10s));

  (*started)->terminate();
  auto ended = (*started)->wait_for(std::chrono::milliseconds(config_.kill_grace_ms) + 3s);
  ASSERT_TRUE(ended.has_value()) << "still running after the kill grace";
  EXPECT_TRUE(ended->cancelled);
  // Gone before cleanup ran: ending the child ended its PID namespace.
  EXPECT_TRUE(wait_until([&] { return pids_where("cmdline", marker).empty(); }, 2s))
      << pids_where("cmdline", marker).size() << " left";
  EXPECT_TRUE(wait_until([&] { return pids_where("cgroup", project_).empty(); }, 2s));
  launch->cleanup();
}

TEST_F(SandboxTest, SeesNeitherTheServersEnvironmentNorItsProcesses) {
  const std::string secret = "secret-" + random_id(16);
  ::setenv("SAMOKODER_SANDBOX_TEST_SECRET", secret.c_str(), 1);
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  const std::string me = std::to_string(::getpid());
  auto spec = shell(
      "env; echo ---; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; echo ---; "
      "ls /proc | grep -E '^[0-9]+$'; echo ---; cat /proc/" +
      me +
      "/environ; "
      "cat /proc/" +
      me + "/cmdline; hostname");
  spec.environment.emplace_back("CHILD_OWN", "visible");
  auto result = run_contained(*sandbox, spec);
  ::unsetenv("SAMOKODER_SANDBOX_TEST_SECRET");

  EXPECT_NE(result.stdout_data.find("CHILD_OWN=visible"), std::string::npos) << result.stdout_data;
  EXPECT_EQ(result.stdout_data.find(secret), std::string::npos);
  EXPECT_EQ(result.stdout_data.find("SAMOKODER_SANDBOX_TEST_SECRET"), std::string::npos);
  EXPECT_NE(result.stdout_data.find("preview\n"), std::string::npos) << "hostname";

  std::vector<std::string> sections;
  std::istringstream in(result.stdout_data);
  std::string section;
  for (std::string line; std::getline(in, line);) {
    if (line == "---") {
      sections.push_back(section);
      section.clear();
    } else {
      section += line + "\n";
    }
  }
  ASSERT_EQ(sections.size(), 3u) << result.stdout_data;
  std::istringstream pids(sections[2]);
  std::vector<int> seen;
  for (int pid; pids >> pid;)
    seen.push_back(pid);
  EXPECT_TRUE(std::find(seen.begin(), seen.end(), 1) != seen.end()) << "not in a PID namespace of its own";
  EXPECT_TRUE(std::find(seen.begin(), seen.end(), ::getpid()) == seen.end());
  EXPECT_LE(seen.size(), 8u) << sections[2];
}

TEST_F(SandboxTest, WritesStayInsideAndTheHostIsNotVisible) {
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  const std::string tmp_marker = "/tmp/samokoder-sandbox-" + random_id(12);
  const fs::path outside = dir_.write("outside/secret.txt", "outside-" + random_id(8));
  const std::string server_cwd = fs::current_path().string();
  auto result =
      run_contained(*sandbox, shell("echo private > " + tmp_marker + " && cat " + tmp_marker +
                                    " && echo TMP-WRITE-OK\n"
                                    "echo x > /usr/sandbox-evil 2>/dev/null && echo USR-WRITTEN\n"
                                    "echo x > /etc/sandbox-evil 2>/dev/null && echo ETC-WRITTEN\n"
                                    "cat " +
                                    outside.string() +
                                    " 2>/dev/null && echo OUTSIDE-READ\n"
                                    "ls " +
                                    server_cwd +
                                    " >/dev/null 2>&1 && echo CWD-VISIBLE\n"
                                    "for d in /root /home /var /run /work /srv /opt; do ls $d >/dev/null "
                                    "2>&1 && echo VISIBLE:$d; done\n"
                                    "head -c 8 /etc/shadow 2>/dev/null | grep -q . && echo SHADOW-READ\n"
                                    "echo done"));
  EXPECT_TRUE(result.succeeded()) << result.stderr_data;
  const std::string& out = result.stdout_data;
  EXPECT_NE(out.find("private\nTMP-WRITE-OK"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp_marker)) << "the sandbox's /tmp is the host's";
  EXPECT_EQ(out.find("USR-WRITTEN"), std::string::npos);
  EXPECT_EQ(out.find("ETC-WRITTEN"), std::string::npos);
  EXPECT_FALSE(fs::exists("/usr/sandbox-evil"));
  EXPECT_FALSE(fs::exists("/etc/sandbox-evil"));
  EXPECT_EQ(out.find("OUTSIDE-READ"), std::string::npos);
  EXPECT_EQ(out.find(read_all(outside)), std::string::npos);
  EXPECT_EQ(out.find("CWD-VISIBLE"), std::string::npos) << server_cwd;
  EXPECT_EQ(out.find("VISIBLE:"), std::string::npos) << out;
  EXPECT_EQ(out.find("SHADOW-READ"), std::string::npos);
  EXPECT_NE(out.find("done"), std::string::npos);
}

TEST_F(SandboxTest, WorkspaceIsWritableAtTheSamePath) {
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  dir_.write("workspace/input.txt", "from-host");
  auto result = run_contained(
      *sandbox, shell("pwd; cat input.txt; mkdir -p sub && echo made-inside > sub/created.txt"));
  EXPECT_TRUE(result.succeeded()) << result.stderr_data;
  EXPECT_EQ(result.stdout_data, workspace_.string() + "\nfrom-host");
  EXPECT_EQ(read_all(workspace_ / "sub" / "created.txt"), "made-inside\n");
}

TEST_F(SandboxTest, AppWithoutNetworkAnswersOnlyThroughItsSocket) {
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  std::ofstream(workspace_ / "app.py") << kApp;
  std::ofstream(workspace_ / "index.html") << "hello-from-sandbox";

  // A listener of the host the app tries to reach.
  const int host_listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(host_listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(host_listener, 4), 0);
  socklen_t length = sizeof address;
  ::getsockname(host_listener, reinterpret_cast<sockaddr*>(&address), &length);
  const std::uint16_t host_port = ntohs(address.sin_port);
  const std::uint16_t port = free_port();
  const std::uint16_t other = free_port();

  std::mutex mutex;
  std::string out;
  auto spec = child({"python3", "app.py", std::to_string(other), std::to_string(host_port)});
  spec.environment.emplace_back("PORT", std::to_string(port));
  spec.on_line = [&](sdk::OutputStream, std::string_view line) {
    std::lock_guard lock(mutex);
    out.append(line).append("\n");
  };
  auto launch = sandbox->contain(spec, project_, port, Step::kApp);
  ASSERT_TRUE(launch.ok()) << launch.status().to_string();
  EXPECT_EQ(launch->endpoint.port, 0);
  EXPECT_EQ(launch->endpoint.socket_path, (dir_.path() / "sockets" / project_ / "http.sock").string());
  auto started = runner_->start(launch->spec);
  ASSERT_TRUE(started.ok()) << started.status().to_string();
  const std::string socket = launch->endpoint.socket_path;

  EXPECT_TRUE(
      wait_until([&] { return http_get_unix(socket).find("hello-from-sandbox") != std::string::npos; }, 15s));
  EXPECT_NE(http_get_unix(socket).find("HTTP/1.0 200"), std::string::npos);
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mutex);
        return out.find("READY") != std::string::npos;
      },
      5s));
  {
    std::lock_guard lock(mutex);
    EXPECT_NE(out.find("CONNECT-OUT-FAILED"), std::string::npos) << out;
    EXPECT_EQ(out.find("CONNECT-OUT-OK"), std::string::npos);
  }
  EXPECT_LT(::accept(host_listener, nullptr, nullptr), 0) << "the app reached the host's loopback";
  ::close(host_listener);
  EXPECT_FALSE(reachable_tcp(other)) << "the app's other listener is reachable from the host";
  EXPECT_FALSE(reachable_tcp(port)) << "the app's port is reachable from the host";

  (*started)->terminate();
  ASSERT_TRUE((*started)->wait_for(5s).has_value());
  launch->cleanup();
  EXPECT_FALSE(fs::exists(dir_.path() / "sockets" / project_));
}

TEST_F(SandboxTest, AppWithHostNetworkAnswersOnItsPort) {
  auto sandbox = containment({{"network", "host"}});
  ASSERT_TRUE(sandbox);
  std::ofstream(workspace_ / "app.py") << kApp;
  std::ofstream(workspace_ / "index.html") << "hello-on-port";
  const std::uint16_t port = free_port();
  auto spec = child({"python3", "app.py"});
  spec.environment.emplace_back("PORT", std::to_string(port));
  auto launch = sandbox->contain(spec, project_, port, Step::kApp);
  ASSERT_TRUE(launch.ok()) << launch.status().to_string();
  EXPECT_EQ(launch->endpoint.port, port);
  EXPECT_TRUE(launch->endpoint.socket_path.empty());
  auto started = runner_->start(launch->spec);
  ASSERT_TRUE(started.ok()) << started.status().to_string();
  EXPECT_TRUE(wait_until([&] { return http_get_tcp(port).find("hello-on-port") != std::string::npos; }, 15s));
  (*started)->terminate();
  ASSERT_TRUE((*started)->wait_for(5s).has_value());
  launch->cleanup();
}

TEST_F(SandboxTest, InstallStepKeepsTheNetworkWithoutEndpoint) {
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  auto launch = sandbox->contain(shell("true"), project_, free_port(), Step::kInstall);
  ASSERT_TRUE(launch.ok()) << launch.status().to_string();
  EXPECT_EQ(launch->endpoint.port, 0);
  EXPECT_TRUE(launch->endpoint.socket_path.empty());
  const auto& argv = launch->spec.argv;
  EXPECT_TRUE(std::find(argv.begin(), argv.end(), "--unshare-net") == argv.end());
  launch->cleanup();
}

TEST_F(SandboxTest, CheckMachineRefusesWithoutBubblewrap) {
  auto options = parse_sandbox_options({{"bwrap", "/nonexistent/bwrap"}});
  ASSERT_TRUE(options.ok()) << options.status().to_string();
  auto sandbox = make_bubblewrap_containment(*host_, *options);
  const auto status = sandbox->check_machine();
  EXPECT_EQ(status.code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("/nonexistent/bwrap"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("refuses to run previews unsandboxed"), std::string::npos);

  options = parse_sandbox_options({{"socat", "/nonexistent/socat"}});
  ASSERT_TRUE(options.ok());
  const auto without_socat = make_bubblewrap_containment(*host_, *options)->check_machine();
  EXPECT_EQ(without_socat.code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_NE(without_socat.message().find("/nonexistent/socat"), std::string::npos);
}

TEST_F(SandboxTest, CheckMachineRefusesWhenTheNamespacesCannotBeMade) {
  // /bin/false stands in for a bwrap that fails: what it means is said, and nothing runs unsandboxed.
  auto options =
      parse_sandbox_options({{"bwrap", "/bin/false"}, {"socket_dir", (dir_.path() / "sockets").string()}});
  ASSERT_TRUE(options.ok());
  const auto status = make_bubblewrap_containment(*host_, *options)->check_machine();
  EXPECT_EQ(status.code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("cannot create user namespaces"), std::string::npos) << status.message();
}

TEST_F(SandboxTest, ContainRefusesBadInput) {
  auto sandbox = containment();
  ASSERT_TRUE(sandbox);
  for (const char* id : {"", "../etc", "ABCDEF", "a b", "x;rm"}) {
    auto launch = sandbox->contain(shell("true"), id, 1234, Step::kApp);
    EXPECT_EQ(launch.status().code(), sdk::StatusCode::kInvalidArgument) << id;
  }
  auto no_dir = shell("true");
  no_dir.working_directory = "relative";
  EXPECT_EQ(sandbox->contain(no_dir, project_, 1234, Step::kApp).status().code(),
            sdk::StatusCode::kInvalidArgument);
  no_dir.working_directory = "/";
  EXPECT_EQ(sandbox->contain(no_dir, project_, 1234, Step::kApp).status().code(),
            sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(sandbox->contain(child({}), project_, 1234, Step::kApp).status().code(),
            sdk::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samokoder::preview_sandbox
