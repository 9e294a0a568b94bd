#include "resources_fixture.hpp"

#include <fstream>
#include <iterator>

#include <sys/stat.h>

#include <samokoder/sdk/storage.hpp>

#include "security/random.hpp"

namespace samokoder::resources_test {

using boost::beast::http::verb;

namespace {

constexpr const char* kPassword = "violet-anchor-47-quietly";

config::PluginEntry plugin(std::string id, std::string file, bool required, nlohmann::json config) {
  config::PluginEntry entry;
  entry.id = std::move(id);
  entry.file = std::move(file);
  entry.required = required;
  entry.config = std::move(config);
  return entry;
}

void write_file(const std::filesystem::path& path, std::string_view content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

}  // namespace

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

unsigned mode_of(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void ConsoleBuild::write(const std::filesystem::path& dir) {
  write_file(dir / "index.html", kIndex);
  write_file(dir / kScriptPath, kScript);
  write_file(dir / (std::string(kScriptPath) + ".br"), kScriptBrotli);
  write_file(dir / (std::string(kScriptPath) + ".gz"), kScriptGzip);
  write_file(dir / kIconPath, kIcon);
}

void ResourcesApiTest::SetUp() {
  config::Config config;
  config.server.listen = {"127.0.0.1", 0};
  config.log.access_log = false;
  config.plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
  config.plugins.runtime_dir = dir_.path() / "run";
  config.plugins.plugins = {
      plugin("storage.sqlite", "storage_sqlite.so", true, {{"path", database().string()}}),
      plugin("auth.local", "auth_local.so", true,
             {{"memory_kib", 1024u}, {"iterations", 1u}, {"parallelism", 1u}}),
      plugin("auth.apitoken", "auth_apitoken.so", false, nlohmann::json::object()),
  };
  secret_key_ = security::random_token(48).value();
  config.security.secret_key = secret_key_;
  for (const char* group : {"auth", "default", "files"})
    config.security.rate_limits[group] = {1'000'000, 1'000'000};
  config.workspace_root = workspace_root();
  ConsoleBuild::write(console_dir());
  config.console.dir = console_dir();
  configure(config);
  app_ = std::make_unique<app::Application>(std::move(config), clock_);
  const sdk::Status status = app_->start();
  ASSERT_TRUE(status.ok()) << status.to_string();
  client_ = std::make_unique<testing::HttpClient>("127.0.0.1", app_->port());
}

void ResourcesApiTest::TearDown() {
  client_.reset();
  if (app_) app_->stop();
}

User ResourcesApiTest::sign_up(const std::string& email) {
  const nlohmann::json credentials = {{"email", email}, {"password", kPassword}};
  const HeaderList json = {{"Content-Type", "application/json"}};
  const auto registered = client_->request(verb::post, "/api/v1/auth/register", credentials.dump(), json);
  EXPECT_EQ(registered.status, 202u) << registered.body;
  return log_in(email);
}

User ResourcesApiTest::log_in(const std::string& email) {
  const nlohmann::json credentials = {{"email", email}, {"password", kPassword}};
  const HeaderList json = {{"Content-Type", "application/json"}};
  const auto login = client_->request(verb::post, "/api/v1/auth/login", credentials.dump(), json);
  EXPECT_EQ(login.status, 200u) << login.body;
  if (login.status != 200) return {};
  const auto body = login.json();
  return User{body.value("access_token", ""), body["user"].value("id", "")};
}

ClientResponse ResourcesApiTest::call(verb method, std::string_view target, const User& user,
                                      std::string_view body, std::string_view content_type) {
  HeaderList headers = {{"Authorization", "Bearer " + user.token}};
  if (!body.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  return client_->request(method, target, body, headers);
}

ClientResponse ResourcesApiTest::put_file(const User& user, std::string_view project_id,
                                          std::string_view path, std::string_view content) {
  HeaderList headers = {{"Authorization", "Bearer " + user.token},
                        {"Content-Type", "application/octet-stream"}};
  // An empty body still needs a length, or the server would wait for a chunked body.
  if (content.empty()) headers.emplace_back("Content-Length", "0");
  return client_->request(verb::put,
                          "/api/v1/projects/" + std::string(project_id) + "/files/" + std::string(path),
                          content, headers);
}

std::string ResourcesApiTest::create_project(const User& user, const std::string& name) {
  const auto response = call(verb::post, "/api/v1/projects", user, nlohmann::json{{"name", name}}.dump());
  EXPECT_EQ(response.status, 201u) << response.body;
  return response.status == 201 ? response.json().value("id", "") : std::string();
}

nlohmann::json ResourcesApiTest::stable_problem(const ClientResponse& response) {
  nlohmann::json doc = response.json();
  doc.erase("instance");
  doc.erase("request_id");
  return doc;
}

}  // namespace samokoder::resources_test
