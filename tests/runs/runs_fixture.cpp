#include "runs_fixture.hpp"

#include <thread>

namespace samokoder::runs_test {

using boost::beast::http::verb;
using nlohmann::json;

namespace {

config::PluginEntry plugin(std::string id, std::string file) {
  config::PluginEntry entry;
  entry.id = std::move(id);
  entry.file = std::move(file);
  entry.required = true;
  return entry;
}

std::string last_line(const std::string& text) {
  const auto at = text.rfind('\n');
  return at == std::string::npos ? text : text.substr(at + 1);
}

}  // namespace

RunsApiTest::RunsApiTest() {
  model_.respond_with([](const testing::ModelCall& call) {
    testing::ModelReply reply;
    reply.deltas = {"ok: ", last_line(call.prompt_text())};
    return reply;
  });
}

void RunsApiTest::configure(config::Config& config) {
  // Storage dates records by the real clock; the engine's leases and the usage queries must agree.
  clock_.advance(std::chrono::system_clock::now() - clock_.now());
  config.plugins.plugins.push_back(plugin("llm.openai", "llm_openai.so"));
  for (const char* name : {"planner", "writer", "finisher", "chat", "looper"}) {
    config.plugins.plugins.push_back(plugin(std::string("agent.fixture_") + name,
                                            std::string(SAMOKODER_RUNS_FIXTURE_DIR) + "/" + name + ".so"));
  }
  config.llm.providers["openai"].base_url = model_.url("/v1");
  config.llm.providers["openai"].api_key = "sk-runs-test-0123456789";
  config.llm.roles["default"] = {"openai/test-model"};
  config.llm.retry_initial_backoff_ms = 1;
  config.llm.retry_max_backoff_ms = 5;
  config.runs.pipeline = {"agent.fixture_chat", "agent.fixture_planner", "agent.fixture_looper",
                          "agent.fixture_finisher"};
  config.runs.poll_interval_ms = 50;
  config.runs.workers = 16;
  // No preview runner is loaded here: the fixture agents' commands run unconfined, by explicit choice.
  // The tests of confinement load preview.sandbox and name it (tune).
  config.runs.command_containment = "none";
  tune(config);
}

std::string RunsApiTest::start_run(const User& user, const std::string& project_id,
                                   const std::string& description, json extra) {
  extra["description"] = description;
  const auto response = call(verb::post, "/api/v1/projects/" + project_id + "/runs", user, extra.dump());
  EXPECT_EQ(response.status, 201u) << response.body;
  return response.status == 201 ? response.json().value("id", "") : "";
}

json RunsApiTest::wait_for_state(const User& user, const std::string& run_id,
                                 const std::set<std::string>& states, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  json run;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto response = get("/api/v1/runs/" + run_id, user);
    if (response.status == 200) {
      run = response.json();
      if (states.contains(run.value("state", ""))) return run;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "run " << run_id << " did not reach the expected state; last seen: " << run.dump();
  return run;
}

json RunsApiTest::current_state(const User& user, const std::string& run_id) {
  const auto run = get("/api/v1/runs/" + run_id, user);
  EXPECT_EQ(run.status, 200u) << run.body;
  if (run.status != 200) return json();
  const auto step =
      get("/api/v1/runs/" + run_id + "/steps/" + run.json()["current_step"].value("id", std::string()), user);
  EXPECT_EQ(step.status, 200u) << step.body;
  return step.status == 200 ? step.json()["state"] : json();
}

std::vector<json> RunsApiTest::committed_events(const User& user, const std::string& run_id) {
  std::vector<json> events;
  std::int64_t after = 0;
  for (;;) {
    const auto response = client_->request(
        verb::get, "/api/v1/runs/" + run_id + "/events?limit=500&after=" + std::to_string(after), "",
        {{"Authorization", "Bearer " + user.token}, {"Accept", "application/json"}});
    EXPECT_EQ(response.status, 200u) << response.body;
    if (response.status != 200) return events;
    const json page = response.json();
    for (const auto& event : page["items"])
      events.push_back(event);
    if (page["items"].size() < 500) return events;
    after = page["items"].back()["seq"].get<std::int64_t>();
  }
}

}  // namespace samokoder::runs_test
