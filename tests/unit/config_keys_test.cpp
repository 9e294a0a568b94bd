// The config parser and config/samokoder.schema.json know the same keys. The parser names its known keys
// when it meets an unknown one ("unknown key (known keys: a, b)"), so the test asks every object the
// schema describes for its keys by putting a probe key into it, and compares both ways. docs/ops.md is
// held to the schema by scripts/check-docs.py, so the three agree.
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config_schema.hpp"

namespace samokoder::config {
namespace {

using nlohmann::json;

constexpr std::string_view kProbe = "zz_probe_key";

// The keys the parser accepts in the object at `pointer` of `document`, read from its error message.
std::set<std::string> parser_keys(json document, const json::json_pointer& pointer) {
  const std::string probe(kProbe);
  document[pointer / probe] = 1;
  auto result = parse_config(document, {});
  EXPECT_FALSE(result.ok()) << "the probe key was accepted at " << pointer.to_string();
  if (result.ok()) return {};
  const std::string message = result.status().message();
  const std::string marker = pointer.to_string() + "/" + std::string(kProbe) + ": unknown key (known keys: ";
  const auto at = message.find(marker);
  EXPECT_NE(at, std::string::npos) << message;
  if (at == std::string::npos) return {};
  const auto begin = at + marker.size();
  std::istringstream list(message.substr(begin, message.find(')', begin) - begin));
  std::set<std::string> keys;
  for (std::string key; std::getline(list >> std::ws, key, ',');)
    keys.insert(key);
  return keys;
}

// Visits every object with fixed properties in the schema, with a minimal document in which the parser
// reaches that object.
struct ObjectVisit {
  json::json_pointer pointer;
  json document;
  std::set<std::string> schema_keys;
};

void collect(const json& schema, const json& node, const json::json_pointer& pointer, const json& document,
             std::vector<ObjectVisit>& out) {
  const json& resolved = testing::resolve_schema_node(schema, node);
  if (resolved.contains("properties")) {
    ObjectVisit visit{pointer, document, {}};
    for (const auto& [key, child] : resolved["properties"].items()) {
      if (key == "$schema") continue;
      visit.schema_keys.insert(key);
      json nested = document;
      nested[pointer / key] = json::object();
      const json& child_resolved = testing::resolve_schema_node(schema, child);
      if (child_resolved.contains("properties") || child_resolved.contains("additionalProperties"))
        collect(schema, child, pointer / key, nested, out);
      if (child_resolved.contains("items")) {
        // An array of objects (the plugin entries): reach its first element, with its required keys.
        const json& item = testing::resolve_schema_node(schema, child_resolved["items"]);
        json element = json::object();
        for (const auto& required : item.value("required", json::array()))
          element[required.get<std::string>()] = required == "id" ? json("storage.probe") : json("probe.so");
        json with_item = document;
        with_item[pointer / key] = json::array({element});
        collect(schema, item, pointer / key / 0, with_item, out);
      }
    }
    out.push_back(std::move(visit));
  }
  if (resolved.contains("additionalProperties") && resolved["additionalProperties"].is_object()) {
    json nested = document;
    nested[pointer / "probe_group"] = json::object();
    collect(schema, resolved["additionalProperties"], pointer / "probe_group", nested, out);
  }
}

TEST(ConfigKeysTest, ParserAndSchemaKnowTheSameKeysInEveryObject) {
  const json schema = testing::load_config_schema();
  std::vector<ObjectVisit> visits;
  collect(schema, schema, json::json_pointer(), json::object(), visits);
  // The top level, server, log, security, its two failure windows, a rate limit group, a plugin entry.
  ASSERT_GE(visits.size(), 8u);
  for (const auto& visit : visits) {
    const auto in_parser = parser_keys(visit.document, visit.pointer);
    for (const auto& key : visit.schema_keys) {
      EXPECT_TRUE(in_parser.contains(key))
          << visit.pointer.to_string() << "/" << key << " is in the schema but the parser refuses it";
    }
    for (const auto& key : in_parser) {
      if (key == "$schema") continue;  // editors' pointer to the schema itself
      EXPECT_TRUE(visit.schema_keys.contains(key))
          << visit.pointer.to_string() << "/" << key << " is accepted by the parser but not in the schema";
    }
  }
}

}  // namespace
}  // namespace samokoder::config
