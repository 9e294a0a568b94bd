// SecurityApiTest: a real kernel (Application with storage.sqlite, auth.local, auth.apitoken) on an
// ephemeral port, driven over HTTP, with a ManualClock so tests move time (token expiry, lockout
// windows, rate-limit refill) without sleeping. Rate limits are raised out of the way unless a test
// sets them; Argon2 runs with small parameters so the suite stays quick.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "app/application.hpp"
#include "core/clock.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

namespace samokoder::security_test {

using testing::ClientResponse;
using testing::HeaderList;

// The tokens a login hands out, and the cookie values it set.
struct Login {
  std::string access_token;
  std::string refresh_token;
  std::string access_cookie;
  std::string refresh_cookie;
  std::string csrf_cookie;
  std::string user_id;
};

// A strong password no policy list contains.
inline constexpr const char* kPassword = "violet-anchor-47-quietly";

class SecurityApiTest : public ::testing::Test {
 protected:
  // The config every test starts from; `tweak` edits it before start.
  config::Config base_config() const;
  void start(const std::function<void(config::Config&)>& tweak = {});
  void restart_client();

  ClientResponse post_json(std::string_view path, const nlohmann::json& body, HeaderList headers = {});
  ClientResponse get(std::string_view path, HeaderList headers = {});
  ClientResponse send(boost::beast::http::verb method, std::string_view path, std::string_view body,
                      HeaderList headers);

  ClientResponse register_user(const std::string& email, const std::string& password = kPassword);
  ClientResponse login(const std::string& email, const std::string& password = kPassword,
                       HeaderList headers = {});
  // Registers and signs in; fails the test when either step does.
  Login sign_up(const std::string& email, const std::string& password = kPassword);
  // Makes the user an admin directly in storage (the CLI does it for the first admin).
  void make_admin(const std::string& user_id);

  static HeaderList bearer(const std::string& token);
  // The value of cookie `name` among the response's Set-Cookie headers ("" when absent), and the
  // whole Set-Cookie line for it.
  static std::string cookie_value(const ClientResponse& response, std::string_view name);
  static std::string set_cookie_line(const ClientResponse& response, std::string_view name);
  // The problem document without the per-request members (instance, request_id).
  static nlohmann::json stable_problem(const ClientResponse& response);

  // Audit events of one action, newest first (as the admin sees them).
  nlohmann::json audit_events(const std::string& admin_token, const std::string& query);

  testing::TempDir dir_{"samokoder-security"};
  core::ManualClock clock_;
  std::unique_ptr<app::Application> app_;
  std::unique_ptr<testing::HttpClient> client_;
};

}  // namespace samokoder::security_test
