// Containment: how a preview runner confines the processes it starts for a project (the dependency
// install and the app). The runner engine (runner.hpp) decides what to run; a Containment decides how:
// the process runner passes the child through unchanged (own process group, clean environment and
// rlimits, which the kernel's process service gives every child), the sandbox runner wraps it in
// bubblewrap namespaces with a bounded number of processes and, by default, no network.
//
// Ownership: the runner owns its Containment. A Launch is a plain value; its cleanup must be called
// once the child it was made for has ended (it removes what contain() set up outside the child, such
// as a cgroup or a socket directory), and may be called more than once.
// Thread-safety: contain() may be called concurrently for different projects.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include <samokoder/sdk/preview.hpp>
#include <samokoder/sdk/process.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::preview_common {

// What a step of a preview needs from the network.
enum class Step : std::uint32_t {
  kInstall = 0,  // installing dependencies: reaches the package registry
  kApp = 1,      // the app itself: answers the kernel's proxy, needs nothing else
};

struct Launch {
  sdk::ProcessSpec spec;          // what to start instead of the unconfined child
  sdk::PreviewEndpoint endpoint;  // where the app answers the proxy (kApp only): a port or a socket
  std::function<void()> cleanup;  // after the child ended; may be empty
};

class Containment {
 public:
  Containment() = default;
  Containment(const Containment&) = delete;
  Containment& operator=(const Containment&) = delete;
  virtual ~Containment() = default;

  // OK when this machine can confine children as this containment promises, otherwise
  // kFailedPrecondition saying what is missing (for example that user namespaces cannot be created).
  // Called at the runner's init, and a failure there leaves the plugin FAILED with that reason.
  virtual sdk::Status check_machine() = 0;

  // `child` is the process as it would run unconfined: argv, the workspace as working directory, its
  // complete environment (PORT and HOST included for kApp) and limits. `port` is the loopback port
  // the kernel allocated for the project. Errors as for ProcessRunner::start.
  virtual sdk::Result<Launch> contain(const sdk::ProcessSpec& child, std::string_view project_id,
                                      std::uint16_t port, Step step) = 0;
};

}  // namespace samokoder::preview_common
