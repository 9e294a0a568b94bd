// ProcessRunner: child processes for plugins (builds, tests, `npm install`, a preview's dev server),
// started and supervised by the kernel (HostServices::processes()).
//
// A child is executed directly from its argv (no shell unless ProcessSpec::shell asks for one), in
// its own session and process group, with exactly the environment the spec lists (nothing of the
// server's environment is inherited, so the server's secrets never reach it), with the resource
// limits of the spec applied by setrlimit in the child, and with every file descriptor of the server
// closed. Ending a child always means its whole process group: SIGTERM, then SIGKILL after the kill
// grace; when the child itself exits, whatever it left running in its group is killed too. The kernel
// records every child on disk before it runs, so a server killed with -9 ends the earlier run's
// children at its next start; unloading a plugin generation ends that generation's children.
//
// Two uses: run() blocks the calling worker thread until the child ended (never call it on a thread
// that serves I/O); start() returns an owned handle to a long-lived child whose output the kernel
// drains on a thread of its own.
//
// Ownership: the kernel owns the ProcessRunner; it lives as long as the HostServices it came from.
// A ChildProcess handle is owned by the caller; destroying it ends the child's group (waiting at most
// the kill grace). Callbacks (ProcessSpec::on_line) are copied into the kernel and destroyed before the
// plugin generation that gave them is unloaded.
// Thread-safety: every method of ProcessRunner and ChildProcess may be called from any thread,
// concurrently; on_line runs on the thread that waits for the child (the caller of run(), or the
// kernel's thread for a started child), one line at a time, and must not destroy the handle.
// Exceptions: no method throws; failures come back as Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::sdk {

// setrlimit values applied in the child before it executes; nullopt takes the kernel's default from
// its config (`processes.default_limits`), where 0 means unlimited. `processes` is RLIMIT_NPROC, which
// Linux counts per user, not per child: it bounds a fork bomb only when children run as their own user.
struct ProcessLimits {
  std::optional<std::uint64_t> cpu_seconds;
  std::optional<std::uint64_t> address_space_bytes;
  std::optional<std::uint64_t> processes;
  std::optional<std::uint64_t> file_size_bytes;
  std::optional<std::uint64_t> open_files;
};

enum class OutputStream : std::uint32_t { kStdout = 1, kStderr = 2 };

struct ProcessSpec {
  // argv[0] is the program: a path containing '/', or a name looked up in the PATH of `environment`
  // (never the server's PATH). With `shell`, argv holds exactly one string, run as /bin/sh -c <it>.
  std::vector<std::string> argv;
  bool shell = false;
  // Must exist; empty means "/". A plugin confines it to a directory it owns (a project's workspace).
  std::string working_directory;
  // The child's complete environment, "NAME" -> "value"; nothing else is set.
  std::vector<std::pair<std::string, std::string>> environment;
  ProcessLimits limits;
  // Wall-clock limit from start to end; 0 takes the kernel's default (`processes.default_timeout_ms`).
  // When it passes, the group gets SIGTERM, and SIGKILL after the kill grace.
  std::chrono::milliseconds timeout{0};
  // Written to the child's stdin, which is then closed; nullopt connects stdin to /dev/null.
  std::optional<std::string> stdin_data;
  // Bytes kept per stream; 0 takes the kernel's default (`processes.output_limit_bytes`), which is also
  // the most a spec may ask for. Output past it is read and dropped, and the result says so.
  std::size_t output_limit_bytes = 0;
  // Called with each complete line (without its '\n'; a line longer than the output limit arrives in
  // pieces), and with the unterminated rest when the stream ends. Sees the output past the capture
  // limit too.
  std::function<void(OutputStream, std::string_view line)> on_line;
};

struct ProcessResult {
  std::optional<int> exit_code;  // set when the child exited
  std::optional<int> signal;     // set when a signal ended it (SIGKILL after a timeout, SIGSEGV, ...)
  bool timed_out = false;        // the spec's timeout ended it
  bool cancelled = false;        // the caller's token or ChildProcess::terminate() ended it
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;  // more was written than output_limit_bytes
  bool stderr_truncated = false;
  std::chrono::milliseconds wall_time{0};

  bool succeeded() const noexcept { return exit_code == 0 && !timed_out && !cancelled; }
};

// A started child. Destroying the handle ends its group (SIGTERM, SIGKILL after the grace) and waits.
class ChildProcess {
 public:
  virtual ~ChildProcess() = default;

  // The child's pid, which is also its process-group and session id.
  virtual int pid() const noexcept = 0;
  // The result once the child ended (and its group with it), or nullopt when it is still running after
  // `timeout`. Once ended, every call returns the same result at once.
  virtual std::optional<ProcessResult> wait_for(std::chrono::milliseconds timeout) noexcept = 0;
  // Asks the group to end: SIGTERM now, SIGKILL after the kill grace. Returns at once; wait_for() tells
  // when it ended. The result is marked cancelled.
  virtual void terminate() noexcept = 0;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;

  // Runs the child to completion on the calling thread. Errors: invalid_argument (empty argv, a bad
  // spec), not_found (no such program, or no such working directory), permission_denied (not
  // executable), resource_exhausted (fork failed), unavailable (the kernel is shutting down).
  // A child that ran returns its ProcessResult, whatever its exit: timeout and cancellation are fields
  // of the result, not errors.
  virtual Result<ProcessResult> run(const ProcessSpec& spec, CancelToken cancel) noexcept = 0;

  // Starts a long-lived child and returns at once (errors as for run()). The timeout of the spec still
  // applies; give a large one to a server that should run until it is stopped.
  virtual Result<std::unique_ptr<ChildProcess>> start(const ProcessSpec& spec) noexcept = 0;
};

}  // namespace samokoder::sdk
