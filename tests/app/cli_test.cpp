// The `samokoder` executable, run as a child process the way users and scripts run it.
#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <samokoder/abi.h>

#include "http_client.hpp"
#include "postgres_server.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

extern char** environ;

namespace samokoder {
namespace {

// A running `samokoder` with its stdout and stderr on pipes.
class Child {
 public:
  // `environment` entries ("NAME=value") are added to this process's environment; `directory` is the
  // child's working directory (empty: this one).
  explicit Child(std::vector<std::string> args, std::vector<std::string> environment = {},
                 const std::filesystem::path& directory = {}) {
    args.insert(args.begin(), SAMOKODER_EXECUTABLE);
    int out[2];
    int err[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    if (!directory.empty()) posix_spawn_file_actions_addchdir_np(&actions, directory.c_str());
    std::vector<char*> argv;
    for (auto& arg : args) {
      argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    for (char** variable = environ; *variable != nullptr; ++variable) {
      environment.emplace_back(*variable);
    }
    std::vector<char*> envp;
    for (auto& variable : environment) {
      envp.push_back(variable.data());
    }
    envp.push_back(nullptr);
    EXPECT_EQ(::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }

  // Reads stdout (stderr) until `pattern` matches what was read so far, or the deadline passes.
  std::string read_until(const std::regex& pattern,
                         std::chrono::seconds deadline = std::chrono::seconds(20)) {
    return read_until(out_, out_text_, pattern, deadline);
  }
  std::string read_err_until(const std::regex& pattern,
                             std::chrono::seconds deadline = std::chrono::seconds(20)) {
    return read_until(err_, err_text_, pattern, deadline);
  }

  // Collects the rest of both streams until the child closes them, then reaps it; returns the exit status
  // (or 128 + signal). A child still running after `deadline` is killed and fails the test.
  int wait(std::chrono::seconds deadline = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    bool out_open = true;
    bool err_open = true;
    while ((out_open || err_open) && std::chrono::steady_clock::now() < until) {
      pollfd fds[2] = {{out_open ? out_ : -1, POLLIN, 0}, {err_open ? err_ : -1, POLLIN, 0}};
      if (::poll(fds, 2, 100) <= 0) continue;
      if (fds[0].revents != 0) out_open = drain(out_, out_text_);
      if (fds[1].revents != 0) err_open = drain(err_, err_text_);
    }
    if (out_open || err_open) {
      ADD_FAILURE() << "samokoder still running after " << deadline.count()
                    << " s; killed. stderr: " << err_text_;
      ::kill(pid_, SIGKILL);
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // The port of `serve`'s "listening on http://127.0.0.1:PORT" line; 0 (and a failure) without one.
  std::uint16_t read_port() {
    const std::regex url(R"(listening on http://127\.0\.0\.1:(\d+)\n)");
    const std::string out = read_until(url);
    std::smatch match;
    if (!std::regex_search(out, match, url)) {
      ADD_FAILURE() << "no URL on stdout: " << out << "\nstderr: " << err_text_;
      return 0;
    }
    return static_cast<std::uint16_t>(std::stoi(match[1]));
  }

  void signal(int number) const { ::kill(pid_, number); }
  const std::string& out() const { return out_text_; }
  const std::string& err() const { return err_text_; }

 private:
  static std::string read_until(int fd, std::string& text, const std::regex& pattern,
                                std::chrono::seconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!std::regex_search(text, pattern) && std::chrono::steady_clock::now() < until) {
      pollfd poll_fd{fd, POLLIN, 0};
      if (::poll(&poll_fd, 1, 100) > 0 && !drain(fd, text)) break;
    }
    return text;
  }
  static bool drain(int fd, std::string& into) {
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return false;
    into.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  std::string out_text_;
  std::string err_text_;
};

std::string fixture(const std::string& name) {
  return std::string(SAMOKODER_FIXTURE_DIR) + "/" + name + ".so";
}

TEST(Cli, ServePrintsItsUrlServesHealthzAndStopsCleanlyOnSigterm) {
  testing::TempDir dir("samokoder-cli");
  const auto config = dir.write("samokoder.json", R"({"log": {"access_log": false},
      "plugin_dir": ")" SAMOKODER_FIXTURE_DIR R"(", "runtime_dir": ")" +
                                                      (dir.path() / "run").string() +
                                                      R"(",
      "plugins": [{"id": "agent.fixture_echo", "file": "fixture_echo_v1.so", "required": true},
                  {"id": "storage.sqlite", "file": ")" SAMOKODER_PLUGIN_DIR
                                                      R"(/storage_sqlite.so", "required": true,
                   "config": {"path": ")" + (dir.path() / "samokoder.db").string() +
                                                      R"("}}]})");
  Child server({"serve", "--config", config.string(), "--listen", "127.0.0.1:0"});
  const std::regex url(R"(samokoder listening on http://127\.0\.0\.1:(\d+)\n)");
  const std::string out = server.read_until(url);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(out, match, url)) << "stdout: " << out;
  const auto port = static_cast<std::uint16_t>(std::stoi(match[1]));

  testing::HttpClient client("127.0.0.1", port);
  EXPECT_EQ(client.get("/healthz").status, 200u);
  EXPECT_EQ(client.get("/readyz").status, 200u);
  const auto plugins = client.get("/api/v1/plugins").json();
  EXPECT_EQ(plugins["items"][0]["state"], "ACTIVE");

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(), 0) << server.err();
  EXPECT_NE(server.err().find("received SIGTERM, shutting down"), std::string::npos) << server.err();
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "run")) << "plugin copies must be removed on exit";
}

TEST(Cli, ServeOnEmbeddedDefaultsCreatesTheSqliteDatabaseAndStopsOnSigint) {
  testing::TempDir dir("samokoder-cli");
  Child server({"serve", "--listen", "127.0.0.1:0"}, {"SAMOKODER_PLUGIN_DIR=" SAMOKODER_PLUGIN_DIR},
               dir.path());
  const std::uint16_t port = server.read_port();
  ASSERT_NE(port, 0u);
  testing::HttpClient client("127.0.0.1", port);
  EXPECT_EQ(client.get("/readyz").status, 200u);
  const auto plugins = client.get("/api/v1/plugins").json()["items"];
  EXPECT_EQ(plugins[0]["id"], "storage.sqlite");
  EXPECT_EQ(plugins[0]["state"], "ACTIVE");
  EXPECT_EQ(plugins[1]["id"], "storage.postgres");
  EXPECT_EQ(plugins[1]["state"], "DISABLED");
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "var/samokoder.db"));
  server.signal(SIGINT);
  EXPECT_EQ(server.wait(), 0) << server.err();
}

TEST(Cli, ServeRunsOnPostgresWhenDatabaseUrlIsSet) {
  auto& postgres = testing::PostgresServer::shared();
  const std::string url = postgres.create_database("cli_serve");
  testing::TempDir dir("samokoder-cli");
  Child server({"serve", "--listen", "127.0.0.1:0"},
               {"SAMOKODER_PLUGIN_DIR=" SAMOKODER_PLUGIN_DIR, "SAMOKODER_DATABASE_URL=" + url}, dir.path());
  const std::regex pattern(R"(listening on http://127\.0\.0\.1:(\d+)\n)");
  const std::string out = server.read_until(pattern);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(out, match, pattern)) << "stdout: " << out << "\nstderr: " << server.err();
  testing::HttpClient client("127.0.0.1", static_cast<std::uint16_t>(std::stoi(match[1])));
  EXPECT_EQ(client.get("/readyz").status, 200u);
  const auto plugins = client.get("/api/v1/plugins").json()["items"];
  EXPECT_EQ(plugins[0]["id"], "storage.sqlite");
  EXPECT_EQ(plugins[0]["state"], "DISABLED");
  EXPECT_EQ(plugins[1]["id"], "storage.postgres");
  EXPECT_EQ(plugins[1]["state"], "ACTIVE");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "var/samokoder.db"));
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(), 0) << server.err();
}

TEST(Cli, ServeRefusesAnInvalidConfigNamingThePath) {
  testing::TempDir dir("samokoder-cli");
  const auto config = dir.write("bad.json", R"({"server": {"io_threads": "two", "colour": 1}})");
  Child server({"serve", "--config", config.string()});
  EXPECT_EQ(server.wait(), 1);
  EXPECT_NE(server.err().find("/server/io_threads"), std::string::npos) << server.err();
  EXPECT_NE(server.err().find("/server/colour"), std::string::npos) << server.err();
}

TEST(Cli, ServeRefusesToStartWhenARequiredPluginFails) {
  testing::TempDir dir("samokoder-cli");
  const auto config = dir.write("samokoder.json", R"({"plugin_dir": ")" SAMOKODER_FIXTURE_DIR R"(",
      "runtime_dir": ")" + (dir.path() / "run").string() +
                                                      R"(", "plugins": [
      {"id": "agent.fixture_init_throws", "file": "fixture_init_throws.so", "required": true}]})");
  Child server({"serve", "--config", config.string(), "--listen", "127.0.0.1:0"});
  EXPECT_EQ(server.wait(), 1);
  EXPECT_NE(server.err().find("required plugin agent.fixture_init_throws failed to load"), std::string::npos)
      << server.err();
}

TEST(Cli, ConfigCheckAcceptsTheShippedConfigsAndRejectsBadOnes) {
  for (const char* file : {"config/samokoder.json", "config/examples/production.json"}) {
    Child check({"config", "check", std::string(SAMOKODER_SOURCE_DIR) + "/" + file});
    EXPECT_EQ(check.wait(), 0) << file << ": " << check.err();
    EXPECT_NE(check.out().find(": OK"), std::string::npos);
  }
  testing::TempDir dir("samokoder-cli");
  Child bad({"config", "check", dir.write("bad.json", R"({"plugins": [{"id": "Bad"}]})").string()});
  EXPECT_EQ(bad.wait(), 1);
  EXPECT_NE(bad.err().find("/plugins/0/file: required key is missing"), std::string::npos) << bad.err();
}

TEST(Cli, PluginCheckPrintsTheDescriptorAndTheVerdict) {
  Child good({"plugin", "check", fixture("fixture_echo_v1")});
  EXPECT_EQ(good.wait(), 0);
  EXPECT_NE(good.out().find("id:          agent.fixture_echo"), std::string::npos) << good.out();
  EXPECT_NE(good.out().find("verdict:     OK"), std::string::npos) << good.out();

  const std::pair<const char*, const char*> rejected[] = {
      {"fixture_abi_major", "REJECTED (abi_major): "},
      {"fixture_abi_minor", "REJECTED (abi_minor): "},
      {"fixture_fingerprint", "REJECTED (fingerprint): "},
      {"fixture_no_entry", "REJECTED (no_entry_symbol): "},
      {"not_elf", "REJECTED (not_elf): "},
      {"fixture_init_throws", "REJECTED (init_failed): "},
      {"fixture_init_error", "REJECTED (init_failed): "},
      {"fixture_unique", "REJECTED (pinned): "},
  };
  for (const auto& [name, verdict] : rejected) {
    Child check({"plugin", "check", fixture(name)});
    EXPECT_EQ(check.wait(), 1) << name;
    EXPECT_NE(check.out().find(verdict), std::string::npos) << name << ":\n" << check.out();
  }
}

TEST(Cli, PluginCheckJsonIsMachineReadable) {
  Child check({"plugin", "check", fixture("fixture_abi_minor"), "--json"});
  EXPECT_EQ(check.wait(), 1);
  const auto report = nlohmann::json::parse(check.out());
  EXPECT_EQ(report["accepted"], false);
  EXPECT_EQ(report["reason"], "abi_minor");
  EXPECT_EQ(report["descriptor"]["abi_minor"], 1);
}

TEST(Cli, VersionNamesKernelAndAbi) {
  Child version({"version"});
  EXPECT_EQ(version.wait(), 0);
  EXPECT_NE(version.out().find("samokoder 0.1.0"), std::string::npos) << version.out();
  const std::string abi =
      "plugin ABI " + std::to_string(SAMOKODER_ABI_MAJOR) + "." + std::to_string(SAMOKODER_ABI_MINOR);
  EXPECT_NE(version.out().find(abi), std::string::npos) << version.out();
}

TEST(Cli, UnknownCommandIsAUsageError) {
  Child unknown({"frobnicate"});
  EXPECT_EQ(unknown.wait(), 2);
  EXPECT_NE(unknown.err().find("usage:"), std::string::npos);
}

}  // namespace
}  // namespace samokoder

namespace samokoder {
namespace {

TEST(Cli, DbStatusMigrateAndBackupOnSqlite) {
  testing::TempDir dir("samokoder-cli");
  const auto config = dir.write("samokoder.json", R"({"plugin_dir": ")" SAMOKODER_PLUGIN_DIR R"(",
      "runtime_dir": ")" + (dir.path() / "run").string() +
                                                      R"(",
      "plugins": [{"id": "storage.sqlite", "file": "storage_sqlite.so", "required": true,
                   "config": {"path": ")" + (dir.path() / "samokoder.db").string() +
                                                      R"(", "auto_migrate": false}}]})");

  Child status({"db", "status", "--config", config.string()});
  EXPECT_EQ(status.wait(), 0) << status.err();
  EXPECT_NE(status.out().find("storage.sqlite: schema version 0 of "), std::string::npos) << status.out();
  EXPECT_NE(status.out().find("pending"), std::string::npos) << status.out();

  // An operator who migrates by hand: the server refuses the outdated schema instead of serving.
  Child refused({"serve", "--config", config.string(), "--listen", "127.0.0.1:0"});
  EXPECT_EQ(refused.wait(), 1);
  EXPECT_NE(refused.err().find("run `samokoder db migrate`"), std::string::npos) << refused.err();

  Child migrate({"db", "migrate", "--config", config.string()});
  EXPECT_EQ(migrate.wait(), 0) << migrate.err();
  EXPECT_NE(migrate.out().find("(up to date)"), std::string::npos) << migrate.out();

  const auto backup = dir.path() / "backup.db";
  Child copy({"db", "backup", backup.string(), "--config", config.string()});
  EXPECT_EQ(copy.wait(), 0) << copy.err();
  EXPECT_TRUE(std::filesystem::exists(backup));
  Child again({"db", "backup", backup.string(), "--config", config.string()});
  EXPECT_EQ(again.wait(), 1) << "an existing backup must not be overwritten";
}

}  // namespace
}  // namespace samokoder

namespace samokoder {
namespace {

TEST(Cli, SighupAppliesPluginChangesAndRejectsAnInvalidConfigWhole) {
  testing::TempDir dir("samokoder-cli");
  const std::string head = R"({"log": {"access_log": false}, "plugin_dir": ")" SAMOKODER_FIXTURE_DIR
                           R"(", "runtime_dir": ")" +
                           (dir.path() / "run").string() + R"(", "plugins": [
      {"id": "storage.sqlite", "file": ")" SAMOKODER_PLUGIN_DIR R"(/storage_sqlite.so", "required": true,
       "config": {"path": ")" +
                           (dir.path() / "samokoder.db").string() + R"("}})";
  const auto config = dir.write("samokoder.json", head + "]}");
  Child server({"serve", "--config", config.string(), "--listen", "127.0.0.1:0"});
  const std::uint16_t port = server.read_port();
  ASSERT_NE(port, 0u);
  testing::HttpClient client("127.0.0.1", port);
  auto plugin_state = [&](const std::string& id) {
    const auto response = client.get("/api/v1/plugins/" + id);
    return response.status == 200 ? response.json()["state"].get<std::string>()
                                  : std::to_string(response.status);
  };
  ASSERT_EQ(plugin_state("auth.fixture"), "404");

  dir.write("samokoder.json", head + R"(, {"id": "auth.fixture", "file": "fixture_auth.so"}]})");
  server.signal(SIGHUP);
  EXPECT_TRUE(
      testing::wait_until([&] { return plugin_state("auth.fixture") == "ACTIVE"; }, std::chrono::seconds(20)))
      << "SIGHUP did not load auth.fixture: " << plugin_state("auth.fixture");

  // Invalid: rejected whole, with the error named; the running set stays.
  dir.write("samokoder.json", head + R"(, {"id": "auth.fixture", "file": "fixture_auth.so", "colour": 1}]})");
  server.signal(SIGHUP);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(), 0) << server.err();
  EXPECT_NE(server.err().find("config reloaded (sighup)"), std::string::npos) << server.err();
  EXPECT_NE(server.err().find("config reload rejected, nothing changed"), std::string::npos) << server.err();
  EXPECT_NE(server.err().find("/plugins/1/colour"), std::string::npos) << server.err();
}

// A reload puts the log level and the access log switch in force for the requests that follow: a
// refused request logs "authentication refused" at debug and an access line only after the SIGHUP that
// turned them on.
TEST(Cli, SighupPutsTheLogLevelAndTheAccessLogInForce) {
  testing::TempDir dir("samokoder-cli");
  auto write_config = [&](const std::string& level, bool access_log) {
    return dir.write(
        "samokoder.json", R"({"log": {"level": ")" + level + R"(", "access_log": )" +
                              (access_log ? "true" : "false") + R"(},
        "runtime_dir": ")" + (dir.path() / "run").string() +
                              R"(", "plugins": [{"id": "storage.sqlite", "file": ")" SAMOKODER_PLUGIN_DIR
                              R"(/storage_sqlite.so", "required": true, "config": {"path": ")" +
                              (dir.path() / "samokoder.db").string() + R"("}}]})");
  };
  const auto config = write_config("info", false);
  Child server({"serve", "--config", config.string(), "--listen", "127.0.0.1:0"});
  const std::uint16_t port = server.read_port();
  ASSERT_NE(port, 0u);
  testing::HttpClient client("127.0.0.1", port);
  const testing::HeaderList forged = {{"Authorization", "Bearer not.a.jwt"}};
  ASSERT_EQ(client.get("/api/v1/auth/me", forged).status, 401u);

  write_config("debug", true);
  server.signal(SIGHUP);
  const std::regex reloaded("config reloaded: [^\n]*\n");
  const std::string err = server.read_err_until(reloaded);
  ASSERT_TRUE(std::regex_search(err, reloaded)) << err;
  EXPECT_NE(err.find("log.level: applied"), std::string::npos) << err;
  EXPECT_NE(err.find("log.access_log: applied"), std::string::npos) << err;
  ASSERT_EQ(client.get("/api/v1/auth/me", forged).status, 401u);

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait(), 0) << server.err();
  auto count = [&](const std::string& needle) {
    std::size_t n = 0;
    for (auto at = server.err().find(needle); at != std::string::npos; at = server.err().find(needle, at + 1))
      ++n;
    return n;
  };
  EXPECT_EQ(count("[security] authentication refused: invalid_token"), 1u) << server.err();
  EXPECT_EQ(count("[access] GET /api/v1/auth/me 401"), 1u) << server.err();
}

}  // namespace
}  // namespace samokoder
