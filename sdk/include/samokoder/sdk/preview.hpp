// PreviewRunner: starts, stops and watches a live preview of a project's workspace.
//
// The previewed app is user code written by a model: a runner that executes it always does so as a
// child process (HostServices::processes(): own process group, clean environment without the server's
// secrets, resource limits), never inside the kernel. A runner may also serve nothing but files
// (PreviewEndpoint::directory), in which case the kernel serves them itself and no code runs.
//
// The kernel owns everything around the runner: which runner a project gets (config), the port it
// allocates, the proxy that puts the preview behind the user's session on an origin of its own, the
// record in storage, idle stop and TTL, limits per user and in all, and telling the runner when the
// workspace's files changed. The runner owns the child: how to start the app, installing its
// dependencies, readiness, restarts after a crash, containment and logs.
//
// Lifecycle of one project's preview: start() returns at once with kStarting (installing and
// launching happen on the runner's own tasks, HostServices::scheduler()); status() then reports
// kRunning with the endpoint once the app answers on it, or kFailed with the reason and the last log
// lines; stop() ends it. At most one preview per project per runner: start() on a project that
// already has one replaces it.
//
// Ownership: values are plain and owned by the caller. Thread-safety: every method may be called
// concurrently, for the same project too; none blocks for long (never on the app's startup).
// Exceptions: none; failures are Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/process.hpp>

namespace samokoder::sdk {

struct PreviewSpec {
  std::string project_id;
  std::string workspace_dir;         // absolute path of the project's working copy
  std::vector<std::string> command;  // argv from the project's settings; empty: the runner detects how
  // The loopback port the kernel allocated for this preview (no other preview has it): the app is
  // told to listen on it (PORT, HOST=127.0.0.1). A runner that reaches the app another way (a socket
  // into a sandbox) may ignore it.
  std::uint16_t port = 0;
  // Variables the app gets on top of what the runner sets (PATH, HOME, PORT, HOST, ...); never the
  // server's environment.
  std::map<std::string, std::string> environment;
  // The runner ends the app this long after start(), whatever happens (the kernel's TTL is enforced
  // first; this is the backstop).
  std::chrono::seconds ttl{3600};
};

enum class PreviewState : std::uint32_t { kStarting = 0, kRunning = 1, kStopped = 2, kFailed = 3 };

// "starting", "running", "stopped", "failed": the names the API, logs and metrics use.
constexpr std::string_view preview_state_name(PreviewState state) noexcept {
  switch (state) {
    case PreviewState::kStarting:
      return "starting";
    case PreviewState::kRunning:
      return "running";
    case PreviewState::kStopped:
      return "stopped";
    case PreviewState::kFailed:
      return "failed";
  }
  return "failed";
}

// Where the kernel's proxy reaches a running preview: exactly one of the three is set.
struct PreviewEndpoint {
  std::uint16_t port = 0;   // an HTTP server on 127.0.0.1:port
  std::string socket_path;  // an HTTP server on this Unix socket (a sandbox without network)
  std::string directory;    // files the kernel serves itself (absolute path inside the workspace)
};

struct PreviewStatus {
  PreviewState state = PreviewState::kStopped;
  PreviewEndpoint endpoint;    // set when kRunning
  std::string detail;          // what it is doing (kStarting), or why it failed or stopped
  std::int64_t pid = 0;        // the app's process (group) id while one runs; 0 for none
  std::uint32_t restarts = 0;  // times the app was restarted after it crashed or files changed
};

struct PreviewLog {
  std::string text;              // oldest first
  std::uint64_t end_offset = 0;  // bytes written in all, the offset just past `text`
  // Output between `after` and the start of `text` that is no longer kept (the runner keeps a bounded
  // tail) or did not fit in max_bytes.
  bool truncated = false;
};

// A command an agent step runs in a project's workspace, confined by a preview runner.
struct ContainedCommand {
  ProcessSpec spec;               // what to start instead of the unconfined command
  std::function<void()> cleanup;  // once the child ended (removes a cgroup, ...); may be empty
};

class PreviewRunner : public Plugin {
 public:
  // Starts (or replaces) the project's preview and returns at once, normally with kStarting. Errors:
  // kNotFound when the workspace holds nothing this runner knows how to run (the message says what it
  // looked for; the kernel then tries the next runner of its list), kInvalidArgument for a spec it
  // cannot use (no such workspace, a bad command), kFailedPrecondition when this machine cannot run it as the
  // runner promises (a sandbox that cannot create namespaces says so rather than run unsandboxed),
  // kResourceExhausted when the runner's own limits are reached.
  virtual Result<PreviewStatus> start(const PreviewSpec& spec) = 0;
  // Ends the project's preview (the app's whole process group); OK when there is none.
  virtual Status stop(std::string_view project_id) = 0;
  // kNotFound when this runner has no preview of the project (never started, or stopped and
  // forgotten).
  virtual Result<PreviewStatus> status(std::string_view project_id) = 0;
  // The preview's output (install and app, stdout and stderr interleaved by line) from byte offset
  // `after` of all it ever wrote, at most the newest `max_bytes` of it; a reader following the log
  // passes the end_offset it got last. kNotFound as for status().
  virtual Result<PreviewLog> logs(std::string_view project_id, std::uint64_t after,
                                  std::size_t max_bytes) = 0;
  // The kernel saw files of the workspace change (written by an agent or the files API), debounced.
  // The runner makes the preview show them: nothing when the app's own dev server reloads, a restart
  // of the app otherwise. `paths` are relative to the workspace. OK when there is no preview.
  virtual Status files_changed(std::string_view project_id, const std::vector<std::string>& paths) = 0;
  // Confines a command an agent step runs in the project's workspace (installs, tests, a smoke check of
  // the app) as this runner confines the project's app, with the network an install gets. `command`
  // is the command as it would run unconfined: argv, the workspace as working directory, its complete
  // environment and limits. The kernel runs agents' commands through the runner that
  // runs.command_containment names. kUnimplemented when the runner does not confine commands (the
  // default); kFailedPrecondition as for start().
  virtual Result<ContainedCommand> contain_command(const ProcessSpec& command, std::string_view project_id) {
    (void)command;
    (void)project_id;
    return Status::unimplemented("this preview runner does not confine commands");
  }
};

}  // namespace samokoder::sdk
