#include "app/config_reload.hpp"

namespace samokoder::app {

std::vector<SettingChange> changed_settings(const config::Config& running, const config::Config& next) {
  std::vector<SettingChange> out;
  constexpr Apply kLive = Apply::kLive;
  constexpr Apply kRestart = Apply::kRestart;
  // One row per setting: its JSON path, the member that holds it, and how a reload treats a change. A
  // macro, because the member is a path through nested structs that no member pointer can name.
#define SETTING(path, member, apply)                                    \
  do {                                                                  \
    if (!(running.member == next.member)) out.push_back({path, apply}); \
  } while (false)

  SETTING("environment", environment, kRestart);
  // The listener, threads, queues, limits and CORS headers are built into the HTTP server when it starts;
  // its timeouts are atomics it reads per connection and per call (http::Server::apply_live).
  SETTING("server.listen", server.listen.to_string(), kRestart);
  SETTING("server.io_threads", server.io_threads, kRestart);
  SETTING("server.request_pool.threads", server.request_pool.threads, kRestart);
  SETTING("server.request_pool.queue_limit", server.request_pool.queue_limit, kRestart);
  SETTING("server.request_pool.call_timeout_ms", server.request_pool.call_timeout_ms, kLive);
  SETTING("server.plugin_pool.threads", server.plugin_pool.threads, kRestart);
  SETTING("server.plugin_pool.queue_limit", server.plugin_pool.queue_limit, kRestart);
  SETTING("server.plugin_pool.call_timeout_ms", server.plugin_pool.call_timeout_ms, kLive);
  // The task pool belongs to the task scheduler, which takes its deadline live like the server's pools.
  SETTING("server.task_pool.threads", server.task_pool.threads, kRestart);
  SETTING("server.task_pool.queue_limit", server.task_pool.queue_limit, kRestart);
  SETTING("server.task_pool.call_timeout_ms", server.task_pool.call_timeout_ms, kLive);
  SETTING("server.max_body_bytes", server.max_body_bytes, kRestart);
  SETTING("server.max_header_bytes", server.max_header_bytes, kRestart);
  SETTING("server.keep_alive_timeout_ms", server.keep_alive_timeout_ms, kLive);
  SETTING("server.request_timeout_ms", server.request_timeout_ms, kLive);
  SETTING("server.shutdown_grace_ms", server.shutdown_grace_ms, kLive);
  SETTING("server.cors_allowed_origins", server.cors_allowed_origins, kRestart);
  // Level and format belong to the logging subsystem, which can be reconfigured at any time; the access
  // log is a switch the HTTP server reads per request.
  SETTING("log.level", log.level, kLive);
  SETTING("log.format", log.format, kLive);
  SETTING("log.access_log", log.access_log, kLive);
  // PluginManager::apply_config takes these with the plugin list.
  SETTING("plugin_dir", plugins.plugin_dir, kLive);
  SETTING("runtime_dir", plugins.runtime_dir, kLive);
  SETTING("drain_timeout_ms", plugins.drain_timeout_ms, kLive);
  // The watcher thread is started with the server.
  SETTING("watch_plugins", plugins.watch, kRestart);
  // The API context reads these per request from the snapshot ApiContext::apply_security publishes.
  SETTING("security.access_token_ttl_seconds", security.access_token_ttl_seconds, kLive);
  SETTING("security.refresh_token_ttl_seconds", security.refresh_token_ttl_seconds, kLive);
  SETTING("security.session_max_age_seconds", security.session_max_age_seconds, kLive);
  SETTING("security.lockout.max_failures", security.lockout_max_failures, kLive);
  SETTING("security.lockout.window_seconds", security.lockout_window_seconds, kLive);
  SETTING("security.address_throttle.max_failures", security.address_max_failures, kLive);
  SETTING("security.address_throttle.window_seconds", security.address_window_seconds, kLive);
  SETTING("security.rate_limits", security.rate_limits, kLive);
  // It names the cookies every signed-in browser holds: changing it live would sign them all out.
  SETTING("security.cookie_secure", security.cookie_secure, kRestart);
  SETTING("security.trust_forwarded_for", security.trust_forwarded_for, kLive);
  SETTING("security.session_check_cache_ms", security.session_check_cache_ms, kLive);
  // secret_key and previous_secret_key are not compared: they come from the environment of the running
  // process, which does not change while it runs.
  // The housekeeping thread is built from these at startup.
  SETTING("housekeeping.enabled", housekeeping.enabled, kRestart);
  SETTING("housekeeping.interval_seconds", housekeeping.interval_seconds, kRestart);
  SETTING("housekeeping.jitter_seconds", housekeeping.jitter_seconds, kRestart);
  SETTING("housekeeping.login_attempt_retention_seconds", housekeeping.login_attempt_retention_seconds,
          kRestart);
  // The export gate and the quota checks are built from these at startup.
  SETTING("limits.export_max_bytes", limits.export_max_bytes, kRestart);
  SETTING("limits.concurrent_exports_per_user", limits.concurrent_exports_per_user, kRestart);
  SETTING("limits.concurrent_exports", limits.concurrent_exports, kRestart);
  SETTING("limits.workspace_bytes_per_user", limits.workspace_bytes_per_user, kRestart);
  SETTING("limits.files_per_user", limits.files_per_user, kRestart);
  // The outbound HTTP service (its TLS context, pool and threads) is built from these at startup.
  SETTING("http_client.extra_ca_file", http_client.extra_ca_file, kRestart);
  SETTING("http_client.connect_timeout_ms", http_client.connect_timeout_ms, kRestart);
  SETTING("http_client.first_byte_timeout_ms", http_client.first_byte_timeout_ms, kRestart);
  SETTING("http_client.idle_timeout_ms", http_client.idle_timeout_ms, kRestart);
  SETTING("http_client.total_timeout_ms", http_client.total_timeout_ms, kRestart);
  SETTING("http_client.max_response_bytes", http_client.max_response_bytes, kRestart);
  SETTING("http_client.max_request_bytes", http_client.max_request_bytes, kRestart);
  SETTING("http_client.pool_max_idle_per_host", http_client.pool_max_idle_per_host, kRestart);
  SETTING("http_client.pool_idle_timeout_ms", http_client.pool_idle_timeout_ms, kRestart);
  SETTING("http_client.threads", http_client.threads, kRestart);
  // The process service is built from these at startup; its records must stay where the next start looks.
  SETTING("processes.state_dir", processes.state_dir, kRestart);
  SETTING("processes.default_timeout_ms", processes.default_timeout_ms, kRestart);
  SETTING("processes.kill_grace_ms", processes.kill_grace_ms, kRestart);
  SETTING("processes.output_limit_bytes", processes.output_limit_bytes, kRestart);
  SETTING("processes.default_limits.cpu_seconds", processes.default_limits.cpu_seconds, kRestart);
  SETTING("processes.default_limits.address_space_bytes", processes.default_limits.address_space_bytes,
          kRestart);
  SETTING("processes.default_limits.processes", processes.default_limits.processes, kRestart);
  SETTING("processes.default_limits.file_size_bytes", processes.default_limits.file_size_bytes, kRestart);
  SETTING("processes.default_limits.open_files", processes.default_limits.open_files, kRestart);
  // The LLM gateway is built from the whole section at startup, and the provider keys it names are read
  // from the environment only then; one entry, since no part of it is applied live.
  SETTING("llm", llm, kRestart);
  SETTING("runs", runs, kRestart);
  SETTING("previews", previews, kRestart);
  // The console's files are read once at startup (and its policy names the preview origin).
  SETTING("console", console, kRestart);
  // Project routes keep it in their state from startup; moving it would strand every working copy.
  SETTING("workspace_root", workspace_root, kRestart);
#undef SETTING
  return out;
}

}  // namespace samokoder::app
