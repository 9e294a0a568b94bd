#include "config/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "temp_dir.hpp"

namespace samokoder::config {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

Config parse_ok(const json& doc, const std::map<std::string, std::string>& env = {}) {
  auto result = parse_config(doc, env);
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  return result.ok() ? *result : Config{};
}

std::string parse_error(const json& doc, const std::map<std::string, std::string>& env = {}) {
  auto result = parse_config(doc, env);
  EXPECT_FALSE(result.ok()) << "expected the config to be rejected: " << doc.dump();
  return result.ok() ? "" : result.status().message();
}

TEST(ConfigTest, ErrorsQuotingAValueQuoteNoUrlPassword) {
  const std::string password = "Zq7S3cretPw";
  for (const json& value :
       {json("postgres://app:" + password + "@db.internal:5432/samokoder"),
        json("host=db password=" + password), json{{"url", "postgres://a:" + password + "@b/c"}}}) {
    const std::string error = parse_error(json{
        {"plugins", json::array({{{"id", "storage.postgres"}, {"file", "s.so"}, {"required", value}}})}});
    EXPECT_THAT(error, HasSubstr("/plugins/0/required")) << error;
    EXPECT_THAT(error, ::testing::Not(HasSubstr(password))) << error;
  }
}

TEST(ConfigTest, ShippedDefaultConfigLoads) {
  auto result = load_config_file(std::string(SAMOKODER_SOURCE_DIR) + "/config/samokoder.json", {});
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->server.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(result->environment, Environment::kDevelopment);
}

TEST(ConfigTest, ShippedExamplesLoad) {
  auto result = load_config_file(std::string(SAMOKODER_SOURCE_DIR) + "/config/examples/production.json", {});
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result->environment, Environment::kProduction);
  EXPECT_EQ(result->log.format, "json");
}

TEST(ConfigTest, EmptyObjectGivesDefaults) {
  const Config config = parse_ok(json::object());
  EXPECT_EQ(config.server.io_threads, 2u);
  EXPECT_EQ(config.server.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(config.plugins.drain_timeout_ms, 30000u);
  // Without a plugins list the kernel runs on the embedded SQLite backend with password sign-in,
  // personal access tokens, the two model providers the built-in llm section names, and the preview
  // runners (the unsandboxed one off), and the agents of the default pipeline.
  ASSERT_EQ(config.plugins.plugins.size(), 9u + default_pipeline().size());
  EXPECT_EQ(config.plugins.plugins[0].id, "storage.sqlite");
  EXPECT_TRUE(config.plugins.plugins[0].enabled);
  EXPECT_TRUE(config.plugins.plugins[0].required);
  EXPECT_EQ(config.plugins.plugins[0].config["path"], "var/samokoder.db");
  EXPECT_EQ(config.plugins.plugins[1].id, "storage.postgres");
  EXPECT_FALSE(config.plugins.plugins[1].enabled);
  EXPECT_EQ(config.plugins.plugins[2].id, "auth.local");
  EXPECT_TRUE(config.plugins.plugins[2].required);
  EXPECT_EQ(config.plugins.plugins[3].id, "auth.apitoken");
  EXPECT_TRUE(config.plugins.plugins[3].enabled);
  for (std::size_t i : {4u, 5u}) {
    EXPECT_EQ(config.plugins.plugins[i].id, i == 4 ? "llm.openai" : "llm.anthropic");
    EXPECT_TRUE(config.plugins.plugins[i].enabled);
    EXPECT_FALSE(config.plugins.plugins[i].required) << "a server without a model still serves";
  }
  EXPECT_EQ(config.plugins.plugins[6].id, "preview.sandbox");
  EXPECT_TRUE(config.plugins.plugins[6].enabled);
  EXPECT_EQ(config.plugins.plugins[7].id, "preview.process");
  EXPECT_FALSE(config.plugins.plugins[7].enabled) << "running apps without isolation is opted into";
  EXPECT_EQ(config.plugins.plugins[8].id, "preview.static");
  EXPECT_EQ(config.previews.runners, (std::vector<std::string>{"preview.sandbox", "preview.static"}));
  EXPECT_EQ(config.runs.pipeline, default_pipeline());
  EXPECT_EQ(config.runs.pipeline.front(), "agent.error_handler");
  for (std::size_t i = 0; i < default_pipeline().size(); ++i) {
    const auto& entry = config.plugins.plugins[9 + i];
    EXPECT_EQ(entry.id, default_pipeline()[i]);
    EXPECT_EQ(entry.file, "agent_" + entry.id.substr(6) + ".so");
    EXPECT_TRUE(entry.enabled);
    EXPECT_FALSE(entry.required) << "a server whose agent failed to load still serves";
  }
  EXPECT_EQ(config.previews.listen.port, 8081);
}

TEST(ConfigTest, ShippedDefaultConfigMatchesTheEmbeddedDefaults) {
  auto file = load_config_file(std::string(SAMOKODER_SOURCE_DIR) + "/config/samokoder.json", {});
  ASSERT_TRUE(file.ok());
  const Config embedded = parse_ok(json::object());
  ASSERT_EQ(file->plugins.plugins.size(), embedded.plugins.plugins.size());
  for (std::size_t i = 0; i < embedded.plugins.plugins.size(); ++i) {
    EXPECT_EQ(file->plugins.plugins[i].id, embedded.plugins.plugins[i].id);
    EXPECT_EQ(file->plugins.plugins[i].file, embedded.plugins.plugins[i].file);
    EXPECT_EQ(file->plugins.plugins[i].enabled, embedded.plugins.plugins[i].enabled);
  }
  EXPECT_EQ(file->plugins.plugin_dir, embedded.plugins.plugin_dir);
  EXPECT_EQ(file->runs.pipeline, embedded.runs.pipeline);
  EXPECT_EQ(file->server.request_pool, embedded.server.request_pool);
  EXPECT_EQ(file->server.plugin_pool, embedded.server.plugin_pool);
}

TEST(ConfigTest, WorkPoolsAreReadAndWorkerThreadsStillSetsTheRequestPool) {
  const Config pools = parse_ok(json::parse(R"({"server": {
      "request_pool": {"threads": 3, "queue_limit": 0, "call_timeout_ms": 1000},
      "plugin_pool": {"threads": 2, "queue_limit": 5, "call_timeout_ms": 900000}}})"));
  EXPECT_EQ(pools.server.request_pool,
            (WorkPoolConfig{.threads = 3, .queue_limit = 0, .call_timeout_ms = 1000}));
  EXPECT_EQ(pools.server.plugin_pool,
            (WorkPoolConfig{.threads = 2, .queue_limit = 5, .call_timeout_ms = 900000}));

  EXPECT_EQ(parse_ok(json::parse(R"({"server": {"worker_threads": 7}})")).server.request_pool.threads, 7U);
  EXPECT_EQ(parse_ok(json::parse(R"({"server": {"worker_threads": 7, "request_pool": {"threads": 2}}})"))
                .server.request_pool.threads,
            2U);
  auto overridden =
      parse_config(json::parse(R"({"server": {"worker_threads": 7}})"), {{"SAMOKODER_WORKER_THREADS", "9"}});
  ASSERT_TRUE(overridden.ok()) << overridden.status().to_string();
  EXPECT_EQ(overridden->server.request_pool.threads, 9U);

  const std::string message = parse_error(json::parse(
      R"({"server": {"plugin_pool": {"threads": 0, "queue": 1, "call_timeout_ms": 5}, "request_pool": 3}})"));
  EXPECT_THAT(message, HasSubstr("/server/plugin_pool/threads:"));
  EXPECT_THAT(message, HasSubstr("/server/plugin_pool/queue: unknown key"));
  EXPECT_THAT(message, HasSubstr("/server/plugin_pool/call_timeout_ms:"));
  EXPECT_THAT(message, HasSubstr("/server/request_pool: expected an object"));
}

TEST(ConfigTest, DatabaseUrlSwitchesStorageToPostgres) {
  auto result = parse_config(json::object(), {{"SAMOKODER_DATABASE_URL", "postgresql://db/samokoder"}});
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->plugins.plugins[0].enabled);  // storage.sqlite
  EXPECT_TRUE(result->plugins.plugins[1].enabled);   // storage.postgres

  // A config without a postgres entry gets one.
  auto added = parse_config(json{{"plugins", json::array({{{"id", "storage.sqlite"}, {"file", "s.so"}}})}},
                            {{"SAMOKODER_DATABASE_URL", "postgresql://db/samokoder"}});
  ASSERT_TRUE(added.ok());
  ASSERT_EQ(added->plugins.plugins.size(), 2u);
  EXPECT_FALSE(added->plugins.plugins[0].enabled);
  EXPECT_EQ(added->plugins.plugins[1].id, "storage.postgres");
  EXPECT_TRUE(added->plugins.plugins[1].required);

  // An empty variable changes nothing.
  auto unset = parse_config(json::object(), {{"SAMOKODER_DATABASE_URL", ""}});
  ASSERT_TRUE(unset.ok());
  EXPECT_TRUE(unset->plugins.plugins[0].enabled);
}

TEST(ConfigTest, ReadsEveryField) {
  const Config config = parse_ok(json::parse(R"({
    "environment": "production",
    "server": {"listen": "[::1]:0", "io_threads": 3, "worker_threads": 5, "max_body_bytes": 10,
               "max_header_bytes": 2048, "keep_alive_timeout_ms": 500, "request_timeout_ms": 600,
               "shutdown_grace_ms": 0, "cors_allowed_origins": ["https://a.example"]},
    "log": {"level": "debug", "format": "json", "access_log": false},
    "plugin_dir": "/p", "runtime_dir": "/r", "drain_timeout_ms": 10,
    "plugins": [{"id": "storage.sqlite", "file": "storage_sqlite.so", "enabled": false, "required": true,
                 "config": {"path": "x.db"}}]
  })"));
  EXPECT_EQ(config.server.listen.host, "::1");
  EXPECT_EQ(config.server.listen.port, 0);
  EXPECT_EQ(config.server.listen.to_string(), "[::1]:0");
  EXPECT_EQ(config.server.io_threads, 3u);
  EXPECT_EQ(config.server.request_pool.threads, 5u);
  EXPECT_EQ(config.server.max_header_bytes, 2048u);
  EXPECT_EQ(config.server.cors_allowed_origins, std::vector<std::string>{"https://a.example"});
  EXPECT_EQ(config.log.level, "debug");
  EXPECT_FALSE(config.log.access_log);
  EXPECT_EQ(config.plugins.plugin_dir, "/p");
  ASSERT_EQ(config.plugins.plugins.size(), 1u);
  EXPECT_EQ(config.plugins.plugins[0].id, "storage.sqlite");
  EXPECT_FALSE(config.plugins.plugins[0].enabled);
  EXPECT_TRUE(config.plugins.plugins[0].required);
  EXPECT_EQ(config.plugins.plugins[0].config["path"], "x.db");
}

TEST(ConfigTest, UnknownKeyIsAnErrorNamingItsPath) {
  EXPECT_THAT(parse_error(json::parse(R"({"server": {"listen_addr": "x"}})")),
              HasSubstr("/server/listen_addr: unknown key"));
  EXPECT_THAT(parse_error(json::parse(R"({"plugins": [{"id": "a.b", "file": "f", "extra": 1}]})")),
              HasSubstr("/plugins/0/extra: unknown key"));
  EXPECT_THAT(parse_error(json::parse(R"({"colour": "blue"})")), HasSubstr("/colour: unknown key"));
}

TEST(ConfigTest, WrongTypeIsAnErrorNamingPathAndValue) {
  EXPECT_THAT(parse_error(json::parse(R"({"server": {"io_threads": "two"}})")),
              HasSubstr("/server/io_threads: expected an integer from 1 to 256, found \"two\""));
  EXPECT_THAT(parse_error(json::parse(R"({"log": {"access_log": "yes"}})")),
              HasSubstr("/log/access_log: expected true or false"));
  EXPECT_THAT(parse_error(json::parse(R"({"plugins": {}})")), HasSubstr("/plugins: expected an array"));
  EXPECT_THAT(parse_error(json::parse(R"({"server": []})")), HasSubstr("/server: expected an object"));
  EXPECT_THAT(parse_error(json::parse("[1,2]")), HasSubstr("must be a JSON object"));
}

TEST(ConfigTest, OutOfRangeAndBadEnumValuesAreRejected) {
  EXPECT_THAT(parse_error(json::parse(R"({"server": {"io_threads": 0}})")), HasSubstr("found 0"));
  EXPECT_THAT(parse_error(json::parse(R"({"log": {"level": "loud"}})")),
              HasSubstr("/log/level: expected one of trace, debug, info, warn, error"));
  EXPECT_THAT(parse_error(json::parse(R"({"server": {"listen": "localhost"}})")),
              HasSubstr("/server/listen: expected \"HOST:PORT\""));
  EXPECT_THAT(parse_error(json::parse(R"({"server": {"listen": "h:70000"}})")), HasSubstr("0 to 65535"));
}

TEST(ConfigTest, PluginEntriesAreValidated) {
  const std::string message =
      parse_error(json::parse(R"({"plugins": [{"file": "a.so"}, {"id": "Bad Id", "file": ""},
                                                        {"id": "a.b", "file": "f", "config": 3}]})"));
  EXPECT_THAT(message, HasSubstr("/plugins/0/id: required key is missing"));
  EXPECT_THAT(message, HasSubstr("/plugins/1/id: expected \"<kind>.<name>\""));
  EXPECT_THAT(message, HasSubstr("/plugins/1/file: must not be empty"));
  EXPECT_THAT(message, HasSubstr("/plugins/2/config: expected an object"));
}

TEST(ConfigTest, EveryErrorIsReportedAtOnce) {
  const std::string message =
      parse_error(json::parse(R"({"a": 1, "server": {"io_threads": -1, "worker_threads": "x"}, "log": 5})"));
  EXPECT_THAT(message, HasSubstr("4 errors in config"));
  EXPECT_THAT(message, HasSubstr("/a:"));
  EXPECT_THAT(message, HasSubstr("/server/io_threads:"));
  EXPECT_THAT(message, HasSubstr("/server/worker_threads:"));
  EXPECT_THAT(message, HasSubstr("/log:"));
}

TEST(ConfigTest, EnvironmentOverridesFileValues) {
  const Config config = parse_ok(json::parse(R"({"server": {"listen": "127.0.0.1:8080", "io_threads": 2}})"),
                                 {{"SAMOKODER_LISTEN", "0.0.0.0:9000"},
                                  {"SAMOKODER_IO_THREADS", "4"},
                                  {"SAMOKODER_ENVIRONMENT", "production"},
                                  {"SAMOKODER_PLUGIN_DIR", "/opt/plugins"},
                                  {"SAMOKODER_LOG_LEVEL", "warn"}});
  EXPECT_EQ(config.server.listen.to_string(), "0.0.0.0:9000");
  EXPECT_EQ(config.server.io_threads, 4u);
  EXPECT_EQ(config.environment, Environment::kProduction);
  EXPECT_EQ(config.plugins.plugin_dir, "/opt/plugins");
  EXPECT_EQ(config.log.level, "warn");
}

TEST(ConfigTest, InvalidEnvironmentOverrideNamesTheVariable) {
  EXPECT_THAT(parse_error(json::object(), {{"SAMOKODER_IO_THREADS", "many"}}),
              HasSubstr("SAMOKODER_IO_THREADS (overrides /server/io_threads): expected an integer"));
  EXPECT_THAT(parse_error(json::object(), {{"SAMOKODER_ENVIRONMENT", "staging"}}),
              HasSubstr("/environment: expected one of development, production"));
}

TEST(ConfigTest, FileErrorsNameTheFile) {
  testing::TempDir dir;
  const auto bad_json = dir.write("bad.json", "{ not json");
  auto result = load_config_file(bad_json, {});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr(bad_json.string()));
  EXPECT_THAT(result.status().message(), HasSubstr("not valid JSON"));

  auto missing = load_config_file(dir.path() / "missing.json", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), sdk::StatusCode::kNotFound);
}

TEST(ConfigTest, WorkspaceRootHasADefaultAFileValueAndAnOverride) {
  EXPECT_EQ(parse_ok(json::object()).workspace_root, "var/workspaces");
  EXPECT_EQ(parse_ok(json::parse(R"({"workspace_root": "/srv/ws"})")).workspace_root, "/srv/ws");
  EXPECT_EQ(
      parse_ok(json::parse(R"({"workspace_root": "/srv/ws"})"), {{"SAMOKODER_WORKSPACE_ROOT", "/data/ws"}})
          .workspace_root,
      "/data/ws");
  EXPECT_THAT(parse_error(json::parse(R"({"workspace_root": 7})")),
              HasSubstr("/workspace_root: expected a string"));
  EXPECT_THAT(parse_error(json::parse(R"({"workspace_root": ""})")),
              HasSubstr("/workspace_root: must not be empty"));
  auto shipped = load_config_file(std::string(SAMOKODER_SOURCE_DIR) + "/config/samokoder.json", {});
  ASSERT_TRUE(shipped.ok());
  EXPECT_EQ(shipped->workspace_root, parse_ok(json::object()).workspace_root);
}

TEST(ConfigTest, SecurityDefaultsAreTheDocumentedOnes) {
  const SecurityConfig security = parse_ok(json::object()).security;
  EXPECT_EQ(security.access_token_ttl_seconds, 900u);
  EXPECT_EQ(security.refresh_token_ttl_seconds, 7u * 24 * 3600);
  EXPECT_EQ(security.lockout_max_failures, 5u);
  EXPECT_EQ(security.lockout_window_seconds, 900u);
  EXPECT_EQ(security.address_max_failures, 20u);
  EXPECT_EQ(security.address_window_seconds, 900u);
  EXPECT_EQ(security.rate_limits.at("auth"), (RateLimitConfig{5, 5}));
  EXPECT_EQ(security.rate_limits.at("default"), (RateLimitConfig{100, 100}));
  EXPECT_FALSE(security.cookie_secure.has_value());
  EXPECT_FALSE(security.trust_forwarded_for);
  EXPECT_TRUE(security.secret_key.empty());
  auto shipped = load_config_file(std::string(SAMOKODER_SOURCE_DIR) + "/config/samokoder.json", {});
  ASSERT_TRUE(shipped.ok());
  EXPECT_EQ(shipped->security.rate_limits, security.rate_limits);
  EXPECT_EQ(shipped->security.access_token_ttl_seconds, security.access_token_ttl_seconds);
}

TEST(ConfigTest, ReadsTheSecuritySectionAndMergesRateLimits) {
  const SecurityConfig security = parse_ok(json::parse(R"({"security": {
    "access_token_ttl_seconds": 600, "refresh_token_ttl_seconds": 86400, "session_max_age_seconds": 172800,
    "lockout": {"max_failures": 3, "window_seconds": 60},
    "address_throttle": {"max_failures": 50, "window_seconds": 120},
    "rate_limits": {"auth": {"capacity": 1000}, "files": {"capacity": 10, "refill_per_minute": 20}},
    "cookie_secure": false, "trust_forwarded_for": true}})"))
                                      .security;
  EXPECT_EQ(security.access_token_ttl_seconds, 600u);
  EXPECT_EQ(security.session_max_age_seconds, 172800u);
  EXPECT_EQ(security.lockout_max_failures, 3u);
  EXPECT_EQ(security.address_window_seconds, 120u);
  EXPECT_EQ(security.rate_limits.at("auth"), (RateLimitConfig{1000, 5}));  // refill kept from the default
  EXPECT_EQ(security.rate_limits.at("files"), (RateLimitConfig{10, 20}));
  EXPECT_EQ(security.rate_limits.at("default"), (RateLimitConfig{100, 100}));
  EXPECT_EQ(security.cookie_secure, false);
  EXPECT_TRUE(security.trust_forwarded_for);
}

TEST(ConfigTest, SecurityErrorsNameTheirPaths) {
  const std::string message = parse_error(json::parse(R"({"security": {
    "access_token_ttl_seconds": 5, "lockout": {"max_failures": 0, "span": 1},
    "rate_limits": {"Bad Group": {}, "auth": {"capacity": "lots"}}, "cookie_secure": "yes", "colour": 1}})"));
  EXPECT_THAT(message, HasSubstr("/security/access_token_ttl_seconds: expected an integer from 60"));
  EXPECT_THAT(message, HasSubstr("/security/lockout/max_failures:"));
  EXPECT_THAT(message, HasSubstr("/security/lockout/span: unknown key"));
  EXPECT_THAT(message, HasSubstr("/security/rate_limits/Bad Group: expected a route group name"));
  EXPECT_THAT(message, HasSubstr("/security/rate_limits/auth/capacity:"));
  EXPECT_THAT(message, HasSubstr("/security/cookie_secure: expected true or false"));
  EXPECT_THAT(message, HasSubstr("/security/colour: unknown key"));
}

TEST(ConfigTest, HousekeepingHasDocumentedDefaultsAndReadsItsSection) {
  const HousekeepingConfig defaults = parse_ok(json::object()).housekeeping;
  EXPECT_TRUE(defaults.enabled);
  EXPECT_EQ(defaults.interval_seconds, 3600u);
  EXPECT_EQ(defaults.jitter_seconds, 300u);
  EXPECT_EQ(defaults.login_attempt_retention_seconds, 7u * 24 * 3600);
  const HousekeepingConfig read = parse_ok(json::parse(R"({"housekeeping": {"enabled": false,
    "interval_seconds": 600, "jitter_seconds": 60, "login_attempt_retention_seconds": 86400}})"))
                                      .housekeeping;
  EXPECT_FALSE(read.enabled);
  EXPECT_EQ(read.interval_seconds, 600u);
  EXPECT_EQ(read.jitter_seconds, 60u);
  EXPECT_EQ(read.login_attempt_retention_seconds, 86400u);
}

TEST(ConfigTest, HousekeepingErrorsNameTheirPaths) {
  std::string message = parse_error(json::parse(R"({"housekeeping": {"interval_seconds": 0, "every": 1,
    "enabled": "yes"}})"));
  EXPECT_THAT(message, HasSubstr("/housekeeping/interval_seconds: expected an integer from 1"));
  EXPECT_THAT(message, HasSubstr("/housekeeping/every: unknown key"));
  EXPECT_THAT(message, HasSubstr("/housekeeping/enabled: expected true or false"));
  message = parse_error(json::parse(R"({"housekeeping": {"interval_seconds": 60, "jitter_seconds": 61}})"));
  EXPECT_THAT(message, HasSubstr("/housekeeping/jitter_seconds: must not exceed interval_seconds (60)"));
  // Purging login attempts the lockout still counts would unlock accounts early.
  message = parse_error(json::parse(R"({"security": {"lockout": {"max_failures": 5, "window_seconds": 7200}},
    "housekeeping": {"login_attempt_retention_seconds": 3600}})"));
  EXPECT_THAT(message,
              HasSubstr("/housekeeping/login_attempt_retention_seconds: must be at least the longest "
                        "failed-login window (7200 seconds)"));
}

TEST(ConfigTest, AgentsCommandsAreConfinedByTheSandboxUnlessNoneIsSpelledOut) {
  EXPECT_EQ(parse_ok(json::object()).runs.command_containment, "preview.sandbox");
  EXPECT_EQ(parse_ok(json::parse(R"({"runs": {"command_containment": "none"}})")).runs.command_containment,
            "none");
  EXPECT_EQ(parse_ok(json::parse(R"({"runs": {"command_containment": "preview.process"}})"))
                .runs.command_containment,
            "preview.process");
  for (const char* wrong : {R"("")", R"("None")", R"("preview.")", R"("agent.developer")", "false"}) {
    const std::string message =
        parse_error(json::parse(std::string(R"({"runs": {"command_containment": )") + wrong + "}}"));
    EXPECT_THAT(message, HasSubstr("/runs/command_containment: ")) << wrong;
  }
}

TEST(ConfigTest, SecretsComeFromTheEnvironmentNeverFromTheFile) {
  const std::string message = parse_error(json::parse(R"({"security": {"secret_key": "in-git-forever"}})"));
  EXPECT_THAT(message, HasSubstr("/security/secret_key"));
  EXPECT_THAT(message, HasSubstr("SAMOKODER_SECRET_KEY"));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("in-git-forever")));
  const Config config = parse_ok(json::object(), {{"SAMOKODER_SECRET_KEY", "from-the-environment"},
                                                  {"SAMOKODER_PREVIOUS_SECRET_KEY", "the-old-one"}});
  EXPECT_EQ(config.security.secret_key, "from-the-environment");
  EXPECT_EQ(config.security.previous_secret_key, "the-old-one");
}

TEST(ConfigTest, ReadsTheHttpClientSectionWithTheDocumentedDefaults) {
  const HttpClientConfig defaults = parse_ok(json::object()).http_client;
  EXPECT_EQ(defaults.extra_ca_file, "");
  EXPECT_EQ(defaults.connect_timeout_ms, 10000u);
  EXPECT_EQ(defaults.first_byte_timeout_ms, 60000u);
  EXPECT_EQ(defaults.idle_timeout_ms, 60000u);
  EXPECT_EQ(defaults.total_timeout_ms, 600000u);
  EXPECT_EQ(defaults.max_response_bytes, 64ULL * 1024 * 1024);
  EXPECT_EQ(defaults.max_request_bytes, 16ULL * 1024 * 1024);
  EXPECT_EQ(defaults.pool_max_idle_per_host, 8u);
  EXPECT_EQ(defaults.threads, 1u);

  const HttpClientConfig read = parse_ok(json::parse(R"({"http_client": {"extra_ca_file": "/etc/corp-ca.pem",
    "connect_timeout_ms": 500, "total_timeout_ms": 9000, "max_response_bytes": 1024, "pool_max_idle_per_host": 0,
    "threads": 2}})"))
                                    .http_client;
  EXPECT_EQ(read.extra_ca_file, "/etc/corp-ca.pem");
  EXPECT_EQ(read.connect_timeout_ms, 500u);
  EXPECT_EQ(read.total_timeout_ms, 9000u);
  EXPECT_EQ(read.max_response_bytes, 1024u);
  EXPECT_EQ(read.pool_max_idle_per_host, 0u);
  EXPECT_EQ(read.threads, 2u);
  EXPECT_EQ(read.idle_timeout_ms, 60000u);

  const std::string message =
      parse_error(json::parse(R"({"http_client": {"idle_timeout_ms": 0, "threads": "many", "proxy": "x"}})"));
  EXPECT_THAT(message,
              HasSubstr("/http_client/idle_timeout_ms: expected an integer from 1 to 86400000, found 0"));
  EXPECT_THAT(message, HasSubstr("/http_client/threads:"));
  EXPECT_THAT(message, HasSubstr("/http_client/proxy: unknown key"));
}

TEST(ConfigTest, LlmDefaultsServeEveryRoleFromOpenAi) {
  const auto config = parse_ok(json::object());
  EXPECT_EQ(config.llm.roles.at("default"), std::vector<std::string>{"openai/gpt-4o-mini"});
  EXPECT_EQ(config.llm.providers.at("anthropic").plugin, "llm.anthropic");
  EXPECT_EQ(config.llm.providers.at("openai").api_key, "");
  EXPECT_EQ(config.llm.json_reasks, 1U);
}

TEST(ConfigTest, LlmProvidersMergeOverTheBuiltInOnesAndReadTheirKeyFromTheEnvironment) {
  const auto config = parse_ok(json::parse(R"({"llm": {
      "providers": {"ollama": {"key_required": false}},
      "roles": {"architect": ["ollama/qwen", "openai/gpt-4o"]},
      "prices": {"openai/gpt-4o": {"prompt_usd_per_mtok": 2.5, "completion_usd_per_mtok": 10}},
      "budgets": {"user_daily_cost_usd": 1.5, "run_tokens": 100000}}})"),
                               {{"OPENAI_API_KEY", "sk-from-env"}});
  EXPECT_EQ(config.llm.providers.at("ollama").plugin, "llm.ollama");
  EXPECT_FALSE(config.llm.providers.at("ollama").key_required);
  EXPECT_EQ(config.llm.providers.at("openai").api_key, "sk-from-env");
  EXPECT_EQ(config.llm.roles.at("architect").size(), 2U);
  EXPECT_TRUE(config.llm.roles.contains("default"));
  EXPECT_DOUBLE_EQ(config.llm.prices.at("openai/gpt-4o").cached_prompt_usd_per_mtok, 2.5);
  EXPECT_DOUBLE_EQ(config.llm.user_daily_cost_usd, 1.5);
  EXPECT_EQ(config.llm.run_tokens, 100000U);
}

TEST(ConfigTest, LlmRejectsRolesOfUnknownProvidersAndMalformedPrices) {
  const std::string message = parse_error(json::parse(R"({"llm": {
      "roles": {"coder": ["mistral/large"], "tester": ["no-slash"]},
      "prices": {"gpt-4o": {"prompt_usd_per_mtok": -1}},
      "retry": {"initial_backoff_ms": 5000, "max_backoff_ms": 1000}}})"));
  EXPECT_THAT(
      message,
      HasSubstr("/llm/roles/coder/0: names provider \"mistral\", which llm.providers does not configure"));
  EXPECT_THAT(message, HasSubstr("/llm/roles/tester/0: expected \"provider/model\""));
  EXPECT_THAT(message, HasSubstr("/llm/prices/gpt-4o: a price is keyed by \"provider/model\""));
  EXPECT_THAT(message, HasSubstr("/llm/prices/gpt-4o/prompt_usd_per_mtok: expected a number from 0"));
  EXPECT_THAT(message, HasSubstr("/llm/retry/initial_backoff_ms: must not exceed max_backoff_ms"));
}

TEST(ConfigTest, OnePluginServesSeveralProvidersEachWithItsEndpoint) {
  const auto config = parse_ok(json::parse(R"({"llm": {
      "providers": {"ollama": {"plugin": "llm.openai", "base_url": "http://127.0.0.1:11434/v1", "key_required": false},
                    "openrouter": {"plugin": "llm.openai", "base_url": "https://openrouter.ai/api/v1",
                                   "api_key_env": "OPENROUTER_API_KEY"}},
      "models_cache_seconds": 60}})"),
                               {{"OPENROUTER_API_KEY", "sk-or-1"}});
  EXPECT_EQ(config.llm.providers.at("ollama").plugin, "llm.openai");
  EXPECT_EQ(config.llm.providers.at("ollama").base_url, "http://127.0.0.1:11434/v1");
  EXPECT_EQ(config.llm.providers.at("openrouter").base_url, "https://openrouter.ai/api/v1");
  EXPECT_EQ(config.llm.providers.at("openrouter").api_key, "sk-or-1");
  EXPECT_EQ(config.llm.providers.at("openai").base_url, "") << "the plugin's own endpoint";
  EXPECT_EQ(config.llm.models_cache_seconds, 60U);
}

TEST(ConfigTest, AProviderBaseUrlIsAPlainHttpUrl) {
  for (const char* url : {"ftp://host/v1", "http://", "http://:80/v1", "https://host/v1?key=x",
                          "https://user:sk-secret@host/v1", "http://host/v1#x", "http://ho st/v1"}) {
    const std::string message = parse_error(json{{"llm", {{"providers", {{"local", {{"base_url", url}}}}}}}});
    EXPECT_THAT(message, HasSubstr("/llm/providers/local/base_url: expected http://host[:port][/path]"))
        << url;
    EXPECT_THAT(message, Not(HasSubstr("sk-secret"))) << "describe() must not quote credentials";
  }
}

TEST(ConfigTest, LlmKeyValuesAreNeverReadFromTheFile) {
  EXPECT_THAT(parse_error(json::parse(R"({"llm": {"providers": {"openai": {"api_key": "sk-in-file"}}}})")),
              HasSubstr("/llm/providers/openai/api_key: unknown key"));
}

}  // namespace
}  // namespace samokoder::config
