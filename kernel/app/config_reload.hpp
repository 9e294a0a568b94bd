// What a config reload does with each setting: the settings that differ between the running config and
// a re-read one, each with whether the running server applies it now or only after a restart.
//
// The list is written out field by field so that it is reviewed with every new setting, and
// tests/app/config_reload_test.cpp changes every key of config/samokoder.schema.json in turn and fails
// when a change is not reported, so a new setting cannot be ignored silently.
//
// Ownership: plain values. Thread-safety: a pure function.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace samokoder::app {

enum class Apply {
  kLive,     // the reload applies it to the requests that follow (Application::reload_config)
  kRestart,  // read once at startup; the running server keeps the old value until restarted
};

struct SettingChange {
  std::string path;  // the JSON path without the leading slash, dots between keys: "server.listen"
  Apply apply = Apply::kRestart;
  friend bool operator==(const SettingChange&, const SettingChange&) = default;
};

// Settings of `next` that differ from `running`, in the order of the config reference. The plugins list
// is not among them: PluginManager::apply_config compares and applies it entry by entry.
std::vector<SettingChange> changed_settings(const config::Config& running, const config::Config& next);

}  // namespace samokoder::app
