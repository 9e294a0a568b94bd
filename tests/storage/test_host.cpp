#include "test_host.hpp"

#include <samokoder/abi.h>

#include "outbound_http/service.hpp"
#include "processes/process_service.hpp"
#include "scheduling/task_scheduler.hpp"

namespace samokoder::testing {

TestHost::TestHost(std::string plugin_id, nlohmann::json config)
    : plugin_id_(std::move(plugin_id)),
      config_(config.is_null() ? nlohmann::json::object() : std::move(config)) {}

std::uint32_t TestHost::host_abi_minor() const noexcept {
  return SAMOKODER_ABI_MINOR;
}

void TestHost::log(sdk::LogLevel level, std::string_view message) noexcept {
  std::lock_guard lock(mutex_);
  logs_.push_back(LogLine{level, std::string(message)});
}

std::string TestHost::key_of(std::string_view name, std::span<const sdk::MetricLabel> labels) {
  std::string key(name);
  key += "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) key += ",";
    key += labels[i].name;
    key += "=";
    key += labels[i].value;
  }
  key += "}";
  return key;
}

void TestHost::counter_add(std::string_view name, std::span<const sdk::MetricLabel> labels,
                           double delta) noexcept {
  std::lock_guard lock(mutex_);
  counters_[key_of(name, labels)] += delta;
}

void TestHost::gauge_set(std::string_view name, std::span<const sdk::MetricLabel> labels,
                         double value) noexcept {
  std::lock_guard lock(mutex_);
  gauges_[key_of(name, labels)] = value;
}

void TestHost::histogram_observe(std::string_view name, std::span<const sdk::MetricLabel> labels,
                                 double /*value*/) noexcept {
  std::lock_guard lock(mutex_);
  ++histograms_[key_of(name, labels)];
}

std::chrono::system_clock::time_point TestHost::now() const noexcept {
  std::lock_guard lock(mutex_);
  const auto t = now_;
  now_ += auto_step_;
  return t;
}

sdk::HttpClient& TestHost::http() noexcept {
  return outbound_http::unavailable_client();
}

std::chrono::steady_clock::time_point TestHost::monotonic_now() const noexcept {
  return std::chrono::steady_clock::now();
}

sdk::Scheduler& TestHost::scheduler() noexcept {
  return scheduling::unavailable_scheduler();
}

sdk::ProcessRunner& TestHost::processes() noexcept {
  return processes::unavailable_process_runner();
}

void TestHost::set_now(std::chrono::system_clock::time_point t) {
  std::lock_guard lock(mutex_);
  now_ = t;
}

void TestHost::advance(std::chrono::system_clock::duration d) {
  std::lock_guard lock(mutex_);
  now_ += d;
}

void TestHost::set_auto_advance(std::chrono::system_clock::duration step) {
  std::lock_guard lock(mutex_);
  auto_step_ = step;
}

std::vector<TestHost::LogLine> TestHost::logs() const {
  std::lock_guard lock(mutex_);
  return logs_;
}

double TestHost::counter(const std::string& key) const {
  std::lock_guard lock(mutex_);
  const auto it = counters_.find(key);
  return it == counters_.end() ? 0.0 : it->second;
}

std::optional<double> TestHost::gauge(const std::string& key) const {
  std::lock_guard lock(mutex_);
  const auto it = gauges_.find(key);
  if (it == gauges_.end()) return std::nullopt;
  return it->second;
}

std::size_t TestHost::histogram_count(const std::string& key) const {
  std::lock_guard lock(mutex_);
  const auto it = histograms_.find(key);
  return it == histograms_.end() ? 0 : it->second;
}

}  // namespace samokoder::testing
