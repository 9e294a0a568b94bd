// Child: one forked child process and the loop that supervises it to its end (docs/architecture.md
// "Child processes").
//
// spawn() forks a child that puts itself in a new session (so its pid is its process-group id), resets
// its signal mask and dispositions, connects stdin/stdout/stderr, closes every other inherited fd,
// changes directory and applies its rlimits, and then waits for a go byte before it executes anything.
// The parent records the child (ChildJournal) in that window, so a record always exists before the
// child's program runs, and then calls release(): an exec failure comes back through a CLOEXEC pipe as
// the errno of the step that failed, never as an exit code. Between fork and exec the child calls only
// async-signal-safe functions on memory prepared before the fork.
//
// supervise() waits with poll() on the output pipes, a pidfd for the child's exit and an eventfd that
// stop requests write to: no busy loop, no thread besides the caller's. It enforces the wall-clock
// deadline (SIGTERM to the group, SIGKILL after the grace), keeps a bounded capture of each stream,
// hands complete lines to the callback, and when the child exits kills what is left of its group
// before reaping it (the zombie keeps the group id from being reused until then).
//
// Ownership: a Child owns its fds and must be supervised to its end (or its pid is leaked as a zombie).
// Thread-safety: supervise() runs on one thread; request_stop() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/process.hpp>

#include "config/config.hpp"

namespace samokoder::processes {

// Limits after the config's defaults were applied (the same shape as the config's); 0 means unlimited.
using ResolvedLimits = config::ProcessLimitsConfig;

// Everything the child needs, resolved before fork (the PATH lookup uses the spec's environment).
struct Launch {
  std::string program;  // the path executed
  std::vector<std::string> argv;
  std::vector<std::string> environment;  // "NAME=value"
  std::string working_directory;
  ResolvedLimits limits;
  bool has_stdin = false;
};

// Checks the spec and resolves the program; not_found / invalid_argument when it cannot run.
sdk::Result<Launch> prepare_launch(const sdk::ProcessSpec& spec, const ResolvedLimits& limits);

class Child {
 public:
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  // Kills and reaps a child that was never supervised, so no path leaks a process or an fd.
  ~Child();

  int pid() const noexcept { return pid_; }
  // /proc/<pid>/stat field 22: with the pid, it names this process even after the pid is recycled.
  std::uint64_t start_time() const noexcept { return start_time_; }

  // Lets the child execute; an exec failure (missing binary, no permission) is returned as a Status,
  // and the child is reaped.
  sdk::Status release(const Launch& launch);

  struct Options {
    std::chrono::steady_clock::time_point started;  // the wall time is measured from here
    std::chrono::steady_clock::time_point deadline;
    std::chrono::milliseconds kill_grace{0};
    std::size_t output_limit = 0;
    std::string stdin_data;
    std::function<void(sdk::OutputStream, std::string_view)> on_line;
  };
  // Runs until the child and its group ended and both streams are closed.
  sdk::ProcessResult supervise(const Options& options);

  // From any thread: the group gets SIGTERM, and SIGKILL after the grace; the result says cancelled.
  void request_stop() noexcept;

 private:
  friend sdk::Result<Child> spawn(const Launch& launch);
  Child() = default;
  void kill_group(int signal) const noexcept;
  // Reaps the leader after killing its group; returns the wait status.
  int reap() noexcept;
  // Everything but wake_fd_, which request_stop() may still write to until the Child is destroyed.
  void close_streams() noexcept;

  int pid_ = -1;
  std::uint64_t start_time_ = 0;
  int pidfd_ = -1;
  int go_fd_ = -1;     // write end: one byte lets the child exec
  int error_fd_ = -1;  // read end of the CLOEXEC pipe that carries an exec failure
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int wake_fd_ = -1;  // eventfd written by request_stop()
  std::atomic<bool> stop_requested_{false};
  bool reaped_ = false;
};

// Forks the child (held before exec until release()); resource_exhausted when fork or pipes fail.
sdk::Result<Child> spawn(const Launch& launch);

// The fields of /proc/<pid>/stat from field 3 (state) on, or empty when the process does not exist.
// Field n of proc(5) is element n - 3.
std::vector<std::string> stat_fields(int pid);

// The start time field of /proc/<pid>/stat, or 0 when the process does not exist.
std::uint64_t process_start_time(int pid) noexcept;

}  // namespace samokoder::processes
