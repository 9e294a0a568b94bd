// The product end to end (ctest label e2e): `samokoder serve` as users run it, with the real agent
// plugins of the default pipeline, the real llm.openai plugin answered by the scripted model server
// (TodoAppScript plays the model for "a to-do list ..."), the sandboxed preview runner, and an
// integrator's agent (examples/agent-readme-badge) built out of tree against the installed SDK and put
// into the pipeline by config alone. One run goes from the description to a previewed app that works,
// and on the way:
//   - the spec writer asks a clarifying question, answered over the API;
//   - the integrator's agent is upgraded to release 2 by a hot reload while the run waits, and the run's
//     badge step is release 2's;
//   - the user sends "make the add button blue" while the page is being written: it becomes a feature
//     epic of the same run;
//   - the server is killed with -9 while the developer's model call for that feature is in flight and
//     started again: the run finishes, and no model call is repeated except that one, which never got
//     an answer;
//   - the first server.js does not parse, so the executor's check fails and the error handler, a fix
//     iteration and the code review run too;
//   - the troubleshooter's smoke check runs the app in the sandbox, and its preview, reached through
//     the preview proxy with a grant like a browser, serves the page and the API.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api_session.hpp"
#include "http_client.hpp"
#include "model_server.hpp"
#include "pipeline_config.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"
#include "todo_app_script.hpp"
#include "wait_until.hpp"

namespace samokoder::e2e {
namespace {

using boost::beast::http::verb;
using nlohmann::json;
using testing::ApiUser;
using testing::HeaderList;
using testing::TodoAppScript;
using namespace std::chrono_literals;

constexpr const char* kPassword = "violet-anchor-47-quietly";
constexpr const char* kKeyVariable = "SAMOKODER_E2E_OPENAI_KEY";
constexpr const char* kModelKey = "sk-e2e-0123456789abcdef";

// Runs a shell command with its output appended to `log`; its exit status.
int shell(const std::string& command, const std::filesystem::path& log) {
  return std::system((command + " >>'" + log.string() + "' 2>&1").c_str());
}

// examples/agent-readme-badge built against the SDK installed from this build, once per program, at
// releases 1 and 2.
struct BadgeBuilds {
  std::filesystem::path release_1;
  std::filesystem::path release_2;
  std::string error;  // why the build failed, with its log
};

const BadgeBuilds& badge_builds() {
  static const BadgeBuilds builds = [] {
    BadgeBuilds out;
    static testing::TempDir work("samokoder-e2e-badge");
    const auto prefix = work.path() / "sdk";
    const auto log = work.path() / "build.log";
    const std::string cmake = SAMOKODER_CMAKE_COMMAND;
    if (shell("'" + cmake + "' --install '" SAMOKODER_BINARY_DIR "' --component sdk --prefix '" +
                  prefix.string() + "'",
              log) != 0) {
      out.error = "installing the SDK failed:\n" + testing::read_text(log);
      return out;
    }
    for (int release : {1, 2}) {
      const auto build = work.path() / ("release-" + std::to_string(release));
      if (shell("'" + cmake + "' -S '" SAMOKODER_SOURCE_DIR "/examples/agent-readme-badge' -B '" +
                    build.string() +
                    "' -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER='" SAMOKODER_CXX_COMPILER
                    "' -DCMAKE_PREFIX_PATH='" +
                    prefix.string() + "' -DBADGE_RELEASE=" + std::to_string(release),
                log) != 0 ||
          shell("'" + cmake + "' --build '" + build.string() + "'", log) != 0) {
        out.error = "building the badge agent failed:\n" + testing::read_text(log);
        return out;
      }
      (release == 1 ? out.release_1 : out.release_2) = build / "agent_readme_badge.so";
    }
    return out;
  }();
  return builds;
}

class PipelineEndToEnd : public ::testing::Test {
 protected:
  PipelineEndToEnd() {
    model_.respond_with([this](const testing::ModelCall& call) {
      // The developer's call for the feature is held until the test killed the server that made it.
      if (TodoAppScript::call_name(call) == "task_steps" &&
          call.prompt_text().find("add button blue") != std::string::npos && !held_.exchange(true)) {
        testing::ModelReply stall;
        stall.stall_before_headers = true;
        held_body_ = call.body.dump();
        return stall;
      }
      return script_.answer(call);
    });
  }

  std::filesystem::path write_config() {
    json config = testing::pipeline_serve_config(dir_.path(), SAMOKODER_PLUGIN_DIR, model_.url("/v1"));
    config["llm"]["providers"]["openai"]["api_key_env"] = kKeyVariable;
    // The integrator's agent: its own file, its place in the pipeline, nothing else.
    config["plugins"].push_back({{"id", "agent.readme_badge"},
                                 {"file", badge_file().string()},
                                 {"required", true},
                                 {"config", {{"label", "built with Samokoder"}}}});
    config["runs"]["pipeline"].push_back("agent.readme_badge");
    config["runs"]["lease_seconds"] = 2;
    const json unlimited = {{"capacity", 1000000}, {"refill_per_minute", 1000000}};
    config["security"] = {
        {"rate_limits", {{"auth", unlimited}, {"default", unlimited}, {"files", unlimited}}}};
    return dir_.write("samokoder.json", config.dump(2));
  }

  std::filesystem::path badge_file() const { return dir_.path() / "plugins" / "agent_readme_badge.so"; }

  // Replaces the loaded file the way a deployment does: a new file renamed over the old one.
  void install_badge(const std::filesystem::path& build) {
    std::filesystem::create_directories(badge_file().parent_path());
    const auto staged = badge_file().string() + ".new";
    std::filesystem::copy_file(build, staged, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(staged, badge_file());
  }

  std::vector<std::string> environment() const {
    return {"SAMOKODER_SECRET_KEY=" + secret_, std::string(kKeyVariable) + "=" + kModelKey};
  }

  // The first admin, made with the CLI before the server starts, as docs/ops.md says.
  void create_admin(const std::filesystem::path& config) {
    const auto log = dir_.path() / "admin.log";
    const std::string command = "printf '%s\\n' '" + std::string(kPassword) +
                                "' | env SAMOKODER_SECRET_KEY='" + secret_ +
                                "' '" SAMOKODER_EXECUTABLE
                                "' admin create-user --email root@example.com "
                                "--admin --config '" +
                                config.string() + "'";
    ASSERT_EQ(shell(command, log), 0) << testing::read_text(log);
  }

  void start_server(const std::filesystem::path& config) {
    server_.reset();
    server_ = std::make_unique<testing::ServeProcess>(
        SAMOKODER_EXECUTABLE, config, dir_.path() / ("server-" + std::to_string(++starts_)), environment());
  }
  std::uint16_t port() const { return server_->port(); }

  testing::ClientResponse call(verb method, const std::string& target, const ApiUser& user,
                               const json& body = nullptr) {
    testing::HttpClient client("127.0.0.1", port());
    return client.request(method, target, body.is_null() ? "" : body.dump(), user.json());
  }

  // The model requests that asked for a completion, by body.
  std::map<std::string, std::size_t> completions() const {
    std::map<std::string, std::size_t> out;
    for (const auto& c : model_.calls())
      if (c.method == "POST") ++out[c.body.dump()];
    return out;
  }

  testing::TempDir dir_{"samokoder-e2e"};
  std::string secret_ = testing::random_secret();
  testing::TodoAppScript script_;
  std::atomic<bool> held_{false};
  std::string held_body_;
  testing::ScriptedModelServer model_;
  std::unique_ptr<testing::ServeProcess> server_;
  int starts_ = 0;
};

TEST_F(PipelineEndToEnd, ADescriptionBecomesAPreviewedWorkingAppThroughEveryAgent) {
  const BadgeBuilds& badge = badge_builds();
  ASSERT_TRUE(badge.error.empty()) << badge.error;
  install_badge(badge.release_1);
  const auto config = write_config();
  create_admin(config);
  start_server(config);
  const ApiUser ada = testing::sign_up(port(), "ada@example.com", kPassword);
  testing::HttpClient login("127.0.0.1", port());
  const auto admin_login = login.request(verb::post, "/api/v1/auth/login",
                                         json{{"email", "root@example.com"}, {"password", kPassword}}.dump(),
                                         {{"Content-Type", "application/json"}});
  ASSERT_EQ(admin_login.status, 200u) << admin_login.body;
  const ApiUser admin{admin_login.json().value("access_token", "")};

  const std::string project = testing::create_project(port(), ada, "to-do");
  const std::string run = testing::start_run(port(), ada, project, TodoAppScript::kDescription);
  ASSERT_FALSE(run.empty());

  // 1. The spec writer's question.
  json document;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        document = testing::get_run(port(), ada, run);
        return document.value("state", "") == "input_required" || document.value("state", "") == "failed";
      },
      60s))
      << document.dump() << server_->log_tail();
  ASSERT_EQ(document["state"], "input_required") << document.dump() << server_->log_tail();
  EXPECT_NE(document["question"].value("text", "").find(TodoAppScript::kClarifyingQuestion),
            std::string::npos)
      << document.dump();
  const std::string clarify_id = document["question"].value("question_id", "");

  // 2. While the run waits, the integrator's agent is upgraded in place.
  install_badge(badge.release_2);
  const auto reloaded = call(verb::post, "/api/v1/admin/plugins/agent.readme_badge/reload", admin);
  ASSERT_EQ(reloaded.status, 200u) << reloaded.body;
  EXPECT_EQ(reloaded.json()["version"], "2.0.0") << reloaded.body;

  const auto answered = call(verb::post, "/api/v1/runs/" + run + "/answers", ada,
                             {{"question_id", clarify_id}, {"answer", "No, keeping them in memory is fine"}});
  ASSERT_EQ(answered.status, 200u) << answered.body;

  // 3. A change request while the page is being written.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (const auto& e : testing::run_events(port(), ada, run))
          if (e.value("type", "") == "task.started" &&
              e["payload"].dump().find("page that lists") != std::string::npos)
            return true;
        return testing::get_run(port(), ada, run).value("state", "") == "failed";
      },
      90s))
      << server_->log_tail();
  const auto sent =
      call(verb::post, "/api/v1/runs/" + run + "/messages", ada, {{"text", TodoAppScript::kChangeRequest}});
  ASSERT_EQ(sent.status, 202u) << sent.body;

  // 4. Answer the troubleshooter's reviews until the run ends; kill the server once the feature's
  // developer call is in flight, and start it again.
  std::set<std::string> answered_questions = {clarify_id};
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + 240s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (held_ && !killed) {
      server_->kill_now();
      killed = true;
      start_server(config);
      continue;
    }
    document = testing::get_run(port(), ada, run);
    const std::string state = document.value("state", "");
    if (state == "succeeded" || state == "failed" || state == "cancelled") break;
    if (state == "input_required" && document["question"].is_object()) {
      const std::string id = document["question"].value("question_id", "");
      if (answered_questions.insert(id).second) {
        EXPECT_NE(id.find("review."), std::string::npos) << document.dump();
        const auto reply = call(verb::post, "/api/v1/runs/" + run + "/answers", ada,
                                {{"question_id", id}, {"answer", "works"}});
        EXPECT_EQ(reply.status, 200u) << reply.body;
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(killed) << "the feature's developer call never came";
  ASSERT_EQ(document.value("state", ""), "succeeded") << document.dump() << server_->log_tail();
  EXPECT_GE(answered_questions.size(), 3u) << "the spec question and a review per epic";

  // Every agent committed a step, the integrator's one at release 2.
  const auto events = testing::run_events(port(), ada, run);
  std::set<std::string> agents;
  for (const auto& e : events)
    if (e.value("type", "") == "step.committed") agents.insert(e["payload"].value("agent", ""));
  for (const char* agent :
       {"agent.error_handler", "agent.spec_writer", "agent.architect", "agent.bootstrap", "agent.tech_lead",
        "agent.tech_writer", "agent.task_completer", "agent.developer", "agent.code_monkey", "agent.executor",
        "agent.troubleshooter", "agent.readme_badge", "user"})
    EXPECT_TRUE(agents.contains(agent)) << agent << " committed no step";
  bool badge_2 = false;
  bool checked = false;
  for (const auto& e : events) {
    badge_2 = badge_2 || (e.value("type", "") == "badge.added" && e["payload"].value("release", "") == "2");
    checked = checked || (e.value("type", "") == "app.checked" && e["payload"].value("passed", false));
  }
  EXPECT_TRUE(badge_2) << "the badge step was not release 2's";
  EXPECT_TRUE(checked) << "the troubleshooter's smoke check never passed";
  EXPECT_EQ(testing::count_of(events, "run.finished"), 1u);

  // No model call was asked twice, except the one in flight when the server was killed.
  for (const auto& [body, n] : completions()) {
    if (body == held_body_) {
      EXPECT_EQ(n, 2u) << "the call in flight at the kill is asked once more";
    } else {
      EXPECT_EQ(n, 1u) << "asked " << n << " times: " << body.substr(0, 300);
    }
  }

  // The workspace holds the app, the feature and the badge.
  const auto readme = call(verb::get, "/api/v1/projects/" + project + "/files/README.md", ada);
  EXPECT_NE(readme.body.find("badge release 2"), std::string::npos) << readme.body;
  EXPECT_NE(readme.body.find("My to-do list"), std::string::npos) << readme.body;

  // The preview, opened as a browser does, serves the page and the API.
  json preview;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto got = call(verb::get, "/api/v1/projects/" + project + "/preview", ada);
        if (got.status != 200) return false;
        preview = got.json();
        return preview.value("state", "") == "running";
      },
      60s))
      << preview.dump() << server_->log_tail();
  const std::string origin = preview["origin"];
  const auto colon = origin.rfind(':');
  const auto proxy_port = static_cast<std::uint16_t>(std::stoi(origin.substr(colon + 1)));
  const std::string host = "p-" + project + ".localhost";
  testing::HttpClient proxy("127.0.0.1", proxy_port);
  const auto granted = proxy.get(preview["url"].get<std::string>().substr(origin.size()), {{"Host", host}});
  ASSERT_EQ(granted.status, 303u) << granted.body;
  const std::string cookie = granted.header("Set-Cookie").substr(0, granted.header("Set-Cookie").find(';'));
  const HeaderList browser = {{"Host", host}, {"Cookie", cookie}};
  const auto page = proxy.get("/", browser);
  EXPECT_EQ(page.status, 200u);
  EXPECT_NE(page.body.find(TodoAppScript::kPageTitle), std::string::npos) << page.body;
  HeaderList posting = browser;
  posting.emplace_back("Content-Type", "application/json");
  const auto added = proxy.request(verb::post, "/api/todos", R"({"title": "water the plants"})", posting);
  EXPECT_EQ(added.status, 201u) << added.body;
  EXPECT_NE(proxy.get("/api/todos", browser).body.find("water the plants"), std::string::npos);
  EXPECT_NE(proxy.get("/style.css", browser).body.find("background: blue"), std::string::npos);
}

}  // namespace
}  // namespace samokoder::e2e
