// preview.sandbox confining an agent's command (PreviewRunner::contain_command), loaded by the real
// plugin manager and run through the kernel's real process service as the runs engine runs it
// (tests/support/preview_runner_harness): the command works in its workspace and sees nothing else of
// the host, and the cleanup removes the cgroup it ran in.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "preview_runner_harness.hpp"

namespace samokoder::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string random_id(std::size_t length = 24) {
  static std::mt19937_64 engine{std::random_device{}()};
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  for (std::size_t i = 0; i < length; ++i)
    id += kAlphabet[std::uniform_int_distribution<std::size_t>(0, 35)(engine)];
  return id;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

class ContainCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(harness_.start_plugin({{"socket_dir", (harness_.dir() / "sockets").string()},
                                       {"pids_max", 32},
                                       {"memory_bytes", 256 * 1024 * 1024}}));
    fs::create_directories(workspace_);
  }

  // The command as the runs engine hands it over: the workspace as working directory, the kernel's
  // clean environment.
  sdk::ProcessSpec command(const std::string& script) const {
    sdk::ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.working_directory = workspace_.string();
    spec.environment = {
        {"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", workspace_.string()}, {"LANG", "C.UTF-8"}};
    spec.timeout = 30s;
    return spec;
  }

  PreviewRunnerHarness harness_{"preview.sandbox", SAMOKODER_PREVIEW_SANDBOX_PLUGIN};
  const fs::path workspace_ = fs::canonical(harness_.dir()) / "workspace";
  const std::string project_ = random_id();
};

TEST_F(ContainCommandTest, ACommandWorksInItsWorkspaceAndSeesNothingElseOfTheHost) {
  // A file in the workspace's parent directory, and the host's /etc/shadow, which a server running as
  // root could read if nothing masked it.
  const std::string beside = "beside-" + random_id(8);
  std::ofstream(workspace_.parent_path() / "beside.txt") << beside;
  std::ofstream(workspace_ / "input.txt") << "from-the-host";
  const std::string script =
      "pwd\n"
      "cat input.txt; echo\n"
      "echo made-inside > made.txt && echo WROTE\n"
      "cat ../beside.txt 2>/dev/null || echo no-beside-file\n"
      "head -c 8 /etc/shadow 2>/dev/null | grep -q . && echo SHADOW-READ || echo no-shadow\n"
      "ls -d /proc/[0-9]* | wc -l\n";

  fs::path cgroup;
  bool cgroup_existed = false;
  std::vector<std::string> argv;
  auto ran = harness_.run_contained_command(command(script), project_, [&](const sdk::ContainedCommand& c) {
    argv = c.spec.argv;
    EXPECT_TRUE(static_cast<bool>(c.cleanup)) << "a sandboxed command needs its cleanup";
    const auto procs = std::find_if(argv.begin(), argv.end(),
                                    [](const std::string& arg) { return arg.ends_with("/cgroup.procs"); });
    if (procs != argv.end()) {
      cgroup = fs::path(*procs).parent_path();
      cgroup_existed = fs::is_directory(cgroup);
    }
  });
  ASSERT_TRUE(ran.ok()) << ran.status().to_string();
  EXPECT_EQ(ran->exit_code, 0) << ran->stderr_data;
  const auto lines = lines_of(ran->stdout_data);
  ASSERT_EQ(lines.size(), 6u) << ran->stdout_data << ran->stderr_data;
  EXPECT_EQ(lines[0], workspace_.string());
  EXPECT_EQ(lines[1], "from-the-host");
  EXPECT_EQ(lines[2], "WROTE");
  EXPECT_EQ(read_all(workspace_ / "made.txt"), "made-inside\n");
  EXPECT_EQ(lines[3], "no-beside-file");
  EXPECT_EQ(ran->stdout_data.find(beside), std::string::npos);
  EXPECT_EQ(lines[4], "no-shadow");
  // A PID namespace of its own: the sandbox's handful of processes, never the host's.
  EXPECT_LT(std::stoi(lines[5]), 10) << ran->stdout_data;

  // Confined as an install: the host's network (no network namespace), and no bridge into it.
  EXPECT_TRUE(std::find(argv.begin(), argv.end(), "--unshare-net") == argv.end());
  EXPECT_TRUE(std::none_of(argv.begin(), argv.end(), [](const std::string& arg) {
    return arg.find("socat") != std::string::npos || arg.find("UNIX-LISTEN") != std::string::npos;
  }));
  EXPECT_FALSE(fs::exists(harness_.dir() / "sockets" / project_));

  // Its cgroup (this machine lets the server make one, or the runner would have refused as root) is
  // gone once the cleanup ran.
  ASSERT_FALSE(cgroup.empty()) << "the command ran in no cgroup of its own";
  EXPECT_TRUE(cgroup_existed) << cgroup;
  EXPECT_FALSE(fs::exists(cgroup)) << cgroup;
}

TEST_F(ContainCommandTest, WhatTheSandboxCannotConfineIsRefusedNotRunUnconfined) {
  auto not_a_workspace = command("true");
  not_a_workspace.working_directory = "/";
  auto refused = harness_.run_contained_command(not_a_workspace, project_);
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kInvalidArgument) << refused.status().to_string();

  auto bad_project = harness_.run_contained_command(command("true"), "../etc");
  EXPECT_EQ(bad_project.status().code(), sdk::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samokoder::testing
