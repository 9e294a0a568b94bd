#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <samokoder/preview_common/runner.hpp>

namespace samokoder::preview_common {
namespace {

sdk::Status wrong(const std::string& key, const std::string& expected) {
  return sdk::Status::invalid_argument("preview runner config: `" + key + "` must be " + expected);
}

// nlohmann keeps 5 and 5.0 apart, so "a whole number" is checked on the type, not the value.
sdk::Result<std::uint64_t> whole(const nlohmann::json& value, const std::string& key, std::uint64_t min,
                                 std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
  // A value built in C++ from an int is a signed integer even when positive; parsed text is unsigned.
  if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<std::int64_t>() < 0))
    return wrong(key, "a whole number from " + std::to_string(min));
  const auto n = value.get<std::uint64_t>();
  if (n < min || n > max)
    return wrong(key, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  return n;
}

sdk::Status program(const nlohmann::json& value, const std::string& key, std::string& out) {
  if (!value.is_string() || value.get<std::string>().empty() || value.get<std::string>().front() != '/')
    return wrong(key, "an absolute path (a string starting with /)");
  out = value.get<std::string>();
  return {};
}

sdk::Status millis(const nlohmann::json& value, const std::string& key, std::uint64_t min,
                   std::chrono::milliseconds& out) {
  // A day is far past any sensible timeout and keeps the doubling of the backoff from overflowing.
  auto n = whole(value, key, min, 24ULL * 3600 * 1000);
  if (!n.ok()) return n.status();
  out = std::chrono::milliseconds(static_cast<std::int64_t>(*n));
  return {};
}

sdk::Status parse_limits(const nlohmann::json& value, sdk::ProcessLimits& limits) {
  if (!value.is_object()) return wrong("limits", "an object");
  for (const auto& [key, item] : value.items()) {
    std::optional<std::uint64_t>* field = nullptr;
    if (key == "address_space_bytes") field = &limits.address_space_bytes;
    if (key == "processes") field = &limits.processes;
    if (key == "open_files") field = &limits.open_files;
    if (key == "file_size_bytes") field = &limits.file_size_bytes;
    if (key == "cpu_seconds") field = &limits.cpu_seconds;
    if (field == nullptr)
      return sdk::Status::invalid_argument("preview runner config: unknown key `limits." + key +
                                           "` (known: address_space_bytes, processes, open_files, "
                                           "file_size_bytes, cpu_seconds)");
    auto n = whole(item, "limits." + key, 0);
    if (!n.ok()) return n.status();
    *field = *n;
  }
  return {};
}

}  // namespace

sdk::Result<RunnerOptions> parse_runner_options(const nlohmann::json& config,
                                                const std::vector<std::string>& other_keys) {
  RunnerOptions options;
  if (config.is_null()) return options;
  if (!config.is_object()) return sdk::Status::invalid_argument("preview runner config must be an object");
  for (const auto& [key, value] : config.items()) {
    sdk::Status status;
    if (key == "node") {
      status = program(value, key, options.node);
    } else if (key == "npm") {
      status = program(value, key, options.npm);
    } else if (key == "python") {
      status = program(value, key, options.python);
    } else if (key == "ready_timeout_ms") {
      status = millis(value, key, 1, options.ready_timeout);
    } else if (key == "install_timeout_ms") {
      status = millis(value, key, 1, options.install_timeout);
    } else if (key == "probe_interval_ms") {
      status = millis(value, key, 10, options.probe_interval);
    } else if (key == "restart_window_ms") {
      status = millis(value, key, 1, options.restart_window);
    } else if (key == "restart_backoff_ms") {
      status = millis(value, key, 1, options.restart_backoff);
    } else if (key == "restart_backoff_max_ms") {
      status = millis(value, key, 1, options.restart_backoff_max);
    } else if (key == "max_restarts") {
      auto n = whole(value, key, 0, 1000);
      if (n.ok()) options.max_restarts = static_cast<std::uint32_t>(*n);
      status = n.status();
    } else if (key == "log_buffer_bytes") {
      // Below a few lines the failure detail (the log's tail) would say nothing.
      auto n = whole(value, key, 1024, 1ULL << 30);
      if (n.ok()) options.log_buffer_bytes = static_cast<std::size_t>(*n);
      status = n.status();
    } else if (key == "limits") {
      status = parse_limits(value, options.limits);
    } else if (std::find(other_keys.begin(), other_keys.end(), key) == other_keys.end()) {
      status = sdk::Status::invalid_argument("preview runner config: unknown key `" + key + "`");
    }
    if (!status.ok()) return status;
  }
  if (options.restart_backoff_max < options.restart_backoff)
    return wrong("restart_backoff_max_ms", "at least restart_backoff_ms");
  return options;
}

}  // namespace samokoder::preview_common
