#include "plugins/plugin_host.hpp"

#include <mutex>

#include <samokoder/abi.h>

#include "core/logging.hpp"

namespace samokoder::plugins {
namespace {

spdlog::level::level_enum to_spdlog(sdk::LogLevel level) {
  switch (level) {
    case sdk::LogLevel::kTrace:
      return spdlog::level::trace;
    case sdk::LogLevel::kDebug:
      return spdlog::level::debug;
    case sdk::LogLevel::kInfo:
      return spdlog::level::info;
    case sdk::LogLevel::kWarn:
      return spdlog::level::warn;
    case sdk::LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

bool valid_plugin_metric_name(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

PluginHost::PluginHost(std::string plugin_id, std::uint64_t generation, nlohmann::json config,
                       metrics::Registry& registry, const core::Clock& clock, const KernelServices& services)
    : plugin_id_(std::move(plugin_id)),
      config_(config.is_object() ? std::move(config) : nlohmann::json::object()),
      registry_(registry),
      clock_(clock),
      logger_(core::logger("plugin." + plugin_id_)),
      tasks_(services.tasks != nullptr ? services.tasks->for_plugin(plugin_id_) : nullptr),
      http_(services.http != nullptr ? services.http->client(plugin_id_) : nullptr),
      processes_(services.processes != nullptr
                     ? std::make_unique<processes::PluginProcesses>(*services.processes,
                                                                    processes::Owner{plugin_id_, generation})
                     : nullptr) {}

sdk::Scheduler& PluginHost::scheduler() noexcept {
  if (tasks_) return *tasks_;
  return scheduling::unavailable_scheduler();
}

bool PluginHost::close_scheduler() noexcept {
  return !tasks_ || tasks_->close();
}

sdk::HttpClient& PluginHost::http() noexcept {
  if (http_) return *http_;
  return outbound_http::unavailable_client();
}

void PluginHost::close_http() noexcept {
  if (http_) http_->close();
}

void PluginHost::close_processes() noexcept {
  if (processes_) processes_->close();
}

sdk::ProcessRunner& PluginHost::processes() noexcept {
  if (processes_) return *processes_;
  return processes::unavailable_process_runner();
}

std::uint32_t PluginHost::host_abi_minor() const noexcept {
  return SAMOKODER_ABI_MINOR;
}

void PluginHost::log(sdk::LogLevel level, std::string_view message) noexcept {
  try {
    logger_->log(to_spdlog(level), "{}", message);
  } catch (...) {  // logging must never take the caller down
  }
}

void* PluginHost::metric(MetricType type, std::string_view name,
                         std::span<const sdk::MetricLabel> labels) noexcept {
  try {
    std::string key;
    key.reserve(name.size() + 2 + labels.size() * 16);
    key += static_cast<char>(type);
    key += name;
    for (const auto& label : labels) {
      key += '\0';
      key += label.name;
      key += '\0';
      key += label.value;
    }
    {
      std::shared_lock lock(metrics_mutex_);
      if (const auto it = metric_cache_.find(key); it != metric_cache_.end()) return it->second;
    }
    return register_metric(type, name, labels, key);
  } catch (...) {
    return nullptr;
  }
}

void* PluginHost::register_metric(MetricType type, std::string_view name,
                                  std::span<const sdk::MetricLabel> labels, const std::string& key) {
  std::unique_lock lock(metrics_mutex_);
  if (const auto it = metric_cache_.find(key); it != metric_cache_.end()) return it->second;
  const std::string full_name = "samokoder_plugin_" + std::string(name);
  void* handle = nullptr;
  std::string error;
  if (!valid_plugin_metric_name(name)) {
    error = "metric name must be [a-z0-9_]+";
  } else {
    metrics::Labels label_set{{"plugin", plugin_id_}};
    for (const auto& label : labels)
      label_set.emplace_back(label.name, label.value);
    const std::string help = "Reported by plugins through HostServices.";
    try {
      switch (type) {
        case MetricType::kCounter:
          handle = &registry_.counter(full_name, help, label_set);
          break;
        case MetricType::kGauge:
          handle = &registry_.gauge(full_name, help, label_set);
          break;
        case MetricType::kHistogram:
          handle = &registry_.histogram(full_name, help, label_set);
          break;
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (handle == nullptr) {
    if (rejected_names_.insert(std::string(name)).second) {
      logger_->warn("metric {:?} dropped: {}", std::string(name), error);
    }
    return nullptr;
  }
  metric_cache_.emplace(key, handle);
  return handle;
}

void PluginHost::counter_add(std::string_view name, std::span<const sdk::MetricLabel> labels,
                             double delta) noexcept {
  if (delta < 0) return;  // counters only go up; Prometheus treats a decrease as a reset
  if (void* handle = metric(MetricType::kCounter, name, labels))
    static_cast<metrics::Counter*>(handle)->add(delta);
}

void PluginHost::gauge_set(std::string_view name, std::span<const sdk::MetricLabel> labels,
                           double value) noexcept {
  if (void* handle = metric(MetricType::kGauge, name, labels))
    static_cast<metrics::Gauge*>(handle)->set(value);
}

void PluginHost::histogram_observe(std::string_view name, std::span<const sdk::MetricLabel> labels,
                                   double value) noexcept {
  if (void* handle = metric(MetricType::kHistogram, name, labels)) {
    static_cast<metrics::Histogram*>(handle)->observe(value);
  }
}

}  // namespace samokoder::plugins
