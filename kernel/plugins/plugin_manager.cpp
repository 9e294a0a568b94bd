#include "plugins/plugin_manager.hpp"

#include <algorithm>
#include <thread>

#include <signal.h>
#include <unistd.h>

#include <samokoder/sdk/redact.hpp>

#include "core/keep_until_exit.hpp"
#include "core/logging.hpp"

namespace samokoder::plugins {
namespace {

namespace fs = std::filesystem;

// How long stop() waits between looks at a draining lease counter; short so shutdown is prompt.
constexpr auto kDrainPollInterval = std::chrono::milliseconds(2);

std::string kind_prefix(std::string_view id) {
  const auto dot = id.find('.');
  return std::string(dot == std::string_view::npos ? std::string_view("unknown") : id.substr(0, dot));
}

}  // namespace

// --- Lease and slot: the lock-free part ------------------------------------------------------

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    slot_ = std::exchange(other.slot_, nullptr);
    index_ = other.index_;
    generation_ = std::exchange(other.generation_, nullptr);
  }
  return *this;
}

void Lease::release() noexcept {
  if (slot_ != nullptr) {
    slot_->leases_[index_].count.fetch_sub(1, std::memory_order_release);
    slot_ = nullptr;
    generation_ = nullptr;
  }
}

sdk::Status Lease::unavailable_status() const {
  if (generation_ == nullptr) return sdk::Status::unavailable("plugin is not active");
  return sdk::Status::unavailable("plugin " + generation_->descriptor().id + " is not of the requested kind");
}

sdk::Status Lease::thrown_status(const std::string& what) const {
  const auto& descriptor = generation_->descriptor();
  core::logger("plugins")->error("plugin {} {} (generation {}) threw out of a call: {}", descriptor.id,
                                 descriptor.version, generation_->number(), what);
  return sdk::Status::internal("plugin " + descriptor.id + " failed: it threw an exception");
}

Lease PluginSlot::acquire() noexcept {
  for (;;) {
    const int index = active_.load(std::memory_order_seq_cst);
    if (index == kNone) return {};
    auto& counter = leases_[static_cast<std::size_t>(index)].count;
    counter.fetch_add(1, std::memory_order_seq_cst);
    // The manager publishes a new index before it looks at the old counter; seeing the same index
    // after our increment proves it will see our lease before tearing that generation down.
    if (active_.load(std::memory_order_seq_cst) == index) {
      const Generation* generation =
          published_[static_cast<std::size_t>(index)].load(std::memory_order_acquire);
      return Lease(this, static_cast<std::size_t>(index), generation);
    }
    counter.fetch_sub(1, std::memory_order_release);
  }
}

// --- Manager --------------------------------------------------------------------------------

PluginManager::PluginManager(config::PluginsConfig config, metrics::Registry& registry,
                             const core::Clock& clock, KernelServices services)
    : config_(std::move(config)),
      registry_(registry),
      clock_(clock),
      loader_(registry, clock, services),
      pinned_total_(registry.counter("samokoder_plugin_pinned_total",
                                     "Generations whose library stayed mapped after unload, or whose calls "
                                     "did not drain in time.")),
      reloads_succeeded_(registry.counter("samokoder_plugin_reloads_total", "Plugin reloads, by outcome.",
                                          {{"outcome", "swapped"}})),
      reloads_failed_(registry.counter("samokoder_plugin_reloads_total", "Plugin reloads, by outcome.",
                                       {{"outcome", "failed"}})),
      swap_seconds_(registry.histogram("samokoder_plugin_reload_swap_seconds",
                                       "From a reload request until new calls reach the new generation.")),
      drain_seconds_(registry.histogram("samokoder_plugin_reload_drain_seconds",
                                        "From the swap until the old generation's calls finished.")) {
  for (const auto& reason : kAllFailureReasons) {
    registry_.counter("samokoder_plugin_load_failures_total", "Plugin loads that failed, by reason.",
                      {{"reason", std::string(reason_name(reason))}});
  }
  for (const auto& entry : config_.plugins)
    add_record(entry);
  collector_ = registry_.add_collector([this](metrics::Exposition& out) { collect(out); });
}

PluginManager::~PluginManager() {
  stop();
  // A generation a call is still inside (a call the server gave up on at shutdown) must stay mapped,
  // and the lease counter that call will decrement must stay in live memory: such a plugin's record is
  // kept until the process exits. The process is about to exit; a thread that returns before it does finds
  // its library and its slot where they were.
  for (auto& record : records_) {
    const PluginSlot& slot = *record->slot;
    std::int64_t calls = 0;
    for (const auto& lease : slot.leases_)
      calls += lease.count.load(std::memory_order_acquire);
    if (calls == 0) continue;
    core::logger("plugins")->error(
        "plugin {}: {} call(s) still running at exit; its library stays mapped and is never unloaded",
        record->entry.id, calls);
    core::keep_until_exit(std::move(record));
  }
}

PluginManager::Record& PluginManager::add_record(const config::PluginEntry& entry) {
  auto record = std::make_unique<Record>();
  record->entry = entry;
  record->slot = std::make_unique<PluginSlot>(entry.id);
  record->info.id = entry.id;
  record->info.kind = kind_prefix(entry.id);
  record->info.file = resolve(entry.file).string();
  record->info.required = entry.required;
  record->info.enabled = entry.enabled;
  record->info.state = entry.enabled ? PluginState::kDiscovered : PluginState::kDisabled;
  std::lock_guard lock(info_mutex_);
  if (const auto existing = by_id_.find(entry.id); existing != by_id_.end()) {
    record->info.state = PluginState::kFailed;
    record->info.failure_reason = FailureReason::kDuplicateId;
    record->info.failure_message = "plugin id \"" + entry.id +
                                   "\" is configured more than once; only the first entry (" +
                                   existing->second->info.file + ") is used";
  } else {
    by_id_.emplace(entry.id, record.get());
  }
  records_.push_back(std::move(record));
  return *records_.back();
}

fs::path PluginManager::resolve(const std::string& file) const {
  const fs::path path(file);
  return path.is_absolute() ? path : config_.plugin_dir / path;
}

// Copies left behind by a kernel that crashed (its pid is gone) would otherwise pile up forever.
void PluginManager::remove_stale_copies() const {
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(config_.runtime_dir, ec)) {
    const std::string name = item.path().filename().string();
    // <id>.g<generation>.<pid>.<random>.so
    if (name.size() < 4 || name.compare(name.size() - 3, 3, ".so") != 0) continue;
    const auto end = name.rfind('.', name.size() - 4);
    if (end == std::string::npos || end == 0) continue;
    const auto start = name.rfind('.', end - 1);
    if (start == std::string::npos) continue;
    const std::string pid_text = name.substr(start + 1, end - start - 1);
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(item.path(), ec);
  }
}

std::string PluginManager::record_failure(Record& record, FailureReason reason, std::string_view text) {
  std::string message = sdk::redact_credentials(text);
  registry_
      .counter("samokoder_plugin_load_failures_total", "Plugin loads that failed, by reason.",
               {{"reason", std::string(reason_name(reason))}})
      .add();
  core::logger("plugins")->error("plugin {} failed to load ({}): {}", record.entry.id, reason_name(reason),
                                 message);
  std::lock_guard lock(info_mutex_);
  // A failed reload leaves the running generation serving: the state stays ACTIVE, the reason is shown.
  if (record.slot->active_.load() == PluginSlot::kNone) record.info.state = PluginState::kFailed;
  record.info.failure_reason = reason;
  record.info.failure_message = message;
  return message;
}

std::variant<std::size_t, sdk::Status> PluginManager::stage(Record& record) {
  // Loading runs plugin code (init, self-test): a work pool that gives up on it names the plugin.
  const core::PluginCallScope note(record.entry.id);
  PluginSlot& slot = *record.slot;
  reap_drained(record);
  // A free position: not active, no generation in it, and no straggling lease increment.
  std::optional<std::size_t> free_index;
  for (std::size_t i = 0; i < kGenerationsPerSlot; ++i) {
    if (static_cast<int>(i) != slot.active_.load() && !slot.owned_[i] && slot.leases_[i].count.load() == 0) {
      free_index = i;
      break;
    }
  }
  if (!free_index) {
    const std::string message =
        "every generation position of " + record.entry.id +
        " is held by a PINNED generation whose calls never returned; restart to reclaim";
    record_failure(record, FailureReason::kStagingFailed, message);
    return sdk::Status::resource_exhausted(message);
  }

  LoadRequest request;
  request.expected_id = record.entry.id;
  request.file = resolve(record.entry.file);
  request.runtime_dir = config_.runtime_dir;
  request.generation = ++record.attempts;
  request.config = record.entry.config;
  // Progress is shown only for a first load: during a reload the running generation's ACTIVE stands.
  auto outcome = loader_.load(request, [&](PluginState state) {
    if (slot.active_.load() != PluginSlot::kNone) return;
    std::lock_guard lock(info_mutex_);
    record.info.state = state;
  });
  if (auto* failure = std::get_if<LoadFailure>(&outcome)) {
    if (failure->pinned) {
      pinned_total_.add();
      std::lock_guard lock(info_mutex_);
      ++record.info.pinned_generations;
    }
    if (record.slot->active_.load() == PluginSlot::kNone) {
      std::lock_guard lock(info_mutex_);
      record.info.generation = request.generation;
      record.info.sha256 = failure->sha256;
      if (failure->descriptor) {
        record.info.version = failure->descriptor->version;
        record.info.description = failure->descriptor->description;
      }
    }
    return sdk::Status::failed_precondition(record_failure(record, failure->reason, failure->message));
  }

  auto generation = std::move(std::get<std::unique_ptr<Generation>>(outcome));
  if (!generation->unique_symbols().empty()) {
    core::logger("plugins")->warn(
        "plugin {} has {} STB_GNU_UNIQUE symbol(s) (first: {}); it cannot be unloaded and will be PINNED on "
        "unload or reload. Build it with samokoder_add_plugin(), which passes -fno-gnu-unique",
        record.entry.id, generation->unique_symbols().size(), generation->unique_symbols().front());
  }
  slot.published_[*free_index].store(generation.get(), std::memory_order_release);
  slot.owned_[*free_index] = std::move(generation);
  return *free_index;
}

int PluginManager::activate(Record& record, std::size_t index) {
  PluginSlot& slot = *record.slot;
  const Generation& generation = *slot.owned_[index];
  const int previous = slot.active_.exchange(static_cast<int>(index), std::memory_order_seq_cst);
  {
    std::lock_guard lock(info_mutex_);
    auto& info = record.info;
    const auto& descriptor = generation.descriptor();
    info.state = PluginState::kActive;
    info.kind = std::string(kind_name(descriptor.kind));
    info.version = descriptor.version;
    info.description = descriptor.description;
    info.generation = generation.number();
    info.sha256 = generation.sha256();
    info.failure_reason = FailureReason::kNone;
    info.failure_message.clear();
    info.unique_symbols = generation.unique_symbols();
    info.loaded_at = generation.loaded_at();
    publish_first_storage();
  }
  core::logger("plugins")->info("plugin {} {} active (generation {}, sha256 {})", record.entry.id,
                                generation.descriptor().version, generation.number(), generation.sha256());
  return previous;
}

void PluginManager::note_retired(Record& record, std::uint64_t number, const std::string& version,
                                 std::optional<PluginState> state) {
  std::lock_guard lock(info_mutex_);
  auto& retired = record.info.retired;
  const auto it = std::find_if(retired.begin(), retired.end(),
                               [&](const RetiredGeneration& g) { return g.number == number; });
  if (!state) {
    if (it != retired.end()) retired.erase(it);
  } else if (it != retired.end()) {
    it->state = *state;
  } else {
    retired.push_back({number, version, *state});
  }
}

bool PluginManager::drain(Record& record, std::size_t index, std::chrono::milliseconds timeout) {
  PluginSlot& slot = *record.slot;
  note_retired(record, slot.owned_[index]->number(), slot.owned_[index]->descriptor().version,
               PluginState::kDraining);
  const auto deadline = clock_.monotonic_now() + timeout;
  while (slot.leases_[index].count.load(std::memory_order_seq_cst) != 0) {
    if (clock_.monotonic_now() >= deadline) {
      // Tearing down under a running call would crash it; keeping the generation costs memory only.
      // reap_drained() finishes the job once the call returns.
      core::logger("plugins")->error(
          "plugin {} generation {}: {} call(s) still running after {} ms of draining; generation PINNED",
          record.entry.id, slot.owned_[index]->number(), slot.leases_[index].count.load(), timeout.count());
      pinned_total_.add();
      note_retired(record, slot.owned_[index]->number(), slot.owned_[index]->descriptor().version,
                   PluginState::kPinned);
      std::lock_guard lock(info_mutex_);
      ++record.info.pinned_generations;
      return false;
    }
    std::this_thread::sleep_for(kDrainPollInterval);
  }
  return release(record, index);
}

bool PluginManager::release(Record& record, std::size_t index) {
  PluginSlot& slot = *record.slot;
  slot.published_[index].store(nullptr, std::memory_order_release);
  std::unique_ptr<Generation> generation = std::move(slot.owned_[index]);
  const std::uint64_t number = generation->number();
  const std::string version = generation->descriptor().version;
  const bool unmapped = generation->teardown();
  generation.reset();
  if (unmapped) {
    note_retired(record, number, version, std::nullopt);
    core::logger("plugins")->info("plugin {} generation {} unloaded", record.entry.id, number);
    return true;
  }
  note_retired(record, number, version, PluginState::kPinned);
  pinned_total_.add();
  {
    std::lock_guard lock(info_mutex_);
    ++record.info.pinned_generations;
  }
  core::logger("plugins")->error("plugin {} generation {} is still mapped after unload; PINNED",
                                 record.entry.id, number);
  return false;
}

void PluginManager::reap_drained(Record& record) {
  PluginSlot& slot = *record.slot;
  for (std::size_t i = 0; i < kGenerationsPerSlot; ++i) {
    if (static_cast<int>(i) != slot.active_.load() && slot.owned_[i] && slot.leases_[i].count.load() == 0) {
      release(record, i);
    }
  }
}

sdk::Status PluginManager::transfer_state(Record& record, std::size_t index) {
  PluginSlot& slot = *record.slot;
  const int active = slot.active_.load();
  if (active == PluginSlot::kNone) return {};
  sdk::StateTransfer* from = slot.owned_[static_cast<std::size_t>(active)]->state_transfer();
  sdk::StateTransfer* to = slot.owned_[index]->state_transfer();
  if (from == nullptr || to == nullptr) return {};
  // Messages are taken out of the catch blocks before anything is unloaded (see Generation).
  std::string error;
  try {
    auto state = from->export_state();
    if (!state.ok()) {
      error = "export_state of the running generation failed: " + state.status().to_string();
    } else if (auto imported = to->import_state(*state); !imported.ok()) {
      error = "import_state of the new generation failed: " + imported.to_string();
    }
  } catch (const std::exception& e) {
    error = std::string("state transfer threw ") + e.what();
  } catch (...) {
    error = "state transfer threw a non-standard exception";
  }
  if (error.empty()) return {};
  return sdk::Status::failed_precondition(record.entry.id + ": " +
                                          record_failure(record, FailureReason::kStateTransferFailed, error));
}

PluginState PluginManager::retire_active(Record& record, std::chrono::milliseconds timeout) {
  const int index = record.slot->active_.exchange(PluginSlot::kNone, std::memory_order_seq_cst);
  if (index == PluginSlot::kNone) return record.info.state;
  {
    std::lock_guard lock(info_mutex_);
    record.info.state = PluginState::kDraining;
    publish_first_storage();  // before the drain: new calls go to another storage plugin at once
  }
  const PluginState final_state =
      drain(record, static_cast<std::size_t>(index), timeout) ? PluginState::kUnloaded : PluginState::kPinned;
  std::lock_guard lock(info_mutex_);
  record.info.state = final_state;
  return final_state;
}

PluginManager::Record* PluginManager::record_of(std::string_view id) const {
  std::lock_guard lock(info_mutex_);
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::string PluginManager::refusal_to_disable(const std::vector<const Record*>& leaving) const {
  std::size_t active_storage = 0;
  std::vector<std::string> storage_leaving;
  for (const auto& record : records_) {
    if (record->info.kind != "storage" || record->slot->active_.load() == PluginSlot::kNone) continue;
    ++active_storage;
    if (std::find(leaving.begin(), leaving.end(), record.get()) != leaving.end()) {
      storage_leaving.push_back(record->entry.id);
    }
  }
  if (active_storage > 0 && storage_leaving.size() == active_storage) {
    return "refusing to disable " + storage_leaving.front() +
           ": it is the only active storage backend and the kernel cannot serve without one; enable "
           "another storage plugin first";
  }
  return {};
}

sdk::Status PluginManager::enable_record(Record& record) {
  record.entry.enabled = true;
  {
    std::lock_guard lock(info_mutex_);
    record.info.enabled = true;
    if (record.info.state == PluginState::kDisabled) record.info.state = PluginState::kDiscovered;
  }
  if (record.slot->active_.load() != PluginSlot::kNone) return {};
  auto staged = stage(record);
  if (auto* status = std::get_if<sdk::Status>(&staged)) return *status;
  activate(record, std::get<std::size_t>(staged));
  return {};
}

void PluginManager::disable_record(Record& record) {
  record.entry.enabled = false;
  retire_active(record, drain_timeout());
  reap_drained(record);
  std::lock_guard lock(info_mutex_);
  record.info.enabled = false;
  // A generation whose calls outlived the drain stays visible as PINNED.
  if (record.info.state != PluginState::kPinned) record.info.state = PluginState::kDisabled;
}

sdk::Status PluginManager::set_enabled(std::string_view id, bool enabled) {
  std::lock_guard control(control_mutex_);
  Record* record = record_of(id);
  if (record == nullptr) return sdk::Status::not_found("no plugin \"" + std::string(id) + "\" is configured");
  if (record->info.failure_reason == FailureReason::kDuplicateId) {
    return sdk::Status::failed_precondition(record->info.failure_message);
  }
  if (enabled) return enable_record(*record);
  if (!record->entry.enabled) return {};
  if (const std::string refusal = refusal_to_disable({record}); !refusal.empty()) {
    return sdk::Status::failed_precondition(refusal);
  }
  disable_record(*record);
  return {};
}

sdk::Result<std::vector<std::string>> PluginManager::apply_config(config::PluginsConfig next,
                                                                  const ReloadObserver& on_reloaded) {
  std::lock_guard control(control_mutex_);
  // Plan first, so a refusal leaves everything as it was.
  std::vector<const Record*> leaving;
  for (const auto& record : records_) {
    if (!record->entry.enabled) continue;
    const auto wanted = std::find_if(next.plugins.begin(), next.plugins.end(),
                                     [&](const config::PluginEntry& e) { return e.id == record->entry.id; });
    if (wanted == next.plugins.end() || !wanted->enabled) leaving.push_back(record.get());
  }
  if (const std::string refusal = refusal_to_disable(leaving); !refusal.empty()) {
    return sdk::Status::failed_precondition(refusal);
  }

  config_.plugin_dir = next.plugin_dir;
  config_.runtime_dir = next.runtime_dir;
  config_.drain_timeout_ms = next.drain_timeout_ms;
  std::vector<std::string> changes;
  std::vector<std::string> failures;
  for (const Record* record : leaving) {
    disable_record(*const_cast<Record*>(record));
    changes.push_back("disabled " + record->entry.id);
  }
  for (const auto& entry : next.plugins) {
    Record* record = record_of(entry.id);
    if (record == nullptr) {
      Record& added = add_record(entry);
      if (!entry.enabled) {
        changes.push_back("added " + entry.id + " (disabled)");
        continue;
      }
      auto status = enable_record(added);
      changes.push_back("added " + entry.id);
      if (!status.ok()) failures.push_back(status.message());
      continue;
    }
    if (!entry.enabled) continue;  // disabled above, or already off
    const bool changed = record->entry.file != entry.file || record->entry.config != entry.config ||
                         record->entry.required != entry.required;
    const bool was_enabled = record->entry.enabled;
    record->entry = entry;
    {
      std::lock_guard lock(info_mutex_);
      record->info.required = entry.required;
      record->info.file = resolve(entry.file).string();
    }
    if (!was_enabled) {
      auto status = enable_record(*record);
      changes.push_back("enabled " + entry.id);
      if (!status.ok()) failures.push_back(status.message());
    } else if (changed) {
      auto outcome = reload_record(*record);
      if (on_reloaded) on_reloaded(entry.id, outcome);
      if (!outcome.ok()) {
        failures.push_back(outcome.status().message());
        continue;
      }
      changes.push_back("reloaded " + entry.id + " (generation " + std::to_string(outcome->generation) + ")");
    }
  }
  if (!failures.empty()) {
    std::string message = "applied with failures (the plugins named keep their previous state):";
    for (const auto& failure : failures)
      message += "\n  " + failure;
    return sdk::Status::failed_precondition(message);
  }
  return changes;
}

sdk::Status PluginManager::start() {
  std::lock_guard control(control_mutex_);
  std::error_code ec;
  fs::create_directories(config_.runtime_dir, ec);
  if (ec) {
    return sdk::Status::unavailable("cannot create plugin runtime dir " + config_.runtime_dir.string() +
                                    ": " + ec.message());
  }
  remove_stale_copies();
  for (auto& record : records_) {
    if (record->info.failure_reason == FailureReason::kDuplicateId) {
      record_failure(*record, FailureReason::kDuplicateId, record->info.failure_message);
      continue;
    }
    if (!record->entry.enabled || record->info.state != PluginState::kDiscovered) continue;
    auto staged = stage(*record);
    if (const auto* index = std::get_if<std::size_t>(&staged)) {
      activate(*record, *index);
      continue;
    }
    if (record->entry.required) {
      const std::string message =
          "required plugin " + record->entry.id + " failed to load: " + record->info.failure_message;
      for (auto it = records_.rbegin(); it != records_.rend(); ++it)
        retire_active(**it, drain_timeout());
      return sdk::Status::failed_precondition(message);
    }
  }
  return {};
}

void PluginManager::stop(std::optional<std::chrono::milliseconds> drain_limit) {
  std::unique_lock control(control_mutex_, std::defer_lock);
  if (!drain_limit) {
    control.lock();
  } else if (!control.try_lock_for(*drain_limit)) {
    core::logger("plugins")->error(
        "a plugin operation (load, reload, enable) is still running; every plugin stays loaded");
    return;
  }
  const auto timeout = drain_limit ? std::min(*drain_limit, drain_timeout()) : drain_timeout();
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    retire_active(**it, timeout);
    reap_drained(**it);
  }
}

std::chrono::milliseconds PluginManager::drain_timeout() const {
  return std::chrono::milliseconds(config_.drain_timeout_ms);
}

sdk::Status PluginManager::unload(std::string_view id) {
  std::lock_guard control(control_mutex_);
  Record* record = record_of(id);
  if (record == nullptr) return sdk::Status::not_found("no plugin \"" + std::string(id) + "\" is configured");
  if (record->slot->active_.load() == PluginSlot::kNone) {
    return sdk::Status::failed_precondition("plugin " + record->entry.id + " is not active (state " +
                                            std::string(state_name(record->info.state)) + ")");
  }
  if (retire_active(*record, drain_timeout()) == PluginState::kPinned) {
    return sdk::Status::aborted("plugin " + record->entry.id + " was unloaded but stays PINNED in memory");
  }
  return {};
}

sdk::Result<ReloadOutcome> PluginManager::reload(std::string_view id) {
  std::lock_guard control(control_mutex_);
  Record* record = record_of(id);
  if (record == nullptr) return sdk::Status::not_found("no plugin \"" + std::string(id) + "\" is configured");
  if (!record->entry.enabled) {
    return sdk::Status::failed_precondition("plugin " + record->entry.id + " is disabled; enable it instead");
  }
  if (record->info.failure_reason == FailureReason::kDuplicateId) {
    return sdk::Status::failed_precondition(record->info.failure_message);
  }
  return reload_record(*record);
}

sdk::Result<ReloadOutcome> PluginManager::reload_record(Record& record) {
  const auto started = clock_.monotonic_now();
  auto staged = stage(record);
  if (auto* status = std::get_if<sdk::Status>(&staged)) {
    reloads_failed_.add();
    return std::move(*status);
  }
  const auto index = std::get<std::size_t>(staged);
  if (auto status = transfer_state(record, index); !status.ok()) {
    release(record, index);
    reloads_failed_.add();
    return status;
  }
  ReloadOutcome outcome;
  outcome.generation = record.slot->owned_[index]->number();
  outcome.version = record.slot->owned_[index]->descriptor().version;
  const int previous = activate(record, index);
  const auto swapped = clock_.monotonic_now();
  outcome.swap_latency = swapped - started;
  if (previous != PluginSlot::kNone) {
    outcome.previous_unmapped = drain(record, static_cast<std::size_t>(previous), drain_timeout());
    outcome.drain_time = clock_.monotonic_now() - swapped;
  }
  reloads_succeeded_.add();
  swap_seconds_.observe(std::chrono::duration<double>(outcome.swap_latency).count());
  drain_seconds_.observe(std::chrono::duration<double>(outcome.drain_time).count());
  return outcome;
}

std::vector<PluginInfo> PluginManager::list() const {
  std::lock_guard lock(info_mutex_);
  std::vector<PluginInfo> out;
  out.reserve(records_.size());
  for (const auto& record : records_)
    out.push_back(record->info);
  return out;
}

std::optional<PluginInfo> PluginManager::find(std::string_view id) const {
  const Record* record = record_of(id);
  if (record == nullptr) return std::nullopt;
  std::lock_guard lock(info_mutex_);
  return record->info;
}

PluginSlot* PluginManager::slot(std::string_view id) const noexcept {
  const Record* record = record_of(id);
  return record == nullptr ? nullptr : record->slot.get();
}

Lease PluginManager::acquire(std::string_view id) const noexcept {
  PluginSlot* found = slot(id);
  return found == nullptr ? Lease() : found->acquire();
}

void PluginManager::publish_first_storage() {
  PluginSlot* first = nullptr;
  for (const auto& record : records_) {
    if (record->info.state == PluginState::kActive &&
        record->info.kind == kind_name(SAMOKODER_KIND_STORAGE)) {
      first = record->slot.get();
      break;
    }
  }
  first_storage_.store(first, std::memory_order_release);
}

Lease PluginManager::acquire_storage() const noexcept {
  if (PluginSlot* first = first_storage_.load(std::memory_order_acquire)) {
    if (Lease lease = first->acquire()) return lease;
  }
  // The published slot is being retired right now (an unload or disable under way): ask the records.
  try {
    for (const auto& id : active_ids(SAMOKODER_KIND_STORAGE)) {
      if (Lease lease = acquire(id)) return lease;
    }
  } catch (...) {  // only allocation can throw here; no storage is the honest answer
  }
  return {};
}

std::vector<std::string> PluginManager::active_ids(std::uint32_t kind) const {
  std::lock_guard lock(info_mutex_);
  std::vector<std::string> out;
  const std::string_view wanted = kind_name(kind);
  for (const auto& record : records_) {
    if (record->info.state == PluginState::kActive && record->info.kind == wanted)
      out.push_back(record->info.id);
  }
  return out;
}

void PluginManager::collect(metrics::Exposition& out) const {
  std::lock_guard lock(info_mutex_);
  for (const auto& record : records_) {
    const auto& info = record->info;
    for (const PluginState state : kAllPluginStates) {
      out.gauge("samokoder_plugin_state", "1 for the state each configured plugin is in, 0 for the others.",
                {{"plugin", info.id}, {"state", std::string(state_name(state))}},
                info.state == state ? 1.0 : 0.0);
    }
    out.gauge("samokoder_plugin_generation",
              "Number of the plugin's current generation (1 after the first load).", {{"plugin", info.id}},
              static_cast<double>(info.generation));
    const auto pinned_now =
        std::count_if(info.retired.begin(), info.retired.end(),
                      [](const RetiredGeneration& g) { return g.state == PluginState::kPinned; });
    out.gauge("samokoder_plugin_pinned_generations", "Old generations of the plugin kept in memory (PINNED).",
              {{"plugin", info.id}}, static_cast<double>(pinned_now));
  }
}

}  // namespace samokoder::plugins
