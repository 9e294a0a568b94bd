#include "api_session.hpp"

#include <algorithm>

#include <gtest/gtest.h>

#include "wait_until.hpp"

namespace samokoder::testing {

using boost::beast::http::verb;
using nlohmann::json;

ApiUser sign_up(std::uint16_t port, const std::string& email, const std::string& password) {
  HttpClient client("127.0.0.1", port);
  const json credentials = {{"email", email}, {"password", password}};
  const HeaderList headers = {{"Content-Type", "application/json"}};
  const auto registered = client.request(verb::post, "/api/v1/auth/register", credentials.dump(), headers);
  EXPECT_EQ(registered.status, 202u) << registered.body;
  const auto login = client.request(verb::post, "/api/v1/auth/login", credentials.dump(), headers);
  EXPECT_EQ(login.status, 200u) << login.body;
  return ApiUser{login.status == 200 ? login.json().value("access_token", "") : ""};
}

std::string create_project(std::uint16_t port, const ApiUser& user, const std::string& name) {
  HttpClient client("127.0.0.1", port);
  const auto created =
      client.request(verb::post, "/api/v1/projects", json{{"name", name}}.dump(), user.json());
  EXPECT_EQ(created.status, 201u) << created.body;
  return created.status == 201 ? created.json().value("id", "") : "";
}

std::string start_run(std::uint16_t port, const ApiUser& user, const std::string& project,
                      const std::string& description) {
  HttpClient client("127.0.0.1", port);
  const auto created = client.request(verb::post, "/api/v1/projects/" + project + "/runs",
                                      json{{"description", description}}.dump(), user.json());
  EXPECT_EQ(created.status, 201u) << created.body;
  return created.status == 201 ? created.json().value("id", "") : "";
}

json get_run(std::uint16_t port, const ApiUser& user, const std::string& run) {
  HttpClient client("127.0.0.1", port);
  const auto got = client.get("/api/v1/runs/" + run, user.bearer());
  return got.status == 200 ? got.json() : json();
}

std::vector<json> run_events(std::uint16_t port, const ApiUser& user, const std::string& run) {
  HttpClient client("127.0.0.1", port);
  HeaderList headers = user.bearer();
  headers.emplace_back("Accept", "application/json");
  std::vector<json> out;
  std::int64_t after = 0;
  for (;;) {
    const auto page =
        client.get("/api/v1/runs/" + run + "/events?limit=500&after=" + std::to_string(after), headers);
    EXPECT_EQ(page.status, 200u) << page.body;
    if (page.status != 200) return out;
    const json items = page.json()["items"];
    for (const auto& event : items)
      out.push_back(event);
    if (items.size() < 500) return out;
    after = items.back()["seq"].get<std::int64_t>();
  }
}

std::size_t count_of(const std::vector<json>& events, const std::string& type) {
  return static_cast<std::size_t>(std::count_if(events.begin(), events.end(),
                                                [&](const json& e) { return e.value("type", "") == type; }));
}

json wait_until_ended(std::uint16_t port, const ApiUser& user, const std::string& run,
                      std::chrono::seconds deadline) {
  json last;
  wait_until(
      [&] {
        last = get_run(port, user, run);
        const std::string state = last.value("state", "");
        return state == "succeeded" || state == "failed" || state == "cancelled";
      },
      deadline, std::chrono::milliseconds(20));
  return last;
}

}  // namespace samokoder::testing
