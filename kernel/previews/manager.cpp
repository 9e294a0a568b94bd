#include "previews/manager.hpp"

#include <algorithm>
#include <cerrno>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <samokoder/sdk/storage.hpp>

#include "api/workspace.hpp"
#include "core/logging.hpp"

namespace samokoder::previews {

namespace {

constexpr auto kTickPeriod = std::chrono::milliseconds(200);
// While a preview starts, its runner is asked more often, so the proxy serves it soon after it answers.
constexpr auto kStartingTickPeriod = std::chrono::milliseconds(25);
constexpr auto kHeartbeatPeriod = std::chrono::seconds(30);
// A live record whose heartbeat is older than this belongs to a node that is gone.
constexpr auto kStaleAfter = std::chrono::seconds(120);
constexpr std::size_t kMaxPendingPaths = 256;
// Log streams one owner may follow at once (each costs a runner call per tick).
constexpr std::ptrdiff_t kMaxFollowersPerOwner = 8;

bool live(sdk::PreviewState state) {
  return state == sdk::PreviewState::kStarting || state == sdk::PreviewState::kRunning;
}

// True when nothing on this host listens on the port now (it may still be taken later; the runner
// then fails to bind and says so in its log).
bool port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return bound;
}

std::string host_of(std::string_view node_id) {
  return std::string(node_id.substr(0, node_id.find('/')));
}

}  // namespace

struct PreviewManager::Entry {
  std::uint64_t generation = 0;  // which start made it: a late result about an older one is dropped
  std::string owner_id;
  std::string workspace;  // the project's working copy (absolute)
  std::string runner;
  std::uint16_t port = 0;
  sdk::PreviewStatus status;
  Timestamp started_at;
  Timestamp expires_at;
  std::chrono::steady_clock::time_point last_request{};
  std::optional<Timestamp> last_request_at;
  std::vector<std::string> pending_paths;
  std::optional<std::chrono::steady_clock::time_point> changes_due;
};

PreviewManager::PreviewManager(Dependencies dependencies)
    : config_(*dependencies.config),
      settings_(dependencies.config->previews),
      clock_(*dependencies.clock),
      metrics_(*dependencies.metrics),
      plugins_(*dependencies.plugins),
      storage_(std::move(dependencies.storage)),
      node_id_(std::move(dependencies.node_id)),
      next_port_(settings_.port_first) {}

PreviewManager::~PreviewManager() {
  stop();
}

void PreviewManager::start() {
  reconcile();
  std::lock_guard lock(mutex_);
  publish_gauges_locked();
  ticker_ = std::thread([this] { tick_loop(); });
}

void PreviewManager::stop() {
  std::vector<std::pair<std::string, std::uint64_t>> projects;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !ticker_.joinable()) return;
    stopping_ = true;
    for (const auto& [project, entry] : entries_) {
      if (live(entry->status.state)) projects.emplace_back(project, entry->generation);
    }
  }
  wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::vector<std::shared_ptr<Follower>> followers;
  {
    std::lock_guard lock(mutex_);
    followers.swap(followers_);
  }
  for (const auto& follower : followers)
    follower->channel->close();
  for (const auto& [project, generation] : projects)
    end_preview(project, generation, "shutdown", "the server stopped");
}

void PreviewManager::reconcile() {
  auto log = core::logger("previews");
  const std::string host = host_of(node_id_);
  const auto now = clock_.now();
  sdk::PageRequest page{.limit = 200, .cursor = {}};
  std::vector<sdk::Preview> ended;
  for (;;) {
    auto listed = storage_().call<sdk::Storage>(
        [&](sdk::Storage& s) { return s.store<sdk::PreviewStore>().list_previews(page); });
    if (!listed.ok()) {
      log->warn("previews: could not read recorded previews to reconcile: {}", listed.status().message());
      return;
    }
    for (auto& preview : listed->items) {
      if (preview.state != "starting" && preview.state != "running") continue;
      if (preview.node_id == node_id_) continue;
      // This host's earlier process: its children were ended by the process journal at startup. Another
      // host: only when it stopped renewing the record.
      const bool ours = host_of(preview.node_id) == host;
      if (ours || now - preview.updated_at > kStaleAfter) ended.push_back(std::move(preview));
    }
    if (listed->next_cursor.empty()) break;
    page.cursor = listed->next_cursor;
  }
  for (const auto& preview : ended) {
    sdk::PreviewUpsert update{.project_id = preview.project_id,
                              .state = "stopped",
                              .node_id = preview.node_id,
                              .port = 0,
                              .pid = 0,
                              .started_at = preview.started_at,
                              .expires_at = preview.expires_at};
    auto written = storage_().call<sdk::Storage>([&](sdk::Storage& s) {
      return s.store<sdk::PreviewStore>().upsert_preview(preview.owner_id, update);
    });
    if (written.ok()) {
      log->info("previews: project {}: recorded as stopped (its server {} is gone)", preview.project_id,
                preview.node_id);
      metrics_
          .counter("samokoder_previews_ended_total", "Previews ended, by reason", {{"reason", "reconciled"}})
          .add(1);
    }
  }
}

std::shared_ptr<std::mutex> PreviewManager::operation_lock(const std::string& project_id) {
  std::lock_guard lock(mutex_);
  auto& slot = operation_locks_[project_id];
  if (!slot) slot = std::make_shared<std::mutex>();
  return slot;
}

sdk::Result<std::uint16_t> PreviewManager::allocate_port_locked() {
  const std::uint32_t span = std::uint32_t{settings_.port_last} - settings_.port_first + 1;
  for (std::uint32_t tried = 0; tried < span; ++tried) {
    const std::uint16_t port = next_port_;
    next_port_ = port >= settings_.port_last ? settings_.port_first : static_cast<std::uint16_t>(port + 1);
    if (ports_in_use_.contains(port) || !port_free(port)) continue;
    ports_in_use_.insert(port);
    return port;
  }
  return sdk::Status::resource_exhausted("no free port for a preview in previews.port_first..port_last");
}

PreviewView PreviewManager::view_locked(const std::string& project_id, const Entry& entry) const {
  PreviewView view;
  view.project_id = project_id;
  view.owner_id = entry.owner_id;
  view.runner = entry.runner;
  view.state = std::string(sdk::preview_state_name(entry.status.state));
  view.detail = entry.status.detail;
  view.node_id = node_id_;
  view.port = entry.port;
  view.pid = entry.status.pid;
  view.restarts = entry.status.restarts;
  view.started_at = entry.started_at;
  view.expires_at = entry.expires_at;
  view.last_request_at = entry.last_request_at;
  return view;
}

void PreviewManager::persist(const std::string& owner_id, const std::string& project_id,
                             const PreviewView& view) {
  sdk::PreviewUpsert update{.project_id = project_id,
                            .state = view.state,
                            .node_id = node_id_,
                            .port = view.port,
                            .pid = view.pid,
                            .started_at = view.started_at,
                            .expires_at = view.expires_at};
  auto written = storage_().call<sdk::Storage>(
      [&](sdk::Storage& s) { return s.store<sdk::PreviewStore>().upsert_preview(owner_id, update); });
  if (!written.ok() && written.status().code() != sdk::StatusCode::kNotFound) {
    core::logger("previews")
        ->warn("previews: project {}: recording state {} failed: {}", project_id, view.state,
               written.status().message());
  }
}

sdk::Result<PreviewView> PreviewManager::start_preview(const std::string& owner_id,
                                                       const std::string& project_id,
                                                       const StartRequest& request) {
  auto project = storage_().call<sdk::Storage>(
      [&](sdk::Storage& s) { return s.store<sdk::ProjectStore>().get_project(owner_id, project_id); });
  if (!project.ok()) return project.status();
  std::vector<std::string> runners = settings_.runners;
  if (!request.runner.empty()) {
    if (std::find(runners.begin(), runners.end(), request.runner) == runners.end()) {
      return sdk::Status::invalid_argument("runner \"" + request.runner +
                                           "\" is not one of previews.runners on this server");
    }
    runners = {request.runner};
  }
  const api::Workspaces workspaces(config_.workspace_root);
  if (auto made = workspaces.create(project_id); !made.ok()) return made;
  auto directory = workspaces.directory(project_id);
  if (!directory.ok()) return directory.status();
  std::error_code ec;
  const std::string workspace = std::filesystem::absolute(*directory, ec).lexically_normal().string();

  // One start or stop of a project at a time; the ticker's own stops take the same lock. A caller
  // that keeps a live preview waits for the one under way: what it leaves is what there is to keep.
  const auto operation = operation_lock(project_id);
  std::unique_lock serial(*operation, std::defer_lock);
  if (request.keep_live) {
    serial.lock();
  } else if (!serial.try_lock()) {
    return sdk::Status::aborted("a start or stop of this project's preview is already under way");
  }
  // Replacing a running preview: end the old one first, so its port and slot are free.
  std::optional<std::uint64_t> replacing;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return sdk::Status::unavailable("the server is stopping");
    const auto it = entries_.find(project_id);
    if (it != entries_.end() && live(it->second->status.state)) {
      if (request.keep_live && it->second->owner_id == owner_id) {
        PreviewView kept = view_locked(project_id, *it->second);
        kept.kept = true;
        return kept;
      }
      replacing = it->second->generation;
    }
  }
  if (replacing) end_preview(project_id, *replacing, "replaced", "replaced by a new start");

  std::uint16_t port = 0;
  {
    std::lock_guard lock(mutex_);
    std::uint32_t total = 0;
    std::uint32_t mine = 0;
    for (const auto& [other, starter] : starting_) {
      ++total;
      if (starter == owner_id) ++mine;
    }
    for (const auto& [other, entry] : entries_) {
      if (!live(entry->status.state) || other == project_id) continue;
      ++total;
      if (entry->owner_id == owner_id) ++mine;
    }
    if (mine >= settings_.max_per_user) {
      return sdk::Status::resource_exhausted("you already have " + std::to_string(mine) +
                                             " previews running (previews.max_per_user); stop one first");
    }
    if (total >= settings_.max_total) {
      return sdk::Status::resource_exhausted(
          "this server runs as many previews as it may (previews.max_total)");
    }
    auto allocated = allocate_port_locked();
    if (!allocated.ok()) return allocated.status();
    port = *allocated;
    starting_.emplace(project_id, owner_id);
  }

  const auto now = clock_.now();
  sdk::PreviewSpec spec;
  spec.project_id = project_id;
  spec.workspace_dir = workspace;
  spec.command = request.command;
  spec.port = port;
  spec.ttl = settings_.ttl_seconds == 0 ? std::chrono::seconds(365LL * 24 * 3600)
                                        : std::chrono::seconds(settings_.ttl_seconds);
  std::vector<std::string> refusals;
  std::optional<sdk::PreviewStatus> started;
  std::string chosen;
  sdk::Status failure;
  for (const auto& runner : runners) {
    plugins::Lease lease = plugins_.acquire(runner);
    if (!lease) {
      const auto info = plugins_.find(runner);
      std::string why = info ? std::string(plugins::state_name(info->state)) : "not configured";
      if (info && !info->failure_message.empty()) why += ": " + info->failure_message;
      refusals.push_back(runner + " is not active (" + why + ")");
      continue;
    }
    auto result = lease.call<sdk::PreviewRunner>([&](sdk::PreviewRunner& r) { return r.start(spec); });
    if (result.ok()) {
      started = std::move(result).value();
      chosen = runner;
      break;
    }
    if (result.status().code() == sdk::StatusCode::kNotFound) {
      refusals.push_back(runner + ": " + result.status().message());
      continue;
    }
    failure = sdk::Status(result.status().code(), runner + ": " + result.status().message());
    break;
  }

  PreviewView view;
  bool shutting_down = false;
  {
    std::lock_guard lock(mutex_);
    starting_.erase(project_id);
    // stop() ended every preview it knew while this start ran: this one must not outlive it either.
    shutting_down = stopping_ && started.has_value();
    if (shutting_down) ports_in_use_.erase(port);
  }
  if (shutting_down) {
    if (plugins::Lease lease = plugins_.acquire(chosen)) {
      const sdk::Status stopped =
          lease.call<sdk::PreviewRunner>([&](sdk::PreviewRunner& r) { return r.stop(project_id); });
      if (!stopped.ok())
        core::logger("previews")->warn("previews: project {}: {}", project_id, stopped.message());
    }
    return sdk::Status::unavailable("the server is stopping");
  }
  {
    std::lock_guard lock(mutex_);
    if (!started) {
      ports_in_use_.erase(port);
      if (!failure.ok()) return failure;
      std::string message = "no preview runner can run this workspace";
      for (const auto& refusal : refusals)
        message += "; " + refusal;
      return sdk::Status::failed_precondition(message);
    }
    auto entry = std::make_unique<Entry>();
    entry->generation = ++generations_;
    entry->owner_id = owner_id;
    entry->workspace = workspace;
    entry->runner = chosen;
    entry->port = port;
    entry->status = *started;
    entry->started_at = now;
    entry->expires_at = settings_.ttl_seconds == 0 ? Timestamp::max() : now + spec.ttl;
    entry->last_request = clock_.monotonic_now();
    if (!live(started->state)) ports_in_use_.erase(port);
    view = view_locked(project_id, *entry);
    entries_[project_id] = std::move(entry);
    publish_gauges_locked();
  }
  wake_.notify_all();  // the ticker looks at a starting preview at its faster pace from now on
  metrics_.counter("samokoder_previews_started_total", "Previews started, by runner", {{"runner", chosen}})
      .add(1);
  // The ticker records every later change; this first record lets another node's GET see it at once.
  persist(owner_id, project_id, view);
  core::logger("previews")->info("previews: project {}: started by {} on port {}", project_id, chosen, port);
  return view;
}

sdk::Result<PreviewView> PreviewManager::get_preview(const std::string& owner_id,
                                                     const std::string& project_id) {
  {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(project_id);
    if (it != entries_.end() && it->second->owner_id == owner_id) return view_locked(project_id, *it->second);
  }
  auto stored = storage_().call<sdk::Storage>(
      [&](sdk::Storage& s) { return s.store<sdk::PreviewStore>().get_preview(owner_id, project_id); });
  if (!stored.ok()) return stored.status();
  PreviewView view;
  view.project_id = stored->project_id;
  view.owner_id = stored->owner_id;
  view.state = stored->state;
  view.node_id = stored->node_id;
  view.port = static_cast<std::uint16_t>(stored->port);
  view.pid = stored->pid;
  view.started_at = stored->started_at;
  view.expires_at = stored->expires_at;
  if (stored->node_id != node_id_ && (view.state == "starting" || view.state == "running")) {
    view.detail = "served by node " + stored->node_id;
  }
  return view;
}

void PreviewManager::end_preview(const std::string& project_id, std::uint64_t generation,
                                 std::string_view reason, const std::string& why) {
  std::string runner;
  {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(project_id);
    if (it == entries_.end() || it->second->generation != generation) return;
    runner = it->second->runner;
  }
  if (plugins::Lease lease = plugins_.acquire(runner)) {
    const sdk::Status stopped =
        lease.call<sdk::PreviewRunner>([&](sdk::PreviewRunner& r) { return r.stop(project_id); });
    if (!stopped.ok()) {
      core::logger("previews")
          ->warn("previews: project {}: {} could not stop it: {}", project_id, runner, stopped.message());
    }
  }
  std::optional<PreviewView> view;
  std::string owner;
  {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(project_id);
    if (it == entries_.end() || it->second->generation != generation) return;
    Entry& entry = *it->second;
    ports_in_use_.erase(entry.port);
    entry.status.state = sdk::PreviewState::kStopped;
    entry.status.detail = why;
    entry.status.pid = 0;
    entry.status.endpoint = {};
    entry.pending_paths.clear();
    entry.changes_due.reset();
    owner = entry.owner_id;
    view = view_locked(project_id, entry);
    publish_gauges_locked();
  }
  metrics_
      .counter("samokoder_previews_ended_total", "Previews ended, by reason",
               {{"reason", std::string(reason)}})
      .add(1);
  core::logger("previews")->info("previews: project {}: stopped ({})", project_id, why);
  persist(owner, project_id, *view);
}

sdk::Status PreviewManager::stop_preview(const std::string& owner_id, const std::string& project_id) {
  const auto operation = operation_lock(project_id);
  const std::lock_guard serial(*operation);
  std::optional<std::uint64_t> known;
  {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(project_id);
    if (it != entries_.end() && it->second->owner_id == owner_id) known = it->second->generation;
  }
  if (known) {
    end_preview(project_id, *known, "owner", "stopped by its owner");
    std::lock_guard lock(mutex_);
    entries_.erase(project_id);
    publish_gauges_locked();
  }
  const sdk::Status deleted = storage_().call<sdk::Storage>(
      [&](sdk::Storage& s) { return s.store<sdk::PreviewStore>().delete_preview(owner_id, project_id); });
  if (known && deleted.code() == sdk::StatusCode::kNotFound) return {};
  return deleted;
}

sdk::Result<sdk::PreviewLog> PreviewManager::logs(const std::string& owner_id, const std::string& project_id,
                                                  std::uint64_t after, std::size_t max_bytes) {
  std::string runner;
  {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(project_id);
    if (it == entries_.end() || it->second->owner_id != owner_id) {
      return sdk::Status::not_found("this server runs no preview of the project");
    }
    runner = it->second->runner;
  }
  plugins::Lease lease = plugins_.acquire(runner);
  if (!lease) return sdk::Status::unavailable("the preview's runner " + runner + " is not active");
  return lease.call<sdk::PreviewRunner>(
      [&](sdk::PreviewRunner& r) { return r.logs(project_id, after, max_bytes); });
}

void PreviewManager::follow_logs(const std::string& owner_id, const std::string& project_id,
                                 std::uint64_t after, std::shared_ptr<http::StreamChannel> channel) {
  auto follower = std::make_shared<Follower>(Follower{owner_id, project_id, after, std::move(channel)});
  {
    std::lock_guard lock(mutex_);
    const auto mine = std::count_if(followers_.begin(), followers_.end(), [&](const auto& f) {
      return f->owner_id == owner_id && f->channel->is_open();
    });
    if (mine >= kMaxFollowersPerOwner) {
      follower->channel->send(http::format_sse_event("", "end", "too many log streams open; close one"));
      follower->channel->close();
      return;
    }
    followers_.push_back(std::move(follower));
  }
  wake_.notify_all();
}

void PreviewManager::feed_followers() {
  constexpr std::size_t kChunk = 64 * 1024;
  std::vector<std::shared_ptr<Follower>> followers;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(followers_, [](const auto& f) { return !f->channel->is_open(); });
    followers = followers_;
  }
  for (const auto& follower : followers) {
    auto log = logs(follower->owner_id, follower->project_id, follower->offset, kChunk);
    if (!log.ok()) {
      follower->channel->send(http::format_sse_event("", "end", log.status().message()));
      follower->channel->close();
      continue;
    }
    if (log->end_offset == follower->offset) continue;
    follower->offset = log->end_offset;
    follower->channel->send(http::format_sse_event(std::to_string(log->end_offset), "log", log->text));
  }
}

void PreviewManager::files_changed(std::string_view project_id, std::string_view path) {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(project_id);
  if (it == entries_.end() || !live(it->second->status.state)) return;
  Entry& entry = *it->second;
  if (entry.pending_paths.size() < kMaxPendingPaths &&
      std::find(entry.pending_paths.begin(), entry.pending_paths.end(), path) == entry.pending_paths.end()) {
    entry.pending_paths.emplace_back(path);
  }
  entry.changes_due = clock_.monotonic_now() + std::chrono::milliseconds(settings_.debounce_ms);
}

std::optional<ProxyTarget> PreviewManager::route(std::string_view project_id) {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(project_id);
  if (it == entries_.end()) return std::nullopt;
  Entry& entry = *it->second;
  ProxyTarget target;
  target.owner_id = entry.owner_id;
  target.running = entry.status.state == sdk::PreviewState::kRunning;
  target.state = std::string(sdk::preview_state_name(entry.status.state));
  target.detail = entry.status.detail;
  target.endpoint = entry.status.endpoint;
  target.workspace = entry.workspace;
  if (target.running) {
    entry.last_request = clock_.monotonic_now();
    entry.last_request_at = clock_.now();
  }
  return target;
}

std::string PreviewManager::public_url(std::string_view project_id) const {
  std::string url = settings_.public_url;
  const auto replace = [&url](std::string_view token, std::string_view value) {
    for (auto at = url.find(token); at != std::string::npos; at = url.find(token, at + value.size())) {
      url.replace(at, token.size(), value);
    }
  };
  replace("{project}", project_id);
  replace("{port}", std::to_string(proxy_port_.load()));
  return url;
}

void PreviewManager::publish_gauges_locked() {
  std::map<std::string, double> counts = {{"starting", 0}, {"running", 0}, {"stopped", 0}, {"failed", 0}};
  for (const auto& [project, entry] : entries_)
    counts[std::string(sdk::preview_state_name(entry->status.state))] += 1;
  for (const auto& [state, count] : counts) {
    metrics_.gauge("samokoder_previews", "Previews this node knows, by state", {{"state", state}}).set(count);
  }
}

void PreviewManager::tick_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const bool starting = std::any_of(entries_.begin(), entries_.end(), [](const auto& entry) {
      return entry.second->status.state == sdk::PreviewState::kStarting;
    });
    wake_.wait_for(lock, starting ? kStartingTickPeriod : kTickPeriod);
    if (stopping_) break;
    lock.unlock();
    tick();
    lock.lock();
  }
}

void PreviewManager::tick() {
  struct Work {
    std::string project;
    std::uint64_t generation = 0;
    std::string owner;
    std::string runner;
    std::vector<std::string> changed;
    std::optional<std::string> end_reason;
  };
  std::vector<Work> work;
  const auto steady_now = clock_.monotonic_now();
  const auto now = clock_.now();
  {
    std::lock_guard lock(mutex_);
    for (auto& [project, entry] : entries_) {
      if (!live(entry->status.state)) continue;
      Work item{project, entry->generation, entry->owner_id, entry->runner, {}, std::nullopt};
      if (now >= entry->expires_at) {
        item.end_reason = "ttl";
      } else if (settings_.idle_stop_seconds != 0 && entry->status.state == sdk::PreviewState::kRunning &&
                 steady_now - entry->last_request > std::chrono::seconds(settings_.idle_stop_seconds)) {
        item.end_reason = "idle";
      } else if (entry->changes_due && steady_now >= *entry->changes_due) {
        item.changed = std::move(entry->pending_paths);
        entry->pending_paths.clear();
        entry->changes_due.reset();
      }
      work.push_back(std::move(item));
    }
  }
  const bool heartbeat = steady_now - last_heartbeat_ >= kHeartbeatPeriod;
  if (heartbeat) last_heartbeat_ = steady_now;
  for (auto& item : work) {
    if (item.end_reason) {
      // Not while the owner starts or stops it: the next tick looks again.
      const auto operation = operation_lock(item.project);
      std::unique_lock serial(*operation, std::try_to_lock);
      if (!serial.owns_lock()) continue;
      end_preview(item.project, item.generation, *item.end_reason,
                  *item.end_reason == "ttl" ? "its time to live (previews.ttl_seconds) passed"
                                            : "idle: no request for previews.idle_stop_seconds");
      continue;
    }
    plugins::Lease lease = plugins_.acquire(item.runner);
    if (!item.changed.empty() && lease) {
      const sdk::Status told = lease.call<sdk::PreviewRunner>(
          [&](sdk::PreviewRunner& r) { return r.files_changed(item.project, item.changed); });
      if (!told.ok()) {
        core::logger("previews")
            ->warn("previews: project {}: files_changed failed: {}", item.project, told.message());
      }
    }
    sdk::Result<sdk::PreviewStatus> status =
        lease ? lease.call<sdk::PreviewRunner>([&](sdk::PreviewRunner& r) { return r.status(item.project); })
              : sdk::Result<sdk::PreviewStatus>(sdk::Status::not_found("runner not active"));
    std::optional<PreviewView> changed;
    {
      std::lock_guard lock(mutex_);
      const auto it = entries_.find(item.project);
      // A status of a preview that was replaced meanwhile says nothing about the new one.
      if (it == entries_.end() || it->second->generation != item.generation ||
          !live(it->second->status.state))
        continue;
      Entry& entry = *it->second;
      sdk::PreviewStatus next;
      if (status.ok()) {
        next = *status;
      } else if (status.status().code() == sdk::StatusCode::kNotFound || !lease) {
        // The runner's generation went away (reload, disable) and took the app with it.
        next.state = sdk::PreviewState::kStopped;
        next.detail =
            "the runner " + item.runner + " no longer runs it (reloaded or disabled); start it again";
      } else {
        continue;  // a failed status call: keep what we knew, ask again next tick
      }
      const bool moved = next.state != entry.status.state || next.pid != entry.status.pid ||
                         next.restarts != entry.status.restarts;
      entry.status = next;
      if (!live(next.state)) ports_in_use_.erase(entry.port);
      if (moved || heartbeat) changed = view_locked(item.project, entry);
      if (moved) publish_gauges_locked();
    }
    if (changed) persist(item.owner, item.project, *changed);
  }
  feed_followers();
}

}  // namespace samokoder::previews
