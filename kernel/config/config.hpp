// The kernel's configuration: one JSON file (config/samokoder.json works out of the box), with
// secrets and deployment values overridable from SAMOKODER_* environment variables.
//
// Loading is strict: an unknown key, a wrong type or an out-of-range value is an error naming its
// JSON path ("/server/io_threads: expected an integer from 1 to 256, found \"two\""), and every
// error is reported at once rather than the first only.
//
// Ownership: Config is a plain value. Thread-safety: immutable once loaded; share by const reference.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::config {

struct ListenAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 picks a free port
  std::string to_string() const;
};

struct ServerConfig {
  ListenAddress listen;
  unsigned io_threads = 2;      // threads running the HTTP event loop; they never block
  unsigned worker_threads = 4;  // threads for storage, hashing, plugin and process calls
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::uint32_t keep_alive_timeout_ms = 30000;  // an idle keep-alive connection is closed after this
  std::uint32_t request_timeout_ms = 30000;     // reading one request may take at most this
  std::uint32_t shutdown_grace_ms = 10000;      // in-flight requests get this long on shutdown
  std::vector<std::string> cors_allowed_origins;
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error
  std::string format = "text";  // text or json
  bool access_log = true;
};

struct PluginEntry {
  std::string id;
  std::string file;  // relative to plugin_dir unless absolute
  bool enabled = true;
  bool required = false;
  nlohmann::json config = nlohmann::json::object();
};

struct PluginsConfig {
  std::filesystem::path plugin_dir = "build/plugins";
  std::filesystem::path runtime_dir = "var/run/plugins";  // private copies of loaded plugins
  std::uint32_t drain_timeout_ms = 30000;
  std::vector<PluginEntry> plugins;
};

enum class Environment { kDevelopment, kProduction };

struct Config {
  Environment environment = Environment::kDevelopment;
  ServerConfig server;
  LogConfig log;
  PluginsConfig plugins;
  // Where the config was read from (empty for the embedded defaults); used in messages only.
  std::filesystem::path source;
};

// Parses and validates a config document. `environment` supplies SAMOKODER_* overrides (pass the
// process environment in production, a fixed map in tests). On failure the Status message lists every
// error, one per line, each starting with its JSON path.
sdk::Result<Config> parse_config(const nlohmann::json& document,
                                 const std::map<std::string, std::string>& environment);

// Reads `path`, then parse_config. Errors name the file.
sdk::Result<Config> load_config_file(const std::filesystem::path& path,
                                     const std::map<std::string, std::string>& environment);

// The SAMOKODER_* variables of the current process.
std::map<std::string, std::string> process_environment();

// Parses "HOST:PORT" (IPv6 as "[::1]:8080").
sdk::Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace samokoder::config
