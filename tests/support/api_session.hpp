// The HTTP API as a user drives it, for tests that run `samokoder serve` as a child process (runs
// durability, the end-to-end pipeline, the pipeline bench): sign up, projects, runs, their events and
// questions. Each call opens its own connection, so a server killed and started again on another port
// is reached by passing the new port.
//
// Thread-safety: free functions; HttpClient connections are per call.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http_client.hpp"

namespace samokoder::testing {

struct ApiUser {
  std::string token;
  HeaderList bearer() const { return {{"Authorization", "Bearer " + token}}; }
  HeaderList json() const {
    return {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  }
};

// Registers `email` and logs in; the token is empty (and the test failed) when either did not work.
ApiUser sign_up(std::uint16_t port, const std::string& email, const std::string& password);
// POST /projects; the project's id.
std::string create_project(std::uint16_t port, const ApiUser& user, const std::string& name);
// POST /projects/{id}/runs; the run's id.
std::string start_run(std::uint16_t port, const ApiUser& user, const std::string& project,
                      const std::string& description);
// GET /runs/{id}; null when it did not answer 200.
nlohmann::json get_run(std::uint16_t port, const ApiUser& user, const std::string& run);
// Every committed event of the run, oldest first (the JSON pages of GET /runs/{id}/events).
std::vector<nlohmann::json> run_events(std::uint16_t port, const ApiUser& user, const std::string& run);
std::size_t count_of(const std::vector<nlohmann::json>& events, const std::string& type);
// Polls until the run is succeeded, failed or cancelled; its last document.
nlohmann::json wait_until_ended(std::uint16_t port, const ApiUser& user, const std::string& run,
                                std::chrono::seconds deadline = std::chrono::seconds(20));

}  // namespace samokoder::testing
