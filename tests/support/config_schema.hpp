// config/samokoder.schema.json for the tests that hold code and docs to it (config keys, config reload).
//
// Ownership: returns values. Thread-safety: plain functions. Needs SAMOKODER_SOURCE_DIR defined by the
// test target.
#pragma once

#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace samokoder::testing {

inline nlohmann::json load_config_schema() {
  std::ifstream in(std::string(SAMOKODER_SOURCE_DIR) + "/config/samokoder.schema.json");
  EXPECT_TRUE(in.good()) << "config/samokoder.schema.json cannot be read";
  return nlohmann::json::parse(in);
}

// Follows "$ref": "#/$defs/name" links until the node that describes the value.
inline const nlohmann::json& resolve_schema_node(const nlohmann::json& schema, const nlohmann::json& node) {
  const nlohmann::json* current = &node;
  while (current->contains("$ref")) {
    const auto ref = current->at("$ref").get<std::string>();
    current = &schema.at("$defs").at(ref.substr(ref.rfind('/') + 1));
  }
  return *current;
}

}  // namespace samokoder::testing
