// Offline admission check of one plugin file: `samokoder plugin check FILE.so`.
//
// Runs exactly what the plugin manager runs (ELF pre-validation, private copy, dlopen, handshake,
// create, init with the given config section, self-test), then unloads the plugin again and checks
// that it really left memory, so an integrator learns before deploying whether this kernel accepts
// the file and, if not, the precise reason.
//
// Thread-safety: reentrant; loads into the calling process.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/generation.hpp"

namespace samokoder::plugins {

struct PluginCheckReport {
  std::string file;
  std::string sha256;
  std::optional<DescriptorInfo> descriptor;
  std::vector<std::string> exported_symbols;
  std::vector<std::string> unique_symbols;
  // Accepted: this kernel would load it and could unload (and so hot-reload) it again.
  bool accepted = false;
  FailureReason reason = FailureReason::kNone;  // when rejected at load
  std::string message;                          // why it was rejected, or what is wrong after loading
  std::vector<std::string> warnings;
};

PluginCheckReport check_plugin_file(const std::filesystem::path& file, const nlohmann::json& config,
                                    const std::filesystem::path& runtime_dir);

// Multi-line human-readable report ending with "verdict: ...".
std::string format_check_report(const PluginCheckReport& report);
nlohmann::json check_report_to_json(const PluginCheckReport& report);

}  // namespace samokoder::plugins
