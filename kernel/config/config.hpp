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
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::config {

struct ListenAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 picks a free port
  std::string to_string() const;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// One bounded pool of threads for blocking handlers (see http/work_pool.hpp).
struct WorkPoolConfig {
  unsigned threads = 4;
  std::uint32_t queue_limit = 1024;       // requests waiting for a thread; one more is answered 503
  std::uint32_t call_timeout_ms = 60000;  // a call running longer is answered 504 and counted stuck
  friend bool operator==(const WorkPoolConfig&, const WorkPoolConfig&) = default;
};

struct ServerConfig {
  ListenAddress listen;
  unsigned io_threads = 2;  // threads running the HTTP event loop; they never block
  // Request work: storage, hashing, sessions ("worker_threads" in older files means its threads).
  WorkPoolConfig request_pool;
  // Long plugin calls: agents, LLM providers, previews, plugin reloads.
  WorkPoolConfig plugin_pool{.threads = 4, .queue_limit = 64, .call_timeout_ms = 300000};
  // Plugins' background tasks and timer runs (HostServices::scheduler); past the deadline a task's
  // cancel token fires.
  WorkPoolConfig task_pool{.threads = 2, .queue_limit = 256, .call_timeout_ms = 600000};
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::uint32_t keep_alive_timeout_ms = 30000;  // an idle keep-alive connection is closed after this
  std::uint32_t request_timeout_ms = 30000;     // reading one request may take at most this
  std::uint32_t shutdown_grace_ms = 10000;      // in-flight requests get this long on shutdown
  std::vector<std::string> cors_allowed_origins;
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error
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
  // Development only: reload a plugin when its file changes (polled once a second). Off by default.
  bool watch = false;
  std::vector<PluginEntry> plugins;
};

// One token bucket: `capacity` requests at once, refilled at refill_per_minute.
struct RateLimitConfig {
  std::uint32_t capacity = 100;
  std::uint32_t refill_per_minute = 100;
  friend bool operator==(const RateLimitConfig&, const RateLimitConfig&) = default;
};

// Identity and abuse protection (docs/ops.md "security", docs/security.md).
struct SecurityConfig {
  std::uint32_t access_token_ttl_seconds = 15 * 60;
  std::uint32_t refresh_token_ttl_seconds = 7 * 24 * 3600;  // each refresh token; rotation renews it
  std::uint32_t session_max_age_seconds = 30 * 24 * 3600;   // a login ends after this, refreshed or not
  std::uint32_t lockout_max_failures = 5;                   // failed logins of one account ...
  std::uint32_t lockout_window_seconds = 15 * 60;           // ... within this window lock it
  std::uint32_t address_max_failures = 20;                  // failed logins from one address ...
  std::uint32_t address_window_seconds = 15 * 60;           // ... within this window throttle it
  // Token buckets per route group, per client address and per principal; "default" applies to
  // groups without an entry. The file's entries are merged over these.
  std::map<std::string, RateLimitConfig> rate_limits = {{"auth", {5, 5}}, {"default", {100, 100}}};
  // Secure cookies; unset: only in production.
  std::optional<bool> cookie_secure;
  // Take the client address from the last hop of X-Forwarded-For (only behind a trusted proxy).
  bool trust_forwarded_for = false;
  // How long an access token's storage check (revocation, session, user) is reused on this node;
  // changes made on other nodes reach it within this time. 0 reads storage on every request.
  std::uint32_t session_check_cache_ms = 1000;
  // From SAMOKODER_SECRET_KEY and SAMOKODER_PREVIOUS_SECRET_KEY only, never from the file.
  std::string secret_key;
  std::string previous_secret_key;
};

// The periodic purge of expired and unreferenced rows (docs/ops.md "housekeeping").
struct HousekeepingConfig {
  bool enabled = true;
  // A pass starts interval_seconds plus a random 0..jitter_seconds after startup and after the previous
  // pass, so nodes started together do not hit the database together.
  std::uint32_t interval_seconds = 3600;
  std::uint32_t jitter_seconds = 300;  // at most interval_seconds
  // Login attempts are kept this long: at least the lockout and address-throttle windows, which count
  // them (the default is their longest allowed window).
  std::uint32_t login_attempt_retention_seconds = 7 * 24 * 3600;
};

// Bounds on heavy requests and per-user quotas (docs/ops.md "limits").
struct LimitsConfig {
  // An export holds the archive in memory: refuse projects whose files add up to more than this.
  std::uint64_t export_max_bytes = 256ULL * 1024 * 1024;
  std::uint32_t concurrent_exports_per_user = 2;
  std::uint32_t concurrent_exports = 8;  // across all users of this node
  // What one user's projects may hold at once (the newest version of each file; history is free).
  std::uint64_t workspace_bytes_per_user = 1024ULL * 1024 * 1024;
  std::uint64_t files_per_user = 100000;
};

// Outbound HTTP for plugins (kernel/outbound_http, docs/ops.md "http_client"). The timeouts and the
// response cap are defaults: a request may set its own.
struct HttpClientConfig {
  // PEM file of CA certificates trusted in addition to the system store (a private CA); empty: none.
  std::string extra_ca_file;
  std::uint32_t connect_timeout_ms = 10000;     // DNS, TCP, proxy CONNECT and TLS handshake together
  std::uint32_t first_byte_timeout_ms = 60000;  // from the request sent to the response's headers
  std::uint32_t idle_timeout_ms = 60000;        // the longest silence while the body streams
  std::uint32_t total_timeout_ms = 600000;      // a whole request
  std::uint64_t max_response_bytes = 64ULL * 1024 * 1024;
  std::uint64_t max_request_bytes = 16ULL * 1024 * 1024;
  std::uint32_t pool_max_idle_per_host = 8;    // idle keep-alive connections kept per host
  std::uint32_t pool_idle_timeout_ms = 30000;  // an idle connection older than this is closed
  std::uint32_t threads = 1;                   // the service's own event-loop threads
};

// Child processes started for plugins (docs/ops.md "processes"). A limit of 0 means unlimited.
struct ProcessLimitsConfig {
  std::uint64_t cpu_seconds = 0;
  std::uint64_t address_space_bytes = 0;
  std::uint64_t processes = 0;
  std::uint64_t file_size_bytes = 0;
  std::uint64_t open_files = 1024;
};

struct ProcessesConfig {
  // One small record per live child, written before it runs, so the next start after a crash finds
  // and ends the children of the run that died. Empty keeps no records (tests of one process only).
  std::filesystem::path state_dir = "var/run/processes";
  std::uint32_t default_timeout_ms = 600000;       // a spec without a timeout gets this one
  std::uint32_t kill_grace_ms = 5000;              // from SIGTERM to SIGKILL of a child's group
  std::uint64_t output_limit_bytes = 1024 * 1024;  // captured per stream; also the most a spec may ask
  ProcessLimitsConfig default_limits;
};

// The runs engine (kernel/runs, docs/ops.md "Runs"): which agents make the pipeline and how runs are
// bounded, leased and parallelised.
struct RunLimitsConfig {
  std::uint32_t max_steps = 500;              // committed steps per run
  std::uint64_t max_tokens = 5000000;         // prompt plus completion tokens per run; 0: no limit
  std::int64_t max_cost_micro_usd = 0;        // per run; 0: no limit
  std::uint32_t max_wall_seconds = 6 * 3600;  // from the run's start; 0: no limit
  std::uint32_t loop_repeats = 3;             // the same state this many times pauses the run

  friend bool operator==(const RunLimitsConfig&, const RunLimitsConfig&) = default;
};

// The agent pipeline of docs/pipeline.md, in the order its agents are asked: the runs.pipeline of a
// config that names none, and the agent plugins of the embedded plugin list.
const std::vector<std::string>& default_pipeline();

struct RunsConfig {
  // Agent plugin ids in the order they are asked whether they want the current state.
  std::vector<std::string> pipeline = default_pipeline();
  RunLimitsConfig limits;  // defaults; a run may ask for lower ones
  // Threads that run agent steps (a step blocks one while its model call streams). Bounds the runs
  // one node works on at once.
  std::uint32_t workers = 64;
  std::uint32_t max_parallel_per_run = 4;  // fan-out branches of one run at once
  std::uint32_t lease_seconds = 30;        // a dead node's runs are taken over after this
  // How often a node looks for claimable runs (at least once a second whatever the value) and re-reads
  // the events of watched runs that another node executes (at most every 100 ms).
  std::uint32_t poll_interval_ms = 1000;
  std::uint32_t command_timeout_ms = 600000;  // a step's command without a timeout of its own
  // The preview runner plugin that confines agents' commands (PreviewRunner::contain_command), or
  // "none": they run as plain children of the kernel (own process group, clean environment, rlimits),
  // which an operator must choose knowingly.
  std::string command_containment = "preview.sandbox";

  friend bool operator==(const RunsConfig&, const RunsConfig&) = default;
};

// The LLM gateway (kernel/llm, docs/ops.md "LLM providers and models").
struct LlmProviderConfig {
  std::string plugin;        // the LlmProvider plugin's id; default "llm.<provider name>"
  std::string api_key_env;   // the variable holding the server-wide key; empty: none
  bool key_required = true;  // false for local endpoints (Ollama, llama.cpp) that take no key
  // The endpoint this provider's requests go to ("http(s)://host[:port]/path", no query); empty: the
  // plugin's own (its config, then OPENAI_BASE_URL / ANTHROPIC_BASE_URL). Lets one plugin serve several
  // providers: "ollama" and "openrouter" both on llm.openai, each with its endpoint and key.
  std::string base_url;
  // The value of api_key_env, read once from the environment parse_config was given. Never from the
  // file, never logged, never quoted in an error.
  std::string api_key;
  friend bool operator==(const LlmProviderConfig&, const LlmProviderConfig&) = default;
};

// Prices in USD per million tokens; cached prompt tokens (read from the provider's cache) are billed
// at their own price instead of the prompt price.
struct LlmPrice {
  double prompt_usd_per_mtok = 0;
  double completion_usd_per_mtok = 0;
  double cached_prompt_usd_per_mtok = 0;
  friend bool operator==(const LlmPrice&, const LlmPrice&) = default;
};

struct LlmConfig {
  // By provider name (what users store keys under); the file's entries are merged over
  // {openai: llm.openai with OPENAI_API_KEY, anthropic: llm.anthropic with ANTHROPIC_API_KEY}.
  std::map<std::string, LlmProviderConfig> providers;
  // By agent role: "provider/model" entries tried in order; a role without an entry uses "default".
  // The file's entries are merged over {default: [openai/gpt-4o-mini]}.
  std::map<std::string, std::vector<std::string>> roles;
  std::uint32_t retry_max_attempts = 4;  // per chain entry, the first try included
  std::uint32_t retry_initial_backoff_ms = 500;
  std::uint32_t retry_max_backoff_ms = 20000;
  std::uint32_t connect_timeout_ms = 10000;
  std::uint32_t first_token_timeout_ms = 60000;
  std::uint32_t idle_timeout_ms = 60000;
  std::uint32_t total_timeout_ms = 600000;   // a whole logical call: every attempt, backoff and re-ask
  std::uint32_t json_reasks = 1;             // extra asks after an answer that is not the JSON asked for
  std::uint32_t models_cache_seconds = 600;  // how long GET /api/v1/models keeps an endpoint's live list
  std::map<std::string, LlmPrice> prices;    // by "provider/model"; a model without a price costs 0
  // 0: no budget. Daily budgets count the user's requests since 00:00 UTC.
  std::uint64_t user_daily_tokens = 0;
  double user_daily_cost_usd = 0;
  std::uint64_t run_tokens = 0;
  double run_cost_usd = 0;
  friend bool operator==(const LlmConfig&, const LlmConfig&) = default;
};

// The built-in llm section (providers and roles before the file's entries are merged over them).
LlmConfig default_llm_config();

enum class Environment { kDevelopment, kProduction };

// Live previews (kernel/previews, docs/ops.md "Previews"): which runners, the proxy's listener and
// origin, and the limits around them.
struct PreviewsConfig {
  // Preview runner plugin ids in order of preference: the first that knows how to run a workspace
  // runs it (a runner that finds nothing it can run passes the workspace on to the next).
  std::vector<std::string> runners = {"preview.sandbox", "preview.static"};
  // The proxy's own listener: previews are served from an origin other than the API's. Port 0 picks
  // a free port, and so does a server whose own server.listen port is 0 (tests, embedded use).
  ListenAddress listen{"127.0.0.1", 8081};
  // The origin a browser reaches a preview at; "{project}" becomes the project id and "{port}" the
  // listener's port. Each project gets a host name of its own, p-<id>.<domain>, so one preview's
  // scripts cannot read another's cookies or storage; *.localhost resolves to loopback in browsers.
  std::string public_url = "http://p-{project}.localhost:{port}";
  std::uint32_t proxy_threads = 2;
  // Loopback ports handed to previews (PORT); never two previews the same one.
  std::uint16_t port_first = 20000;
  std::uint16_t port_last = 29999;
  std::uint32_t max_per_user = 3;               // running or starting, per owner
  std::uint32_t max_total = 32;                 // on this node
  std::uint32_t idle_stop_seconds = 1800;       // no proxied request for this long stops a preview; 0: never
  std::uint32_t ttl_seconds = 4 * 3600;         // a preview ends this long after it started; 0: never
  std::uint32_t debounce_ms = 300;              // file changes closer together reach the runner as one
  std::uint32_t grant_ttl_seconds = 12 * 3600;  // how long the preview cookie a browser gets is good for
  std::uint64_t max_body_bytes = 32ULL * 1024 * 1024;  // a proxied request body
  std::uint32_t upstream_timeout_ms = 120000;          // for the app's response head

  friend bool operator==(const PreviewsConfig&, const PreviewsConfig&) = default;
};

// The web console (kernel/console, docs/ops.md "The web console"): the built front end the server
// serves at "/" from the API's own origin.
struct ConsoleConfig {
  bool enabled = true;
  // The folder the console's build wrote (index.html, assets/). Empty: share/samokoder/console beside
  // the executable's bin/ folder, where both the build tree and an install put it; a missing default
  // folder only turns the console off with a warning, a configured one that is missing fails startup.
  std::filesystem::path dir;

  friend bool operator==(const ConsoleConfig&, const ConsoleConfig&) = default;
};

struct Config {
  Environment environment = Environment::kDevelopment;
  ServerConfig server;
  LogConfig log;
  PluginsConfig plugins;
  SecurityConfig security;
  HousekeepingConfig housekeeping;
  LimitsConfig limits;
  HttpClientConfig http_client;
  ProcessesConfig processes;
  LlmConfig llm = default_llm_config();
  RunsConfig runs;
  PreviewsConfig previews;
  ConsoleConfig console;
  // Each project's working copy lives in <workspace_root>/<project id> (created 0700); relative paths
  // are relative to the working directory, like runtime_dir.
  std::filesystem::path workspace_root = "var/workspaces";
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

// The plugins of a config without a "plugins" key: storage.sqlite (required, ./var/samokoder.db),
// storage.postgres (disabled until SAMOKODER_DATABASE_URL is set), auth.local (required: password
// sign-in), auth.apitoken (personal access tokens), llm.openai and llm.anthropic, and the preview
// runners preview.sandbox, preview.process (disabled: it does not contain the app) and preview.static.
std::vector<PluginEntry> default_plugins();

// What SAMOKODER_DATABASE_URL does: storage.postgres becomes the one enabled storage plugin (added
// with defaults if the config lacks it; the plugin reads the URL from the environment itself) and
// every other storage plugin is disabled.
void select_postgres_storage(std::vector<PluginEntry>& plugins);

// The environment of the current process: the SAMOKODER_* overrides and the variables
// llm.providers.*.api_key_env names (which the config cannot know before it is parsed).
std::map<std::string, std::string> process_environment();

// Parses "HOST:PORT" (IPv6 as "[::1]:8080").
sdk::Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace samokoder::config
