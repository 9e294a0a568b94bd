// preview.static as the kernel runs it: which folder of a workspace it hands the kernel to serve.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "preview_runner_harness.hpp"

namespace samokoder::testing {
namespace {

namespace fs = std::filesystem;
using sdk::PreviewState;
using sdk::StatusCode;

class StaticRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(harness_.start_plugin());
    ws_ = harness_.dir() / "ws";
    fs::create_directories(ws_);
  }

  void page(const std::string& folder) {
    const fs::path dir = folder.empty() ? ws_ : ws_ / folder;
    fs::create_directories(dir);
    std::ofstream(dir / "index.html") << "<h1>" << folder << "</h1>";
  }

  sdk::PreviewSpec spec() const {
    sdk::PreviewSpec s;
    s.project_id = "p1";
    s.workspace_dir = ws_.string();
    s.port = 1;
    return s;
  }

  // The folder start() points at, or the failure.
  std::string served() {
    auto started = harness_.start(spec());
    if (!started.ok()) return started.status().to_string();
    EXPECT_EQ(started->state, PreviewState::kRunning);
    EXPECT_EQ(started->endpoint.port, 0);
    EXPECT_TRUE(started->endpoint.socket_path.empty());
    return started->endpoint.directory;
  }

  PreviewRunnerHarness harness_{"preview.static", SAMOKODER_PREVIEW_STATIC_PLUGIN};
  fs::path ws_;
};

TEST_F(StaticRunnerTest, PrefersDistThenBuildThenPublicThenTheRoot) {
  page("");
  EXPECT_EQ(served(), ws_.string());
  page("public");
  EXPECT_EQ(served(), (ws_ / "public").string());
  page("build");
  EXPECT_EQ(served(), (ws_ / "build").string());
  page("dist");
  EXPECT_EQ(served(), (ws_ / "dist").string());
}

TEST_F(StaticRunnerTest, FolderWithoutIndexIsSkipped) {
  fs::create_directories(ws_ / "dist" / "assets");
  page("public");
  EXPECT_EQ(served(), (ws_ / "public").string());
}

TEST_F(StaticRunnerTest, NothingToServeIsNotFoundNamingWhatItLookedFor) {
  std::ofstream(ws_ / "main.py") << "print('not static')\n";
  auto started = harness_.start(spec());
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), StatusCode::kNotFound);
  EXPECT_NE(started.status().message().find("dist/index.html"), std::string::npos);
  EXPECT_NE(started.status().message().find("public/index.html"), std::string::npos);
  EXPECT_EQ(harness_.status("p1").status().code(), StatusCode::kNotFound);
}

TEST_F(StaticRunnerTest, SymlinkedDistIsRefused) {
  const fs::path elsewhere = harness_.dir() / "elsewhere";
  fs::create_directories(elsewhere);
  std::ofstream(elsewhere / "index.html") << "outside";
  fs::create_directory_symlink(elsewhere, ws_ / "dist");
  page("");
  auto started = harness_.start(spec());
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(started.status().message().find("symbolic link"), std::string::npos);
}

TEST_F(StaticRunnerTest, SymlinkedIndexIsRefused) {
  std::ofstream(harness_.dir() / "secret.html") << "outside";
  fs::create_symlink(harness_.dir() / "secret.html", ws_ / "index.html");
  EXPECT_EQ(harness_.start(spec()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StaticRunnerTest, StatusLogsStopAndFilesChanged) {
  page("dist");
  ASSERT_EQ(served(), (ws_ / "dist").string());
  auto status = harness_.status("p1");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, PreviewState::kRunning);
  EXPECT_EQ(status->pid, 0);
  auto log = harness_.logs("p1", 0, 4096);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->text.rfind("serving dist/", 0), 0u) << log->text;
  EXPECT_EQ(log->end_offset, log->text.size());
  auto tail = harness_.logs("p1", 0, 4);
  EXPECT_TRUE(tail->truncated);
  EXPECT_EQ(tail->text.size(), 4u);
  EXPECT_TRUE(harness_.files_changed("p1", {"dist/index.html"}).ok());
  EXPECT_EQ(harness_.status("p1")->endpoint.directory, (ws_ / "dist").string());
  EXPECT_TRUE(harness_.stop("p1").ok());
  EXPECT_EQ(harness_.status("p1").status().code(), StatusCode::kNotFound);
}

TEST_F(StaticRunnerTest, WorkspaceMustBeAnExistingAbsoluteDirectory) {
  auto s = spec();
  s.workspace_dir = "relative/ws";
  EXPECT_EQ(harness_.start(s).status().code(), StatusCode::kInvalidArgument);
  s.workspace_dir = (ws_ / "missing").string();
  EXPECT_EQ(harness_.start(s).status().code(), StatusCode::kInvalidArgument);
}

// It runs no processes, so it confines none: the kernel is told, and never runs the command unconfined.
TEST_F(StaticRunnerTest, ItDoesNotConfineCommands) {
  sdk::ProcessSpec command;
  command.argv = {"/bin/true"};
  command.working_directory = ws_.string();
  EXPECT_EQ(harness_.run_contained_command(command, "p1").status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace samokoder::testing
