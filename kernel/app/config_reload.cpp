#include "app/config_reload.hpp"

namespace samokoder::app {

std::vector<SettingChange> changed_settings(const config::Config& running, const config::Config& next) {
  std::vector<SettingChange> out;
  auto compare = [&](const char* path, const auto& now, const auto& then, Apply apply) {
    if (!(now == then)) out.push_back({path, apply});
  };
  const auto& a = running;
  const auto& b = next;
  constexpr Apply kLive = Apply::kLive;
  constexpr Apply kRestart = Apply::kRestart;

  compare("environment", a.environment, b.environment, kRestart);
  // The listener, threads, queues, limits and CORS headers are built into the HTTP server when it starts;
  // its timeouts are atomics it reads per connection and per call (http::Server::apply_live).
  compare("server.listen", a.server.listen.to_string(), b.server.listen.to_string(), kRestart);
  compare("server.io_threads", a.server.io_threads, b.server.io_threads, kRestart);
  compare("server.request_pool.threads", a.server.request_pool.threads, b.server.request_pool.threads,
          kRestart);
  compare("server.request_pool.queue_limit", a.server.request_pool.queue_limit,
          b.server.request_pool.queue_limit, kRestart);
  compare("server.request_pool.call_timeout_ms", a.server.request_pool.call_timeout_ms,
          b.server.request_pool.call_timeout_ms, kLive);
  compare("server.plugin_pool.threads", a.server.plugin_pool.threads, b.server.plugin_pool.threads, kRestart);
  compare("server.plugin_pool.queue_limit", a.server.plugin_pool.queue_limit,
          b.server.plugin_pool.queue_limit, kRestart);
  compare("server.plugin_pool.call_timeout_ms", a.server.plugin_pool.call_timeout_ms,
          b.server.plugin_pool.call_timeout_ms, kLive);
  compare("server.max_body_bytes", a.server.max_body_bytes, b.server.max_body_bytes, kRestart);
  compare("server.max_header_bytes", a.server.max_header_bytes, b.server.max_header_bytes, kRestart);
  compare("server.keep_alive_timeout_ms", a.server.keep_alive_timeout_ms, b.server.keep_alive_timeout_ms,
          kLive);
  compare("server.request_timeout_ms", a.server.request_timeout_ms, b.server.request_timeout_ms, kLive);
  compare("server.shutdown_grace_ms", a.server.shutdown_grace_ms, b.server.shutdown_grace_ms, kLive);
  compare("server.cors_allowed_origins", a.server.cors_allowed_origins, b.server.cors_allowed_origins,
          kRestart);
  // Level and format belong to the logging subsystem, which can be reconfigured at any time; the access
  // log is a switch the HTTP server reads per request.
  compare("log.level", a.log.level, b.log.level, kLive);
  compare("log.format", a.log.format, b.log.format, kLive);
  compare("log.access_log", a.log.access_log, b.log.access_log, kLive);
  // PluginManager::apply_config takes these with the plugin list.
  compare("plugin_dir", a.plugins.plugin_dir, b.plugins.plugin_dir, kLive);
  compare("runtime_dir", a.plugins.runtime_dir, b.plugins.runtime_dir, kLive);
  compare("drain_timeout_ms", a.plugins.drain_timeout_ms, b.plugins.drain_timeout_ms, kLive);
  // The watcher thread is started with the server.
  compare("watch_plugins", a.plugins.watch, b.plugins.watch, kRestart);
  // The API context reads these per request from the snapshot ApiContext::apply_security publishes.
  const auto& s = a.security;
  const auto& t = b.security;
  compare("security.access_token_ttl_seconds", s.access_token_ttl_seconds, t.access_token_ttl_seconds, kLive);
  compare("security.refresh_token_ttl_seconds", s.refresh_token_ttl_seconds, t.refresh_token_ttl_seconds,
          kLive);
  compare("security.session_max_age_seconds", s.session_max_age_seconds, t.session_max_age_seconds, kLive);
  compare("security.lockout.max_failures", s.lockout_max_failures, t.lockout_max_failures, kLive);
  compare("security.lockout.window_seconds", s.lockout_window_seconds, t.lockout_window_seconds, kLive);
  compare("security.address_throttle.max_failures", s.address_max_failures, t.address_max_failures, kLive);
  compare("security.address_throttle.window_seconds", s.address_window_seconds, t.address_window_seconds,
          kLive);
  compare("security.rate_limits", s.rate_limits, t.rate_limits, kLive);
  // It names the cookies every signed-in browser holds: changing it live would sign them all out.
  compare("security.cookie_secure", s.cookie_secure, t.cookie_secure, kRestart);
  compare("security.trust_forwarded_for", s.trust_forwarded_for, t.trust_forwarded_for, kLive);
  compare("security.session_check_cache_ms", s.session_check_cache_ms, t.session_check_cache_ms, kLive);
  // secret_key and previous_secret_key are not compared: they come from the environment of the running
  // process, which does not change while it runs.
  // The housekeeping thread is built from these at startup.
  compare("housekeeping.enabled", a.housekeeping.enabled, b.housekeeping.enabled, kRestart);
  compare("housekeeping.interval_seconds", a.housekeeping.interval_seconds, b.housekeeping.interval_seconds,
          kRestart);
  compare("housekeeping.jitter_seconds", a.housekeeping.jitter_seconds, b.housekeeping.jitter_seconds,
          kRestart);
  compare("housekeeping.login_attempt_retention_seconds", a.housekeeping.login_attempt_retention_seconds,
          b.housekeeping.login_attempt_retention_seconds, kRestart);
  // The export gate and the quota checks are built from these at startup.
  compare("limits.export_max_bytes", a.limits.export_max_bytes, b.limits.export_max_bytes, kRestart);
  compare("limits.concurrent_exports_per_user", a.limits.concurrent_exports_per_user,
          b.limits.concurrent_exports_per_user, kRestart);
  compare("limits.concurrent_exports", a.limits.concurrent_exports, b.limits.concurrent_exports, kRestart);
  compare("limits.workspace_bytes_per_user", a.limits.workspace_bytes_per_user,
          b.limits.workspace_bytes_per_user, kRestart);
  compare("limits.files_per_user", a.limits.files_per_user, b.limits.files_per_user, kRestart);
  // Project routes keep it in their state from startup; moving it would strand every working copy.
  compare("workspace_root", a.workspace_root, b.workspace_root, kRestart);
  return out;
}

}  // namespace samokoder::app
