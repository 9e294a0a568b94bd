#include "security_fixture.hpp"

#include <samokoder/sdk/storage.hpp>

#include "security/random.hpp"

namespace samokoder::security_test {

using boost::beast::http::verb;

config::Config SecurityApiTest::base_config() const {
  config::Config config;
  config.server.listen = {"127.0.0.1", 0};
  config.log.access_log = false;
  config.plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
  config.plugins.runtime_dir = dir_.path() / "run";
  config::PluginEntry sqlite;
  sqlite.id = "storage.sqlite";
  sqlite.file = "storage_sqlite.so";
  sqlite.required = true;
  sqlite.config = {{"path", (dir_.path() / "samokoder.db").string()}};
  config::PluginEntry local;
  local.id = "auth.local";
  local.file = "auth_local.so";
  local.required = true;
  local.config = {{"memory_kib", 1024}, {"iterations", 1}, {"parallelism", 1}};
  config::PluginEntry apitoken;
  apitoken.id = "auth.apitoken";
  apitoken.file = "auth_apitoken.so";
  config.plugins.plugins = {sqlite, local, apitoken};
  config.security.secret_key = security::random_token(48).value();
  config.security.rate_limits["auth"] = {1'000'000, 1'000'000};
  config.security.rate_limits["default"] = {1'000'000, 1'000'000};
  return config;
}

void SecurityApiTest::start(const std::function<void(config::Config&)>& tweak) {
  config::Config config = base_config();
  if (tweak) tweak(config);
  app_ = std::make_unique<app::Application>(std::move(config), clock_);
  const sdk::Status status = app_->start();
  ASSERT_TRUE(status.ok()) << status.to_string();
  restart_client();
}

void SecurityApiTest::restart_client() {
  client_ = std::make_unique<testing::HttpClient>("127.0.0.1", app_->port());
}

ClientResponse SecurityApiTest::send(verb method, std::string_view path, std::string_view body,
                                     HeaderList headers) {
  if (!client_) {
    ADD_FAILURE() << "the server did not start";
    return {};
  }
  return client_->request(method, path, body, headers);
}

ClientResponse SecurityApiTest::post_json(std::string_view path, const nlohmann::json& body,
                                          HeaderList headers) {
  headers.emplace_back("Content-Type", "application/json");
  return send(verb::post, path, body.dump(), headers);
}

ClientResponse SecurityApiTest::get(std::string_view path, HeaderList headers) {
  return send(verb::get, path, "", headers);
}

ClientResponse SecurityApiTest::register_user(const std::string& email, const std::string& password) {
  return post_json("/api/v1/auth/register", {{"email", email}, {"password", password}});
}

ClientResponse SecurityApiTest::login(const std::string& email, const std::string& password,
                                      HeaderList headers) {
  return post_json("/api/v1/auth/login", {{"email", email}, {"password", password}}, std::move(headers));
}

Login SecurityApiTest::sign_up(const std::string& email, const std::string& password) {
  const auto registered = register_user(email, password);
  EXPECT_EQ(registered.status, 202u) << registered.body;
  const auto response = login(email, password);
  EXPECT_EQ(response.status, 200u) << response.body;
  Login out;
  if (response.status != 200) return out;
  const auto body = response.json();
  out.access_token = body.value("access_token", "");
  out.refresh_token = body.value("refresh_token", "");
  out.user_id = body["user"].value("id", "");
  out.access_cookie = cookie_value(response, "samokoder_access");
  out.refresh_cookie = cookie_value(response, "samokoder_refresh");
  out.csrf_cookie = cookie_value(response, "samokoder_csrf");
  return out;
}

void SecurityApiTest::make_admin(const std::string& user_id) {
  sdk::UserUpdate update;
  update.is_admin = true;
  const auto lease = app_->storage();
  auto updated =
      lease.call<sdk::Storage>([&](sdk::Storage& s) { return s.users().update_user(user_id, update); });
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
}

HeaderList SecurityApiTest::bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

std::string SecurityApiTest::set_cookie_line(const ClientResponse& response, std::string_view name) {
  const std::string prefix = std::string(name) + "=";
  for (auto it = response.headers.begin(); it != response.headers.end(); ++it) {
    if (!boost::beast::iequals(it->name_string(), "Set-Cookie")) continue;
    const std::string line(it->value());
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return {};
}

std::string SecurityApiTest::cookie_value(const ClientResponse& response, std::string_view name) {
  const std::string line = set_cookie_line(response, name);
  if (line.empty()) return {};
  const auto start = name.size() + 1;
  return line.substr(start, line.find(';') - start);
}

nlohmann::json SecurityApiTest::stable_problem(const ClientResponse& response) {
  nlohmann::json doc = response.json();
  doc.erase("instance");
  doc.erase("request_id");
  return doc;
}

nlohmann::json SecurityApiTest::audit_events(const std::string& admin_token, const std::string& query) {
  const auto response = get("/api/v1/admin/audit?" + query, bearer(admin_token));
  EXPECT_EQ(response.status, 200u) << response.body;
  return response.status == 200 ? response.json()["items"] : nlohmann::json::array();
}

}  // namespace samokoder::security_test
