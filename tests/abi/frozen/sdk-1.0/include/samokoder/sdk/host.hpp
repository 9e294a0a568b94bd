// HostServices: everything the kernel offers a plugin, handed over at init.
//
// Plugins never go looking for kernel services (no kernel symbols, no globals, no registries): the
// kernel passes one HostServices to Plugin::init, and the plugin keeps the reference.
//
// Ownership: the kernel owns the HostServices object; it outlives the plugin instance it was given to
// (it is destroyed only after Plugin::shutdown and the plugin's destroy function have run).
// Thread-safety: every method may be called from any thread, concurrently.
// Exceptions: no method throws.
//
// Compatibility: existing methods never change; new services are appended at the end of the
// interface, and a plugin that needs one newer than its SDK's ABI probes host_abi_minor() first. ABI 2
// appended the host services (scheduler(), http(), processes()).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/http_client.hpp>
#include <samokoder/sdk/process.hpp>
#include <samokoder/sdk/scheduler.hpp>

namespace samokoder::sdk {

enum class LogLevel : std::uint32_t { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };

// One Prometheus label; both views only need to live for the duration of the call.
struct MetricLabel {
  std::string_view name;
  std::string_view value;
};

class HostServices {
 public:
  virtual ~HostServices() = default;

  // The id this plugin was loaded under, e.g. "storage.sqlite".
  virtual std::string_view plugin_id() const noexcept = 0;

  // SAMOKODER_ABI_MINOR of the running kernel: lets a plugin probe for services newer than the SDK
  // it was built against.
  virtual std::uint32_t host_abi_minor() const noexcept = 0;

  // Writes one line to the kernel's log, tagged with the plugin id. Never blocks on I/O.
  virtual void log(LogLevel level, std::string_view message) noexcept = 0;

  // The plugin's own "config" object from the kernel config (an empty object when none was given).
  // The reference stays valid until shutdown.
  virtual const nlohmann::json& config() const noexcept = 0;

  // Metrics, exported as samokoder_plugin_<name>{plugin="<id>",...}. `name` is [a-z0-9_]+; invalid
  // names and label sets are dropped and logged once. Cheap enough for hot paths.
  virtual void counter_add(std::string_view name, std::span<const MetricLabel> labels,
                           double delta) noexcept = 0;
  virtual void gauge_set(std::string_view name, std::span<const MetricLabel> labels,
                         double value) noexcept = 0;
  // Observes one value into a histogram with the kernel's default latency buckets (seconds).
  virtual void histogram_observe(std::string_view name, std::span<const MetricLabel> labels,
                                 double value) noexcept = 0;

  // The kernel's clocks. Tests inject a fake clock through the kernel, so plugins must use these
  // rather than std::chrono::*::now() for anything time-based they expose (expiry, lockout, TTL).
  virtual std::chrono::system_clock::time_point now() const noexcept = 0;
  virtual std::chrono::steady_clock::time_point monotonic_now() const noexcept = 0;

  // Background tasks and timers on the kernel's task pool (scheduler.hpp). Valid until the plugin's
  // shutdown() returned; its timers and tasks are stopped before shutdown() is called.
  virtual Scheduler& scheduler() noexcept = 0;

  // Outbound HTTP and HTTPS (http_client.hpp), counted in metrics under this plugin's id. The
  // reference stays valid until shutdown; calls still running then are cancelled.
  virtual HttpClient& http() noexcept = 0;
  // Child processes (process.hpp). Each child is attributed to this plugin generation: unloading the
  // generation (reload, disable) ends the children it still has once its last call returned.
  virtual ProcessRunner& processes() noexcept = 0;
};

}  // namespace samokoder::sdk
