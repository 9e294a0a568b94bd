#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "temp_dir.hpp"

namespace samokoder::config {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

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
  EXPECT_TRUE(config.plugins.plugins.empty());
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
  EXPECT_EQ(config.server.worker_threads, 5u);
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
  const std::string message = parse_error(json::parse(R"({"plugins": [{"file": "a.so"}, {"id": "Bad Id", "file": ""},
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

}  // namespace
}  // namespace samokoder::config
