// PreviewRunner: starts, stops and watches a live preview of a project's workspace.
//
// The previewed app is user code: a runner always starts it as a child process (own process group,
// allocated port, clean environment without the server's secrets, resource limits, TTL), never
// inside the kernel.
//
// Draft for SDK 1.0: the preview issue completes it. After release the interface is frozen.
//
// Thread-safety: all methods may be called concurrently for different projects.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

struct PreviewSpec {
  std::string project_id;
  std::string workspace_dir;         // absolute path of the project's working copy
  std::vector<std::string> command;  // argv; empty: the runner picks from the workspace
  std::map<std::string, std::string> environment;  // the complete environment of the child
  std::chrono::seconds ttl{3600};
};

enum class PreviewState : std::uint32_t { kStarting = 0, kRunning = 1, kStopped = 2, kFailed = 3 };

struct PreviewStatus {
  PreviewState state = PreviewState::kStopped;
  std::uint16_t port = 0;  // where the preview listens on loopback, when running
  std::string detail;      // why it failed or stopped
};

class PreviewRunner : public Plugin {
 public:
  virtual Result<PreviewStatus> start(const PreviewSpec& spec) = 0;
  virtual Status stop(std::string_view project_id) = 0;
  virtual Result<PreviewStatus> status(std::string_view project_id) = 0;
  // The last `max_bytes` of the preview's combined stdout and stderr.
  virtual Result<std::string> logs(std::string_view project_id, std::size_t max_bytes) = 0;
};

}  // namespace samokoder::sdk
