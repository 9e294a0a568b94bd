// PreviewManager: the kernel's side of live previews. It picks the runner plugin for a project
// (previews.runners, in order: the first that knows how to run the workspace), allocates the loopback
// port, enforces the limits per owner and per node, records each preview in storage, tells the runner
// when the workspace's files change (debounced), stops previews that are idle or past their TTL, and
// answers the proxy (proxy.hpp) with where a running preview is reached.
//
// A background thread (the ticker, every 200 ms, every 25 ms while a preview starts) polls each live
// preview's runner for its status, writes changes (and a heartbeat every 30 s) to storage, delivers due
// file changes and enforces idle stop and TTL. At start it reconciles what storage says with what runs: a
// preview recorded as live by an earlier process of this host (the process journal already ended its
// children) or by a node whose heartbeat stopped is recorded as stopped, never left looking alive.
//
// Ownership: the Application owns the manager; it outlives the proxy and the routes that use it, and
// stop() ends every preview it started. Thread-safety: every method may be called from any thread.
// route() and files_changed() take one short lock and never block, so the proxy's I/O threads and the
// files routes call them directly; the rest call plugins and storage and belong on worker threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <samokoder/sdk/preview.hpp>
#include <samokoder/sdk/status.hpp>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "http/stream.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"

namespace samokoder::previews {

using Timestamp = std::chrono::system_clock::time_point;

// A preview as the API shows it.
struct PreviewView {
  std::string project_id;
  std::string owner_id;
  std::string runner;  // the plugin id running it; empty for a record of another process
  std::string state;   // "starting", "running", "stopped", "failed"
  std::string detail;
  std::string node_id;
  std::uint16_t port = 0;
  std::int64_t pid = 0;
  std::uint32_t restarts = 0;
  Timestamp started_at;
  Timestamp expires_at;
  std::optional<Timestamp> last_request_at;  // the last proxied request
  // start_preview with keep_live found this preview starting or running and left it as it was.
  bool kept = false;
};

// What the proxy needs for one request.
struct ProxyTarget {
  std::string owner_id;
  bool running = false;
  std::string state;  // when not running: why there is nothing to proxy to
  std::string detail;
  sdk::PreviewEndpoint endpoint;
  std::string workspace;  // the project's working copy: a directory endpoint is served only inside it
};

class PreviewManager {
 public:
  struct Dependencies {
    const config::Config* config = nullptr;
    const core::Clock* clock = nullptr;
    metrics::Registry* metrics = nullptr;
    plugins::PluginManager* plugins = nullptr;
    std::function<plugins::Lease()> storage;
    std::string node_id;
  };

  explicit PreviewManager(Dependencies dependencies);
  ~PreviewManager();  // stop()
  PreviewManager(const PreviewManager&) = delete;
  PreviewManager& operator=(const PreviewManager&) = delete;

  // Reconciles storage with this process (see the header comment) and starts the ticker.
  void start();
  // Stops every preview this manager started, records them as stopped and ends the ticker. Idempotent.
  void stop();

  struct StartRequest {
    std::vector<std::string> command;  // argv; empty: the runner detects how to run the workspace
    std::string runner;                // one plugin id of previews.runners; empty: try them in order
    // Keep a preview of the project this node already has starting or running (returned with kept
    // set) instead of restarting it, and wait for a start or stop of it under way instead of
    // refusing: what an agent asks for (AgentContext::start_preview), which may ask again on a re-run.
    bool keep_live = false;
  };
  // Starts (or restarts) the owner's project's preview; returns with state "starting" (or "running"
  // for a runner that needs no process). Errors: kNotFound (no such project of the owner),
  // kResourceExhausted (a limit, or no free port), kFailedPrecondition (no runner could run it: the
  // message names each runner and why), kInvalidArgument (a runner not configured, a bad command),
  // kAborted (without keep_live: a start or stop of the project is under way), kUnavailable (stopping).
  sdk::Result<PreviewView> start_preview(const std::string& owner_id, const std::string& project_id,
                                         const StartRequest& request);
  // The preview as this node knows it, else as storage records it; kNotFound when there is none.
  sdk::Result<PreviewView> get_preview(const std::string& owner_id, const std::string& project_id);
  // Stops and forgets the preview (storage too); kNotFound when the owner has no such preview.
  sdk::Status stop_preview(const std::string& owner_id, const std::string& project_id);
  // The runner's log from `after`; kNotFound when this node runs no preview of the owner's project.
  sdk::Result<sdk::PreviewLog> logs(const std::string& owner_id, const std::string& project_id,
                                    std::uint64_t after, std::size_t max_bytes);

  // Sends the preview's log from `after` to `channel` as SSE events ("log", id = the end offset) as it
  // grows, from the ticker, until the channel closes or the preview ends (an "end" event, then close).
  void follow_logs(const std::string& owner_id, const std::string& project_id, std::uint64_t after,
                   std::shared_ptr<http::StreamChannel> channel);

  // A file of the project's workspace changed (written or deleted by an agent or the files API).
  void files_changed(std::string_view project_id, std::string_view path);

  // For the proxy: where the project's preview is reached (and marks it as used now); nullopt when
  // this node runs no preview of the project.
  std::optional<ProxyTarget> route(std::string_view project_id);

  // The URL a browser opens the project's preview at (previews.public_url, with the proxy's port once
  // it is bound: set_proxy_port).
  std::string public_url(std::string_view project_id) const;
  void set_proxy_port(std::uint16_t port) noexcept { proxy_port_ = port; }

 private:
  struct Entry;
  struct Follower {
    std::string owner_id;
    std::string project_id;
    std::uint64_t offset = 0;
    std::shared_ptr<http::StreamChannel> channel;
  };
  void tick_loop();
  void feed_followers();
  void tick();
  void reconcile();
  // Records the entry's state in storage (outside the lock).
  void persist(const std::string& owner_id, const std::string& project_id, const PreviewView& view);
  sdk::Result<std::uint16_t> allocate_port_locked();
  // Asks the runner to stop (outside the lock) and records it as stopped, if the project's entry is
  // still `generation`: `reason` is the metric's label ("idle", "ttl", "owner", "replaced", "shutdown"),
  // `why` the detail people read. The caller holds the project's operation lock (or is stop()).
  void end_preview(const std::string& project_id, std::uint64_t generation, std::string_view reason,
                   const std::string& why);
  // The lock that serializes starts and stops of one project (held across plugin calls, so never
  // while holding mutex_).
  std::shared_ptr<std::mutex> operation_lock(const std::string& project_id);
  void publish_gauges_locked();
  PreviewView view_locked(const std::string& project_id, const Entry& entry) const;

  const config::Config& config_;
  const config::PreviewsConfig& settings_;
  const core::Clock& clock_;
  metrics::Registry& metrics_;
  plugins::PluginManager& plugins_;
  std::function<plugins::Lease()> storage_;
  const std::string node_id_;
  std::atomic<std::uint16_t> proxy_port_{0};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;  // by project id
  std::set<std::uint16_t> ports_in_use_;
  std::uint16_t next_port_ = 0;
  bool stopping_ = false;
  std::thread ticker_;
  std::chrono::steady_clock::time_point last_heartbeat_{};
  // Start requests in flight (project -> owner), counted against the limits before they have an entry.
  std::map<std::string, std::string, std::less<>> starting_;
  std::uint64_t generations_ = 0;
  // One per project ever started here; a handful of bytes each.
  std::map<std::string, std::shared_ptr<std::mutex>, std::less<>> operation_locks_;
  std::vector<std::shared_ptr<Follower>> followers_;
};

}  // namespace samokoder::previews
