// preview.process as the kernel runs it: real children (node, python3), real process groups, real HTTP
// on loopback. Timeouts and backoffs are shortened through the plugin's config so the suite stays fast.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <stdlib.h>

#include "preview_runner_harness.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using sdk::PreviewState;
using sdk::StatusCode;

constexpr auto kUp = 20s;  // generous for a loaded CI machine; a healthy run takes well under a second

// Polls `condition` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

bool process_gone(int pid) {
  if (::kill(pid, 0) != 0) return true;
  // A killed child that init has not reaped yet is a zombie: gone for our purpose.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// A stdlib HTTP server on PORT answering GET / with `body` (a Python expression), GET /crash by
// exiting with code 3 after answering.
std::string python_server(const std::string& body_expression, const std::string& before = "") {
  return "import os, sys, http.server\n" + before +
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        body = (" +
         body_expression +
         ").encode()\n"
         "        self.send_response(200)\n"
         "        self.send_header('Content-Length', str(len(body)))\n"
         "        self.end_headers()\n"
         "        self.wfile.write(body)\n"
         "        self.wfile.flush()\n"
         "        if self.path == '/crash':\n"
         "            os._exit(3)\n"
         "    def log_message(self, *args):\n"
         "        pass\n"
         "http.server.HTTPServer((os.environ['HOST'], int(os.environ['PORT'])), H).serve_forever()\n";
}

constexpr const char* kNodeServer =
    "const http = require('http');\n"
    "http.createServer((req, res) => {\n"
    "  if (req.url === '/env') { res.end(JSON.stringify(process.env)); return; }\n"
    "  res.end('node says hi');\n"
    "}).listen(Number(process.env.PORT), process.env.HOST);\n";

class ProcessRunnerTest : public ::testing::Test {
 protected:
  static nlohmann::json config(nlohmann::json overrides = nlohmann::json::object()) {
    nlohmann::json base = {{"ready_timeout_ms", 15000},   {"probe_interval_ms", 50},
                           {"restart_backoff_ms", 100},   {"restart_backoff_max_ms", 400},
                           {"install_timeout_ms", 60000}, {"max_restarts", 5}};
    base.update(overrides);
    return base;
  }

  void SetUp() override { ASSERT_TRUE(harness_.start_plugin(config())); }

  fs::path workspace(const std::string& name) {
    const fs::path dir = harness_.dir() / ("ws-" + name);
    fs::create_directories(dir);
    return dir;
  }

  static void write(const fs::path& ws, const std::string& relative, const std::string& content) {
    fs::create_directories((ws / relative).parent_path());
    std::ofstream(ws / relative, std::ios::binary | std::ios::trunc) << content;
  }

  static sdk::PreviewSpec spec(const std::string& project, const fs::path& ws) {
    sdk::PreviewSpec s;
    s.project_id = project;
    s.workspace_dir = ws.string();
    s.port = free_port();
    s.ttl = 600s;
    return s;
  }

  // Starts the preview and waits until it runs; the status it ran with.
  sdk::PreviewStatus run(const sdk::PreviewSpec& s) {
    auto started = harness_.start(s);
    EXPECT_TRUE(started.ok()) << started.status().to_string();
    if (started.ok()) {
      EXPECT_EQ(started->state, PreviewState::kStarting);
    }
    sdk::PreviewStatus status;
    EXPECT_TRUE(harness_.wait_for_state(s.project_id, PreviewState::kRunning, kUp, &status));
    return status;
  }

  std::string log_text(const std::string& project) {
    auto log = harness_.logs(project, 0, 1 << 20);
    return log.ok() ? log->text : log.status().to_string();
  }

  PreviewRunnerHarness harness_{"preview.process", SAMOKODER_PREVIEW_PROCESS_PLUGIN};
};

TEST_F(ProcessRunnerTest, NodeAppWithStartScriptRunsAndAnswersOnItsPort) {
  const auto ws = workspace("node");
  write(ws, "package.json", R"({"name": "app", "version": "1.0.0", "scripts": {"start": "node server.js"}})");
  write(ws, "server.js", kNodeServer);
  const auto s = spec("p-node", ws);
  const auto status = run(s);
  EXPECT_EQ(status.endpoint.port, s.port);
  EXPECT_GT(status.pid, 0);
  const auto answer = http_get(status.endpoint);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "node says hi");
  // Nothing to install: no dependencies, so npm install never ran.
  EXPECT_FALSE(fs::exists(ws / "node_modules"));
  EXPECT_EQ(log_text("p-node").find("installing:"), std::string::npos);
}

TEST_F(ProcessRunnerTest, ChildEnvironmentIsBuiltFromScratch) {
  ::setenv("SAMOKODER_SERVER_SECRET_FOR_TEST", "must-not-leak", 1);
  const auto ws = workspace("env");
  write(ws, "package.json", R"({"name": "app", "scripts": {"start": "node server.js"}})");
  write(ws, "server.js", kNodeServer);
  auto s = spec("p-env", ws);
  s.environment = {{"GREETING", "hello"}, {"NODE_ENV", "test"}};
  const auto status = run(s);
  const auto answer = http_get(status.endpoint, "/env");
  ASSERT_EQ(answer.status, 200);
  const auto env = nlohmann::json::parse(answer.body);
  EXPECT_EQ(env.value("PORT", ""), std::to_string(s.port));
  EXPECT_EQ(env.value("HOST", ""), "127.0.0.1");
  EXPECT_EQ(env.value("HOME", ""), ws.string());
  EXPECT_EQ(env.value("GREETING", ""), "hello");
  EXPECT_EQ(env.value("NODE_ENV", ""), "test");  // the spec's variables win over the runner's
  EXPECT_NE(env.value("PATH", "").find((ws / "node_modules" / ".bin").string()), std::string::npos);
  EXPECT_NE(env.value("PATH", "").find("/usr/local/bin:/usr/bin:/bin"), std::string::npos);
  EXPECT_FALSE(env.contains("SAMOKODER_SERVER_SECRET_FOR_TEST"));
  ::unsetenv("SAMOKODER_SERVER_SECRET_FOR_TEST");
}

TEST_F(ProcessRunnerTest, PythonStdlibAppWithCommentOnlyRequirementsRunsWithoutInstall) {
  const auto ws = workspace("python");
  write(ws, "requirements.txt", "# nothing to install\n\n");
  write(ws, "main.py", python_server("'python says hi'"));
  const auto status = run(spec("p-python", ws));
  const auto answer = http_get(status.endpoint);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "python says hi");
  EXPECT_FALSE(fs::exists(ws / ".venv"));
}

TEST_F(ProcessRunnerTest, PythonRequirementsInstalledSystemWideNeedNoNetwork) {
  const auto ws = workspace("flask");
  write(ws, "requirements.txt", "flask\n");
  write(ws, "app.py",
        "import os\nfrom flask import Flask\napp = Flask(__name__)\n"
        "@app.get('/')\ndef index():\n    return 'flask says hi'\n"
        "app.run(host=os.environ['HOST'], port=int(os.environ['PORT']))\n");
  const auto status = run(spec("p-flask", ws));
  EXPECT_EQ(http_get(status.endpoint).body, "flask says hi");
  EXPECT_TRUE(fs::exists(ws / ".venv" / "bin" / "python3"));
  EXPECT_NE(log_text("p-flask").find("pip install"), std::string::npos);

  // The same requirements again: the install is not repeated.
  ASSERT_TRUE(harness_.stop("p-flask").ok());
  const auto again = run(spec("p-flask", ws));
  EXPECT_EQ(http_get(again.endpoint).body, "flask says hi");
  EXPECT_EQ(log_text("p-flask").find("pip install"), std::string::npos);
}

TEST_F(ProcessRunnerTest, NpmDependenciesAreInstalledOnceThenReused) {
  const auto ws = workspace("npmdeps");
  write(ws, "localdep/package.json", R"({"name": "localdep", "version": "1.0.0", "main": "index.js"})");
  write(ws, "localdep/index.js", "module.exports = 'from localdep';\n");
  write(ws, "package.json",
        R"({"name": "app", "version": "1.0.0", "dependencies": {"localdep": "file:./localdep"},
            "scripts": {"start": "node server.js"}})");
  write(ws, "server.js",
        "require('http').createServer((q, r) => r.end(require('localdep')))"
        ".listen(Number(process.env.PORT), process.env.HOST);\n");
  const auto status = run(spec("p-npm", ws));
  EXPECT_EQ(http_get(status.endpoint).body, "from localdep");
  EXPECT_NE(log_text("p-npm").find("installing: /usr/bin/npm install"), std::string::npos);

  ASSERT_TRUE(harness_.stop("p-npm").ok());
  const auto again = run(spec("p-npm", ws));
  EXPECT_EQ(http_get(again.endpoint).body, "from localdep");
  EXPECT_EQ(log_text("p-npm").find("installing:"), std::string::npos);
}

TEST_F(ProcessRunnerTest, FailedInstallFailsThePreviewWithItsLog) {
  const auto ws = workspace("badinstall");
  write(ws, "localdep/package.json", R"({"name": "localdep", "version": "1.0.0"})");
  write(ws, "package.json",
        R"({"name": "app", "version": "1.0.0", "dependencies": {"localdep": "file:./localdep"},
            "scripts": {"preinstall": "echo cannot install here && exit 9", "start": "node server.js"}})");
  write(ws, "server.js", kNodeServer);
  ASSERT_TRUE(harness_.start(spec("p-badinstall", ws)).ok());
  sdk::PreviewStatus status;
  ASSERT_TRUE(harness_.wait_for_state("p-badinstall", PreviewState::kFailed, kUp, &status));
  EXPECT_NE(status.detail.find("installing dependencies failed"), std::string::npos) << status.detail;
  EXPECT_NE(status.detail.find("cannot install here"), std::string::npos) << status.detail;
}

TEST_F(ProcessRunnerTest, GivenCommandIsRunAsArgv) {
  const auto ws = workspace("command");
  write(ws, "serve_it.py", python_server("'from the command ' + sys.argv[1]"));
  auto s = spec("p-command", ws);
  s.command = {"/usr/bin/python3", "serve_it.py", "with spaces; not a shell"};
  const auto status = run(s);
  EXPECT_EQ(http_get(status.endpoint).body, "from the command with spaces; not a shell");
}

TEST_F(ProcessRunnerTest, WorkspaceWithNothingToRunIsNotFound) {
  const auto ws = workspace("empty");
  auto started = harness_.start(spec("p-empty", ws));
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), StatusCode::kNotFound);
  EXPECT_NE(started.status().message().find("package.json"), std::string::npos);
  EXPECT_NE(started.status().message().find("main.py"), std::string::npos);
  EXPECT_EQ(harness_.status("p-empty").status().code(), StatusCode::kNotFound);

  write(ws, "index.html", "<h1>static</h1>");
  EXPECT_EQ(harness_.start(spec("p-empty", ws)).status().code(), StatusCode::kNotFound);
  write(ws, "package.json", R"({"name": "app", "scripts": {"build": "tsc"}})");
  EXPECT_EQ(harness_.start(spec("p-empty", ws)).status().code(), StatusCode::kNotFound);

  auto missing = spec("p-missing", ws / "no-such-dir");
  EXPECT_EQ(harness_.start(missing).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ProcessRunnerTest, AppThatNeverListensFailsAfterReadyTimeoutWithItsLastLines) {
  ASSERT_TRUE(harness_.start_plugin(config({{"ready_timeout_ms", 700}})));
  const auto ws = workspace("silent");
  write(ws, "main.py", "import time\nfor i in range(40):\n    print(f'line={i};')\ntime.sleep(600)\n");
  const auto started_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(harness_.start(spec("p-silent", ws)).ok());
  sdk::PreviewStatus status;
  ASSERT_TRUE(harness_.wait_for_state("p-silent", PreviewState::kFailed, 10s, &status));
  EXPECT_GE(std::chrono::steady_clock::now() - started_at, 700ms);
  EXPECT_NE(status.detail.find("did not answer HTTP"), std::string::npos) << status.detail;
  EXPECT_NE(status.detail.find("line=39;"), std::string::npos) << status.detail;
  EXPECT_EQ(status.detail.find("line=3;"), std::string::npos) << "only the tail: " << status.detail;
}

TEST_F(ProcessRunnerTest, AppThatExitsBeforeAnsweringFails) {
  const auto ws = workspace("exits");
  write(ws, "main.py", "import sys\nprint('cannot start: boom')\nsys.exit(7)\n");
  ASSERT_TRUE(harness_.start(spec("p-exits", ws)).ok());
  sdk::PreviewStatus status;
  ASSERT_TRUE(harness_.wait_for_state("p-exits", PreviewState::kFailed, kUp, &status));
  EXPECT_NE(status.detail.find("exited with code 7"), std::string::npos) << status.detail;
  EXPECT_NE(status.detail.find("cannot start: boom"), std::string::npos) << status.detail;
}

TEST_F(ProcessRunnerTest, AppThatCrashesAfterBeingUpIsRestartedAndServesAgain) {
  const auto ws = workspace("crash");
  write(ws, "main.py", python_server("'alive'"));
  const auto status = run(spec("p-crash", ws));
  EXPECT_EQ(http_get(status.endpoint, "/crash").body, "alive");
  ASSERT_TRUE(eventually(
      [&] {
        auto now = harness_.status("p-crash");
        return now.ok() && now->restarts >= 1 && now->state == PreviewState::kRunning;
      },
      kUp))
      << log_text("p-crash");
  auto now = harness_.status("p-crash");
  EXPECT_NE(now->pid, status.pid);
  EXPECT_EQ(http_get(now->endpoint).body, "alive");
  EXPECT_NE(log_text("p-crash").find("exited with code 3"), std::string::npos);
}

TEST_F(ProcessRunnerTest, AppCrashingInALoopFailsAfterMaxRestarts) {
  ASSERT_TRUE(harness_.start_plugin(config({{"max_restarts", 2}})));
  const auto ws = workspace("loop");
  write(ws, "main.py",
        python_server("'briefly'", "import threading\nthreading.Timer(0.8, lambda: os._exit(1)).start()\n"));
  ASSERT_TRUE(harness_.start(spec("p-loop", ws)).ok());
  sdk::PreviewStatus status;
  ASSERT_TRUE(harness_.wait_for_state("p-loop", PreviewState::kRunning, kUp, &status));
  ASSERT_TRUE(harness_.wait_for_state("p-loop", PreviewState::kFailed, kUp, &status));
  EXPECT_EQ(status.restarts, 2u);
  EXPECT_NE(status.detail.find("restarted 2 times"), std::string::npos) << status.detail;
  EXPECT_EQ(status.pid, 0);
}

TEST_F(ProcessRunnerTest, LogsFollowOffsetsAndSayWhenTheyCut) {
  const auto ws = workspace("logs");
  write(ws, "main.py", python_server("'ok'", "print('alpha')\nprint('beta', file=sys.stderr)\n"));
  run(spec("p-logs", ws));
  ASSERT_TRUE(eventually([&] { return log_text("p-logs").find("beta\n") != std::string::npos; }, 5s));
  auto all = harness_.logs("p-logs", 0, 1 << 20);
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->truncated);
  EXPECT_EQ(all->end_offset, all->text.size());
  EXPECT_NE(all->text.find("alpha\n"), std::string::npos);  // stdout and stderr alike, unprefixed

  auto none = harness_.logs("p-logs", all->end_offset, 1 << 20);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->text, "");
  EXPECT_FALSE(none->truncated);
  EXPECT_GE(none->end_offset, all->end_offset);

  auto newest = harness_.logs("p-logs", 0, 5);
  ASSERT_TRUE(newest.ok());
  EXPECT_TRUE(newest->truncated);
  EXPECT_EQ(newest->text.size(), 5u);
  EXPECT_EQ(newest->text, all->text.substr(all->text.size() - 5));

  auto from_middle = harness_.logs("p-logs", 3, 1 << 20);
  ASSERT_TRUE(from_middle.ok());
  EXPECT_FALSE(from_middle->truncated);
  EXPECT_EQ(from_middle->text, all->text.substr(3));
  EXPECT_EQ(harness_.logs("p-unknown", 0, 10).status().code(), StatusCode::kNotFound);
}

TEST_F(ProcessRunnerTest, EndlessOutputStaysBoundedAndTheRunnerKeepsAnswering) {
  ASSERT_TRUE(harness_.start_plugin(config({{"log_buffer_bytes", 4096}})));
  const auto ws = workspace("flood");
  write(ws, "main.py", "import itertools\nfor i in itertools.count():\n    print('x' * 100, i)\n");
  ASSERT_TRUE(harness_.start(spec("p-flood", ws)).ok());
  ASSERT_TRUE(eventually(
      [&] {
        auto log = harness_.logs("p-flood", 0, 1 << 20);
        return log.ok() && log->end_offset > 100 * 4096;
      },
      kUp));
  for (int i = 0; i < 20; ++i) {
    auto log = harness_.logs("p-flood", 0, 1 << 20);
    ASSERT_TRUE(log.ok());
    EXPECT_LE(log->text.size(), 4096u);
    EXPECT_TRUE(log->truncated);
    auto status = harness_.status("p-flood");
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->state, PreviewState::kStarting);
  }
  auto first = harness_.logs("p-flood", 0, 1 << 20);
  std::this_thread::sleep_for(100ms);
  auto later = harness_.logs("p-flood", 0, 1 << 20);
  EXPECT_GT(later->end_offset, first->end_offset);  // still being written, still bounded
  EXPECT_TRUE(harness_.stop("p-flood").ok());
}

TEST_F(ProcessRunnerTest, FilesChangedRestartsAPlainApp) {
  const auto ws = workspace("plain");
  write(ws, "message.txt", "one");
  write(ws, "main.py", python_server("MESSAGE", "MESSAGE = open('message.txt').read()\n"));
  const auto status = run(spec("p-plain", ws));
  EXPECT_EQ(http_get(status.endpoint).body, "one");
  write(ws, "message.txt", "two");
  // Several notifications before the restart happens coalesce into one.
  ASSERT_TRUE(harness_.files_changed("p-plain", {"message.txt"}).ok());
  ASSERT_TRUE(harness_.files_changed("p-plain", {"message.txt"}).ok());
  ASSERT_TRUE(eventually([&] { return http_get(status.endpoint, "/", 500ms).body == "two"; }, kUp))
      << log_text("p-plain");
  auto now = harness_.status("p-plain");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->restarts, 1u);
  EXPECT_EQ(harness_.files_changed("p-nobody", {"x"}).code(), StatusCode::kOk);
}

TEST_F(ProcessRunnerTest, FilesChangedLeavesADevServerThatReloadsItself) {
  const auto ws = workspace("dev");
  write(ws, "package.json",
        R"({"name": "app", "scripts": {"dev": "node --watch server.js", "start": "node server.js"}})");
  write(ws, "server.js", kNodeServer);
  const auto status = run(spec("p-dev", ws));
  ASSERT_TRUE(harness_.files_changed("p-dev", {"server.js"}).ok());
  // Nothing is supposed to happen, so there is nothing to wait for: give a restart ample ticks to show.
  std::this_thread::sleep_for(500ms);
  auto now = harness_.status("p-dev");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->state, PreviewState::kRunning);
  EXPECT_EQ(now->restarts, 0u);
  EXPECT_EQ(now->pid, status.pid);
  EXPECT_EQ(log_text("p-dev").find("files changed"), std::string::npos);
}

TEST_F(ProcessRunnerTest, FilesChangedStartsAFailedPreviewAgain) {
  const auto ws = workspace("fixme");
  write(ws, "main.py", "raise SystemExit('syntax of the day')\n");
  ASSERT_TRUE(harness_.start(spec("p-fixme", ws)).ok());
  ASSERT_TRUE(harness_.wait_for_state("p-fixme", PreviewState::kFailed, kUp));
  write(ws, "main.py", python_server("'fixed'"));
  ASSERT_TRUE(harness_.files_changed("p-fixme", {"main.py"}).ok());
  sdk::PreviewStatus status;
  ASSERT_TRUE(harness_.wait_for_state("p-fixme", PreviewState::kRunning, kUp, &status));
  EXPECT_EQ(http_get(status.endpoint).body, "fixed");
  EXPECT_EQ(status.restarts, 1u);
}

TEST_F(ProcessRunnerTest, AppIsStoppedWhenItsTtlPasses) {
  const auto ws = workspace("ttl");
  write(ws, "main.py", python_server("'short-lived'"));
  auto s = spec("p-ttl", ws);
  s.ttl = 2s;
  const auto running = run(s);
  sdk::PreviewStatus status;
  ASSERT_TRUE(harness_.wait_for_state("p-ttl", PreviewState::kStopped, 10s, &status));
  EXPECT_NE(status.detail.find("time to live"), std::string::npos) << status.detail;
  EXPECT_EQ(status.restarts, 0u);
  EXPECT_TRUE(eventually([&] { return process_gone(static_cast<int>(running.pid)); }, 5s));
}

TEST_F(ProcessRunnerTest, StopEndsTheWholeProcessGroupAndForgets) {
  const auto ws = workspace("group");
  write(ws, "main.py",
        python_server("'parent'",
                      "import subprocess\n"
                      "child = subprocess.Popen(['/bin/sleep', '300'])\n"
                      "open('grandchild.pid', 'w').write(str(child.pid))\n"));
  const auto status = run(spec("p-group", ws));
  std::string pid_text;
  ASSERT_TRUE(eventually(
      [&] {
        std::ifstream in(ws / "grandchild.pid");
        return static_cast<bool>(std::getline(in, pid_text)) && !pid_text.empty();
      },
      5s));
  const int grandchild = std::stoi(pid_text);
  ASSERT_FALSE(process_gone(grandchild));
  ASSERT_TRUE(harness_.stop("p-group").ok());
  EXPECT_EQ(harness_.status("p-group").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(harness_.logs("p-group", 0, 10).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(
      eventually([&] { return process_gone(grandchild) && process_gone(static_cast<int>(status.pid)); }, 5s));
  EXPECT_TRUE(harness_.stop("p-group").ok());  // stopping nothing is fine
}

TEST_F(ProcessRunnerTest, ChildIgnoringSigtermIsKilledAfterTheGrace) {
  const auto ws = workspace("stubborn");
  write(ws, "main.py",
        python_server("'stubborn'", "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"));
  const auto status = run(spec("p-stubborn", ws));
  const int pid = static_cast<int>(status.pid);
  ASSERT_TRUE(harness_.stop("p-stubborn").ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(process_gone(pid)) << "SIGTERM is ignored, so only the SIGKILL after the grace ends it";
  EXPECT_TRUE(eventually([&] { return process_gone(pid); },
                         std::chrono::milliseconds(harness_.processes_config().kill_grace_ms) + 3s));
}

TEST_F(ProcessRunnerTest, StartingAgainReplacesThePreview) {
  const auto ws = workspace("replace");
  write(ws, "main.py", python_server("'first'"));
  const auto s = spec("p-replace", ws);
  const auto first = run(s);
  write(ws, "main.py", python_server("'second'"));
  const auto second = run(s);  // the same port: the first app must have let go of it
  EXPECT_NE(second.pid, first.pid);
  EXPECT_EQ(http_get(second.endpoint).body, "second");
  EXPECT_TRUE(eventually([&] { return process_gone(static_cast<int>(first.pid)); }, 5s));
}

TEST_F(ProcessRunnerTest, ShutdownStopsEveryPreview) {
  const auto ws = workspace("shutdown");
  write(ws, "main.py", python_server("'bye'"));
  const auto status = run(spec("p-shutdown", ws));
  harness_.unload();
  EXPECT_TRUE(process_gone(static_cast<int>(status.pid)));
}

// The runner ops enable knowingly confines nothing: an agent's command runs as given, with its own
// rlimits (the kernel's process group and clean environment are all it gets).
TEST_F(ProcessRunnerTest, AnAgentsCommandIsPassedThroughUnchanged) {
  const auto ws = workspace("command");
  sdk::ProcessSpec command;
  command.argv = {"/bin/sh", "-c", "pwd; echo \"$ONLY_THIS\"; ulimit -n"};
  command.working_directory = ws.string();
  command.environment = {{"PATH", "/usr/bin:/bin"}, {"ONLY_THIS", "kept"}};
  command.limits.open_files = 77;
  command.timeout = 20s;
  bool inspected = false;
  auto ran = harness_.run_contained_command(command, "p-command", [&](const sdk::ContainedCommand& c) {
    inspected = true;
    EXPECT_EQ(c.spec.argv, command.argv);
    EXPECT_EQ(c.spec.working_directory, command.working_directory);
    EXPECT_EQ(c.spec.environment, command.environment);
    EXPECT_EQ(c.spec.limits.open_files, 77u);
    EXPECT_EQ(c.spec.timeout, command.timeout);
    EXPECT_FALSE(static_cast<bool>(c.cleanup)) << "nothing was set up that needs removing";
  });
  ASSERT_TRUE(ran.ok()) << ran.status().to_string();
  EXPECT_TRUE(inspected);
  EXPECT_EQ(ran->stdout_data, fs::canonical(ws).string() + "\nkept\n77\n") << ran->stderr_data;
}

TEST_F(ProcessRunnerTest, UnknownConfigKeyFailsInitNamingIt) {
  ASSERT_TRUE(harness_.load({{"ready_timeout", 5}}).ok());
  auto info = harness_.info();
  ASSERT_TRUE(info.has_value());
  EXPECT_NE(info->state, plugins::PluginState::kActive);
  EXPECT_NE(info->failure_message.find("ready_timeout"), std::string::npos) << info->failure_message;
}

}  // namespace
}  // namespace samokoder::testing
