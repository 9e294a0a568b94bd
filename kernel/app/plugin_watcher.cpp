#include "app/plugin_watcher.hpp"

#include "core/file_util.hpp"
#include "core/logging.hpp"

namespace samokoder::app {

PluginWatcher::PluginWatcher(plugins::PluginManager& plugins, std::chrono::milliseconds interval,
                             ReloadObserver on_reload)
    : plugins_(plugins),
      interval_(interval),
      on_reload_(std::move(on_reload)),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

PluginWatcher::~PluginWatcher() {
  thread_.request_stop();
  wake_.notify_all();
}

void PluginWatcher::run(std::stop_token stop) {
  core::logger("plugins")->warn(
      "watch_plugins is on: plugins reload when their files change (development only)");
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    poll();
    wake_.wait_for(lock, stop, interval_, [] { return false; });
  }
}

void PluginWatcher::poll() {
  for (const auto& plugin : plugins_.list()) {
    if (!plugin.enabled) continue;
    std::error_code ec;
    const auto modified = std::filesystem::last_write_time(plugin.file, ec);
    const auto size = ec ? 0 : std::filesystem::file_size(plugin.file, ec);
    if (ec) continue;  // missing for now (a build in progress); look again next time
    // The first look compares contents with what was loaded, so a change that landed between the load
    // and this poll is not taken as the baseline.
    auto [it, first] = seen_.try_emplace(plugin.id, Seen{modified, size, false});
    if (first) {
      const auto digest = core::sha256_file(plugin.file);
      it->second.changed = digest.ok() && !plugin.sha256.empty() && *digest != plugin.sha256;
      continue;
    }
    Seen& seen = it->second;
    if (seen.modified != modified || seen.size != size) {
      seen = {modified, size, true};  // still changing, or just changed: wait one more interval
      continue;
    }
    if (!seen.changed) continue;
    seen.changed = false;
    auto outcome = plugins_.reload(plugin.id);
    auto log = core::logger("plugins");
    if (outcome.ok()) {
      log->info("watch: {} changed on disk, now {} (generation {})", plugin.id, outcome->version,
                outcome->generation);
    } else {
      log->error("watch: {} changed on disk but did not reload: {}", plugin.id, outcome.status().message());
    }
    if (on_reload_) on_reload_(plugin.id, outcome);
  }
}

}  // namespace samokoder::app
