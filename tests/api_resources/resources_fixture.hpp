// ResourcesApiTest: a real kernel (Application with storage.sqlite, auth.local, auth.apitoken) on an
// ephemeral port, with its workspaces in the test's own directory, driven over HTTP by users who
// register and log in through the identity endpoints. Rate limits are raised out of the way. The web
// console is a small build of the fixture's own (ConsoleBuild), so the routes served do not depend on
// whether the real console was built.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "app/application.hpp"
#include "core/clock.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

namespace samokoder::resources_test {

using testing::ClientResponse;
using testing::HeaderList;

// The console build the fixture serves: an index.html and two assets, one content-hashed with brotli and
// gzip copies (stand-in bytes: the server only picks among them), one plain.
struct ConsoleBuild {
  static constexpr std::string_view kIndex =
      "<!doctype html><title>Samokoder</title><script src=/assets/app-5XKQ2L7M.js></script>";
  static constexpr std::string_view kScriptPath = "assets/app-5XKQ2L7M.js";
  static constexpr std::string_view kScript =
      "console.log('the console, uncompressed and long enough to shrink');";
  static constexpr std::string_view kScriptBrotli = "brotli-bytes";
  static constexpr std::string_view kScriptGzip = "gzip-bytes-longer";
  static constexpr std::string_view kIconPath = "assets/icon.svg";
  static constexpr std::string_view kIcon = "<svg xmlns='http://www.w3.org/2000/svg'/>";
  static void write(const std::filesystem::path& dir);
};

// A file's bytes ("" when it cannot be read).
std::string file_bytes(const std::filesystem::path& path);
// A path's permission bits (lstat: a link's own); fails the test when it cannot be read.
unsigned mode_of(const std::filesystem::path& path);

// A signed-in user: the Bearer access token and the user's id.
struct User {
  std::string token;
  std::string id;
};

class ResourcesApiTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Changes the config before the kernel starts (limits for the tests of limits, say).
  virtual void configure(config::Config& /*config*/) {}

  // Registers and logs in; fails the test when either step does.
  User sign_up(const std::string& email);
  // Logs in a registered user again (a new session, e.g. with the scopes of a new admin).
  User log_in(const std::string& email);

  // One request with the user's Bearer token. `content_type` is sent when the body is not empty.
  ClientResponse call(boost::beast::http::verb method, std::string_view target, const User& user,
                      std::string_view body = "", std::string_view content_type = "application/json");
  ClientResponse get(std::string_view target, const User& user) {
    return call(boost::beast::http::verb::get, target, user);
  }
  ClientResponse put_file(const User& user, std::string_view project_id, std::string_view path,
                          std::string_view content);
  // Creates a project and returns its id (asserting 201).
  std::string create_project(const User& user, const std::string& name);

  // The problem document without the per-request members (instance, request_id).
  static nlohmann::json stable_problem(const ClientResponse& response);

  // Runs fn on the storage backend serving the kernel.
  template <typename F>
  auto with_storage(F&& fn) {
    return app_->storage().call<sdk::Storage>(std::forward<F>(fn));
  }

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path workspace_root() const { return dir_.path() / "workspaces"; }
  std::filesystem::path database() const { return dir_.path() / "samokoder.db"; }
  std::filesystem::path console_dir() const { return dir_.path() / "console"; }
  const std::string& secret_key() const { return secret_key_; }

  testing::TempDir dir_{"samokoder-resources"};
  core::ManualClock clock_;
  std::string secret_key_;
  std::unique_ptr<app::Application> app_;
  std::unique_ptr<testing::HttpClient> client_;
};

}  // namespace samokoder::resources_test
