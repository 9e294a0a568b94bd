// Conformance: a writer killed with SIGKILL at a random moment loses nothing it reported as committed,
// and the database passes the backend's integrity check afterwards.
#include <cerrno>
#include <chrono>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage_fixture.hpp"

extern char** environ;

namespace samokoder::testing {
namespace {

class DurabilityTest : public StorageTest {};
SAMOKODER_STORAGE_TEST_SUITE(DurabilityTest);

struct ChildReport {
  std::string user_id;
  std::vector<std::string> project_ids;
  bool killed = false;
  std::string error;
};

// Runs the child, reads its report line by line and kills it with SIGKILL after `kill_after`
// committed projects. Lines that were complete when the pipe closed were all written after a commit.
ChildReport run_and_kill(const std::filesystem::path& plugin, const nlohmann::json& config, int kill_after) {
  ChildReport report;
  int fds[2];
  if (::pipe(fds) != 0) {
    report.error = "pipe failed";
    return report;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::string child = SAMOKODER_STORAGE_DURABILITY_CHILD;
  std::string plugin_arg = plugin.string();
  std::string config_arg = config.dump();
  std::string count_arg = "1000000";
  char* argv[] = {child.data(), plugin_arg.data(), config_arg.data(), count_arg.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, child.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (spawned != 0) {
    ::close(fds[0]);
    report.error = "posix_spawn failed: " + std::to_string(spawned);
    return report;
  }
  std::string buffer;
  char chunk[4096];
  int projects = 0;
  // A child that hangs (a writer stuck on a lock) is killed and reported instead of hanging the suite.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (true) {
    pollfd readable{fds[0], POLLIN, 0};
    if (::poll(&readable, 1, 100) == 0) {
      if (std::chrono::steady_clock::now() < until) continue;
      ::kill(pid, SIGKILL);
      ::close(fds[0]);
      ::waitpid(pid, nullptr, 0);
      report.error = "the child reported " + std::to_string(projects) + " projects in 120 s and was killed";
      return report;
    }
    const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      const std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      if (line.rfind("user ", 0) == 0) report.user_id = line.substr(5);
      if (line.rfind("project ", 0) == 0) {
        report.project_ids.push_back(line.substr(8));
        if (++projects == kill_after) ::kill(pid, SIGKILL);
      }
    }
  }
  ::close(fds[0]);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  report.killed = WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL;
  if (!report.killed) report.error = "child ended without being killed, status " + std::to_string(wstatus);
  return report;
}

TEST_P(DurabilityTest, AKilledWriterLosesNothingItReported) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> kill_point(5, 120);
  close();  // the child is the only writer while it runs
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const ChildReport report =
        run_and_kill(GetParam().plugin_path, database().plugin_config(), kill_point(random));
    ASSERT_TRUE(report.killed) << report.error;
    ASSERT_FALSE(report.user_id.empty());
    ASSERT_FALSE(report.project_ids.empty());

    ASSERT_OK(database().check_integrity());
    ASSERT_NO_FATAL_FAILURE(reopen());
    EXPECT_OK(storage().users().get_user(report.user_id).status());
    for (const std::string& id : report.project_ids) {
      ASSERT_OK(storage().projects().get_project(report.user_id, id).status()) << id;
      ASSERT_OK_AND_ASSIGN(sdk::FileContent state,
                           storage().files().get_file(report.user_id, id, "state.json", {}));
      EXPECT_EQ(nlohmann::json::parse(state.content)["project"], id);
      ASSERT_OK_AND_ASSIGN(auto runs,
                           storage().runs().list_runs(report.user_id, id, sdk::PageRequest{10, ""}));
      ASSERT_EQ(runs.items.size(), 1u);
      ASSERT_OK_AND_ASSIGN(auto events,
                           storage().runs().list_run_events(report.user_id, runs.items[0].id, 0, 10));
      ASSERT_EQ(events.size(), 1u);
    }
    // A transaction in flight at the kill is either wholly there or wholly absent: every project the
    // child created has its file, run and event.
    ASSERT_OK_AND_ASSIGN(auto all,
                         storage().projects().list_projects(report.user_id, sdk::PageRequest{500, ""}));
    EXPECT_GE(all.items.size(), report.project_ids.size());
    EXPECT_LE(all.items.size(), report.project_ids.size() + 1);
    for (const auto& project : all.items) {
      EXPECT_OK(storage().files().get_file(report.user_id, project.id, "state.json", {}).status());
    }
    close();
  }
}

}  // namespace
}  // namespace samokoder::testing
