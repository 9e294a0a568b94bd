// The built-in templates work: copied by the agent as a run would, written to a real folder, the
// dependency-free ones (node_http, python_http) run as real processes and answer the page and the API
// over HTTP; every template's JavaScript passes `node --check`, its Python `py_compile`, its JSON parses,
// and a package.json's start script is the one the template promises. JSX is not JavaScript node can
// check, so .jsx files are left to Vite.
#include <cstdlib>
#include <string>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_harness.hpp"
#include "http_client.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

extern char** environ;

namespace samokoder::testing {
namespace {

const nlohmann::json kState = {
    {"description", "a to-do list"},
    {"spec", {{"original_description", "A to-do list"}, {"description", "# To-do"}}},
    {"architecture", {{"app_type", "web-app"}, {"summary", "whatever fits"}}}};

// The files of `name` as the agent copies them into a workspace.
std::map<std::string, std::string> copied(const std::string& name) {
  AgentHarness agent("agent.bootstrap", SAMOKODER_AGENT_BOOTSTRAP_PLUGIN);
  EXPECT_EQ(agent.error(), "");
  ScriptedAgentContext context(kState);
  context.script_model("template_choice", {{{"template", name}, {"project_name", "todo-app"}}});
  auto step = agent.run_step(context);
  EXPECT_TRUE(step.ok()) << step.status().to_string();
  if (context.events.empty()) {
    ADD_FAILURE() << "no template.applied for " << name;
  } else {
    EXPECT_EQ(context.events.back().second["name"], name);
  }
  return context.files;
}

void write_all(const TempDir& dir, const std::map<std::string, std::string>& files) {
  for (const auto& [path, content] : files)
    dir.write(path, content);
}

bool have(const std::string& program) {
  return std::system((program + " --version >/dev/null 2>&1").c_str()) == 0;
}

// Runs `command` in `dir` through the shell; its exit status and combined output.
std::pair<int, std::string> run_in(const std::filesystem::path& dir, const std::string& command) {
  const auto log = dir / ".check.log";
  const int status =
      std::system(("cd '" + dir.string() + "' && " + command + " >'" + log.string() + "' 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(log)};
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0)
    port = ntohs(address.sin_port);
  ::close(fd);
  return port;
}

// A program run in a folder with PORT and HOST set, its output in <dir>/.app.log; killed with the object.
class App {
 public:
  App(const std::filesystem::path& dir, std::vector<std::string> argv, std::uint16_t port)
      : log_(dir / ".app.log") {
    std::vector<std::string> environment = {"PORT=" + std::to_string(port), "HOST=127.0.0.1"};
    for (char** entry = environ; *entry != nullptr; ++entry) {
      const std::string variable = *entry;
      if (!variable.starts_with("PORT=") && !variable.starts_with("HOST=")) environment.push_back(variable);
    }
    std::vector<char*> args;
    for (auto& arg : argv)
      args.push_back(arg.data());
    args.push_back(nullptr);
    std::vector<char*> env;
    for (auto& variable : environment)
      env.push_back(variable.data());
    env.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    if (posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), env.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~App() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  bool started() const { return pid_ > 0; }
  std::string log() const { return read_text(log_); }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
};

// Starts the template's app and checks its page, its health endpoint and an unknown API path.
// `assets`: paths the page loads, with the start of their content type.
void expect_serves(const std::string& name, std::vector<std::string> argv,
                   const std::vector<std::pair<std::string, std::string>>& assets) {
  const auto files = copied(name);
  TempDir dir("samokoder-template");
  write_all(dir, files);
  const std::uint16_t port = free_port();
  ASSERT_NE(port, 0);
  App app(dir.path(), std::move(argv), port);
  ASSERT_TRUE(app.started());
  HttpClient client("127.0.0.1", port, std::chrono::seconds(5));
  const bool up = wait_until(
      [&] {
        try {
          return client.get("/api/health").status == 200;
        } catch (const std::exception&) {
          client.disconnect();
          return false;
        }
      },
      std::chrono::seconds(20), std::chrono::milliseconds(100));
  ASSERT_TRUE(up) << name << " did not answer on port " << port << ":\n" << app.log();

  const auto health = client.get("/api/health");
  EXPECT_EQ(health.json(), (nlohmann::json{{"ok", true}}));
  EXPECT_TRUE(health.header("Content-Type").starts_with("application/json")) << health.header("Content-Type");
  const auto page = client.get("/");
  EXPECT_EQ(page.status, 200U);
  EXPECT_TRUE(page.header("Content-Type").starts_with("text/html")) << page.header("Content-Type");
  EXPECT_NE(page.body.find("<title>todo-app</title>"), std::string::npos) << page.body;
  // The page, or a script it loads, calls the API.
  bool calls_api = page.body.find("/api/health") != std::string::npos;
  for (const auto& [path, type] : assets) {
    const auto asset = client.get(path);
    EXPECT_EQ(asset.status, 200U) << path;
    EXPECT_TRUE(asset.header("Content-Type").starts_with(type))
        << path << ": " << asset.header("Content-Type");
    calls_api = calls_api || asset.body.find("/api/health") != std::string::npos;
  }
  EXPECT_TRUE(calls_api);
  const auto missing = client.get("/api/no-such-thing");
  EXPECT_EQ(missing.status, 404U);
  EXPECT_TRUE(missing.json().contains("error"));
  EXPECT_EQ(client.get("/no-such-file.txt").status, 404U);
}

TEST(Templates, NodeHttpServesItsPageAndApiAsARealProcess) {
  if (!have("node")) GTEST_SKIP() << "node is not installed";
  expect_serves("node_http", {"node", "server.js"},
                {{"/style.css", "text/css"}, {"/app.js", "text/javascript"}});
}

TEST(Templates, PythonHttpServesItsPageAndApiAsARealProcess) {
  if (!have("python3")) GTEST_SKIP() << "python3 is not installed";
  expect_serves("python_http", {"python3", "main.py"}, {});
}

// Every file of the template passes the checks that need no dependency installed.
void expect_sources_check(const std::string& name) {
  const auto files = copied(name);
  ASSERT_FALSE(files.empty());
  TempDir dir("samokoder-template");
  write_all(dir, files);
  for (const auto& [path, content] : files) {
    EXPECT_EQ(content.find("{{project_"), std::string::npos) << name << "/" << path;
    if (path.ends_with(".json")) {
      EXPECT_TRUE(nlohmann::json::accept(content)) << name << "/" << path;
    } else if (path.ends_with(".js") && have("node")) {
      const auto [status, output] = run_in(dir.path(), "node --check '" + path + "'");
      EXPECT_EQ(status, 0) << name << "/" << path << ":\n" << output;
    } else if (path.ends_with(".py") && have("python3")) {
      const auto [status, output] = run_in(dir.path(), "python3 -m py_compile '" + path + "'");
      EXPECT_EQ(status, 0) << name << "/" << path << ":\n" << output;
    }
  }
}

TEST(Templates, NodeHttpSourcesCheck) {
  expect_sources_check("node_http");
  const auto package = nlohmann::json::parse(copied("node_http")["package.json"]);
  EXPECT_EQ(package["name"], "todo-app");
  EXPECT_EQ(package["scripts"]["start"], "node server.js");
  EXPECT_TRUE(!package.contains("dependencies") || package["dependencies"].empty());
}

TEST(Templates, ViteReactExpressSourcesCheck) {
  expect_sources_check("vite_react_express");
  auto files = copied("vite_react_express");
  const auto package = nlohmann::json::parse(files["package.json"]);
  EXPECT_EQ(package["name"], "todo-app");
  EXPECT_EQ(package["scripts"]["start"], "vite build && node server/index.js");
  for (const char* dependency : {"vite", "react", "react-dom", "@vitejs/plugin-react", "express"})
    EXPECT_TRUE(package["dependencies"].contains(dependency)) << dependency;
  // Vite's layout: index.html at the root loads the client from src/.
  EXPECT_NE(files["index.html"].find("/src/main.jsx"), std::string::npos);
  EXPECT_TRUE(files.contains("src/App.jsx"));
  EXPECT_NE(files["server/index.js"].find("process.env.PORT"), std::string::npos);
  EXPECT_NE(files["server/index.js"].find("process.env.HOST"), std::string::npos);
  EXPECT_NE(files["server/index.js"].find("dist"), std::string::npos);
}

TEST(Templates, PythonFastapiSourcesCheck) {
  expect_sources_check("python_fastapi");
  auto files = copied("python_fastapi");
  EXPECT_NE(files["requirements.txt"].find("fastapi"), std::string::npos);
  EXPECT_NE(files["requirements.txt"].find("uvicorn"), std::string::npos);
  const std::string& main = files["main.py"];
  EXPECT_NE(main.find("@app.get(\"/api/health\")"), std::string::npos);
  EXPECT_NE(main.find("uvicorn.run(app, host=HOST, port=PORT)"), std::string::npos);
  EXPECT_NE(main.find("os.environ.get(\"PORT\", \"3000\")"), std::string::npos);
  EXPECT_NE(main.find("os.environ.get(\"HOST\", \"127.0.0.1\")"), std::string::npos);
  EXPECT_TRUE(files.contains("static/index.html"));
}

TEST(Templates, PythonHttpSourcesCheck) {
  expect_sources_check("python_http");
}

}  // namespace
}  // namespace samokoder::testing
