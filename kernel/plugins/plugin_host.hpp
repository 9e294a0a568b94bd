// PluginHost: the kernel's implementation of sdk::HostServices, one per plugin generation.
//
// It routes a plugin's log lines to the logger "plugin.<id>", its metrics into the kernel registry as
// samokoder_plugin_<name>{plugin="<id>",...}, and gives it its config section, the kernel clock and
// its own views of the task scheduler (closed before the plugin shuts down) and of the outbound HTTP
// service (metrics labelled with its id; closed after the plugin shut down, before it is destroyed).
// Metric handles are cached per (name, labels) so the steady state takes a shared lock and one
// atomic update; invalid names are dropped and logged once instead of throwing into plugin code.
//
// Child processes go through a PluginProcesses view tagged with the plugin id and generation number;
// destroying the host (after the plugin's destroy) ends the children that generation left running.
//
// Ownership: owned by its Generation; outlives the plugin instance it was given to. References to
// the registry, clock, HTTP service and process service must outlive it. Thread-safety: every method
// may be called concurrently.
#pragma once

#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include <spdlog/logger.h>

#include <samokoder/sdk/host.hpp>

#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "outbound_http/service.hpp"
#include "processes/process_service.hpp"
#include "scheduling/task_scheduler.hpp"

namespace samokoder::plugins {

// The kernel services behind HostServices, owned by the Application and outliving every plugin. A
// null member gives plugins a service that refuses every call (offline checks, tests).
struct KernelServices {
  scheduling::TaskScheduler* tasks = nullptr;
  outbound_http::Service* http = nullptr;
  processes::ProcessService* processes = nullptr;
};

class PluginHost final : public sdk::HostServices {
 public:
  PluginHost(std::string plugin_id, std::uint64_t generation, nlohmann::json config,
             metrics::Registry& registry, const core::Clock& clock, const KernelServices& services = {});

  std::string_view plugin_id() const noexcept override { return plugin_id_; }
  std::uint32_t host_abi_minor() const noexcept override;
  void log(sdk::LogLevel level, std::string_view message) noexcept override;
  const nlohmann::json& config() const noexcept override { return config_; }
  void counter_add(std::string_view name, std::span<const sdk::MetricLabel> labels,
                   double delta) noexcept override;
  void gauge_set(std::string_view name, std::span<const sdk::MetricLabel> labels,
                 double value) noexcept override;
  void histogram_observe(std::string_view name, std::span<const sdk::MetricLabel> labels,
                         double value) noexcept override;
  std::chrono::system_clock::time_point now() const noexcept override { return clock_.now(); }
  std::chrono::steady_clock::time_point monotonic_now() const noexcept override {
    return clock_.monotonic_now();
  }
  sdk::ProcessRunner& processes() noexcept override;
  sdk::Scheduler& scheduler() noexcept override;

  // Called before the plugin's shutdown(): cancels its timers and the tokens of its running tasks and
  // waits (bounded) for them. False when a task is still inside plugin code: the instance, this host
  // and the library must then stay for the life of the process.
  bool close_scheduler() noexcept;

  sdk::HttpClient& http() noexcept override;

  // Called after the plugin's shutdown() and before its instance is destroyed: cancels the
  // asynchronous HTTP calls it left running and waits until their callbacks, which are plugin code,
  // are gone. Later calls are refused.
  void close_http() noexcept;

  // Called with close_http(): refuses new child processes and ends those this generation still has
  // (a handle the plugin forgot included), so their on_line callbacks are over before destroy.
  void close_processes() noexcept;

 private:
  enum class MetricType : char { kCounter = 'c', kGauge = 'g', kHistogram = 'h' };
  // The metric object for (type, name, labels), or nullptr when the name or labels are invalid.
  void* metric(MetricType type, std::string_view name, std::span<const sdk::MetricLabel> labels) noexcept;
  void* register_metric(MetricType type, std::string_view name, std::span<const sdk::MetricLabel> labels,
                        const std::string& key);

  const std::string plugin_id_;
  const nlohmann::json config_;
  metrics::Registry& registry_;
  const core::Clock& clock_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<scheduling::PluginScheduler> tasks_;
  std::unique_ptr<outbound_http::PluginClient> http_;

  std::shared_mutex metrics_mutex_;
  std::unordered_map<std::string, void*> metric_cache_;  // key: type, name and labels, NUL-separated
  std::set<std::string, std::less<>> rejected_names_;    // logged once each

  // Last: its destructor ends the children this generation left running. Null without a process service.
  std::unique_ptr<processes::PluginProcesses> processes_;
};

}  // namespace samokoder::plugins
