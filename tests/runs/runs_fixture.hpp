// RunsApiTest: a real kernel (ResourcesApiTest) with the runs engine's fixture agents
// (tests/runs/fixtures) as its pipeline and the real llm.openai plugin pointed at a scripted model
// server that answers every prompt with "ok: <the prompt's last line>", so tests count requests and
// read answers back from the state.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model_server.hpp"
#include "resources_fixture.hpp"
#include "stream_clients.hpp"

namespace samokoder::runs_test {

using resources_test::User;

class RunsApiTest : public resources_test::ResourcesApiTest {
 protected:
  RunsApiTest();
  void configure(config::Config& config) override;
  // More config for one test's kernel.
  virtual void tune(config::Config& /*config*/) {}

  // POST /projects/{id}/runs; returns the run's id (asserting 201).
  std::string start_run(const User& user, const std::string& project_id, const std::string& description,
                        nlohmann::json extra = nlohmann::json::object());
  // Polls GET /runs/{id} until its state is one of `states`; returns the run document (fails the test
  // after `timeout`).
  nlohmann::json wait_for_state(const User& user, const std::string& run_id,
                                const std::set<std::string>& states,
                                std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Every committed event of the run, from the JSON page of GET /runs/{id}/events.
  std::vector<nlohmann::json> committed_events(const User& user, const std::string& run_id);
  // The state of the run's last committed step.
  nlohmann::json current_state(const User& user, const std::string& run_id);
  static Headers bearer(const User& user) { return {{"Authorization", "Bearer " + user.token}}; }
  // Reads events until one of type `until` arrives (included) or `timeout`.
  template <typename Client>
  std::vector<StreamEvent> read_until(Client& client, const std::string& until,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::vector<StreamEvent> events;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto event = client.next(std::chrono::milliseconds(200));
      if (!event) continue;
      events.push_back(*event);
      if (event->type == until) break;
    }
    return events;
  }

  testing::ScriptedModelServer model_;
};

}  // namespace samokoder::runs_test
