// Runs survive kill -9 (ctest label runs). The kernel runs as users run it, `samokoder serve` in a
// child process with a config file written here, its model the scripted model server of this process
// (answering "ok: <the prompt's last line>"), its pipeline the fixture agents (fixtures/). With
// "[pause=MS]" every agent sleeps in a recorded command after each model call, so a test can kill the
// kernel at a moment when no model call is in flight, and count the completion requests per prompt:
//   - one node on SQLite, killed between two model calls and started again (a new node id, the same
//     database): the run is taken over once the dead node's lease expired and succeeds with exactly
//     the requests of an uninterrupted run, none repeated;
//   - killed while a model call is in flight: that call was never recorded, so it alone is repeated;
//   - two nodes on one PostgreSQL, one killed: its runs are resumed by the survivor and every run
//     succeeds, at most the calls that were in flight asked twice.
// Every wait polls with a deadline; children are killed and temporary directories removed in
// TearDown.
#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api_session.hpp"
#include "http_client.hpp"
#include "model_server.hpp"
#include "postgres_server.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::runs_test {
namespace {

using testing::count_of;
using testing::create_project;
using testing::get_run;
using testing::is_node_of;
using testing::random_secret;
using testing::read_text;
using testing::ServeProcess;
using testing::start_run;
using testing::tail;
using testing::wait_until_ended;

using boost::beast::http::verb;
using nlohmann::json;
using testing::HeaderList;
using namespace std::chrono_literals;

constexpr const char* kPassword = "violet-anchor-47-quietly";
constexpr const char* kKeyVariable = "SAMOKODER_RUNS_DURABILITY_OPENAI_KEY";
constexpr const char* kModelKey = "sk-runs-durability-0123456789";
constexpr std::uint32_t kLeaseSeconds = 2;

using User = testing::ApiUser;

class RunsDurabilityTest : public ::testing::Test {
 protected:
  RunsDurabilityTest() {
    model_.respond_with([this](const testing::ModelCall& call) {
      const std::string prompt = call.prompt_text();
      testing::ModelReply reply;
      const auto at = prompt.rfind('\n');
      reply.deltas = {"ok: ", at == std::string::npos ? prompt : prompt.substr(at + 1)};
      std::lock_guard lock(mutex_);
      reply.delay_before_headers = reply_delay_;
      if (!slow_prompt_.empty() && prompt.find(slow_prompt_) != std::string::npos) {
        reply.delay_before_headers = 30s;  // in flight until the kernel is killed
        slow_prompt_.clear();              // asked again, it is answered at once
      }
      return reply;
    });
  }

  void TearDown() override {
    for (auto& node : nodes_)
      node.reset();
  }

  // The config file of one node: its runtime dir is its own, the rest is shared.
  std::filesystem::path write_config(const std::string& name, const json& storage, std::uint32_t workers) {
    json plugins = json::array();
    plugins.push_back(storage);
    plugins.push_back({{"id", "auth.local"},
                       {"file", "auth_local.so"},
                       {"required", true},
                       {"config", {{"memory_kib", 1024}, {"iterations", 1}, {"parallelism", 1}}}});
    plugins.push_back({{"id", "llm.openai"}, {"file", "llm_openai.so"}, {"required", true}});
    for (const char* agent : {"planner", "writer", "finisher", "chat", "looper"}) {
      plugins.push_back({{"id", std::string("agent.fixture_") + agent},
                         {"file", std::string(SAMOKODER_RUNS_FIXTURE_DIR) + "/" + agent + ".so"},
                         {"required", true}});
    }
    const json unlimited = {{"capacity", 1000000}, {"refill_per_minute", 1000000}};
    const json config = {
        {"log", {{"level", "info"}, {"access_log", false}}},
        {"plugin_dir", SAMOKODER_PLUGIN_DIR},
        {"runtime_dir", (dir_.path() / ("run-" + name)).string()},
        {"workspace_root", workspace_root().string()},
        {"housekeeping", {{"enabled", false}}},
        {"security", {{"rate_limits", {{"auth", unlimited}, {"default", unlimited}, {"files", unlimited}}}}},
        {"plugins", plugins},
        {"llm",
         {{"providers", {{"openai", {{"base_url", model_.url("/v1")}, {"api_key_env", kKeyVariable}}}}},
          {"roles", {{"default", {"openai/test-model"}}}},
          {"retry", {{"initial_backoff_ms", 1}, {"max_backoff_ms", 5}}}}},
        {"runs",
         {{"pipeline",
           {"agent.fixture_chat", "agent.fixture_planner", "agent.fixture_looper", "agent.fixture_finisher"}},
          {"lease_seconds", kLeaseSeconds},
          {"poll_interval_ms", 100},
          {"workers", workers},
          // The pause commands run unconfined: these nodes load no preview runner.
          {"command_containment", "none"}}}};
    return dir_.write(name + ".json", config.dump(2));
  }

  json sqlite_storage() const {
    return {{"id", "storage.sqlite"},
            {"file", "storage_sqlite.so"},
            {"required", true},
            {"config", {{"path", (dir_.path() / "samokoder.db").string()}}}};
  }

  // Starts `samokoder serve` with `config` in slot `slot` (a node killed earlier is replaced).
  ServeProcess& start_node(std::size_t slot, const std::filesystem::path& config) {
    if (nodes_.size() <= slot) nodes_.resize(slot + 1);
    nodes_[slot].reset();
    const std::string logs =
        (dir_.path() / ("node-" + std::to_string(slot) + "-" + std::to_string(++starts_))).string();
    nodes_[slot] =
        std::make_unique<ServeProcess>(SAMOKODER_EXECUTABLE, config, logs,
                                       std::vector<std::string>{"SAMOKODER_SECRET_KEY=" + secret_,
                                                                std::string(kKeyVariable) + "=" + kModelKey});
    return *nodes_[slot];
  }

  std::filesystem::path workspace_root() const { return dir_.path() / "workspaces"; }

  static User sign_up(std::uint16_t port, const std::string& email) {
    return testing::sign_up(port, email, kPassword);
  }
  static std::vector<json> events(std::uint16_t port, const User& user, const std::string& run) {
    return testing::run_events(port, user, run);
  }

  // Polls until the run's log holds `n` llm.exchange events.
  static bool wait_for_exchanges(std::uint16_t port, const User& user, const std::string& run,
                                 std::size_t n) {
    return testing::wait_until([&] { return count_of(events(port, user, run), "llm.exchange") >= n; }, 20s,
                               10ms);
  }

  // Completion requests the model server got whose prompt holds `tag`, per prompt.
  std::map<std::string, std::size_t> requests_with(const std::string& tag) const {
    std::map<std::string, std::size_t> out;
    for (const auto& call : model_.calls()) {
      if (call.method != "POST") continue;
      const std::string prompt = call.prompt_text();
      if (prompt.find(tag) != std::string::npos) ++out[prompt];
    }
    return out;
  }
  static std::size_t total(const std::map<std::string, std::size_t>& counts) {
    std::size_t sum = 0;
    for (const auto& [prompt, n] : counts)
      sum += n;
    return sum;
  }

  // The events' seq is 1..N without a hole.
  static void expect_gapless(const std::vector<json>& events) {
    for (std::size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i]["seq"].get<std::int64_t>(), static_cast<std::int64_t>(i + 1))
          << "hole or reordering in the event log at index " << i;
    }
  }

  // The node ids of the run's run.started and run.resumed events, in order, with their "was".
  static std::vector<std::pair<std::string, std::string>> holders(const std::vector<json>& events) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : events) {
      const std::string type = e.value("type", "");
      if ((type == "run.started" || type == "run.resumed") && e["payload"].contains("node"))
        out.emplace_back(e["payload"].value("node", ""), e["payload"].value("was", ""));
    }
    return out;
  }

  // After a run succeeded: PLAN.md holds the planner's answer in the workspace and in storage, and the
  // final state the finisher's answers, in order.
  void expect_finished_work(std::uint16_t port, const User& user, const std::string& project,
                            const std::string& run, const std::string& description, int calls) {
    const std::string plan = "ok: Plan: " + description;
    EXPECT_EQ(read_text(workspace_root() / project / "PLAN.md"), plan);
    testing::HttpClient client("127.0.0.1", port);
    const auto stored = client.get("/api/v1/projects/" + project + "/files/PLAN.md", user.bearer());
    EXPECT_EQ(stored.status, 200u);
    EXPECT_EQ(stored.body, plan);
    const json doc = get_run(port, user, run);
    const auto step =
        client.get("/api/v1/runs/" + run + "/steps/" + doc["current_step"].value("id", ""), user.bearer());
    ASSERT_EQ(step.status, 200u) << step.body;
    json answers = json::array();
    for (int i = 0; i < calls; ++i)
      answers.push_back("ok: Finish part " + std::to_string(i) + " of " + description);
    EXPECT_EQ(step.json()["state"]["answers"], answers);
  }

  testing::TempDir dir_{"samokoder-runs-durability"};
  testing::ScriptedModelServer model_;
  std::string secret_ = random_secret();
  std::vector<std::unique_ptr<ServeProcess>> nodes_;
  int starts_ = 0;
  std::mutex mutex_;
  std::string slow_prompt_;                   // the next request holding it stalls
  std::chrono::milliseconds reply_delay_{0};  // every other reply's delay
};

// One run on one SQLite node: 1 planner call + kCalls finisher calls, each followed by a pause.
constexpr int kCalls = 3;
constexpr int kPauseMs = 500;

std::string description_of(const std::string& tag) {
  return tag + " [calls=" + std::to_string(kCalls) + "] [pause=" + std::to_string(kPauseMs) + "]";
}

TEST_F(RunsDurabilityTest, KilledBetweenModelCallsTheRunResumesWithoutRepeatingOne) {
  const auto config = write_config("sqlite", sqlite_storage(), 8);
  std::uint16_t port = start_node(0, config).port();
  ASSERT_NE(port, 0);
  const User ada = sign_up(port, "ada@example.com");

  // Uninterrupted, first: what the description costs.
  const std::string whole = description_of("run-whole");
  const std::string whole_project = create_project(port, ada, "whole");
  const std::string whole_run = start_run(port, ada, whole_project, whole);
  ASSERT_EQ(wait_until_ended(port, ada, whole_run).value("state", ""), "succeeded") << nodes_[0]->log_tail();
  const auto uninterrupted = requests_with("run-whole");
  ASSERT_EQ(total(uninterrupted), static_cast<std::size_t>(1 + kCalls));

  // Killed after the k-th answered call (1: the planner's; 3: the finisher's second), during the pause
  // that follows it; started again on the same config (a new node id, the same database).
  for (const std::size_t k : {std::size_t{1}, std::size_t{3}}) {
    SCOPED_TRACE("killed after model call " + std::to_string(k));
    const std::string tag = "run-kill-" + std::to_string(k);
    const std::string description = description_of(tag);
    const std::string project = create_project(port, ada, tag);
    const std::string run = start_run(port, ada, project, description);
    ASSERT_TRUE(wait_for_exchanges(port, ada, run, k)) << nodes_[0]->log_tail();
    const std::string first_node = holders(events(port, ada, run)).front().first;
    nodes_[0]->kill_now();
    ASSERT_EQ(total(requests_with(tag)), k)
        << "a model call was in flight at the kill; the pause is too short";

    port = start_node(0, config).port();
    ASSERT_NE(port, 0);
    const json ended = wait_until_ended(port, ada, run, 20s);
    ASSERT_EQ(ended.value("state", ""), "succeeded") << ended.dump() << "\n" << nodes_[0]->log_tail();

    const auto requests = requests_with(tag);
    std::cout << "[ figures  ] killed after call " << k << ": " << total(requests)
              << " requests (uninterrupted " << total(uninterrupted) << ")\n";
    EXPECT_EQ(total(requests), total(uninterrupted)) << "as many completion requests as an uninterrupted run";
    for (const auto& [prompt, n] : requests)
      EXPECT_EQ(n, 1u) << "asked twice: " << prompt;
    const auto log = events(port, ada, run);
    expect_gapless(log);
    EXPECT_EQ(count_of(log, "llm.exchange"), total(uninterrupted)) << "no exchange recorded twice";
    const auto took = holders(log);
    ASSERT_EQ(took.size(), 2u);
    EXPECT_EQ(took[0].first, first_node);
    EXPECT_TRUE(nodes_[0]->is(took[1].first)) << took[1].first;
    EXPECT_EQ(took[1].second, "running");
    expect_finished_work(port, ada, project, run, description, kCalls);
  }
}

TEST_F(RunsDurabilityTest, KilledDuringAModelCallOnlyThatCallIsRepeated) {
  const auto config = write_config("sqlite", sqlite_storage(), 8);
  std::uint16_t port = start_node(0, config).port();
  ASSERT_NE(port, 0);
  const User ada = sign_up(port, "ada@example.com");

  const std::string whole_project = create_project(port, ada, "whole");
  const std::string whole_run = start_run(port, ada, whole_project, description_of("run-whole"));
  ASSERT_EQ(wait_until_ended(port, ada, whole_run).value("state", ""), "succeeded") << nodes_[0]->log_tail();
  const std::size_t uninterrupted = total(requests_with("run-whole"));
  ASSERT_EQ(uninterrupted, static_cast<std::size_t>(1 + kCalls));

  // The finisher's second call (the run's third) stalls until the kernel dies: its answer was never
  // recorded, so the node that takes the run over must ask it again, and only it.
  const std::string description = description_of("run-in-flight");
  const std::string in_flight = "Finish part 1 of " + description;
  {
    std::lock_guard lock(mutex_);
    slow_prompt_ = in_flight;
  }
  const std::string project = create_project(port, ada, "in-flight");
  const std::string run = start_run(port, ada, project, description);
  ASSERT_TRUE(testing::wait_until([&] { return requests_with(in_flight).size() == 1; }, 20s, 10ms))
      << nodes_[0]->log_tail();
  EXPECT_EQ(count_of(events(port, ada, run), "llm.exchange"), 2u);
  nodes_[0]->kill_now();

  port = start_node(0, config).port();
  ASSERT_NE(port, 0);
  const json ended = wait_until_ended(port, ada, run, 20s);
  ASSERT_EQ(ended.value("state", ""), "succeeded") << ended.dump() << "\n" << nodes_[0]->log_tail();

  const auto requests = requests_with("run-in-flight");
  std::cout << "[ figures  ] killed during call 3: " << total(requests) << " requests (uninterrupted "
            << uninterrupted << ")\n";
  EXPECT_EQ(total(requests), uninterrupted + 1);
  for (const auto& [prompt, n] : requests) {
    const bool was_in_flight = prompt.find(in_flight) != std::string::npos;
    EXPECT_EQ(n, was_in_flight ? 2u : 1u) << prompt;
  }
  const auto log = events(port, ada, run);
  expect_gapless(log);
  EXPECT_EQ(count_of(log, "llm.exchange"), uninterrupted);
  const auto took = holders(log);
  ASSERT_EQ(took.size(), 2u);
  EXPECT_TRUE(nodes_[0]->is(took[1].first)) << took[1].first;
  EXPECT_EQ(took[1].second, "running");
  expect_finished_work(port, ada, project, run, description, kCalls);
}

TEST_F(RunsDurabilityTest, TwoNodesOnOnePostgresTheSurvivorFinishesTheKilledNodesRuns) {
  constexpr int kRuns = 8;
  constexpr int kNodeCalls = 2;  // finisher calls; with the planner's, three calls per run
  const std::string url = testing::PostgresServer::shared().create_database("runs_durability");
  const json postgres = {{"id", "storage.postgres"},
                         {"file", "storage_postgres.so"},
                         {"required", true},
                         {"config", {{"url", url}}}};
  {
    std::lock_guard lock(mutex_);
    reply_delay_ = 150ms;  // slow enough that a kill may catch calls in flight
  }
  // Four workers each: eight runs at once need both nodes.
  ServeProcess& survivor = start_node(0, write_config("node-0", postgres, 4));
  ServeProcess& victim = start_node(1, write_config("node-1", postgres, 4));
  ASSERT_NE(survivor.port(), 0);
  ASSERT_NE(victim.port(), 0);
  const std::array<std::uint16_t, 2> ports = {survivor.port(), victim.port()};
  const User ada = sign_up(ports[0], "ada@example.com");

  std::vector<std::string> runs;
  std::vector<std::string> projects;
  std::vector<std::string> descriptions;
  for (int i = 0; i < kRuns; ++i) {
    const std::uint16_t port = ports[static_cast<std::size_t>(i % 2)];
    descriptions.push_back("node-run-" + std::to_string(i) + " [calls=" + std::to_string(kNodeCalls) +
                           "] [pause=300]");
    projects.push_back(create_project(port, ada, std::string("p").append(std::to_string(i))));
    runs.push_back(start_run(port, ada, projects.back(), descriptions.back()));
    ASSERT_FALSE(runs.back().empty());
  }

  // Both nodes work on runs; the victim has answered at least one call of its runs when it dies.
  std::map<std::string, std::string> holder;  // run -> the node that took it last
  const bool spread = testing::wait_until(
      [&] {
        bool victim_answered = false;
        for (const auto& run : runs) {
          const auto log = events(ports[0], ada, run);
          const auto took = holders(log);
          if (took.empty()) return false;
          holder[run] = took.back().first;
          victim_answered = victim_answered || (victim.is(holder[run]) && count_of(log, "llm.exchange") > 0);
        }
        const bool both =
            std::any_of(holder.begin(), holder.end(), [&](const auto& h) { return survivor.is(h.second); });
        return both && victim_answered;
      },
      20s, 20ms);
  ASSERT_TRUE(spread) << "both nodes should work on runs\nnode 0: " << survivor.log_tail()
                      << "\nnode 1: " << victim.log_tail();

  std::size_t started_by_victim = 0;
  for (const auto& [run, node] : holder)
    started_by_victim += victim.is(node) ? 1 : 0;
  EXPECT_GT(started_by_victim, 0u);
  EXPECT_LT(started_by_victim, runs.size());
  const pid_t victim_pid = victim.pid();
  victim.kill_now();
  // The victim's runs at its death: those it held last and that had not ended.
  std::set<std::string> orphaned;
  std::string victim_id;
  for (const auto& run : runs) {
    const auto took = holders(events(ports[0], ada, run));
    const std::string state = get_run(ports[0], ada, run).value("state", "");
    const std::string& node = took.back().first;
    if (!is_node_of(node, victim_pid)) continue;
    victim_id = node;
    if (state != "succeeded") orphaned.insert(run);
  }
  ASSERT_FALSE(orphaned.empty()) << "the victim held no unfinished run when it died";

  for (const auto& run : runs) {
    const json ended = wait_until_ended(ports[0], ada, run, 25s);
    EXPECT_EQ(ended.value("state", ""), "succeeded") << run << ": " << ended.dump() << "\n"
                                                     << survivor.log_tail();
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto log = events(ports[0], ada, runs[i]);
    expect_gapless(log);
    const auto took = holders(log);
    if (orphaned.contains(runs[i])) {
      // Taken over once the victim's lease expired, by the survivor.
      ASSERT_GE(took.size(), 2u) << runs[i];
      EXPECT_TRUE(survivor.is(took.back().first)) << took.back().first;
      EXPECT_EQ(took.back().second, "running");
    } else {
      EXPECT_EQ(took.size(), 1u) << runs[i] << " was never orphaned yet changed hands";
    }
    EXPECT_EQ(count_of(log, "llm.exchange"), static_cast<std::size_t>(1 + kNodeCalls)) << runs[i];
    expect_finished_work(ports[0], ada, projects[i], runs[i], descriptions[i], kNodeCalls);
  }

  // No recorded call was asked again: a prompt asked twice was in flight when the victim died, so it is
  // one of the victim's runs, and there is at most one per run.
  const auto requests = requests_with("node-run-");
  std::size_t repeated = 0;
  std::set<std::string> runs_repeating;
  for (const auto& [prompt, n] : requests) {
    EXPECT_LE(n, 2u) << prompt;
    if (n < 2) continue;
    ++repeated;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      if (prompt.find(descriptions[i]) == std::string::npos) continue;
      EXPECT_TRUE(orphaned.contains(runs[i])) << "a run the victim did not hold repeated " << prompt;
      EXPECT_TRUE(runs_repeating.insert(runs[i]).second) << "two calls repeated in " << runs[i];
    }
  }
  EXPECT_LE(repeated, orphaned.size());
  EXPECT_EQ(total(requests), static_cast<std::size_t>(kRuns * (1 + kNodeCalls)) + repeated);
  std::cout << "[ figures  ] " << kRuns << " runs, " << started_by_victim << " started by the victim "
            << victim_id << ", " << orphaned.size() << " unfinished at its death; " << total(requests)
            << " requests, " << repeated << " repeated (in flight)\n";
}

}  // namespace
}  // namespace samokoder::runs_test
