// Secrets at startup (production refuses a missing or weak SAMOKODER_SECRET_KEY), secrets kept out of
// every log line of a full identity flow, and the first admin created with the CLI.
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <gmock/gmock.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/logging.hpp"
#include "security_fixture.hpp"
#include "wait_until.hpp"

extern char** environ;

namespace samokoder::security_test {
namespace {

using boost::beast::http::verb;
using ::testing::HasSubstr;

TEST_F(SecurityApiTest, ProductionRefusesAMissingSecret) {
  config::Config config = base_config();
  config.environment = config::Environment::kProduction;
  config.security.secret_key.clear();
  app::Application application(std::move(config), clock_);
  const sdk::Status status = application.start();
  EXPECT_EQ(status.code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("SAMOKODER_SECRET_KEY is not set"));
  EXPECT_EQ(application.port(), 0);
}

TEST_F(SecurityApiTest, ProductionRefusesAWeakSecretWithoutQuotingIt) {
  for (const std::string& weak :
       std::vector<std::string>{"short-but-random-Zq81", "changeme-changeme-changeme-changeme-1234",
                                "abababababababababababababababababababab"}) {
    config::Config config = base_config();
    config.environment = config::Environment::kProduction;
    config.security.secret_key = weak;
    app::Application application(std::move(config), clock_);
    const sdk::Status status = application.start();
    EXPECT_EQ(status.code(), sdk::StatusCode::kFailedPrecondition) << weak;
    EXPECT_THAT(status.message(), HasSubstr("SAMOKODER_SECRET_KEY"));
    EXPECT_THAT(status.message(), ::testing::Not(HasSubstr(weak)));
  }
}

TEST_F(SecurityApiTest, ProductionWithAStrongSecretServesSecureHostCookies) {
  start([](config::Config& c) { c.environment = config::Environment::kProduction; });
  ASSERT_EQ(register_user("prod@example.com").status, 202u);
  const auto response = login("prod@example.com");
  ASSERT_EQ(response.status, 200u) << response.body;
  const std::string access = set_cookie_line(response, "__Host-samokoder_access");
  EXPECT_THAT(access, HasSubstr("Secure"));
  EXPECT_THAT(access, HasSubstr("HttpOnly"));
  EXPECT_THAT(set_cookie_line(response, "__Secure-samokoder_refresh"), HasSubstr("Secure"));
  EXPECT_THAT(set_cookie_line(response, "__Host-samokoder_csrf"), HasSubstr("Secure"));
  // The cookie names of development do not authenticate in production.
  const std::string token = cookie_value(response, "__Host-samokoder_access");
  EXPECT_EQ(get("/api/v1/auth/me", {{"Cookie", "samokoder_access=" + token}}).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me", {{"Cookie", "__Host-samokoder_access=" + token}}).status, 200u);
}

TEST_F(SecurityApiTest, TokensSignedWithThePreviousSecretStillVerifyAfterARotation) {
  const std::string old_secret = base_config().security.secret_key;
  start([&](config::Config& c) { c.security.secret_key = old_secret; });
  const Login session = sign_up("rotate@example.com");
  app_->stop();
  start([&](config::Config& c) { c.security.previous_secret_key = old_secret; });
  EXPECT_EQ(get("/api/v1/auth/me", bearer(session.access_token)).status, 200u);
  const auto refreshed = post_json("/api/v1/auth/refresh", {{"refresh_token", session.refresh_token}});
  ASSERT_EQ(refreshed.status, 200u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(refreshed.json()["access_token"].get<std::string>())).status, 200u);
}

// Redirects this process's stderr (where the kernel logs) into a file for the life of the object.
class CapturedStderr {
 public:
  explicit CapturedStderr(const std::filesystem::path& file) : file_(file) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~CapturedStderr() {
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }
  // Everything logged so far: logs a marker line and waits until the asynchronous logger wrote it.
  std::string text() {
    const std::string marker = "capture-marker-" + std::to_string(++markers_);
    core::logger("test")->error("{}", marker);
    std::string content;
    const bool written = testing::wait_until(
        [&] {
          core::flush_logging();
          std::fflush(stderr);
          std::ifstream in(file_);
          content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
          return content.find(marker) != std::string::npos;
        },
        std::chrono::seconds(10));
    EXPECT_TRUE(written) << "the logger did not write the marker line within 10 s";
    return content;
  }

 private:
  std::filesystem::path file_;
  int saved_ = -1;
  int markers_ = 0;
};

TEST_F(SecurityApiTest, SecretsNeverReachTheLogs) {
  CapturedStderr captured(dir_.path() / "stderr.log");
  config::LogConfig verbose;
  verbose.level = "trace";
  core::init_logging(verbose);
  std::string secret;
  start([&](config::Config& c) {
    c.log.level = "trace";
    c.log.access_log = true;
    secret = c.security.secret_key;
  });

  std::vector<std::string> secrets = {secret, kPassword, "wrong-password-for-logs"};
  const Login admin = sign_up("logs@example.com");
  make_admin(admin.user_id);
  secrets.insert(secrets.end(), {admin.access_token, admin.refresh_token, admin.csrf_cookie});
  EXPECT_EQ(login("logs@example.com", "wrong-password-for-logs").status, 401u);
  EXPECT_EQ(login("nobody@example.com", "wrong-password-for-logs").status, 401u);
  EXPECT_EQ(login("logs@example.com", std::string(2000, 'p')).status, 413u);  // over the body limit
  const auto refreshed = post_json("/api/v1/auth/refresh", {{"refresh_token", admin.refresh_token}});
  ASSERT_EQ(refreshed.status, 200u);
  secrets.push_back(refreshed.json()["refresh_token"].get<std::string>());
  secrets.push_back(refreshed.json()["access_token"].get<std::string>());
  // Reuse: refused and logged as a warning.
  EXPECT_EQ(post_json("/api/v1/auth/refresh", {{"refresh_token", admin.refresh_token}}).status, 401u);
  const Login again = sign_up("logs2@example.com");
  secrets.insert(secrets.end(), {again.access_token, again.refresh_token});
  const auto token =
      post_json("/api/v1/tokens", {{"name", "t"}, {"scopes", {"read", "write"}}}, bearer(again.access_token));
  ASSERT_EQ(token.status, 201u) << token.body;
  secrets.push_back(token.json()["token"].get<std::string>());
  EXPECT_EQ(get("/api/v1/auth/me", bearer(token.json()["token"].get<std::string>())).status, 200u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer("skp_" + std::string(43, 'Q'))).status, 401u);
  EXPECT_EQ(get("/api/v1/auth/me", bearer(again.access_token + "x")).status, 401u);
  EXPECT_EQ(send(verb::post, "/api/v1/auth/logout", "", bearer(again.access_token)).status, 204u);
  app_->stop();

  const std::string logs = captured.text();
  EXPECT_THAT(logs, HasSubstr("POST /api/v1/auth/login"));  // the access log was on and captured
  EXPECT_THAT(logs, HasSubstr("refresh token reuse"));
  for (const auto& s : secrets) {
    ASSERT_FALSE(s.empty());
    EXPECT_EQ(logs.find(s), std::string::npos) << "a secret of " << s.size() << " bytes is in the logs";
  }
}

// Runs `samokoder` with `input` on stdin and `environment` ("NAME=value") added to this process's;
// stdout and stderr go to files in `dir`. A run that outlives `deadline` is killed and fails the test.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

RunResult run_samokoder(const std::filesystem::path& dir, std::vector<std::string> args,
                        const std::string& input, std::vector<std::string> environment = {},
                        std::chrono::seconds deadline = std::chrono::seconds(60)) {
  const auto in_path = dir / "stdin.txt";
  const auto out_path = dir / "stdout.txt";
  const auto err_path = dir / "stderr.txt";
  std::ofstream(in_path) << input;
  args.insert(args.begin(), SAMOKODER_EXECUTABLE);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  for (char** variable = environ; *variable != nullptr; ++variable)
    environment.emplace_back(*variable);
  std::vector<char*> envp;
  for (auto& variable : environment)
    envp.push_back(variable.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  RunResult result;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot start " << argv[0];
    return result;
  }
  int status = 0;
  const bool exited = testing::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, deadline);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    ADD_FAILURE() << "samokoder " << args[1] << " did not exit within " << deadline.count() << " s";
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

TEST_F(SecurityApiTest, AdminCreateUserMakesTheFirstAdminWhoCanSignIn) {
  const auto config_file = dir_.write(
      "samokoder.json", nlohmann::json{{"log", {{"access_log", false}}},
                                       {"plugin_dir", SAMOKODER_PLUGIN_DIR},
                                       {"runtime_dir", (dir_.path() / "cli-run").string()},
                                       {"plugins",
                                        {{{"id", "storage.sqlite"},
                                          {"file", "storage_sqlite.so"},
                                          {"required", true},
                                          {"config", {{"path", (dir_.path() / "samokoder.db").string()}}}},
                                         {{"id", "auth.local"},
                                          {"file", "auth_local.so"},
                                          {"required", true},
                                          {"config", {{"memory_kib", 1024}, {"iterations", 1}}}}}}}
                            .dump());
  const std::string password = "first-admin-passphrase-42";
  const auto created = run_samokoder(
      dir_.path(),
      {"admin", "create-user", "--email", "first@example.com", "--admin", "--config", config_file.string()},
      password + "\n");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("created user"));
  EXPECT_THAT(created.out, HasSubstr("(admin)"));
  EXPECT_EQ(created.out.find(password), std::string::npos);
  EXPECT_EQ(created.err.find(password), std::string::npos);

  const auto duplicate = run_samokoder(
      dir_.path(), {"admin", "create-user", "--email", "FIRST@example.com", "--config", config_file.string()},
      password + "\n");
  EXPECT_EQ(duplicate.exit_code, 1);
  EXPECT_THAT(duplicate.err, HasSubstr("already exists"));
  const auto weak = run_samokoder(
      dir_.path(), {"admin", "create-user", "--email", "weak@example.com", "--config", config_file.string()},
      "password\n");
  EXPECT_EQ(weak.exit_code, 1);
  EXPECT_THAT(weak.err, HasSubstr("password refused"));
  EXPECT_EQ(
      run_samokoder(dir_.path(), {"admin", "create-user", "--config", config_file.string()}, "").exit_code,
      2);

  start();  // the same database (base_config points at it)
  const auto response = login("first@example.com", password);
  ASSERT_EQ(response.status, 200u) << response.body;
  EXPECT_TRUE(response.json()["user"]["is_admin"].get<bool>());
  const std::string access = response.json()["access_token"];
  const auto users = get("/api/v1/admin/users", bearer(access));
  EXPECT_EQ(users.status, 200u);
  const auto audit = get("/api/v1/admin/audit?action=admin.user_created", bearer(access));
  ASSERT_EQ(audit.status, 200u);
  EXPECT_EQ(audit.json()["items"].size(), 1u);
  EXPECT_EQ(login("weak@example.com", "password").status, 401u);
}

// Malformed database URLs carrying a password, in every form libpq accepts (URL userinfo, keyword/value
// password=, query ?password=) and in the ways libpq's own error text echoes them.
const std::string kDbPassword = "Zq7S3cretPw";
const std::vector<std::string> kMalformedDatabaseUrls = {
    "postgres://user:" + kDbPassword + "@127.0.0.1:notaport/db",
    "postgres://user:" + kDbPassword + "@[::1/db",
    "postgres://user:" + kDbPassword + "%zz@127.0.0.1/db",
    "user:" + kDbPassword + "@127.0.0.1/db",
    "host=127.0.0.1 password=" + kDbPassword + " port=notaport",
    "host=127.0.0.1 password='" + kDbPassword,
    "postgresql://user@127.0.0.1/db?password=" + kDbPassword + "&bogus=1",
    "postgresql://user@127.0.0.1:notaport/db?password=" + kDbPassword,
};

config::PluginEntry postgres_entry(const std::string& url) {
  config::PluginEntry postgres;
  postgres.id = "storage.postgres";
  postgres.file = "storage_postgres.so";
  postgres.required = false;  // storage.sqlite serves; the failed plugin stays visible in the API
  postgres.config = {{"url", url}};
  return postgres;
}

const nlohmann::json* find_plugin(const nlohmann::json& items, std::string_view id) {
  for (const auto& item : items) {
    if (item.value("id", "") == id) return &item;
  }
  return nullptr;
}

TEST_F(SecurityApiTest, DatabaseUrlPasswordsReachNoLogLineAndNoResponse) {
  CapturedStderr captured(dir_.path() / "stderr.log");
  config::LogConfig verbose;
  verbose.level = "trace";
  core::init_logging(verbose);
  std::vector<std::string> bodies;
  bool first = true;
  for (const std::string& url : kMalformedDatabaseUrls) {
    SCOPED_TRACE(url);
    start([&](config::Config& c) {
      c.log.level = "trace";
      c.log.access_log = true;
      c.plugins.plugins.push_back(postgres_entry(url));
    });
    if (first) {
      const Login admin = sign_up("dburl-admin@example.com");
      make_admin(admin.user_id);
      sign_up("dburl-user@example.com");
      first = false;
    }
    const auto admin_login = login("dburl-admin@example.com");
    const auto user_login = login("dburl-user@example.com");
    ASSERT_EQ(admin_login.status, 200u) << admin_login.body;
    ASSERT_EQ(user_login.status, 200u) << user_login.body;
    const HeaderList admin = bearer(admin_login.json()["access_token"].get<std::string>());
    const HeaderList user = bearer(user_login.json()["access_token"].get<std::string>());

    // Anonymous, a signed-in user, a credential that fails: the state without the failure text; an admin:
    // the text, redacted.
    const std::vector<std::pair<HeaderList, bool>> callers = {
        {{}, false}, {user, false}, {{{"Authorization", "Bearer skp_nonsense"}}, false}, {admin, true}};
    for (const auto& [caller, is_admin] : callers) {
      const auto list = get("/api/v1/plugins", caller);
      const auto one = get("/api/v1/plugins/storage.postgres", caller);
      ASSERT_EQ(list.status, 200u) << list.body;
      ASSERT_EQ(one.status, 200u) << one.body;
      const nlohmann::json items = list.json()["items"];
      const nlohmann::json* listed = find_plugin(items, "storage.postgres");
      ASSERT_NE(listed, nullptr) << list.body;
      for (const nlohmann::json& plugin : {*listed, one.json()}) {
        EXPECT_EQ(plugin["state"], "FAILED") << plugin.dump();
        EXPECT_EQ(plugin["kind"], "storage") << plugin.dump();
        if (is_admin) {
          ASSERT_TRUE(plugin["failure_message"].is_string()) << "an admin sees why: " << plugin.dump();
          EXPECT_THAT(plugin["failure_message"].get<std::string>(), HasSubstr("init failed"));
        } else {
          EXPECT_FALSE(plugin.contains("failure_message"))
              << "only admins see failure details: " << plugin.dump();
        }
      }
      bodies.insert(bodies.end(), {list.body, one.body});
    }
    for (const char* path : {"/readyz", "/healthz", "/metrics"})
      bodies.push_back(get(path).body);
    app_->stop();
  }

  // Whatever else quotes such a URL in a log line (here: a kernel logger) is redacted on the way out.
  core::logger("test")->warn("quoting postgres://user:{}@[::1/db and host=h password={}", kDbPassword,
                             kDbPassword);
  const std::string logs = captured.text();
  EXPECT_THAT(logs, HasSubstr("plugin storage.postgres failed to load"));  // the failures were captured
  EXPECT_THAT(logs, HasSubstr("quoting postgres://user:***@[::1/db and host=h password=***"));
  EXPECT_EQ(logs.find(kDbPassword), std::string::npos) << logs;
  for (const auto& body : bodies)
    EXPECT_EQ(body.find(kDbPassword), std::string::npos) << body;
}

TEST_F(SecurityApiTest, ServeRefusingAMalformedDatabaseUrlQuotesNoPassword) {
  const auto config_file = dir_.write(
      "samokoder.json",
      nlohmann::json{
          {"plugin_dir", SAMOKODER_PLUGIN_DIR},
          {"runtime_dir", (dir_.path() / "cli-run").string()},
          {"plugins", {{{"id", "storage.postgres"}, {"file", "storage_postgres.so"}, {"required", true}}}}}
          .dump());
  for (const std::string& url : kMalformedDatabaseUrls) {
    SCOPED_TRACE(url);
    const auto served =
        run_samokoder(dir_.path(), {"serve", "--config", config_file.string(), "--listen", "127.0.0.1:0"}, "",
                      {"SAMOKODER_DATABASE_URL=" + url, "SAMOKODER_LOG_LEVEL=trace"});
    EXPECT_EQ(served.exit_code, 1) << served.err;
    EXPECT_THAT(served.err, HasSubstr("required plugin storage.postgres failed to load"));
    EXPECT_EQ(served.err.find(kDbPassword), std::string::npos) << served.err;
    EXPECT_EQ(served.out.find(kDbPassword), std::string::npos) << served.out;
  }
}

}  // namespace
}  // namespace samokoder::security_test
