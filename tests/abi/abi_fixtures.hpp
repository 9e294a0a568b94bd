// Paths and helpers shared by the ABI tests: where the fixture plugins are built and how to make a
// plugins config that points at them.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config.hpp"

namespace samokoder::testing {

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(SAMOKODER_FIXTURE_DIR) / (name + ".so");
}

inline config::PluginEntry plugin_entry(std::string id, const std::string& fixture_name,
                                        bool required = false,
                                        nlohmann::json config = nlohmann::json::object()) {
  config::PluginEntry entry;
  entry.id = std::move(id);
  entry.file = fixture(fixture_name).string();
  entry.required = required;
  entry.config = std::move(config);
  return entry;
}

// True when a mapping of `path` appears in /proc/self/maps.
inline bool mapped_in_process(const std::filesystem::path& path) {
  std::ifstream maps("/proc/self/maps");
  std::stringstream text;
  text << maps.rdbuf();
  return text.str().find(path.string()) != std::string::npos;
}

}  // namespace samokoder::testing
