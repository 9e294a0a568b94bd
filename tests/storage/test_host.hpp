// TestHost: a HostServices for loading plugins in tests, recording what the plugin logs and measures,
// with a clock the test moves by hand.
//
// The clock starts at a fixed instant (2030-01-01T00:00:00Z) and stands still unless the test calls
// set_now()/advance() or enables auto-advance, so tests control every timestamp a backend writes.
// monotonic_now() is the real steady clock (only used for latencies).
//
// Ownership: owns its config and records; must outlive the plugin it is handed to.
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/host.hpp>

namespace samokoder::testing {

class TestHost final : public sdk::HostServices {
 public:
  struct LogLine {
    sdk::LogLevel level;
    std::string message;
  };

  static constexpr std::chrono::system_clock::time_point kStart{std::chrono::seconds(1893456000)};

  TestHost(std::string plugin_id, nlohmann::json config);

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
  std::chrono::system_clock::time_point now() const noexcept override;
  std::chrono::steady_clock::time_point monotonic_now() const noexcept override;
  // Storage plugins start no background work; a call is refused (kUnavailable).
  sdk::Scheduler& scheduler() noexcept override;
  // Storage backends make no outbound calls: the kernel's client that refuses every one.
  sdk::HttpClient& http() noexcept override;
  // Storage plugins start no child process; a call is refused (kUnavailable).
  sdk::ProcessRunner& processes() noexcept override;

  void set_now(std::chrono::system_clock::time_point t);
  void advance(std::chrono::system_clock::duration d);
  // Each now() call returns the current time and then moves the clock on by `step` (0 disables).
  void set_auto_advance(std::chrono::system_clock::duration step);

  std::vector<LogLine> logs() const;
  // Metric keys are "name{label=value,...}" with labels in the order given.
  double counter(const std::string& key) const;
  std::optional<double> gauge(const std::string& key) const;
  std::size_t histogram_count(const std::string& key) const;

 private:
  static std::string key_of(std::string_view name, std::span<const sdk::MetricLabel> labels);

  const std::string plugin_id_;
  const nlohmann::json config_;
  mutable std::mutex mutex_;
  mutable std::chrono::system_clock::time_point now_ = kStart;
  std::chrono::system_clock::duration auto_step_{0};
  std::vector<LogLine> logs_;
  std::map<std::string, double> counters_;
  std::map<std::string, double> gauges_;
  std::map<std::string, std::size_t> histograms_;
};

}  // namespace samokoder::testing
