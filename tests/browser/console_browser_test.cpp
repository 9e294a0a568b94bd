// The web console in a real browser (ctest label browser). `samokoder serve` runs as users run it (the
// default pipeline's eleven agents, llm.openai, the sandboxed preview runner, the console it serves at
// "/"), the scripted model server plays the model (TodoAppScript, streamed in small pieces so text
// arrives as it is written), and console_flow.mjs drives Debian's Chromium headless through the
// console alone:
//   sign up and log in; add an OpenAI key (verified against the model server); create a project; start
//   a run with the to-do description; answer the clarifying question inline; reload the page while the
//   run goes on and see the stream continue without a repeated event; see the run finish with its
//   summary and the preview frame show the app; the file tree and a file; usage; log out.
// Every main page is screenshotted into the test's output folder and checked with axe-core (no serious
// or critical violation), and the page may break no rule of its Content-Security-Policy.
//
// This program then checks through the API, independently of what the browser showed, that the user,
// the key, the project, the answered question and the finished run are what the browser did, and that
// the model was asked nothing twice.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
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

namespace samokoder::browser {
namespace {

using boost::beast::http::verb;
using nlohmann::json;
using testing::TodoAppScript;
using namespace std::chrono_literals;

constexpr const char* kEmail = "ada@example.com";
constexpr const char* kPassword = "violet-anchor-47-quietly";
constexpr const char* kModelKey = "sk-browser-0123456789abcdef";
constexpr const char* kAnswer = "Yes, keep them in a JSON file next to the app.";

// A reply streamed in pieces with a pause between them, so the console shows model text as it arrives
// and a page reload lands while a step is still being written.
testing::ModelReply streamed(testing::ModelReply reply) {
  std::string text;
  for (const std::string& delta : reply.deltas)
    text += delta;
  constexpr std::size_t kPiece = 400;
  reply.deltas.clear();
  for (std::size_t at = 0; at < text.size(); at += kPiece)
    reply.deltas.push_back(text.substr(at, kPiece));
  if (reply.deltas.empty()) reply.deltas.emplace_back();
  reply.delay_between_events = 10ms;
  return reply;
}

class ConsoleInBrowser : public ::testing::Test {
 protected:
  ConsoleInBrowser() {
    model_.respond_with([this](const testing::ModelCall& call) { return streamed(script_.answer(call)); });
  }

  // The server's own rate limits, as a user's server has them: the console has to live within them. No
  // server-wide key: the run uses the key the user stored through the console.
  std::filesystem::path write_config() {
    nlohmann::json config =
        testing::pipeline_serve_config(dir_.path(), SAMOKODER_PLUGIN_DIR, model_.url("/v1"));
    config["log"]["access_log"] = true;
    config["console"] = {{"dir", SAMOKODER_CONSOLE_BUILD_DIR}};
    return dir_.write("samokoder.json", config.dump(2));
  }

  // console_flow.mjs against the server; its exit status, its output in `log`.
  int drive_browser(const std::filesystem::path& log) {
    std::filesystem::remove_all(output_dir_);
    std::filesystem::create_directories(output_dir_);
    const std::map<std::string, std::string> environment = {
        {"CONSOLE_URL", "http://127.0.0.1:" + std::to_string(server_->port()) + "/"},
        {"CHROMIUM", SAMOKODER_CHROMIUM},
        {"NODE_MODULES", BROWSER_TEST_NODE_MODULES},
        {"OUTPUT_DIR", output_dir_.string()},
        {"EMAIL", kEmail},
        {"PASSWORD", kPassword},
        {"MODEL_KEY", kModelKey},
        {"DESCRIPTION", TodoAppScript::kDescription},
        {"QUESTION", TodoAppScript::kClarifyingQuestion},
        {"ANSWER", kAnswer},
        {"PAGE_TITLE", TodoAppScript::kPageTitle},
    };
    std::string command = "env";
    for (const auto& [name, value] : environment)
      command += " " + name + "='" + value + "'";
    command += " timeout 420 '" SAMOKODER_NODE "' '" BROWSER_TEST_SCRIPT "' >'" + log.string() + "' 2>&1";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  testing::TempDir dir_{"samokoder-browser"};
  const std::filesystem::path output_dir_ = BROWSER_TEST_OUTPUT_DIR;
  TodoAppScript script_;
  testing::ScriptedModelServer model_;
  std::unique_ptr<testing::ServeProcess> server_;
};

TEST_F(ConsoleInBrowser, ANewUserGoesFromSignUpToAPreviewedAppInChromium) {
  server_ = std::make_unique<testing::ServeProcess>(
      SAMOKODER_EXECUTABLE, write_config(), dir_.path() / "server",
      std::vector<std::string>{"SAMOKODER_SECRET_KEY=" + testing::random_secret()});
  const auto log = dir_.path() / "browser.log";
  const int exit_status = drive_browser(log);
  ASSERT_EQ(exit_status, 0) << "console_flow.mjs failed:\n"
                            << testing::tail(testing::read_text(log), 12000) << "\nserver log:\n"
                            << server_->log_tail();

  std::ifstream report_file(output_dir_ / "report.json");
  const json report = json::parse(report_file, nullptr, false);
  ASSERT_TRUE(report.is_object()) << "no report.json from the browser run";

  // Screenshots of the main pages, each a real PNG.
  const std::set<std::string> pages = {"login", "keys", "projects", "run", "preview", "files", "usage"};
  ASSERT_TRUE(report["screenshots"].is_object());
  for (const std::string& page : pages) {
    ASSERT_TRUE(report["screenshots"].contains(page)) << page;
    const std::filesystem::path shot = output_dir_ / report["screenshots"][page].get<std::string>();
    std::ifstream png(shot, std::ios::binary);
    std::string magic(8, '\0');
    png.read(magic.data(), 8);
    EXPECT_EQ(magic, "\x89PNG\r\n\x1a\n") << shot;
    EXPECT_GT(std::filesystem::file_size(shot), 2000u) << shot;
  }
  // axe-core ran on every page and found nothing serious; the page broke no CSP rule.
  for (const std::string& page : pages) {
    ASSERT_TRUE(report["axe"].contains(page)) << page;
    EXPECT_EQ(report["axe"][page]["serious"], 0) << page << ": " << report["axe"][page].dump();
  }
  EXPECT_EQ(report["csp_violations"], json::array());

  // What the browser did, as the API sees it.
  testing::HttpClient client("127.0.0.1", server_->port());
  const json credentials = {{"email", kEmail}, {"password", kPassword}};
  const auto login = client.request(verb::post, "/api/v1/auth/login", credentials.dump(),
                                    {{"Content-Type", "application/json"}});
  ASSERT_EQ(login.status, 200u) << login.body;
  const testing::ApiUser user{login.json()["access_token"].get<std::string>()};

  const auto keys = client.get("/api/v1/keys", user.bearer());
  ASSERT_EQ(keys.status, 200u);
  EXPECT_NE(keys.body.find("\"openai\""), std::string::npos) << keys.body;
  EXPECT_EQ(keys.body.find(kModelKey), std::string::npos) << "the key must only ever be shown masked";

  const std::string project = report["project_id"];
  const std::string run = report["run_id"];
  const json finished = testing::get_run(server_->port(), user, run);
  ASSERT_TRUE(finished.is_object());
  EXPECT_EQ(finished["state"], "succeeded") << finished.dump();
  EXPECT_EQ(finished["project_id"], project);

  const auto events = testing::run_events(server_->port(), user, run);
  bool answered = false;
  for (const json& event : events) {
    if (event["type"] == "question.answered" && event["payload"].dump().find(kAnswer) != std::string::npos)
      answered = true;
  }
  EXPECT_TRUE(answered) << "the answer typed in the browser did not reach the run";
  // The browser saw every committed event once, in order, across its reload.
  std::vector<std::int64_t> seen;
  for (const json& seq : report["committed_seqs"])
    seen.push_back(seq.get<std::int64_t>());
  ASSERT_FALSE(seen.empty());
  for (std::size_t i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i], static_cast<std::int64_t>(i + 1)) << "event list out of order or with a gap at " << i;
  EXPECT_TRUE(report["reloaded_mid_run"].get<bool>());

  const auto preview = client.get("/api/v1/projects/" + project + "/preview", user.bearer());
  ASSERT_EQ(preview.status, 200u);
  EXPECT_EQ(preview.json()["state"], "running") << preview.body;

  // Nothing was asked of the model twice, the reload included.
  std::set<std::string> bodies;
  for (const auto& call : model_.calls()) {
    if (call.path.ends_with("/chat/completions")) {
      EXPECT_TRUE(bodies.insert(call.body.dump()).second) << "a model call was repeated";
    }
  }
  EXPECT_GE(bodies.size(), 8u);
}

}  // namespace
}  // namespace samokoder::browser
