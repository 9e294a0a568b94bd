// CallNote: lets a thread of a work pool say which plugin it is calling right now, so the pool's
// watchdog (another thread) can name the plugin of a call that overran its deadline or was still
// running at shutdown.
//
// A pool thread points `current_call_note` at its own note for its whole life; PluginCallScope (used by
// plugins::Lease::call) stores the plugin id there for the duration of one call and restores the
// previous value after it, so nested calls report the innermost plugin. Threads that are not pool
// threads have no note and the scope costs one thread-local load.
//
// Ownership: the note belongs to the pool thread's record; the id string belongs to the plugin
// manager's slot, which lives as long as the manager (and is never freed while a lease exists).
// Thread-safety: the owning thread writes, any thread reads; the pointer is atomic.
#pragma once

#include <atomic>
#include <string>

namespace samokoder::core {

struct CallNote {
  std::atomic<const std::string*> plugin{nullptr};
};

inline thread_local CallNote* current_call_note = nullptr;

class PluginCallScope {
 public:
  explicit PluginCallScope(const std::string& plugin_id) noexcept : note_(current_call_note) {
    if (note_ != nullptr) previous_ = note_->plugin.exchange(&plugin_id, std::memory_order_relaxed);
  }
  ~PluginCallScope() {
    if (note_ != nullptr) note_->plugin.store(previous_, std::memory_order_relaxed);
  }
  PluginCallScope(const PluginCallScope&) = delete;
  PluginCallScope& operator=(const PluginCallScope&) = delete;

 private:
  CallNote* note_;
  const std::string* previous_ = nullptr;
};

}  // namespace samokoder::core
