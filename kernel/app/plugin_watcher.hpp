// PluginWatcher: the opt-in development mode ("watch_plugins": true) that reloads a plugin when its
// file changes, so a plugin author rebuilds and sees the new code serving without touching the server.
//
// It polls (stat of each enabled plugin's configured file, once per interval) rather than using
// inotify: a build replaces files by rename, which inotify watches on the file itself lose, and a poll
// of a handful of files costs nothing. A change is acted on once the file has stopped changing for one
// interval, so a half-written library is not loaded (the loader would reject it anyway).
//
// Ownership: borrows the PluginManager, which must outlive it. Thread-safety: owns one thread; the
// destructor stops and joins it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

#include "plugins/plugin_manager.hpp"

namespace samokoder::app {

class PluginWatcher {
 public:
  // Told of every reload the watcher started, whether it swapped a generation in or failed, so the
  // owner can audit it like an admin's reload. Called on the watcher's thread.
  using ReloadObserver = plugins::PluginManager::ReloadObserver;

  PluginWatcher(plugins::PluginManager& plugins, std::chrono::milliseconds interval,
                ReloadObserver on_reload = {});
  ~PluginWatcher();
  PluginWatcher(const PluginWatcher&) = delete;
  PluginWatcher& operator=(const PluginWatcher&) = delete;

 private:
  struct Seen {
    std::filesystem::file_time_type modified;
    std::uintmax_t size = 0;
    bool changed = false;  // differs from what was loaded; waiting for it to settle
  };
  void run(std::stop_token stop);
  void poll();

  plugins::PluginManager& plugins_;
  const std::chrono::milliseconds interval_;
  const ReloadObserver on_reload_;
  std::map<std::string, Seen> seen_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: started after everything it uses
};

}  // namespace samokoder::app
