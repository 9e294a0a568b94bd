// The runs engine end to end: a real kernel runs the fixture pipeline (tests/runs/fixtures) through
// the real llm.openai plugin against the scripted model server, driven and watched over HTTP, SSE and
// WebSocket as a client would.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runs_fixture.hpp"

namespace samokoder::runs_test {
namespace {

using boost::beast::http::verb;
using nlohmann::json;
using ::testing::HasSubstr;

// Committed events carry consecutive seqs from 1, each once.
void expect_gapless(const std::vector<std::int64_t>& seqs) {
  for (std::size_t i = 0; i < seqs.size(); ++i)
    ASSERT_EQ(seqs[i], static_cast<std::int64_t>(i + 1)) << "at " << i;
}

std::vector<std::int64_t> seqs_of(const std::vector<StreamEvent>& events) {
  std::vector<std::int64_t> seqs;
  for (const auto& e : events) {
    if (!e.id.empty()) seqs.push_back(std::stoll(e.id));
  }
  return seqs;
}

class RunsTest : public RunsApiTest {};

TEST_F(RunsTest, RunGoesEndToEndWithItsEventsOverSse) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "todo");
  const std::string run_id = start_run(ada, project, "a to-do list [files] [command]");
  SseClient sse(app_->port(), "/api/v1/runs/" + run_id + "/events", bearer(ada));
  ASSERT_EQ(sse.status(), 200u);
  EXPECT_EQ(sse.header("Content-Type"), "text/event-stream");
  const auto events = read_until(sse, "run.finished");
  ASSERT_FALSE(events.empty());
  ASSERT_EQ(events.back().type, "run.finished") << "the run did not finish";
  expect_gapless(seqs_of(events));

  // The step chain: the description, the plan, three writer branches in task order, the finish.
  std::vector<std::string> steps;
  std::vector<std::string> files;
  bool saw_delta = false;
  for (const auto& e : events) {
    if (e.type == "step.committed") steps.push_back(e.document["payload"]["agent"]);
    if (e.type == "file.written") files.push_back(e.document["payload"]["path"]);
    if (e.type == "llm.delta") saw_delta = e.id.empty();
  }
  EXPECT_EQ(steps,
            (std::vector<std::string>{"agent.fixture_planner", "agent.fixture_writer", "agent.fixture_writer",
                                      "agent.fixture_writer", "agent.fixture_finisher"}));
  EXPECT_EQ(files, (std::vector<std::string>{"PLAN.md", "src/a.txt", "src/b.txt", "src/c.txt"}));
  EXPECT_TRUE(saw_delta) << "model text streams as transient events, without an id";
  // One model call per agent step (planner, three writers, finisher): nothing twice.
  EXPECT_EQ(model_.request_count(), 5u);

  const json run = wait_for_state(ada, run_id, {"succeeded"});
  EXPECT_EQ(run["error"], nullptr);
  const auto step =
      get("/api/v1/runs/" + run_id + "/steps/" + run["current_step"]["id"].get<std::string>(), ada);
  ASSERT_EQ(step.status, 200u) << step.body;
  const json state = step.json()["state"];
  EXPECT_EQ(state["done"], true);
  EXPECT_EQ(state["files"]["1"]["path"], "src/b.txt");
  EXPECT_EQ(state["command"]["exit_code"], 0);
  EXPECT_THAT(state["command"]["stdout"].get<std::string>(),
              HasSubstr("home=" + (workspace_root() / project).string()));
  // The files are stored (attributed to their steps) and in the workspace.
  const auto file = get("/api/v1/projects/" + project + "/files/src/a.txt", ada);
  ASSERT_EQ(file.status, 200u);
  EXPECT_EQ(file.body, "ok: Write src/a.txt");
  std::ifstream on_disk(workspace_root() / project / "src/c.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(on_disk), {}), "ok: Write src/c.txt");
  const auto steps_page = get("/api/v1/runs/" + run_id + "/steps", ada);
  ASSERT_EQ(steps_page.status, 200u);
  EXPECT_EQ(steps_page.json()["items"].size(), 6u) << "the description and five agent steps";
}

TEST_F(RunsTest, EventsStreamOverWebSocketToo) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "ws");
  const std::string run_id = start_run(ada, project, "a page [files]");
  WsClient ws(app_->port(), "/api/v1/runs/" + run_id + "/ws", bearer(ada));
  ASSERT_TRUE(ws.connected()) << ws.handshake_status();
  const auto events = read_until(ws, "run.finished");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "run.finished");
  expect_gapless(seqs_of(events));
  EXPECT_EQ(events.front().document["run_id"], run_id);
  ws.close();

  // Without credentials there is no upgrade.
  WsClient anonymous(app_->port(), "/api/v1/runs/" + run_id + "/ws", {});
  EXPECT_FALSE(anonymous.connected());
  EXPECT_EQ(anonymous.handshake_status(), 401u);
}

TEST_F(RunsTest, ResumingWithLastEventIdLosesAndDuplicatesNothing) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "resume");
  const std::string run_id = start_run(ada, project, "resume me [files] [calls=3]");
  std::vector<StreamEvent> seen;
  {
    SseClient first(app_->port(), "/api/v1/runs/" + run_id + "/events", bearer(ada));
    while (seqs_of(seen).size() < 6) {
      auto e = first.next(std::chrono::seconds(10));
      ASSERT_TRUE(e.has_value()) << "no event within 10 s";
      seen.push_back(*e);
    }
    first.close();
  }
  const std::string last = seqs_of(seen).empty() ? "0" : std::to_string(seqs_of(seen).back());
  Headers headers = bearer(ada);
  headers.emplace_back("Last-Event-ID", last);
  SseClient second(app_->port(), "/api/v1/runs/" + run_id + "/events", headers);
  auto rest = read_until(second, "run.finished");
  seen.insert(seen.end(), rest.begin(), rest.end());
  ASSERT_EQ(seen.back().type, "run.finished");
  expect_gapless(seqs_of(seen));
  EXPECT_EQ(seqs_of(seen).size(), committed_events(ada, run_id).size());
}

TEST_F(RunsTest, AQuestionPausesTheRunWithoutAThreadAndTheAnswerResumesItWithoutAskingTheModelAgain) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "ask");
  const std::string run_id = start_run(ada, project, "a button [ask]");
  const json paused = wait_for_state(ada, run_id, {"input_required"});
  ASSERT_TRUE(paused["question"].is_object()) << paused.dump();
  EXPECT_EQ(paused["question"]["text"], "Which color should the button be?");
  EXPECT_EQ(paused["question"]["options"], json({"red", "blue"}));
  EXPECT_EQ(app_->runs()->active_runs(), 0u) << "a paused run holds no worker";
  EXPECT_EQ(model_.request_count(), 1u);
  const std::string question = paused["question"]["question_id"];

  const auto wrong = call(verb::post, "/api/v1/runs/" + run_id + "/answers", ada,
                          json{{"question_id", question}, {"answer", "green"}}.dump());
  EXPECT_EQ(wrong.status, 400u) << wrong.body;
  const auto unknown = call(verb::post, "/api/v1/runs/" + run_id + "/answers", ada,
                            json{{"question_id", "1.step.nope"}, {"answer", "red"}}.dump());
  EXPECT_EQ(unknown.status, 404u) << unknown.body;
  const auto answered = call(verb::post, "/api/v1/runs/" + run_id + "/answers", ada,
                             json{{"question_id", question}, {"answer", "blue"}}.dump());
  ASSERT_EQ(answered.status, 200u) << answered.body;
  const auto twice = call(verb::post, "/api/v1/runs/" + run_id + "/answers", ada,
                          json{{"question_id", question}, {"answer", "red"}}.dump());
  EXPECT_EQ(twice.status, 409u) << twice.body;

  const json done = wait_for_state(ada, run_id, {"succeeded"});
  const auto step =
      get("/api/v1/runs/" + run_id + "/steps/" + done["current_step"]["id"].get<std::string>(), ada);
  EXPECT_EQ(step.json()["state"]["color"], "blue");
  // The planner ran twice (before and after the answer) but its model call was replayed: planner 1,
  // finisher 1.
  EXPECT_EQ(model_.request_count(), 2u);
}

TEST_F(RunsTest, CancelStopsAStreamingModelCallWithinASecond) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "cancel");
  model_.respond_with([](const testing::ModelCall&) {
    testing::ModelReply slow;
    slow.deltas = std::vector<std::string>(200, "word ");
    slow.delay_between_events = std::chrono::milliseconds(50);
    return slow;
  });
  const std::string run_id = start_run(ada, project, "a slow plan");
  SseClient sse(app_->port(), "/api/v1/runs/" + run_id + "/events", bearer(ada));
  auto first_delta = read_until(sse, "llm.delta");
  ASSERT_FALSE(first_delta.empty());
  ASSERT_EQ(first_delta.back().type, "llm.delta") << "the model's stream never started";
  const auto started = std::chrono::steady_clock::now();
  const auto cancelled = call(verb::post, "/api/v1/runs/" + run_id + "/cancel", ada);
  ASSERT_EQ(cancelled.status, 200u) << cancelled.body;
  EXPECT_EQ(cancelled.json()["state"], "cancelled");
  // The upstream connection closes and the worker lets go of the run.
  const auto deadline = started + std::chrono::seconds(1);
  while ((model_.connections_closed() < model_.connections_accepted() || app_->runs()->active_runs() > 0) &&
         std::chrono::steady_clock::now() < deadline + std::chrono::seconds(2)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  EXPECT_EQ(model_.connections_closed(), model_.connections_accepted());
  EXPECT_EQ(app_->runs()->active_runs(), 0u);
  EXPECT_FALSE(std::filesystem::exists(workspace_root() / project / "PLAN.md"))
      << "nothing of the step stays";
  const auto again = call(verb::post, "/api/v1/runs/" + run_id + "/cancel", ada);
  EXPECT_EQ(again.status, 409u);

  // Resumed, it continues from its last committed step.
  model_.respond_with([](const testing::ModelCall&) { return testing::ModelReply{}; });
  const auto resumed = call(verb::post, "/api/v1/runs/" + run_id + "/resume", ada);
  ASSERT_EQ(resumed.status, 200u) << resumed.body;
  wait_for_state(ada, run_id, {"succeeded"});
}

// The pid of a live process whose command line is exactly `argv`, or 0.
int find_process(const std::vector<std::string>& argv) {
  std::string wanted;
  for (const auto& arg : argv)
    wanted += arg + '\0';
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    const std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    if (cmdline == wanted) return std::stoi(name);
  }
  return 0;
}

TEST_F(RunsTest, CancelEndsTheStepsChildProcessWithinASecond) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "child");
  // After its model call the planner runs `sleep 47.321` (an unmistakable command line).
  const std::string run_id = start_run(ada, project, "wait [pause=47321]");
  const std::vector<std::string> argv = {"/bin/sleep", "47.321"};
  const auto started = std::chrono::steady_clock::now();
  int pid = 0;
  while (pid == 0 && std::chrono::steady_clock::now() - started < std::chrono::seconds(10)) {
    pid = find_process(argv);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(pid, 0) << "the step's command never started";
  const auto cancelled_at = std::chrono::steady_clock::now();
  ASSERT_EQ(call(verb::post, "/api/v1/runs/" + run_id + "/cancel", ada).status, 200u);
  while (find_process(argv) != 0 && std::chrono::steady_clock::now() - cancelled_at < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(find_process(argv), 0) << "the command outlived the cancel";
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, std::chrono::seconds(1));
  EXPECT_EQ(wait_for_state(ada, run_id, {"cancelled"})["state"], "cancelled");
}

TEST_F(RunsTest, AnAgentThatThrowsFailsItsStepNotTheServer) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "boom");
  const std::string run_id = start_run(ada, project, "explode [throw]");
  const json failed = wait_for_state(ada, run_id, {"failed"});
  // The plugin manager names the throw without quoting the plugin's message (it may hold anything).
  EXPECT_THAT(failed["error"].get<std::string>(), HasSubstr("threw an exception"));
  EXPECT_THAT(failed["error"].get<std::string>(), HasSubstr("agent.fixture_planner"));
  EXPECT_EQ(client_->get("/healthz").status, 200u);
  // An error returned (not thrown) fails the same way, and the other run is unaffected.
  const std::string refused = start_run(ada, project, "no [fail]");
  const std::string fine = start_run(ada, project, "fine");
  EXPECT_THAT(wait_for_state(ada, refused, {"failed"})["error"].get<std::string>(), HasSubstr("refuses"));
  wait_for_state(ada, fine, {"succeeded"});
}

TEST_F(RunsTest, TheLoopDetectorPausesWithAQuestionInsteadOfBurningSteps) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "loop");
  const std::string run_id = start_run(ada, project, "go round [loop]");
  const json paused = wait_for_state(ada, run_id, {"input_required"});
  EXPECT_EQ(paused["question"]["agent"], "kernel");
  EXPECT_THAT(paused["question"]["text"].get<std::string>(), HasSubstr("same state 3 times"));
  const auto steps = get("/api/v1/runs/" + run_id + "/steps", ada).json()["items"];
  // The looper proposes the planned state unchanged: the plan and two loops reach it three times.
  EXPECT_EQ(steps.size(), 4u) << "description, plan, then the same state twice more";
  const auto stop = call(verb::post, "/api/v1/runs/" + run_id + "/answers", ada,
                         json{{"question_id", paused["question"]["question_id"]}, {"answer", "stop"}}.dump());
  ASSERT_EQ(stop.status, 200u) << stop.body;
  wait_for_state(ada, run_id, {"cancelled"});
}

TEST_F(RunsTest, AMessageToAFinishedRunContinuesIt) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "chat");
  const std::string run_id = start_run(ada, project, "a page");
  wait_for_state(ada, run_id, {"succeeded"});
  const auto sent = call(verb::post, "/api/v1/runs/" + run_id + "/messages", ada,
                         json{{"text", "make the button blue"}}.dump());
  ASSERT_EQ(sent.status, 202u) << sent.body;
  const json done = wait_for_state(ada, run_id, {"succeeded"}, std::chrono::seconds(20));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  json state;
  while (std::chrono::steady_clock::now() < deadline) {
    const json run = get("/api/v1/runs/" + run_id, ada).json();
    state = get("/api/v1/runs/" + run_id + "/steps/" + run["current_step"]["id"].get<std::string>(), ada)
                .json()["state"];
    if (state.contains("replies") && run["state"] == "succeeded") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(state.contains("replies")) << state.dump();
  EXPECT_EQ(state["replies"][0]["reply"], "ok: Reply to: make the button blue");
  EXPECT_EQ(state["inbox"], json::array());
}

TEST_F(RunsTest, AStepLimitEndsTheRunWithAClearReason) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "limit");
  const std::string run_id = start_run(ada, project, "big [files]", json{{"limits", {{"max_steps", 2}}}});
  const json failed = wait_for_state(ada, run_id, {"failed"});
  EXPECT_THAT(failed["error"].get<std::string>(), HasSubstr("limit of 2 steps"));
  const auto bad = call(verb::post, "/api/v1/projects/" + project + "/runs", ada,
                        json{{"description", "x"}, {"limits", {{"max_steps", 0}, {"bogus", 1}}}}.dump());
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.json()["errors"].size(), 2u) << bad.body;
}

TEST_F(RunsTest, ManyConcurrentRunsAllFinishWithTheirOwnGaplessEvents) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "many");
  std::vector<std::string> runs;
  for (int i = 0; i < 24; ++i)
    runs.push_back(start_run(ada, project, "run " + std::to_string(i) + " [calls=2]"));
  for (const auto& run_id : runs) {
    wait_for_state(ada, run_id, {"succeeded"}, std::chrono::seconds(60));
    std::vector<std::int64_t> seqs;
    for (const auto& e : committed_events(ada, run_id)) {
      seqs.push_back(e["seq"]);
      EXPECT_EQ(e["run_id"], run_id);
    }
    expect_gapless(seqs);
  }
  EXPECT_EQ(model_.request_count(), 24u * 3u);
}

TEST_F(RunsTest, AnotherUserReachesNoneOfARunsRoutes) {
  const User ada = sign_up("ada@example.com");
  const User eve = sign_up("eve@example.com");
  const std::string project = create_project(ada, "private");
  const std::string run_id = start_run(ada, project, "secret [ask]");
  wait_for_state(ada, run_id, {"input_required"});
  for (const std::string path : {"", "/steps", "/events"}) {
    const auto response =
        client_->request(verb::get, "/api/v1/runs/" + run_id + path, "",
                         {{"Authorization", "Bearer " + eve.token}, {"Accept", "application/json"}});
    EXPECT_EQ(response.status, 404u) << path;
  }
  const std::map<std::string, std::string> actions = {
      {"answers", json{{"question_id", "1.step.color"}, {"answer", "red"}}.dump()},
      {"messages", json{{"text", "hi"}}.dump()},
      {"cancel", ""},
      {"resume", ""}};
  for (const auto& [action, body] : actions) {
    const auto response = call(verb::post, "/api/v1/runs/" + run_id + "/" + action, eve, body);
    EXPECT_EQ(response.status, 404u) << action << ": " << response.body;
  }
  EXPECT_EQ(call(verb::post, "/api/v1/projects/" + project + "/runs", eve, json{{"description", "x"}}.dump())
                .status,
            404u);
  SseClient sse(app_->port(), "/api/v1/runs/" + run_id + "/events", bearer(eve));
  EXPECT_EQ(sse.status(), 404u);
  WsClient ws(app_->port(), "/api/v1/runs/" + run_id + "/ws", bearer(eve));
  EXPECT_FALSE(ws.connected());
  EXPECT_EQ(wait_for_state(ada, run_id, {"input_required"})["state"], "input_required");
}

TEST_F(RunsTest, ASlowSseClientIsDisconnectedWhileTheRunAndTheServerCarryOn) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "slow");
  // About 6 MiB of model text, streamed to watchers as it arrives: more than a watcher's queue (1 MiB)
  // and the socket buffers of a client that never reads.
  model_.respond_with([](const testing::ModelCall&) {
    testing::ModelReply big;
    big.deltas = std::vector<std::string>(800, std::string(8192, 'x'));
    return big;
  });
  const std::string run_id = start_run(ada, project, "a long plan");
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket silent(io);
  silent.connect({boost::asio::ip::make_address("127.0.0.1"), app_->port()});
  const std::string request =
      "GET /api/v1/runs/" + run_id +
      "/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer " + ada.token +
      "\r\n\r\n";
  boost::asio::write(silent, boost::asio::buffer(request));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool attached = false;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::size_t watchers = app_->runs()->events().watchers();
    attached = attached || watchers == 1;
    if (attached && watchers == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(attached) << "the silent client never became a watcher";
  EXPECT_EQ(app_->runs()->events().watchers(), 0u) << "the reader that never reads was not let go";
  EXPECT_EQ(client_->get("/healthz").status, 200u);
  wait_for_state(ada, run_id, {"succeeded"}, std::chrono::seconds(30));
}

TEST_F(RunsTest, AStreamEndsWhenTheTokenItWasOpenedWithExpires) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "expiry");
  const std::string run_id = start_run(ada, project, "a question [ask]");
  wait_for_state(ada, run_id, {"input_required"});
  SseClient sse(app_->port(), "/api/v1/runs/" + run_id + "/events", bearer(ada));
  WsClient ws(app_->port(), "/api/v1/runs/" + run_id + "/ws", bearer(ada));
  ASSERT_EQ(sse.status(), 200u);
  ASSERT_TRUE(ws.connected());
  ASSERT_FALSE(read_until(sse, "run.paused").empty());
  ASSERT_FALSE(read_until(ws, "run.paused").empty());
  EXPECT_EQ(app_->runs()->events().watchers(), 2u);
  // Past the access token's lifetime (15 minutes by default): a revoked session is shut out by then.
  clock_.advance(std::chrono::minutes(16));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!sse.ended() && std::chrono::steady_clock::now() < deadline)
    sse.next(std::chrono::milliseconds(200));
  EXPECT_TRUE(sse.ended()) << "the SSE response did not end";
  // The WebSocket gets a close frame (1008) and answers it, as a client does.
  while (ws.connected() && std::chrono::steady_clock::now() < deadline)
    ws.next(std::chrono::milliseconds(200));
  EXPECT_FALSE(ws.connected()) << "the WebSocket was not closed";
  while (app_->runs()->events().watchers() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(app_->runs()->events().watchers(), 0u);
}

// The "[probe]" command (fixtures/pipeline_agents.cpp) prints its working directory, the number of
// processes it sees and the file beside.txt in the workspaces' directory, beside the project's own.
constexpr const char* kBeside = "beside-the-workspace";
constexpr const char* kProbe =
    "pwd; ls -d /proc/[0-9]* | wc -l; cat \"$HOME/../beside.txt\" 2>/dev/null || echo no-beside-file";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

// What the confined runs below are compared with: runs.command_containment "none" (the fixture's), where
// a command sees what the server's user sees.
TEST_F(RunsTest, UnconfinedACommandSeesWhatTheServerSees) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "bare");
  std::ofstream(workspace_root() / "beside.txt") << kBeside;
  const std::string run_id = start_run(ada, project, "look around [probe]");
  wait_for_state(ada, run_id, {"succeeded"});
  const json probe = current_state(ada, run_id)["probe"];
  EXPECT_EQ(probe["exit_code"], 0) << probe.dump();
  const auto lines = lines_of(probe.value("stdout", ""));
  ASSERT_EQ(lines.size(), 3u) << probe.dump();
  EXPECT_EQ(lines[0], std::filesystem::canonical(workspace_root() / project / "probe").string());
  EXPECT_EQ(lines[2], kBeside);
}

// A server as it is configured by default: agents' commands confined by the sandbox preview runner.
class RunsConfinedTest : public RunsApiTest {
 protected:
  void tune(config::Config& config) override {
    config::PluginEntry sandbox;
    sandbox.id = "preview.sandbox";
    sandbox.file = "preview_sandbox.so";
    sandbox.enabled = sandbox_enabled();
    sandbox.required = sandbox.enabled;  // a machine that cannot run it fails the test with the reason
    sandbox.config = {{"socket_dir", (dir() / "sockets").string()}, {"pids_max", 64}};
    config.plugins.plugins.push_back(sandbox);
    config.runs.command_containment = "preview.sandbox";
  }
  virtual bool sandbox_enabled() const { return true; }
};

TEST_F(RunsConfinedTest, AnAgentsCommandRunsInTheSandboxAndSeesNothingOfTheHost) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "boxed");
  std::ofstream(workspace_root() / "beside.txt") << kBeside;
  const std::string run_id = start_run(ada, project, "look around [probe]");
  const json run = wait_for_state(ada, run_id, {"succeeded", "failed"});
  ASSERT_EQ(run["state"], "succeeded") << run.dump();
  const json probe = current_state(ada, run_id)["probe"];
  EXPECT_EQ(probe["exit_code"], 0) << probe.dump();
  const auto lines = lines_of(probe.value("stdout", ""));
  ASSERT_EQ(lines.size(), 3u) << probe.dump();
  // In the directory it asked for, inside the workspace, which it shares with the host.
  EXPECT_EQ(lines[0], std::filesystem::canonical(workspace_root() / project / "probe").string());
  // Its own PID namespace: the sandbox's few processes, not the host's.
  EXPECT_LT(std::stoi(lines[1]), 10) << probe.dump();
  EXPECT_EQ(lines[2], "no-beside-file") << probe.dump();

  // Recorded as the agent asked for it, not as the runner wrapped it.
  bool recorded = false;
  for (const auto& event : committed_events(ada, run_id)) {
    if (event["type"] != "command.finished") continue;
    recorded = true;
    EXPECT_EQ(event["payload"]["argv"], json::array({kProbe})) << event.dump();
    EXPECT_EQ(event["payload"]["shell"], true);
  }
  EXPECT_TRUE(recorded);
}

// The runner the setting names is not there: the command fails, it never runs unconfined.
class RunsConfinementDisabledTest : public RunsConfinedTest {
 protected:
  bool sandbox_enabled() const override { return false; }
};

TEST_F(RunsConfinementDisabledTest, ACommandFailsNamingTheRunnerInsteadOfRunningUnconfined) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "unboxed");
  const std::string run_id = start_run(ada, project, "look around [probe]");
  const json failed = wait_for_state(ada, run_id, {"failed"});
  const std::string error = failed.value("error", "");
  EXPECT_THAT(error, HasSubstr("failed_precondition")) << error;
  EXPECT_THAT(error, HasSubstr("preview.sandbox (runs.command_containment), which is not active")) << error;
  for (const auto& event : committed_events(ada, run_id))
    EXPECT_NE(event["type"], "command.finished") << "a command ran: " << event.dump();
  EXPECT_FALSE(std::filesystem::exists(workspace_root() / project / "probe/README"))
      << "the failed step's file was put back";
}

// A runner that runs no processes cannot confine one.
class RunsStaticContainmentTest : public RunsApiTest {
 protected:
  void tune(config::Config& config) override {
    config::PluginEntry runner;
    runner.id = "preview.static";
    runner.file = "preview_static.so";
    runner.required = true;
    config.plugins.plugins.push_back(runner);
    config.runs.command_containment = "preview.static";
  }
};

TEST_F(RunsStaticContainmentTest, ARunnerThatDoesNotConfineCommandsRefusesThem) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "static");
  const std::string run_id = start_run(ada, project, "look around [probe]");
  const json failed = wait_for_state(ada, run_id, {"failed"});
  const std::string error = failed.value("error", "");
  EXPECT_THAT(error, HasSubstr("failed_precondition")) << error;
  EXPECT_THAT(error, HasSubstr("preview.static (runs.command_containment), which cannot confine it"))
      << error;
}

// A pipeline that cannot take a plain description: the run stalls and says why.
class RunsStallTest : public RunsApiTest {
 protected:
  void tune(config::Config& config) override { config.runs.pipeline = {"agent.fixture_looper"}; }
};

TEST_F(RunsStallTest, AStateNoAgentWantsEndsTheRunNamingTheAgentsAsked) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "stall");
  const std::string run_id = start_run(ada, project, "anything");
  const json failed = wait_for_state(ada, run_id, {"failed"});
  EXPECT_EQ(failed["error"],
            "no agent of the pipeline (agent.fixture_looper) wants the state of step 1, and it "
            "does not say \"done\": true");
  EXPECT_EQ(model_.request_count(), 0u);
}

// A user allowed two files: the planner's PLAN.md fits, the three written by the fan-out do not.
class RunsQuotaTest : public RunsApiTest {
 protected:
  void tune(config::Config& config) override { config.limits.files_per_user = 2; }
};

TEST_F(RunsQuotaTest, FilesAnAgentWritesCountAgainstTheOwnersQuota) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "quota");
  const std::string run_id = start_run(ada, project, "too many [files]");
  const json failed = wait_for_state(ada, run_id, {"failed"});
  EXPECT_THAT(failed["error"].get<std::string>(), HasSubstr("over the limits of 2 files"));
  EXPECT_EQ(get("/api/v1/projects/" + project + "/files/PLAN.md", ada).status, 200u);
  EXPECT_EQ(get("/api/v1/projects/" + project + "/files/src/a.txt", ada).status, 404u);
  EXPECT_FALSE(std::filesystem::exists(workspace_root() / project / "src/a.txt"))
      << "the workspace was put back";
}

// A config that loads the chat agent from a file the test can replace, as an operator upgrades one.
class RunsReloadTest : public RunsApiTest {
 protected:
  void tune(config::Config& config) override {
    std::filesystem::copy_file(std::string(SAMOKODER_RUNS_FIXTURE_DIR) + "/chat.so", chat_file(),
                               std::filesystem::copy_options::overwrite_existing);
    for (auto& plugin : config.plugins.plugins) {
      if (plugin.id == "agent.fixture_chat") plugin.file = chat_file().string();
    }
  }
  std::filesystem::path chat_file() const { return dir() / "chat.so"; }

  // The chat agent's replies in the run's current state, once the run has handled `count` messages.
  json replies(const User& user, const std::string& run_id, std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    json state;
    while (std::chrono::steady_clock::now() < deadline) {
      const json run = get("/api/v1/runs/" + run_id, user).json();
      state = get("/api/v1/runs/" + run_id + "/steps/" + run["current_step"]["id"].get<std::string>(), user)
                  .json()["state"];
      if (run["state"] == "succeeded" && state.value("replies", json::array()).size() == count) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return state.value("replies", json::array());
  }
};

TEST_F(RunsReloadTest, AnAgentUpgradedBetweenStepsTakesTheNextStep) {
  const User ada = sign_up("ada@example.com");
  const std::string project = create_project(ada, "upgrade");
  const std::string run_id = start_run(ada, project, "a page");
  wait_for_state(ada, run_id, {"succeeded"});
  ASSERT_EQ(
      call(verb::post, "/api/v1/runs/" + run_id + "/messages", ada, json{{"text", "first"}}.dump()).status,
      202u);
  ASSERT_EQ(replies(ada, run_id, 1).size(), 1u);

  std::filesystem::copy_file(std::string(SAMOKODER_RUNS_FIXTURE_DIR) + "/v2/chat.so", chat_file(),
                             std::filesystem::copy_options::overwrite_existing);
  const auto reloaded = app_->plugins().reload("agent.fixture_chat");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().to_string();
  ASSERT_EQ(
      call(verb::post, "/api/v1/runs/" + run_id + "/messages", ada, json{{"text", "second"}}.dump()).status,
      202u);
  const json answered = replies(ada, run_id, 2);
  ASSERT_EQ(answered.size(), 2u) << answered.dump();
  EXPECT_EQ(answered[0]["version"], "1.0.0");
  EXPECT_EQ(answered[1]["version"], "2.0.0");
}

}  // namespace
}  // namespace samokoder::runs_test
