#include "config/config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>

#include <samokoder/sdk/redact.hpp>

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, not declared by <unistd.h> in C++

namespace samokoder::config {
namespace {

using nlohmann::json;

// A value as an error quotes it: credentials redacted first (a shortened URL could hide its '@'), then
// shortened.
std::string describe(const json& value) {
  std::string dumped = sdk::redact_credentials(value.dump());
  if (dumped.size() > 60) dumped = dumped.substr(0, 57) + "...";
  return dumped;
}

// Walks a document, collecting every error with its JSON path instead of stopping at the first.
class Reader {
 public:
  explicit Reader(std::vector<std::string>& errors) : errors_(errors) {}

  void error(const std::string& path, const std::string& message) {
    errors_.push_back(path + ": " + message);
  }

  // Reports keys of `object` that are not in `known`.
  void reject_unknown(const json& object, const std::string& path,
                      std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : object.items()) {
      bool found = false;
      for (auto k : known)
        found = found || k == key;
      if (!found) {
        std::string list;
        for (auto k : known)
          list += (list.empty() ? "" : ", ") + std::string(k);
        error(path + "/" + key, "unknown key (known keys: " + list + ")");
      }
    }
  }

  bool object(const json& value, const std::string& path) {
    if (value.is_object()) return true;
    error(path, "expected an object, found " + describe(value));
    return false;
  }

  void string(const json& parent, const std::string& parent_path, const char* key, std::string& out,
              std::initializer_list<std::string_view> allowed = {}) {
    const auto it = parent.find(key);
    if (it == parent.end()) return;
    const std::string path = parent_path + "/" + key;
    if (!it->is_string()) {
      error(path, "expected a string, found " + describe(*it));
      return;
    }
    const auto& value = it->get_ref<const std::string&>();
    if (allowed.size() > 0) {
      bool ok = false;
      std::string list;
      for (auto a : allowed) {
        ok = ok || a == value;
        list += (list.empty() ? "" : ", ") + std::string(a);
      }
      if (!ok) {
        error(path, "expected one of " + list + ", found " + describe(*it));
        return;
      }
    }
    out = value;
  }

  template <typename Int>
  void integer(const json& parent, const std::string& parent_path, const char* key, Int& out,
               std::int64_t min, std::int64_t max) {
    const auto it = parent.find(key);
    if (it == parent.end()) return;
    const std::string path = parent_path + "/" + key;
    if (!it->is_number_integer()) {
      error(path, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                      ", found " + describe(*it));
      return;
    }
    const auto value = it->get<std::int64_t>();
    if (value < min || value > max) {
      error(path, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                      ", found " + std::to_string(value));
      return;
    }
    out = static_cast<Int>(value);
  }

  void number(const json& parent, const std::string& parent_path, const char* key, double& out, double min,
              double max) {
    const auto it = parent.find(key);
    if (it == parent.end()) return;
    const auto range = [&] { return "expected a number from " + describe(min) + " to " + describe(max); };
    if (!it->is_number()) {
      error(parent_path + "/" + key, range() + ", found " + describe(*it));
      return;
    }
    const double value = it->get<double>();
    if (!(value >= min && value <= max)) {
      error(parent_path + "/" + key, range() + ", found " + describe(*it));
      return;
    }
    out = value;
  }

  void boolean(const json& parent, const std::string& parent_path, const char* key, bool& out) {
    const auto it = parent.find(key);
    if (it == parent.end()) return;
    if (!it->is_boolean()) {
      error(parent_path + "/" + key, "expected true or false, found " + describe(*it));
      return;
    }
    out = it->get<bool>();
  }

  void string_list(const json& parent, const std::string& parent_path, const char* key,
                   std::vector<std::string>& out) {
    const auto it = parent.find(key);
    if (it == parent.end()) return;
    const std::string path = parent_path + "/" + key;
    if (!it->is_array()) {
      error(path, "expected an array of strings, found " + describe(*it));
      return;
    }
    out.clear();
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& item = (*it)[i];
      if (!item.is_string()) {
        error(path + "/" + std::to_string(i), "expected a string, found " + describe(item));
        continue;
      }
      out.push_back(item.get<std::string>());
    }
  }

 private:
  std::vector<std::string>& errors_;
};

bool valid_plugin_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  const auto dot = id.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == id.size()) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

void read_work_pool(Reader& r, const json& server, const std::string& server_path, const char* key,
                    WorkPoolConfig& out) {
  const auto it = server.find(key);
  if (it == server.end()) return;
  const std::string path = server_path + "/" + key;
  if (!r.object(*it, path)) return;
  r.reject_unknown(*it, path, {"threads", "queue_limit", "call_timeout_ms"});
  r.integer(*it, path, "threads", out.threads, 1, 1024);
  r.integer(*it, path, "queue_limit", out.queue_limit, 0, 1'000'000);
  r.integer(*it, path, "call_timeout_ms", out.call_timeout_ms, 100, 24 * 3600 * 1000);
}

// "listen": "HOST:PORT" under `node`, when present.
void read_listen(Reader& r, const json& node, const std::string& path, ListenAddress& out) {
  const auto it = node.find("listen");
  if (it == node.end()) return;
  if (!it->is_string()) {
    r.error(path + "/listen", "expected \"HOST:PORT\", found " + describe(*it));
  } else if (auto parsed = parse_listen_address(it->get<std::string>()); parsed.ok()) {
    out = *parsed;
  } else {
    r.error(path + "/listen", parsed.status().message());
  }
}

void read_server(Reader& r, const json& node, ServerConfig& out) {
  const std::string path = "/server";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path,
                   {"listen", "io_threads", "worker_threads", "request_pool", "plugin_pool", "task_pool",
                    "max_body_bytes", "max_header_bytes", "keep_alive_timeout_ms", "request_timeout_ms",
                    "shutdown_grace_ms", "cors_allowed_origins"});
  read_listen(r, node, path, out.listen);
  r.integer(node, path, "io_threads", out.io_threads, 1, 256);
  // worker_threads predates the pools and still sets the request pool's threads; request_pool.threads,
  // read after it, wins when both are given.
  r.integer(node, path, "worker_threads", out.request_pool.threads, 1, 1024);
  read_work_pool(r, node, path, "request_pool", out.request_pool);
  read_work_pool(r, node, path, "plugin_pool", out.plugin_pool);
  read_work_pool(r, node, path, "task_pool", out.task_pool);
  r.integer(node, path, "max_body_bytes", out.max_body_bytes, 0, std::int64_t{1} << 34);
  r.integer(node, path, "max_header_bytes", out.max_header_bytes, 1024, 1024 * 1024);
  r.integer(node, path, "keep_alive_timeout_ms", out.keep_alive_timeout_ms, 100, 3600 * 1000);
  r.integer(node, path, "request_timeout_ms", out.request_timeout_ms, 100, 3600 * 1000);
  r.integer(node, path, "shutdown_grace_ms", out.shutdown_grace_ms, 0, 3600 * 1000);
  r.string_list(node, path, "cors_allowed_origins", out.cors_allowed_origins);
}

void read_log(Reader& r, const json& node, LogConfig& out) {
  const std::string path = "/log";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path, {"level", "format", "access_log"});
  r.string(node, path, "level", out.level, {"trace", "debug", "info", "warn", "error"});
  r.string(node, path, "format", out.format, {"text", "json"});
  r.boolean(node, path, "access_log", out.access_log);
}

void read_plugins(Reader& r, const json& node, std::vector<PluginEntry>& out) {
  const std::string path = "/plugins";
  if (!node.is_array()) {
    r.error(path, "expected an array of plugin entries, found " + describe(node));
    return;
  }
  for (std::size_t i = 0; i < node.size(); ++i) {
    const auto& item = node[i];
    const std::string item_path = path + "/" + std::to_string(i);
    if (!r.object(item, item_path)) continue;
    r.reject_unknown(item, item_path, {"id", "file", "enabled", "required", "config"});
    PluginEntry entry;
    for (const char* key : {"id", "file"}) {
      if (!item.contains(key)) r.error(item_path + "/" + key, "required key is missing");
    }
    r.string(item, item_path, "id", entry.id);
    r.string(item, item_path, "file", entry.file);
    if (item.contains("id") && item["id"].is_string() && !valid_plugin_id(entry.id)) {
      r.error(item_path + "/id",
              "expected \"<kind>.<name>\" in lowercase letters, digits, '_' and '-', found " +
                  describe(item["id"]));
    }
    if (item.contains("file") && item["file"].is_string() && entry.file.empty()) {
      r.error(item_path + "/file", "must not be empty");
    }
    r.boolean(item, item_path, "enabled", entry.enabled);
    r.boolean(item, item_path, "required", entry.required);
    if (const auto it = item.find("config"); it != item.end()) {
      if (it->is_object()) {
        entry.config = *it;
      } else {
        r.error(item_path + "/config", "expected an object, found " + describe(*it));
      }
    }
    out.push_back(std::move(entry));
  }
}

bool valid_group_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

// {"max_failures": N, "window_seconds": S}
void read_failure_window(Reader& r, const json& parent, const std::string& parent_path, const char* key,
                         std::uint32_t& max_failures, std::uint32_t& window_seconds) {
  const auto it = parent.find(key);
  if (it == parent.end()) return;
  const std::string path = parent_path + "/" + key;
  if (!r.object(*it, path)) return;
  r.reject_unknown(*it, path, {"max_failures", "window_seconds"});
  r.integer(*it, path, "max_failures", max_failures, 1, 1'000'000);
  r.integer(*it, path, "window_seconds", window_seconds, 1, 7 * 24 * 3600);
}

void read_security(Reader& r, const json& node, SecurityConfig& out) {
  const std::string path = "/security";
  if (!r.object(node, path)) return;
  if (node.contains("secret_key") || node.contains("previous_secret_key")) {
    r.error(path + (node.contains("secret_key") ? "/secret_key" : "/previous_secret_key"),
            "secrets do not belong in the config file (it ends up in git and backups); set the "
            "SAMOKODER_SECRET_KEY (and SAMOKODER_PREVIOUS_SECRET_KEY) environment variable instead");
  }
  std::vector<std::string_view> known = {"access_token_ttl_seconds",
                                         "refresh_token_ttl_seconds",
                                         "session_max_age_seconds",
                                         "lockout",
                                         "address_throttle",
                                         "rate_limits",
                                         "cookie_secure",
                                         "trust_forwarded_for",
                                         "session_check_cache_ms"};
  for (const auto& [key, value] : node.items()) {
    if (key == "secret_key" || key == "previous_secret_key") continue;
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (auto k : known)
        list += (list.empty() ? "" : ", ") + std::string(k);
      r.error(path + "/" + key, "unknown key (known keys: " + list + ")");
    }
  }
  r.integer(node, path, "access_token_ttl_seconds", out.access_token_ttl_seconds, 60, 24 * 3600);
  r.integer(node, path, "refresh_token_ttl_seconds", out.refresh_token_ttl_seconds, 300, 365 * 24 * 3600);
  r.integer(node, path, "session_max_age_seconds", out.session_max_age_seconds, 300, 365 * 24 * 3600);
  read_failure_window(r, node, path, "lockout", out.lockout_max_failures, out.lockout_window_seconds);
  read_failure_window(r, node, path, "address_throttle", out.address_max_failures,
                      out.address_window_seconds);
  if (const auto it = node.find("rate_limits"); it != node.end()) {
    const std::string limits_path = path + "/rate_limits";
    if (r.object(*it, limits_path)) {
      for (const auto& [group, limit] : it->items()) {
        const std::string group_path = limits_path + "/" + group;
        if (!valid_group_name(group)) {
          r.error(group_path, "expected a route group name of 1..32 of [a-z0-9_-]");
          continue;
        }
        if (!r.object(limit, group_path)) continue;
        r.reject_unknown(limit, group_path, {"capacity", "refill_per_minute"});
        RateLimitConfig parsed = out.rate_limits.count(group) ? out.rate_limits[group] : RateLimitConfig{};
        r.integer(limit, group_path, "capacity", parsed.capacity, 1, 1'000'000'000);
        r.integer(limit, group_path, "refill_per_minute", parsed.refill_per_minute, 1, 1'000'000'000);
        out.rate_limits[group] = parsed;
      }
    }
  }
  if (const auto it = node.find("cookie_secure"); it != node.end()) {
    bool secure = false;
    r.boolean(node, path, "cookie_secure", secure);
    if (it->is_boolean()) out.cookie_secure = secure;
  }
  r.boolean(node, path, "trust_forwarded_for", out.trust_forwarded_for);
  r.integer(node, path, "session_check_cache_ms", out.session_check_cache_ms, 0, 60'000);
}

constexpr std::int64_t kTiB = 1024LL * 1024 * 1024 * 1024;

void read_limits(Reader& r, const json& node, LimitsConfig& out) {
  const std::string path = "/limits";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path,
                   {"export_max_bytes", "concurrent_exports_per_user", "concurrent_exports",
                    "workspace_bytes_per_user", "files_per_user"});
  r.integer(node, path, "export_max_bytes", out.export_max_bytes, 1, 4LL * 1024 * 1024 * 1024);
  r.integer(node, path, "concurrent_exports_per_user", out.concurrent_exports_per_user, 1, 1000);
  r.integer(node, path, "concurrent_exports", out.concurrent_exports, 1, 100000);
  r.integer(node, path, "workspace_bytes_per_user", out.workspace_bytes_per_user, 1, kTiB);
  r.integer(node, path, "files_per_user", out.files_per_user, 1, 1000000000);
}

void read_http_client(Reader& r, const json& node, HttpClientConfig& out) {
  const std::string path = "/http_client";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path,
                   {"extra_ca_file", "connect_timeout_ms", "first_byte_timeout_ms", "idle_timeout_ms",
                    "total_timeout_ms", "max_response_bytes", "max_request_bytes", "pool_max_idle_per_host",
                    "pool_idle_timeout_ms", "threads"});
  constexpr std::int64_t kDay = 24LL * 3600 * 1000;
  constexpr std::int64_t kGiB = 1024LL * 1024 * 1024;
  r.string(node, path, "extra_ca_file", out.extra_ca_file);
  r.integer(node, path, "connect_timeout_ms", out.connect_timeout_ms, 1, kDay);
  r.integer(node, path, "first_byte_timeout_ms", out.first_byte_timeout_ms, 1, kDay);
  r.integer(node, path, "idle_timeout_ms", out.idle_timeout_ms, 1, kDay);
  r.integer(node, path, "total_timeout_ms", out.total_timeout_ms, 1, kDay);
  r.integer(node, path, "max_response_bytes", out.max_response_bytes, 1, 64 * kGiB);
  r.integer(node, path, "max_request_bytes", out.max_request_bytes, 0, 64 * kGiB);
  r.integer(node, path, "pool_max_idle_per_host", out.pool_max_idle_per_host, 0, 1024);
  r.integer(node, path, "pool_idle_timeout_ms", out.pool_idle_timeout_ms, 1, kDay);
  r.integer(node, path, "threads", out.threads, 1, 64);
}

void read_processes(Reader& r, const json& node, ProcessesConfig& out) {
  const std::string path = "/processes";
  if (!r.object(node, path)) return;
  r.reject_unknown(
      node, path,
      {"state_dir", "default_timeout_ms", "kill_grace_ms", "output_limit_bytes", "default_limits"});
  std::string state_dir = out.state_dir.string();
  r.string(node, path, "state_dir", state_dir);
  out.state_dir = state_dir;
  r.integer(node, path, "default_timeout_ms", out.default_timeout_ms, 1, 7LL * 24 * 3600 * 1000);
  r.integer(node, path, "kill_grace_ms", out.kill_grace_ms, 0, 600 * 1000);
  r.integer(node, path, "output_limit_bytes", out.output_limit_bytes, 1, 1024LL * 1024 * 1024);
  if (const auto it = node.find("default_limits"); it != node.end()) {
    const std::string limits = path + "/default_limits";
    if (!r.object(*it, limits)) return;
    r.reject_unknown(*it, limits,
                     {"cpu_seconds", "address_space_bytes", "processes", "file_size_bytes", "open_files"});
    auto& l = out.default_limits;
    r.integer(*it, limits, "cpu_seconds", l.cpu_seconds, 0, 365ULL * 24 * 3600);
    r.integer(*it, limits, "address_space_bytes", l.address_space_bytes, 0, kTiB);
    r.integer(*it, limits, "processes", l.processes, 0, 1000000);
    r.integer(*it, limits, "file_size_bytes", l.file_size_bytes, 0, kTiB);
    r.integer(*it, limits, "open_files", l.open_files, 0, 1048576);
  }
}

void read_runs(Reader& r, const json& node, RunsConfig& out) {
  const std::string path = "/runs";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path,
                   {"pipeline", "limits", "workers", "max_parallel_per_run", "lease_seconds",
                    "poll_interval_ms", "command_timeout_ms", "command_containment"});
  r.string_list(node, path, "pipeline", out.pipeline);
  for (std::size_t i = 0; i < out.pipeline.size(); ++i) {
    if (!out.pipeline[i].starts_with("agent."))
      r.error(path + "/pipeline/" + std::to_string(i), "must name an agent plugin id (\"agent.<name>\")");
  }
  r.integer(node, path, "workers", out.workers, 1, 4096);
  r.integer(node, path, "max_parallel_per_run", out.max_parallel_per_run, 1, 256);
  r.integer(node, path, "lease_seconds", out.lease_seconds, 2, 3600);
  r.integer(node, path, "poll_interval_ms", out.poll_interval_ms, 10, 600000);
  r.integer(node, path, "command_timeout_ms", out.command_timeout_ms, 1, 7LL * 24 * 3600 * 1000);
  r.string(node, path, "command_containment", out.command_containment);
  // "none" spelled out is the only way to run agents' commands unconfined; anything else names the
  // runner that confines them.
  const auto& containment = out.command_containment;
  if (containment != "none" && !(containment.starts_with("preview.") && containment.size() > 8))
    r.error(path + "/command_containment",
            "must name a preview plugin id (\"preview.<name>\") or be \"none\"");
  if (const auto it = node.find("limits"); it != node.end()) {
    const std::string limits = path + "/limits";
    if (!r.object(*it, limits)) return;
    r.reject_unknown(*it, limits,
                     {"max_steps", "max_tokens", "max_cost_micro_usd", "max_wall_seconds", "loop_repeats"});
    auto& l = out.limits;
    r.integer(*it, limits, "max_steps", l.max_steps, 1, 1000000);
    r.integer(*it, limits, "max_tokens", l.max_tokens, 0, 1000000000000LL);
    r.integer(*it, limits, "max_cost_micro_usd", l.max_cost_micro_usd, 0, 1000000000000LL);
    r.integer(*it, limits, "max_wall_seconds", l.max_wall_seconds, 0, 365LL * 24 * 3600);
    r.integer(*it, limits, "loop_repeats", l.loop_repeats, 2, 1000);
  }
}

void read_previews(Reader& r, const json& node, PreviewsConfig& out) {
  const std::string path = "/previews";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path,
                   {"runners", "listen", "public_url", "proxy_threads", "port_first", "port_last",
                    "max_per_user", "max_total", "idle_stop_seconds", "ttl_seconds", "debounce_ms",
                    "grant_ttl_seconds", "max_body_bytes", "upstream_timeout_ms"});
  r.string_list(node, path, "runners", out.runners);
  for (std::size_t i = 0; i < out.runners.size(); ++i) {
    if (!out.runners[i].starts_with("preview."))
      r.error(path + "/runners/" + std::to_string(i), "must name a preview plugin id (\"preview.<name>\")");
  }
  read_listen(r, node, path, out.listen);
  r.string(node, path, "public_url", out.public_url);
  if (!(out.public_url.starts_with("http://") || out.public_url.starts_with("https://")) ||
      out.public_url.find("{project}") == std::string::npos) {
    r.error(path + "/public_url", "must be an http(s) URL containing {project}");
  }
  r.integer(node, path, "proxy_threads", out.proxy_threads, 1, 64);
  r.integer(node, path, "port_first", out.port_first, 1024, 65535);
  r.integer(node, path, "port_last", out.port_last, 1024, 65535);
  if (out.port_last < out.port_first) r.error(path + "/port_last", "must not be below port_first");
  r.integer(node, path, "max_per_user", out.max_per_user, 1, 10000);
  r.integer(node, path, "max_total", out.max_total, 1, 100000);
  r.integer(node, path, "idle_stop_seconds", out.idle_stop_seconds, 0, 365LL * 24 * 3600);
  r.integer(node, path, "ttl_seconds", out.ttl_seconds, 0, 365LL * 24 * 3600);
  r.integer(node, path, "debounce_ms", out.debounce_ms, 0, 60000);
  r.integer(node, path, "grant_ttl_seconds", out.grant_ttl_seconds, 60, 30LL * 24 * 3600);
  r.integer(node, path, "max_body_bytes", out.max_body_bytes, 1024, 1ULL << 34);
  r.integer(node, path, "upstream_timeout_ms", out.upstream_timeout_ms, 100, 24LL * 3600 * 1000);
}

void read_console(Reader& r, const json& node, ConsoleConfig& out) {
  const std::string path = "/console";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path, {"enabled", "dir"});
  r.boolean(node, path, "enabled", out.enabled);
  std::string dir = out.dir.string();
  r.string(node, path, "dir", dir);
  out.dir = dir;
}

// "http://host[:port][/path]" or https: what a provider's base_url may be. Credentials, a query or a
// fragment have no place there (a key goes in a key variable, where it is never logged).
bool plausible_base_url(std::string_view url) {
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return false;
  }
  const auto host_end = rest.find('/');
  if (rest.substr(0, host_end).empty() || rest.front() == ':') return false;
  return std::none_of(url.begin(), url.end(), [](char c) {
    return c == '?' || c == '#' || c == '@' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

// "provider/model": a provider name as users store keys under, then a model name the provider knows.
bool valid_model_ref(std::string_view ref) {
  const auto slash = ref.find('/');
  return slash != std::string_view::npos && slash > 0 && slash + 1 < ref.size();
}

void read_llm(Reader& r, const json& node, const std::map<std::string, std::string>& environment,
              LlmConfig& out) {
  const std::string path = "/llm";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path,
                   {"providers", "roles", "retry", "timeouts", "json_reasks", "models_cache_seconds",
                    "prices", "budgets"});
  constexpr std::int64_t kDay = 24LL * 3600 * 1000;
  if (const auto it = node.find("providers"); it != node.end() && r.object(*it, path + "/providers")) {
    for (const auto& [name, entry] : it->items()) {
      const std::string entry_path = path + "/providers/" + name;
      if (name.empty() || name.size() > 32 ||
          name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
        r.error(entry_path, "a provider name is 1 to 32 of a-z, 0-9, _ and -");
      }
      if (!r.object(entry, entry_path)) continue;
      r.reject_unknown(entry, entry_path, {"plugin", "api_key_env", "key_required", "base_url"});
      LlmProviderConfig provider{
          .plugin = "llm." + name, .api_key_env = {}, .key_required = true, .base_url = {}, .api_key = {}};
      r.string(entry, entry_path, "plugin", provider.plugin);
      if (provider.plugin.empty()) r.error(entry_path + "/plugin", "must not be empty");
      r.string(entry, entry_path, "api_key_env", provider.api_key_env);
      r.boolean(entry, entry_path, "key_required", provider.key_required);
      r.string(entry, entry_path, "base_url", provider.base_url);
      if (!provider.base_url.empty() && !plausible_base_url(provider.base_url)) {
        r.error(entry_path + "/base_url",
                "expected http://host[:port][/path] or https://..., without a query, "
                "fragment or credentials; found " +
                    describe(provider.base_url));
      }
      out.providers[name] = std::move(provider);
    }
  }
  if (const auto it = node.find("roles"); it != node.end() && r.object(*it, path + "/roles")) {
    for (const auto& [role, entry] : it->items()) {
      std::vector<std::string> chain;
      r.string_list(*it, path + "/roles", role.c_str(), chain);
      if (chain.empty()) r.error(path + "/roles/" + role, "expected at least one \"provider/model\"");
      out.roles[role] = std::move(chain);
    }
  }
  if (const auto it = node.find("retry"); it != node.end() && r.object(*it, path + "/retry")) {
    r.reject_unknown(*it, path + "/retry", {"max_attempts", "initial_backoff_ms", "max_backoff_ms"});
    r.integer(*it, path + "/retry", "max_attempts", out.retry_max_attempts, 1, 20);
    r.integer(*it, path + "/retry", "initial_backoff_ms", out.retry_initial_backoff_ms, 0, kDay);
    r.integer(*it, path + "/retry", "max_backoff_ms", out.retry_max_backoff_ms, 0, kDay);
    if (out.retry_initial_backoff_ms > out.retry_max_backoff_ms) {
      r.error(path + "/retry/initial_backoff_ms", "must not exceed max_backoff_ms");
    }
  }
  if (const auto it = node.find("timeouts"); it != node.end() && r.object(*it, path + "/timeouts")) {
    const std::string timeouts = path + "/timeouts";
    r.reject_unknown(*it, timeouts, {"connect_ms", "first_token_ms", "idle_ms", "total_ms"});
    r.integer(*it, timeouts, "connect_ms", out.connect_timeout_ms, 1, kDay);
    r.integer(*it, timeouts, "first_token_ms", out.first_token_timeout_ms, 1, kDay);
    r.integer(*it, timeouts, "idle_ms", out.idle_timeout_ms, 1, kDay);
    r.integer(*it, timeouts, "total_ms", out.total_timeout_ms, 1, kDay);
  }
  r.integer(node, path, "json_reasks", out.json_reasks, 0, 5);
  r.integer(node, path, "models_cache_seconds", out.models_cache_seconds, 0, 7 * 24 * 3600);
  if (const auto it = node.find("prices"); it != node.end() && r.object(*it, path + "/prices")) {
    for (const auto& [model, entry] : it->items()) {
      const std::string entry_path = path + "/prices" + (json::json_pointer() / model).to_string();
      if (!valid_model_ref(model)) r.error(entry_path, "a price is keyed by \"provider/model\"");
      if (!r.object(entry, entry_path)) continue;
      r.reject_unknown(entry, entry_path,
                       {"prompt_usd_per_mtok", "completion_usd_per_mtok", "cached_prompt_usd_per_mtok"});
      LlmPrice price;
      r.number(entry, entry_path, "prompt_usd_per_mtok", price.prompt_usd_per_mtok, 0, 1e6);
      r.number(entry, entry_path, "completion_usd_per_mtok", price.completion_usd_per_mtok, 0, 1e6);
      // Unset: cached tokens cost what other prompt tokens cost.
      price.cached_prompt_usd_per_mtok = price.prompt_usd_per_mtok;
      r.number(entry, entry_path, "cached_prompt_usd_per_mtok", price.cached_prompt_usd_per_mtok, 0, 1e6);
      out.prices[model] = price;
    }
  }
  if (const auto it = node.find("budgets"); it != node.end() && r.object(*it, path + "/budgets")) {
    const std::string budgets = path + "/budgets";
    r.reject_unknown(*it, budgets,
                     {"user_daily_tokens", "user_daily_cost_usd", "run_tokens", "run_cost_usd"});
    constexpr std::int64_t kTokens = 1'000'000'000'000'000LL;
    r.integer(*it, budgets, "user_daily_tokens", out.user_daily_tokens, 0, kTokens);
    r.number(*it, budgets, "user_daily_cost_usd", out.user_daily_cost_usd, 0, 1e9);
    r.integer(*it, budgets, "run_tokens", out.run_tokens, 0, kTokens);
    r.number(*it, budgets, "run_cost_usd", out.run_cost_usd, 0, 1e9);
  }
  // Checked after the merge, so that a role may name a built-in provider.
  for (const auto& [role, chain] : out.roles) {
    for (std::size_t i = 0; i < chain.size(); ++i) {
      const std::string entry_path = path + "/roles/" + role + "/" + std::to_string(i);
      if (!valid_model_ref(chain[i])) {
        r.error(entry_path, "expected \"provider/model\", found " + describe(chain[i]));
      } else if (!out.providers.contains(chain[i].substr(0, chain[i].find('/')))) {
        r.error(entry_path, "names provider \"" + chain[i].substr(0, chain[i].find('/')) +
                                "\", which llm.providers does not configure");
      }
    }
  }
  if (!out.roles.contains("default")) r.error(path + "/roles", "the role \"default\" is required");
  for (auto& [name, provider] : out.providers) {
    if (provider.api_key_env.empty()) continue;
    if (const auto it = environment.find(provider.api_key_env); it != environment.end()) {
      provider.api_key = it->second;
    }
  }
}

void read_housekeeping(Reader& r, const json& node, const SecurityConfig& security, HousekeepingConfig& out) {
  const std::string path = "/housekeeping";
  if (!r.object(node, path)) return;
  r.reject_unknown(node, path,
                   {"enabled", "interval_seconds", "jitter_seconds", "login_attempt_retention_seconds"});
  r.boolean(node, path, "enabled", out.enabled);
  r.integer(node, path, "interval_seconds", out.interval_seconds, 1, 7 * 24 * 3600);
  r.integer(node, path, "jitter_seconds", out.jitter_seconds, 0, 7 * 24 * 3600);
  r.integer(node, path, "login_attempt_retention_seconds", out.login_attempt_retention_seconds, 60,
            365 * 24 * 3600);
  if (out.jitter_seconds > out.interval_seconds) {
    r.error(path + "/jitter_seconds", "must not exceed interval_seconds (" +
                                          std::to_string(out.interval_seconds) + "), found " +
                                          std::to_string(out.jitter_seconds));
  }
  // Purging attempts the lockout still counts would unlock accounts early.
  const std::uint32_t window = std::max(security.lockout_window_seconds, security.address_window_seconds);
  if (out.login_attempt_retention_seconds < window) {
    r.error(path + "/login_attempt_retention_seconds",
            "must be at least the longest failed-login window (" + std::to_string(window) +
                " seconds), found " + std::to_string(out.login_attempt_retention_seconds));
  }
}

// The environment variables that may override a config value, and the JSON path they replace.
struct Override {
  const char* variable;
  const char* pointer;
  bool integer;
};
constexpr Override kOverrides[] = {
    {"SAMOKODER_ENVIRONMENT", "/environment", false},
    {"SAMOKODER_LISTEN", "/server/listen", false},
    {"SAMOKODER_IO_THREADS", "/server/io_threads", true},
    {"SAMOKODER_WORKER_THREADS", "/server/request_pool/threads", true},
    {"SAMOKODER_LOG_LEVEL", "/log/level", false},
    {"SAMOKODER_LOG_FORMAT", "/log/format", false},
    {"SAMOKODER_PLUGIN_DIR", "/plugin_dir", false},
    {"SAMOKODER_RUNTIME_DIR", "/runtime_dir", false},
    {"SAMOKODER_WORKSPACE_ROOT", "/workspace_root", false},
    {"SAMOKODER_CONSOLE_DIR", "/console/dir", false},
};

// Applies overrides to a copy of the document so they go through the same validation as the file.
json apply_overrides(json document, const std::map<std::string, std::string>& environment,
                     std::vector<std::string>& errors) {
  if (!document.is_object()) return document;
  for (const auto& o : kOverrides) {
    const auto it = environment.find(o.variable);
    if (it == environment.end()) continue;
    const json::json_pointer pointer(o.pointer);
    if (pointer.parent_pointer() != json::json_pointer() && document.contains(pointer.parent_pointer()) &&
        !document.at(pointer.parent_pointer()).is_object()) {
      continue;  // the file's own type error on the parent is reported by validation
    }
    if (o.integer) {
      std::int64_t value = 0;
      const auto& text = it->second;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size()) {
        errors.push_back(std::string(o.variable) + " (overrides " + o.pointer +
                         "): expected an integer, found \"" + text + "\"");
        continue;
      }
      document[pointer] = value;
    } else {
      document[pointer] = it->second;
    }
  }
  return document;
}

std::string join_errors(const std::vector<std::string>& errors) {
  std::string out =
      std::to_string(errors.size()) + (errors.size() == 1 ? " error" : " errors") + " in config:";
  for (const auto& e : errors)
    out += "\n  " + e;
  return out;
}

}  // namespace

std::string ListenAddress::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

sdk::Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress out;
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return sdk::Status::invalid_argument("expected \"[IPv6]:PORT\", found \"" + std::string(text) + "\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return sdk::Status::invalid_argument("expected \"HOST:PORT\", found \"" + std::string(text) + "\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value > 65535) {
    return sdk::Status::invalid_argument("expected \"HOST:PORT\" with a port from 0 to 65535, found \"" +
                                         std::string(text) + "\"");
  }
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

sdk::Result<Config> parse_config(const json& document,
                                 const std::map<std::string, std::string>& environment) {
  std::vector<std::string> errors;
  const json effective = apply_overrides(document, environment, errors);
  Reader r(errors);
  Config config;
  if (!effective.is_object()) {
    r.error("", "the config must be a JSON object, found " + describe(effective));
    return sdk::Status::invalid_argument(join_errors(errors));
  }
  r.reject_unknown(effective, "",
                   {"$schema", "environment", "server", "log", "plugin_dir", "runtime_dir",
                    "drain_timeout_ms", "watch_plugins", "plugins", "security", "housekeeping", "limits",
                    "http_client", "processes", "llm", "runs", "previews", "console", "workspace_root"});
  std::string environment_name = "development";
  r.string(effective, "", "environment", environment_name, {"development", "production"});
  config.environment =
      environment_name == "production" ? Environment::kProduction : Environment::kDevelopment;
  if (const auto it = effective.find("server"); it != effective.end()) read_server(r, *it, config.server);
  if (const auto it = effective.find("log"); it != effective.end()) read_log(r, *it, config.log);
  if (const auto it = effective.find("security"); it != effective.end()) {
    read_security(r, *it, config.security);
  }
  if (const auto it = effective.find("housekeeping"); it != effective.end()) {
    read_housekeeping(r, *it, config.security, config.housekeeping);
  }
  if (const auto it = effective.find("limits"); it != effective.end()) read_limits(r, *it, config.limits);
  if (const auto it = effective.find("http_client"); it != effective.end()) {
    read_http_client(r, *it, config.http_client);
  }
  if (const auto it = effective.find("processes"); it != effective.end()) {
    read_processes(r, *it, config.processes);
  }
  if (const auto it = effective.find("runs"); it != effective.end()) read_runs(r, *it, config.runs);
  if (const auto it = effective.find("previews"); it != effective.end()) {
    read_previews(r, *it, config.previews);
  }
  if (const auto it = effective.find("console"); it != effective.end()) read_console(r, *it, config.console);
  {
    static const json kNoLlmSection = json::object();
    const auto it = effective.find("llm");
    read_llm(r, it == effective.end() ? kNoLlmSection : *it, environment, config.llm);
  }
  // Secrets come from the environment only (see read_security), never through the document.
  if (const auto it = environment.find("SAMOKODER_SECRET_KEY"); it != environment.end()) {
    config.security.secret_key = it->second;
  }
  if (const auto it = environment.find("SAMOKODER_PREVIOUS_SECRET_KEY"); it != environment.end()) {
    config.security.previous_secret_key = it->second;
  }
  std::string plugin_dir = config.plugins.plugin_dir.string();
  std::string runtime_dir = config.plugins.runtime_dir.string();
  r.string(effective, "", "plugin_dir", plugin_dir);
  r.string(effective, "", "runtime_dir", runtime_dir);
  config.plugins.plugin_dir = plugin_dir;
  config.plugins.runtime_dir = runtime_dir;
  std::string workspace_root = config.workspace_root.string();
  r.string(effective, "", "workspace_root", workspace_root);
  if (workspace_root.empty()) r.error("/workspace_root", "must not be empty");
  config.workspace_root = workspace_root;
  r.integer(effective, "", "drain_timeout_ms", config.plugins.drain_timeout_ms, 0, 3600 * 1000);
  r.boolean(effective, "", "watch_plugins", config.plugins.watch);
  if (const auto it = effective.find("plugins"); it != effective.end()) {
    read_plugins(r, *it, config.plugins.plugins);
  } else {
    config.plugins.plugins = default_plugins();
  }
  if (!errors.empty()) return sdk::Status::invalid_argument(join_errors(errors));
  if (const auto url = environment.find("SAMOKODER_DATABASE_URL");
      url != environment.end() && !url->second.empty()) {
    select_postgres_storage(config.plugins.plugins);
  }
  return config;
}

namespace {

PluginEntry plugin_entry(std::string id, std::string file, bool required = false, bool enabled = true) {
  PluginEntry entry;
  entry.id = std::move(id);
  entry.file = std::move(file);
  entry.required = required;
  entry.enabled = enabled;
  return entry;
}

}  // namespace

const std::vector<std::string>& default_pipeline() {
  static const std::vector<std::string> pipeline = {
      "agent.error_handler", "agent.spec_writer", "agent.architect",      "agent.bootstrap",
      "agent.tech_lead",     "agent.tech_writer", "agent.task_completer", "agent.developer",
      "agent.code_monkey",   "agent.executor",    "agent.troubleshooter"};
  return pipeline;
}

std::vector<PluginEntry> default_plugins() {
  PluginEntry sqlite = plugin_entry("storage.sqlite", "storage_sqlite.so", true);
  sqlite.config = {{"path", "var/samokoder.db"}};
  std::vector<PluginEntry> plugins = {
      sqlite,
      plugin_entry("storage.postgres", "storage_postgres.so", true, false),
      plugin_entry("auth.local", "auth_local.so", true),
      plugin_entry("auth.apitoken", "auth_apitoken.so"),
      // The providers the built-in llm section names; not required: a server without a model still
      // serves everything else, and says why a call failed.
      plugin_entry("llm.openai", "llm_openai.so"),
      plugin_entry("llm.anthropic", "llm_anthropic.so"),
      // Previews: the sandboxed runner first; the unsandboxed one only when ops enable it knowingly.
      plugin_entry("preview.sandbox", "preview_sandbox.so"),
      plugin_entry("preview.process", "preview_process.so", false, false),
      plugin_entry("preview.static", "preview_static.so"),
  };
  // The pipeline's agents, each from agent_<name>.so.
  for (const auto& id : default_pipeline())
    plugins.push_back(plugin_entry(id, "agent_" + id.substr(std::string_view("agent.").size()) + ".so"));
  return plugins;
}

void select_postgres_storage(std::vector<PluginEntry>& plugins) {
  bool found = false;
  for (auto& entry : plugins) {
    if (!entry.id.starts_with("storage.")) continue;
    const bool postgres = entry.id == "storage.postgres";
    entry.enabled = postgres;
    found = found || postgres;
  }
  if (!found) {
    PluginEntry postgres;
    postgres.id = "storage.postgres";
    postgres.file = "storage_postgres.so";
    postgres.required = true;
    plugins.push_back(std::move(postgres));
  }
}

sdk::Result<Config> load_config_file(const std::filesystem::path& path,
                                     const std::map<std::string, std::string>& environment) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return sdk::Status::not_found("cannot open config file " + path.string());
  json document;
  try {
    document = json::parse(in, /*cb=*/nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    return sdk::Status::invalid_argument(path.string() + ": not valid JSON: " + e.what());
  }
  auto parsed = parse_config(document, environment);
  if (!parsed.ok()) return sdk::Status::invalid_argument(path.string() + ": " + parsed.status().message());
  parsed->source = path;
  return parsed;
}

LlmConfig default_llm_config() {
  LlmConfig out;
  out.providers["openai"] = {.plugin = "llm.openai",
                             .api_key_env = "OPENAI_API_KEY",
                             .key_required = true,
                             .base_url = {},
                             .api_key = {}};
  out.providers["anthropic"] = {.plugin = "llm.anthropic",
                                .api_key_env = "ANTHROPIC_API_KEY",
                                .key_required = true,
                                .base_url = {},
                                .api_key = {}};
  out.roles["default"] = {"openai/gpt-4o-mini"};
  return out;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return out;
}

}  // namespace samokoder::config
