// The process service against real children: /bin/sh scripts, coreutils, a helper that allocates
// memory, and a tracker process killed with -9 for the crash-restart sweep.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "live_process.hpp"
#include "processes/process_service.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::processes {
namespace {

using namespace std::chrono_literals;
using testing::alive;
using testing::gone_soon;

std::vector<int> pids_in(const std::string& text) {
  std::istringstream in(text);
  return testing::pids_in(in);
}

class ProcessServiceTest : public ::testing::Test {
 protected:
  ProcessServiceTest() {
    config_.state_dir = dir_.path() / "state";
    config_.kill_grace_ms = 300;
    config_.default_timeout_ms = 20000;
    config_.output_limit_bytes = 64 * 1024;
    service_ = std::make_unique<ProcessService>(config_, registry_);
  }

  static sdk::ProcessSpec shell(std::string script) {
    sdk::ProcessSpec spec;
    spec.argv = {std::move(script)};
    spec.shell = true;
    spec.environment = {{"PATH", "/usr/bin:/bin"}};
    return spec;
  }

  sdk::Result<sdk::ProcessResult> run(const sdk::ProcessSpec& spec, sdk::CancelToken cancel = {}) {
    return service_->run(owner_, spec, std::move(cancel));
  }

  double ended(std::string_view outcome) {
    return registry_
        .counter("samokoder_processes_ended_total", "",
                 {{"plugin", owner_.plugin}, {"outcome", std::string(outcome)}})
        .value();
  }

  testing::TempDir dir_{"samokoder-processes"};
  metrics::Registry registry_;
  config::ProcessesConfig config_;
  std::unique_ptr<ProcessService> service_;
  Owner owner_{"agent.test", 1};
};

TEST_F(ProcessServiceTest, RunsArgvDirectlyWithoutAShell) {
  sdk::ProcessSpec spec;
  spec.argv = {"/bin/echo", "a  b", "$HOME", "*"};
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_FALSE(result->signal.has_value());
  EXPECT_TRUE(result->succeeded());
  EXPECT_EQ(result->stdout_data, "a  b $HOME *\n");  // no expansion, no word splitting
  EXPECT_EQ(registry_.counter("samokoder_processes_started_total", "", {{"plugin", "agent.test"}}).value(),
            1);
  EXPECT_EQ(ended("ok"), 1);
}

TEST_F(ProcessServiceTest, ReportsExitCodeAndBothStreams) {
  auto result = run(shell("echo out; echo err >&2; exit 7"));
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->exit_code, 7);
  EXPECT_EQ(result->stdout_data, "out\n");
  EXPECT_EQ(result->stderr_data, "err\n");
  EXPECT_FALSE(result->succeeded());
  EXPECT_EQ(ended("failed"), 1);
}

TEST_F(ProcessServiceTest, TheEnvironmentIsExactlyTheSpecs) {
  ::setenv("SAMOKODER_TEST_SERVER_SECRET", "do-not-leak", 1);
  sdk::ProcessSpec spec;
  spec.argv = {"env"};
  spec.environment = {{"PATH", "/usr/bin:/bin"}, {"GREETING", "hello world"}};
  auto result = run(spec);
  ::unsetenv("SAMOKODER_TEST_SERVER_SECRET");
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->stdout_data, "PATH=/usr/bin:/bin\nGREETING=hello world\n");
}

TEST_F(ProcessServiceTest, NoFileDescriptorOfTheServerReachesTheChild) {
  // Opened without O_CLOEXEC, like a descriptor some library of the server forgot to mark.
  const int leaked = ::open(dir_.write("server-secret", "secret").c_str(), O_RDONLY);
  ASSERT_GE(leaked, 3);
  auto result = run(shell("exec ls /proc/self/fd"));
  ::close(leaked);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->stdout_data, "0\n1\n2\n3\n");  // stdio, and the directory ls is listing
}

TEST_F(ProcessServiceTest, TheServersSignalMaskAndIgnoredSignalsDoNotReachTheChild) {
  // The server blocks SIGTERM and SIGINT in every thread (its signal thread waits for them) and ignores
  // SIGPIPE; a child inheriting that could not be stopped with SIGTERM.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigset_t previous;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &blocked, &previous), 0);
  const auto previous_pipe = ::signal(SIGPIPE, SIG_IGN);
  sdk::ProcessSpec spec;
  spec.argv = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"};
  spec.environment = {{"PATH", "/usr/bin:/bin"}};
  auto status = run(spec);
  auto stopped = run([] {
    auto s = shell("exec sleep 60");
    s.timeout = 200ms;
    return s;
  }());
  ::signal(SIGPIPE, previous_pipe);
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  ASSERT_TRUE(status.ok()) << status.status().to_string();
  EXPECT_EQ(status->stdout_data, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  ASSERT_TRUE(stopped.ok()) << stopped.status().to_string();
  EXPECT_EQ(stopped->signal, SIGTERM);  // ended by the SIGTERM, not by the SIGKILL after the grace
}

TEST_F(ProcessServiceTest, WorkingDirectoryAndStdin) {
  const auto work = dir_.path() / "work";
  std::filesystem::create_directories(work);
  sdk::ProcessSpec spec = shell("pwd; cat");
  spec.working_directory = work.string();
  spec.stdin_data = "line one\nline two";
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->stdout_data, work.string() + "\nline one\nline two");
}

TEST_F(ProcessServiceTest, AMissingProgramIsAnErrorNotExit127) {
  sdk::ProcessSpec missing;
  missing.argv = {"/nonexistent/compiler", "--version"};
  auto result = run(missing);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kNotFound) << result.status().to_string();
  EXPECT_NE(result.status().message().find("/nonexistent/compiler"), std::string::npos);

  sdk::ProcessSpec not_in_path;
  not_in_path.argv = {"no-such-tool-anywhere"};
  not_in_path.environment = {{"PATH", "/usr/bin:/bin"}};
  EXPECT_EQ(run(not_in_path).status().code(), sdk::StatusCode::kNotFound);

  sdk::ProcessSpec no_path;  // the server's PATH is never used
  no_path.argv = {"sh"};
  EXPECT_EQ(run(no_path).status().code(), sdk::StatusCode::kNotFound);

  const auto script = dir_.write("not_executable.sh", "#!/bin/sh\necho hi\n");
  sdk::ProcessSpec denied;
  denied.argv = {script.string()};
  auto refused = run(denied);
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kPermissionDenied) << refused.status().to_string();

  sdk::ProcessSpec bad_dir = shell("true");
  bad_dir.working_directory = (dir_.path() / "absent").string();
  EXPECT_EQ(run(bad_dir).status().code(), sdk::StatusCode::kNotFound);
  EXPECT_EQ(service_->running(), 0u);
}

TEST_F(ProcessServiceTest, AChildIgnoringSigtermIsKilledAfterTheGrace) {
  sdk::ProcessSpec spec = shell("trap '' TERM; echo ready; while :; do sleep 0.05; done");
  spec.timeout = 300ms;
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_TRUE(result->timed_out);
  EXPECT_EQ(result->signal, SIGKILL);
  EXPECT_EQ(result->stdout_data, "ready\n");
  EXPECT_GE(result->wall_time, 300ms + 300ms);  // the timeout, then the whole grace
  EXPECT_LT(result->wall_time, 10s);
  EXPECT_EQ(ended("timed_out"), 1);
}

TEST_F(ProcessServiceTest, GrandchildrenAreGoneAfterTheTimeout) {
  sdk::ProcessSpec spec = shell("sleep 60 & echo $!; (sleep 60 & echo $!; wait) & wait");
  spec.timeout = 400ms;
  std::atomic<int> lines{0};
  spec.on_line = [&](sdk::OutputStream, std::string_view) { ++lines; };
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_TRUE(result->timed_out);
  const auto pids = pids_in(result->stdout_data);
  ASSERT_EQ(pids.size(), 2u) << result->stdout_data;
  EXPECT_EQ(lines.load(), 2);
  for (int pid : pids)
    EXPECT_TRUE(gone_soon(pid)) << pid;
}

TEST_F(ProcessServiceTest, WhatAChildLeavesInItsGroupDiesWithIt) {
  auto result = run(shell("sleep 60 & echo $!"));
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_LT(result->wall_time, 10s);
  const auto pids = pids_in(result->stdout_data);
  ASSERT_EQ(pids.size(), 1u);
  EXPECT_TRUE(gone_soon(pids[0]));
}

TEST_F(ProcessServiceTest, AnAddressSpaceLimitRefusesTheAllocation) {
  sdk::ProcessSpec fits;
  fits.argv = {SAMOKODER_PROCESS_TEST_CHILD, "alloc", "16"};
  auto small = run(fits);
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ(small->exit_code, 0);
  EXPECT_EQ(small->stdout_data, "allocated\n");

  sdk::ProcessSpec too_big = fits;
  too_big.argv[2] = "512";
  too_big.limits.address_space_bytes = 128ULL * 1024 * 1024;
  auto refused = run(too_big);
  ASSERT_TRUE(refused.ok()) << refused.status().to_string();
  EXPECT_EQ(refused->exit_code, 3);
  EXPECT_EQ(refused->stdout_data, "allocation refused\n");
}

TEST_F(ProcessServiceTest, OtherLimitsApplyInTheChild) {
  sdk::ProcessSpec spec = shell("ulimit -t; ulimit -n; ulimit -f");
  spec.limits.cpu_seconds = 7;
  spec.limits.open_files = 32;
  spec.limits.file_size_bytes = 1024 * 1024;
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->stdout_data, "7\n32\n2048\n");  // ulimit -f counts 512-byte blocks
}

TEST_F(ProcessServiceTest, EndlessOutputIsCappedAndTheChildStillEnds) {
  sdk::ProcessSpec spec;
  spec.argv = {"yes", "endless"};
  spec.environment = {{"PATH", "/usr/bin:/bin"}};
  spec.timeout = 300ms;
  spec.output_limit_bytes = 4096;
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_TRUE(result->timed_out);
  EXPECT_EQ(result->stdout_data.size(), 4096u);
  EXPECT_TRUE(result->stdout_truncated);
  EXPECT_FALSE(result->stderr_truncated);
}

TEST_F(ProcessServiceTest, AnOutputLimitAboveTheConfigsIsClampedToIt) {
  sdk::ProcessSpec spec = shell("head -c 200000 /dev/zero");
  spec.output_limit_bytes = 10 * 1024 * 1024;
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->stdout_data.size(), config_.output_limit_bytes);
  EXPECT_TRUE(result->stdout_truncated);
}

TEST_F(ProcessServiceTest, LinesAreStreamedAsTheyArrive) {
  sdk::ProcessSpec spec = shell("echo one; echo two; echo oops >&2; printf tail");
  std::vector<std::string> out;
  std::vector<std::string> err;
  spec.on_line = [&](sdk::OutputStream stream, std::string_view line) {
    (stream == sdk::OutputStream::kStdout ? out : err).emplace_back(line);
  };
  auto result = run(spec);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(out, (std::vector<std::string>{"one", "two", "tail"}));
  EXPECT_EQ(err, (std::vector<std::string>{"oops"}));
  EXPECT_EQ(result->stdout_data, "one\ntwo\ntail");
}

TEST_F(ProcessServiceTest, CancellationFromAnotherThreadEndsTheGroup) {
  sdk::CancelSource source;
  sdk::ProcessSpec spec = shell("sleep 60 & echo $!; sleep 60");
  std::atomic<int> grandchild{0};
  spec.on_line = [&](sdk::OutputStream, std::string_view line) { grandchild = std::stoi(std::string(line)); };
  std::thread canceller([&] {
    testing::wait_until([&] { return grandchild.load() != 0; }, 10s);
    source.request_stop();
  });
  auto result = run(spec, source.get_token());
  canceller.join();
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_TRUE(result->cancelled);
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(result->signal, SIGTERM);
  EXPECT_LT(result->wall_time, 10s);
  EXPECT_TRUE(gone_soon(grandchild.load()));
  EXPECT_EQ(ended("cancelled"), 1);
}

TEST_F(ProcessServiceTest, AStartedChildIsRecordedOnDiskWhileItRuns) {
  auto child = service_->start(owner_, shell("exec sleep 60"));
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  const int pid = (*child)->pid();
  EXPECT_FALSE((*child)->wait_for(50ms).has_value());
  std::vector<std::string> records;
  for (const auto& entry : std::filesystem::directory_iterator(config_.state_dir))
    records.push_back(entry.path().filename().string());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].rfind(std::to_string(pid) + "-", 0), 0u) << records[0];
  EXPECT_EQ(registry_.gauge("samokoder_processes_running", "", {{"plugin", "agent.test"}}).value(), 1);

  (*child)->terminate();
  const auto result = (*child)->wait_for(10s);
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->cancelled);
  EXPECT_FALSE(alive(pid));
  EXPECT_TRUE(std::filesystem::is_empty(config_.state_dir));
  EXPECT_EQ(registry_.gauge("samokoder_processes_running", "", {{"plugin", "agent.test"}}).value(), 0);
}

TEST_F(ProcessServiceTest, DestroyingTheHandleEndsTheGroup) {
  auto child = service_->start(owner_, shell("sleep 60 & echo $!; exec sleep 60"));
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  const int pid = (*child)->pid();
  ASSERT_TRUE(alive(pid));
  child = sdk::Status::cancelled("handle dropped");
  EXPECT_FALSE(alive(pid));
  EXPECT_EQ(service_->running(), 0u);
}

TEST_F(ProcessServiceTest, EndingAGenerationEndsOnlyItsChildren) {
  const Owner old_generation{"agent.test", 1};
  const Owner new_generation{"agent.test", 2};
  auto a = service_->start(old_generation, shell("exec sleep 60"));
  auto b = service_->start(old_generation, shell("exec sleep 60"));
  auto c = service_->start(new_generation, shell("exec sleep 60"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  service_->end_children_of(old_generation);
  EXPECT_FALSE(alive((*a)->pid()));
  EXPECT_FALSE(alive((*b)->pid()));
  EXPECT_TRUE(alive((*c)->pid()));
  EXPECT_EQ(service_->running(), 1u);

  service_->shutdown();
  EXPECT_FALSE(alive((*c)->pid()));
  EXPECT_EQ(run(shell("true")).status().code(), sdk::StatusCode::kUnavailable);
}

TEST_F(ProcessServiceTest, ShutdownEndsAChildACallerIsWaitingOn) {
  std::optional<sdk::Result<sdk::ProcessResult>> result;
  std::thread caller([&] { result = run(shell("exec sleep 60")); });
  ASSERT_TRUE(testing::wait_until([&] { return service_->running() == 1; }, 10s));
  service_->shutdown();
  caller.join();
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_TRUE((*result)->cancelled);
}

// The server dies with kill -9 while its child and grandchild run; the next start ends both.
TEST_F(ProcessServiceTest, ARestartEndsTheChildrenOfTheRunThatWasKilled) {
  const auto state = dir_.path() / "crashed-server-state";
  int child = 0;
  int grandchild = 0;
  sdk::ProcessSpec tracker;
  tracker.argv = {SAMOKODER_PROCESS_TRACKER, state.string()};
  std::mutex mutex;
  tracker.on_line = [&](sdk::OutputStream stream, std::string_view line) {
    if (stream != sdk::OutputStream::kStdout) return;
    std::istringstream in{std::string(line)};
    std::string what;
    int pid = 0;
    in >> what >> pid;
    const std::lock_guard lock(mutex);
    (what == "child" ? child : grandchild) = pid;
  };
  auto server = service_->start(owner_, tracker);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const std::lock_guard lock(mutex);
        return child != 0 && grandchild != 0;
      },
      10s));
  ASSERT_EQ(::kill((*server)->pid(), SIGKILL), 0);
  ASSERT_TRUE((*server)->wait_for(10s).has_value());
  // The children of the killed server are orphans now, in a session of their own.
  ASSERT_TRUE(alive(child));
  ASSERT_TRUE(alive(grandchild));

  config::ProcessesConfig restarted = config_;
  restarted.state_dir = state;
  ProcessService next_run(restarted, registry_);
  const auto swept = next_run.sweep_orphans();
  EXPECT_EQ(swept.records, 1u);
  EXPECT_EQ(swept.ended, 1u);
  EXPECT_TRUE(gone_soon(child));
  EXPECT_TRUE(gone_soon(grandchild));
  EXPECT_TRUE(std::filesystem::is_empty(state));
}

TEST_F(ProcessServiceTest, TheSweepLeavesARecycledPidAlone) {
  const auto state = dir_.path() / "stale";
  std::filesystem::create_directories(state);
  // A record naming this test process with a start time it does not have: its pid was "recycled". The
  // server that wrote it is "gone" the same way.
  const int self = static_cast<int>(::getpid());
  std::ofstream(state / (std::to_string(self) + "-1.child")) << self << " 1 agent.old#1 " << self << " 1\n";
  config::ProcessesConfig stale = config_;
  stale.state_dir = state;
  ProcessService next_run(stale, registry_);
  const auto swept = next_run.sweep_orphans();
  EXPECT_EQ(swept.records, 1u);
  EXPECT_EQ(swept.ended, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(state));
}

// Servers sharing one state directory (nodes on one host, tests in parallel): a starting server must not
// end the children of one that runs.
TEST_F(ProcessServiceTest, TheSweepLeavesTheChildrenOfARunningServerAlone) {
  auto child = service_->start(owner_, shell("exec sleep 60"));
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  ProcessService other_server(config_, registry_);
  const auto swept = other_server.sweep_orphans();
  EXPECT_EQ(swept.records, 0u);
  EXPECT_EQ(swept.ended, 0u);
  EXPECT_TRUE(alive((*child)->pid()));
  EXPECT_FALSE(std::filesystem::is_empty(config_.state_dir));
}

}  // namespace
}  // namespace samokoder::processes
