// PluginManager: owns every configured plugin, its generations and their lifecycle (docs/ops.md "Reloading
// plugins"), and hands out leases so calls into plugin code never race with an unload.
//
// Each configured id gets a PluginSlot that lives as long as the manager. A slot holds up to
// kGenerationsPerSlot generations, each with its own lease counter on its own cache line; the
// active one is an index. Acquiring a lease is two atomic increments and a load, with no lock and
// no allocation: increment the active generation's counter, then re-check that it is still the
// active one (if a swap slipped in between, undo and retry). The manager swaps the index first and
// then waits for the old counter to reach zero, so once it reads zero no caller can still be using
// that generation. Counters live in the slot, never in the generation, so a late increment never
// touches freed memory.
//
// A throw out of plugin code during a leased call is converted by Lease::call into a failed Status
// and a log line; the caller never sees an exception.
//
// Ownership: the manager owns slots and generations; a Lease borrows a generation until destroyed.
// Leases must not outlive the manager, except a call a shutdown gave up on: its plugin's slot and
// generation are then leaked, never unmapped (see ~PluginManager). Thread-safety: acquire() and Lease are
// lock-free and safe from any thread; control operations (start, stop, unload) serialize among themselves;
// list() and find() may run concurrently with anything.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <samokoder/sdk/plugin.hpp>

#include "config/config.hpp"
#include "core/call_note.hpp"
#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/generation.hpp"
#include "plugins/plugin_types.hpp"

namespace samokoder::plugins {

class PluginSlot;

// A borrowed reference to one generation of one plugin; the generation cannot be torn down while
// any lease on it exists. Move-only; empty when the plugin had no active generation.
class Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept { *this = std::move(other); }
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { release(); }

  explicit operator bool() const noexcept { return generation_ != nullptr; }
  const Generation& generation() const noexcept { return *generation_; }

  // The plugin as interface T (sdk::Storage, sdk::Agent, ...); nullptr when empty or of another kind.
  template <typename T>
  T* as() const noexcept {
    if (generation_ == nullptr || generation_->descriptor().kind != sdk::detail::kind_of_impl<T>())
      return nullptr;
    return static_cast<T*>(generation_->kind_interface());
  }

  // Calls fn(T&) and returns its Status or Result; a throw becomes Status::internal and a log line,
  // an empty lease or a kind mismatch becomes Status::unavailable. On a work-pool thread the call is
  // noted (core::CallNote), so a call that overruns its deadline is reported with this plugin's id.
  template <typename T, typename F>
  auto call(F&& fn) const -> decltype(fn(std::declval<T&>())) {
    T* target = as<T>();
    if (target == nullptr) return unavailable_status();
    const core::PluginCallScope note(generation_->descriptor().id);
    std::string error;
    try {
      return fn(*target);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "a non-standard exception";
    }
    return thrown_status(error);
  }

 private:
  friend class PluginSlot;
  Lease(PluginSlot* slot, std::size_t index, const Generation* generation) noexcept
      : slot_(slot), index_(index), generation_(generation) {}
  void release() noexcept;
  sdk::Status unavailable_status() const;
  sdk::Status thrown_status(const std::string& what) const;

  PluginSlot* slot_ = nullptr;
  std::size_t index_ = 0;
  const Generation* generation_ = nullptr;
};

// A generation that no longer receives new calls but is not gone yet.
struct RetiredGeneration {
  std::uint64_t number = 0;
  std::string version;
  PluginState state = PluginState::kDraining;  // DRAINING while calls finish, PINNED if it stays
};

// What the API and metrics show about one configured plugin.
struct PluginInfo {
  std::string id;
  std::string kind;  // from the descriptor, or from the id's prefix before the plugin ever loaded
  std::string version;
  std::string description;
  std::string file;  // the configured file, resolved
  std::string sha256;
  PluginState state = PluginState::kDiscovered;
  FailureReason failure_reason = FailureReason::kNone;
  std::string failure_message;
  std::uint64_t generation = 0;  // number of the active (or last attempted) generation
  bool required = false;
  bool enabled = true;
  std::size_t pinned_generations = 0;       // how many generations ever ended PINNED
  std::vector<RetiredGeneration> retired;   // old generations still in memory, oldest first
  std::vector<std::string> unique_symbols;  // non-empty means the library can never be unloaded
  std::optional<std::chrono::system_clock::time_point> loaded_at;
};

inline constexpr std::size_t kGenerationsPerSlot = 4;

struct ReloadOutcome {
  std::uint64_t generation = 0;  // the new active generation
  std::string version;
  std::chrono::steady_clock::duration swap_latency{};  // from the request to new calls reaching it
  std::chrono::steady_clock::duration drain_time{};    // until the old generation's calls finished
  bool previous_unmapped = true;                       // false: the old generation is PINNED
};

// One configured plugin id. Stable address for the manager's lifetime, so hot paths may keep a
// PluginSlot* and call acquire() without any lookup.
class PluginSlot {
 public:
  explicit PluginSlot(std::string id) : id_(std::move(id)) {}
  PluginSlot(const PluginSlot&) = delete;
  PluginSlot& operator=(const PluginSlot&) = delete;

  const std::string& id() const noexcept { return id_; }
  Lease acquire() noexcept;

 private:
  friend class PluginManager;
  friend class Lease;
  static constexpr int kNone = -1;
  struct alignas(64) LeaseCounter {
    std::atomic<std::int64_t> count{0};
  };

  const std::string id_;
  std::atomic<int> active_{kNone};
  std::array<LeaseCounter, kGenerationsPerSlot> leases_;
  std::array<std::atomic<const Generation*>, kGenerationsPerSlot> published_{};
  // Owned generations, by index; touched only under the manager's control mutex.
  std::array<std::unique_ptr<Generation>, kGenerationsPerSlot> owned_;
};

class PluginManager {
 public:
  // `services` (owned by the caller, outliving the manager) back every plugin's HostServices.
  PluginManager(config::PluginsConfig config, metrics::Registry& registry, const core::Clock& clock,
                KernelServices services = {});
  ~PluginManager();
  PluginManager(const PluginManager&) = delete;
  PluginManager& operator=(const PluginManager&) = delete;

  // Loads every enabled plugin in config order. Fails only when a `required` plugin fails, with its
  // reason; then everything already loaded is unloaded again. Other failures leave that plugin FAILED.
  sdk::Status start();

  // Unloads every plugin, last loaded first, draining calls in flight for up to drain_timeout_ms, or
  // drain_limit when shorter (shutdown after the server gave up on calls still running: waiting for
  // them again would only delay the exit). A generation still in use stays PINNED, and the destructor
  // leaves it mapped for good. With drain_limit, a control operation still running past it (a reload
  // stuck in a plugin's init) makes stop() give up and leave every plugin loaded; the caller must then
  // keep the manager alive (Application does, see keep_until_exit).
  void stop(std::optional<std::chrono::milliseconds> drain_limit = std::nullopt);

  // Drains and unloads one plugin: state UNLOADED, or PINNED when its library stays mapped or its
  // calls did not drain within drain_timeout_ms.
  sdk::Status unload(std::string_view id);

  // Loads the configured file again as a new generation beside the running one (private
  // copy, handshake, init, self-test), swaps it in atomically, drains the old generation and unloads
  // it. Any failure before the swap leaves the running generation ACTIVE and untouched; the error
  // says why, and the plugin's failure_reason shows it. Also (re)starts a plugin that is FAILED or
  // UNLOADED.
  sdk::Result<ReloadOutcome> reload(std::string_view id);

  // Switches one plugin on (load and activate) or off (drain, unload, state DISABLED) at run time.
  // Disabling the only ACTIVE storage backend is refused: the kernel cannot serve without one.
  sdk::Status set_enabled(std::string_view id, bool enabled);

  // Told of every reload that a config change (or the file watcher) started, whether it swapped a
  // generation in or failed, so the caller can audit it like an admin's reload.
  using ReloadObserver =
      std::function<void(const std::string& id, const sdk::Result<ReloadOutcome>& outcome)>;

  // Applies a new plugins section (config reload) so the running set matches it: plugins added are
  // loaded, removed ones disabled, changed ones (file, config, required) reloaded as a new generation
  // through the same steps as reload() (state hand-over, metrics), enabled flags followed. Refusals are
  // checked for the whole change before anything happens. A plugin whose new generation fails keeps its
  // running one (reload semantics); the error lists every such failure. Returns one line per change
  // made; `on_reloaded` hears of each reload, swapped in or failed.
  sdk::Result<std::vector<std::string>> apply_config(config::PluginsConfig next,
                                                     const ReloadObserver& on_reloaded = {});

  std::vector<PluginInfo> list() const;
  std::optional<PluginInfo> find(std::string_view id) const;

  // The slot of a configured id, or nullptr. Valid for the manager's lifetime.
  PluginSlot* slot(std::string_view id) const noexcept;
  // Shorthand for slot(id)->acquire(); empty when unknown or not active.
  Lease acquire(std::string_view id) const noexcept;
  // Ids of the ACTIVE plugins of one kind, in config order.
  std::vector<std::string> active_ids(std::uint32_t kind) const;
  // A lease on the first ACTIVE storage plugin in config order, or empty. Every request asks, so this
  // reads a slot pointer published at each activation and retirement and takes no lock; only while
  // that slot is being retired does it fall back to active_ids().
  Lease acquire_storage() const noexcept;

 private:
  struct Record {
    config::PluginEntry entry;
    std::unique_ptr<PluginSlot> slot;
    PluginInfo info;
    std::uint64_t attempts = 0;  // generations tried so far; numbers the next one
  };

  Record* record_of(std::string_view id) const;
  Record& add_record(const config::PluginEntry& entry);
  // Why turning off the plugins in `leaving` would be refused, or empty.
  std::string refusal_to_disable(const std::vector<const Record*>& leaving) const;
  sdk::Status enable_record(Record& record);
  void disable_record(Record& record);
  // Loads the next generation into a free position of the slot without activating it; returns the
  // position, or the failure (already recorded in the plugin's info and metrics).
  std::variant<std::size_t, sdk::Status> stage(Record& record);
  // Makes the staged generation at `index` the active one; returns the previous active position.
  int activate(Record& record, std::size_t index);
  // Waits (up to drain_timeout_ms) for the leases of a position that is no longer active, then releases
  // it. False when it stays PINNED.
  bool drain(Record& record, std::size_t index, std::chrono::milliseconds timeout);
  std::chrono::milliseconds drain_timeout() const;  // from config, under control_mutex_
  // Tears the generation at `index` down; false when its library stays mapped.
  bool release(Record& record, std::size_t index);
  // Releases generations that were PINNED by a slow call and have drained since.
  void reap_drained(Record& record);
  // Records (or, with nullopt, forgets) the state of a retired generation in the plugin's info.
  void note_retired(Record& record, std::uint64_t number, const std::string& version,
                    std::optional<PluginState> state);
  // Hands the running generation's state to the staged one at `index` when both implement
  // sdk::StateTransfer; a failure is recorded and returned.
  sdk::Status transfer_state(Record& record, std::size_t index);
  // Swaps out the active generation, drains it and tears it down. Returns the final state.
  PluginState retire_active(Record& record, std::chrono::milliseconds timeout);
  // The reload steps after the caller's checks: stage, hand state over, swap, drain, count.
  sdk::Result<ReloadOutcome> reload_record(Record& record);
  // Counts, logs and shows the failure; returns `message` with credentials redacted (a plugin's text can
  // quote a URL with its password), which is all the failure path may pass on.
  std::string record_failure(Record& record, FailureReason reason, std::string_view message);
  void collect(metrics::Exposition& out) const;
  // Recomputes first_storage_; called under info_mutex_ whenever a plugin becomes or stops being ACTIVE.
  void publish_first_storage();
  std::filesystem::path resolve(const std::string& file) const;
  void remove_stale_copies() const;

  config::PluginsConfig config_;  // guarded by control_mutex_ once start() ran
  metrics::Registry& registry_;
  const core::Clock& clock_;
  Loader loader_;

  std::timed_mutex control_mutex_;  // serializes start, stop, unload, reload; timed for stop(drain_limit)
  mutable std::mutex info_mutex_;   // guards every Record::info; held briefly
  std::vector<std::unique_ptr<Record>> records_;  // config order; fixed after construction
  std::map<std::string, Record*, std::less<>> by_id_;
  std::atomic<PluginSlot*> first_storage_{nullptr};  // slots live as long as the manager
  metrics::Counter& pinned_total_;
  metrics::Counter& reloads_succeeded_;
  metrics::Counter& reloads_failed_;
  metrics::Histogram& swap_seconds_;
  metrics::Histogram& drain_seconds_;
  metrics::CollectorRegistration collector_;  // last member: unregistered before anything it reads
};

}  // namespace samokoder::plugins
