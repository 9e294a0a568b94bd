// changed_settings() names every setting of config/samokoder.schema.json: each key of the schema is
// changed in turn to another valid value, and the change must be reported under its own path (or the
// path of the object it belongs to), live or restart. A new key that the reload code does not know
// fails here instead of being ignored silently by a reload.
#include "app/config_reload.hpp"

#include <set>

#include <gtest/gtest.h>

#include "config_schema.hpp"

namespace samokoder::app {
namespace {

using nlohmann::json;

struct Leaf {
  json::json_pointer pointer;  // where to put a value: /security/rate_limits/auth/capacity
  std::string path;            // how a reload names it: security.rate_limits.auth.capacity
  json schema;
};

void collect_leaves(const json& schema, const json& node, const json::json_pointer& pointer,
                    const std::string& path, std::vector<Leaf>& out) {
  const json& resolved = testing::resolve_schema_node(schema, node);
  if (resolved.contains("properties")) {
    for (const auto& [key, child] : resolved["properties"].items()) {
      if (key == "$schema" || key == "plugins") continue;  // the plugin list is PluginManager's to compare
      collect_leaves(schema, child, pointer / key, path.empty() ? key : path + "." + key, out);
    }
    return;
  }
  if (resolved.contains("additionalProperties") && resolved["additionalProperties"].is_object()) {
    // A map's key must be valid for its map: a rate-limit group, a provider or role name, or the
    // "provider/model" a price is for.
    const std::string key = path == "llm.prices" ? "openai/gpt-4o" : "auth";
    collect_leaves(schema, resolved["additionalProperties"], pointer / key, path + "." + key, out);
    return;
  }
  out.push_back({pointer, path, resolved});
}

// Valid values of another kind than the default, to try in turn.
std::vector<json> candidates(const Leaf& leaf) {
  const json& s = leaf.schema;
  if (s.contains("enum")) return s["enum"].get<std::vector<json>>();
  const std::string type = s.value("type", "");
  if (type == "integer") {
    const auto minimum = s.value("minimum", std::int64_t{0});
    return {minimum, minimum + 1, s.value("maximum", minimum + 2)};
  }
  if (type == "number") return {s.value("minimum", 0.0) + 0.5, s.value("minimum", 0.0) + 2.0};
  if (type == "boolean") return {true, false};
  // A role's chain names configured providers (openai and anthropic are built in).
  if (leaf.path.starts_with("llm.roles.")) return {json::array({"anthropic/claude-sonnet-4-5"})};
  if (leaf.path == "runs.pipeline") return {json::array({"agent.example"})};
  if (leaf.path == "runs.command_containment") return {"none", "preview.example"};
  if (leaf.path == "previews.runners") return {json::array({"preview.example"})};
  if (leaf.path == "previews.public_url") return {"https://p-{project}.preview.example"};
  if (type == "array") return {json::array({"https://example.com"})};
  if (leaf.path.ends_with(".base_url")) return {"http://127.0.0.1:9/v1"};
  if (leaf.path == "server.listen" || leaf.path == "previews.listen") return {"127.0.0.1:9"};
  return {"changed/by/the/test"};
}

// Every leaf of the schema, each with the changes its valid other values are reported as.
std::vector<std::pair<Leaf, std::vector<SettingChange>>> change_every_leaf() {
  const json schema = testing::load_config_schema();
  std::vector<Leaf> leaves;
  collect_leaves(schema, schema, json::json_pointer(), "", leaves);
  EXPECT_GE(leaves.size(), 30u);
  const auto base = config::parse_config(json::object(), {});
  EXPECT_TRUE(base.ok()) << base.status().to_string();
  std::vector<std::pair<Leaf, std::vector<SettingChange>>> out;
  for (const auto& leaf : leaves) {
    std::vector<SettingChange> reported;
    for (const auto& value : candidates(leaf)) {
      json document = json::object();
      document[leaf.pointer] = value;
      if (leaf.path.starts_with("security.rate_limits.auth.")) {  // a group needs both of its members
        document["/security/rate_limits/auth/capacity"_json_pointer] = 5;
        document["/security/rate_limits/auth/refill_per_minute"_json_pointer] = 5;
        document[leaf.pointer] = value;
      }
      auto next = config::parse_config(document, {});
      if (!next.ok()) continue;  // not valid here (say, a value the schema allows but a rule refuses)
      for (auto& change : changed_settings(*base, *next))
        reported.push_back(std::move(change));
    }
    out.emplace_back(leaf, std::move(reported));
  }
  return out;
}

TEST(ConfigReloadTest, EverySettingOfTheSchemaIsReportedWhenItChanges) {
  for (const auto& [leaf, changes] : change_every_leaf()) {
    for (const auto& change : changes) {
      // server.worker_threads is the older name of server.request_pool.threads.
      const std::string named =
          leaf.path == "server.worker_threads" ? "server.request_pool.threads" : leaf.path;
      EXPECT_TRUE(named == change.path || named.starts_with(change.path + "."))
          << "changing " << leaf.path << " was reported as " << change.path;
    }
    EXPECT_FALSE(changes.empty()) << leaf.path << " changed and a reload would not say so";
  }
}

// Which settings a reload puts in force, pinned: moving one to the other side is a decision that
// docs/ops.md ("What a config reload applies") and Application::reload_config must follow.
TEST(ConfigReloadTest, TheLiveSettingsAreTheOnesTheDocsList) {
  std::set<std::string> live;
  std::set<std::string> restart;
  for (const auto& [leaf, changes] : change_every_leaf()) {
    for (const auto& change : changes)
      (change.apply == Apply::kLive ? live : restart).insert(change.path);
  }
  EXPECT_EQ(live, (std::set<std::string>{"drain_timeout_ms",
                                         "log.access_log",
                                         "log.format",
                                         "log.level",
                                         "plugin_dir",
                                         "runtime_dir",
                                         "security.access_token_ttl_seconds",
                                         "security.address_throttle.max_failures",
                                         "security.address_throttle.window_seconds",
                                         "security.lockout.max_failures",
                                         "security.lockout.window_seconds",
                                         "security.rate_limits",
                                         "security.refresh_token_ttl_seconds",
                                         "security.session_check_cache_ms",
                                         "security.session_max_age_seconds",
                                         "security.trust_forwarded_for",
                                         "server.keep_alive_timeout_ms",
                                         "server.plugin_pool.call_timeout_ms",
                                         "server.request_pool.call_timeout_ms",
                                         "server.request_timeout_ms",
                                         "server.shutdown_grace_ms",
                                         "server.task_pool.call_timeout_ms"}));
  EXPECT_TRUE(restart.contains("security.cookie_secure"));
  EXPECT_TRUE(restart.contains("workspace_root"));
  EXPECT_TRUE(restart.contains("server.listen"));
}

TEST(ConfigReloadTest, LogLevelIsLiveAndTheListenerWaitsForARestart) {
  config::Config running;
  config::Config next = running;
  next.log.level = "debug";
  next.server.listen.port = 9;
  EXPECT_EQ(changed_settings(running, next),
            (std::vector<SettingChange>{{"server.listen", Apply::kRestart}, {"log.level", Apply::kLive}}));
  EXPECT_TRUE(changed_settings(running, running).empty());
}

}  // namespace
}  // namespace samokoder::app
