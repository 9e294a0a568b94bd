#include "plugins/plugin_check.hpp"

#include <sstream>

#include "core/file_util.hpp"
#include "plugins/elf_inspector.hpp"

namespace samokoder::plugins {

PluginCheckReport check_plugin_file(const std::filesystem::path& file, const nlohmann::json& config,
                                    const std::filesystem::path& runtime_dir) {
  PluginCheckReport report;
  report.file = file.string();
  if (auto elf = inspect_elf_file(file); elf.ok()) {
    for (const auto& symbol : elf->exported)
      report.exported_symbols.push_back(symbol.name);
    report.unique_symbols = elf->unique_symbols;
  }

  metrics::Registry registry;  // the check's metrics go nowhere
  core::SystemClock clock;
  config::ProcessesConfig processes_config;
  processes_config.state_dir.clear();  // a check's children are its own; nothing to record on disk
  processes::ProcessService processes(processes_config, registry);
  Loader loader(registry, clock, KernelServices{.processes = &processes});
  LoadRequest request;
  request.file = file;
  request.runtime_dir = runtime_dir;
  request.config = config;
  auto outcome = loader.load(request);
  if (auto* failure = std::get_if<LoadFailure>(&outcome)) {
    report.sha256 = failure->sha256;
    report.descriptor = failure->descriptor;
    report.reason = failure->reason;
    report.message = failure->message;
    return report;
  }
  auto generation = std::move(std::get<std::unique_ptr<Generation>>(outcome));
  report.sha256 = generation->sha256();
  report.descriptor = generation->descriptor();
  if (report.exported_symbols.size() > 1) {
    report.warnings.push_back("exports " + std::to_string(report.exported_symbols.size()) +
                              " symbols; only " SAMOKODER_PLUGIN_ENTRY_SYMBOL
                              " should be visible (build it with samokoder_add_plugin())");
  }
  const bool unmapped = generation->teardown();
  // GNU unique symbols are a rejection even when this particular unload succeeded: glibc binds every
  // later copy to the first copy's definition and keeps that copy mapped, so a reload would silently
  // share state with (and keep running) the old code.
  if (!unmapped || !report.unique_symbols.empty()) {
    report.message = "it loads, but cannot be unloaded cleanly (PINNED), so it can never be hot-reloaded";
    if (!report.unique_symbols.empty()) {
      report.message += ": it has " + std::to_string(report.unique_symbols.size()) +
                        " STB_GNU_UNIQUE symbol(s), first " + report.unique_symbols.front() +
                        "; build it with samokoder_add_plugin(), which passes -fno-gnu-unique";
    }
    return report;
  }
  report.accepted = true;
  return report;
}

std::string format_check_report(const PluginCheckReport& report) {
  std::ostringstream out;
  out << "file:        " << report.file << "\n";
  if (!report.sha256.empty()) out << "sha256:      " << report.sha256 << "\n";
  if (report.descriptor) {
    const auto& d = *report.descriptor;
    out << "id:          " << d.id << "\n"
        << "version:     " << d.version << "\n"
        << "kind:        " << kind_name(d.kind) << "\n"
        << "description: " << d.description << "\n"
        << "abi:         " << d.abi_major << "." << d.abi_minor << " (descriptor " << d.struct_size
        << " bytes)\n"
        << "fingerprint: " << d.fingerprint << "\n";
  }
  if (!report.exported_symbols.empty())
    out << "exports:     " << report.exported_symbols.size() << " symbol(s)\n";
  for (const auto& warning : report.warnings)
    out << "warning:     " << warning << "\n";
  if (report.accepted) {
    out << "verdict:     OK, this kernel loads and unloads it\n";
  } else if (report.reason != FailureReason::kNone) {
    out << "verdict:     REJECTED (" << reason_name(report.reason) << "): " << report.message << "\n";
  } else {
    out << "verdict:     REJECTED (pinned): " << report.message << "\n";
  }
  return out.str();
}

nlohmann::json check_report_to_json(const PluginCheckReport& report) {
  nlohmann::json out = {
      {"file", report.file},
      {"sha256", report.sha256},
      {"accepted", report.accepted},
      {"reason", report.accepted                         ? "none"
                 : report.reason == FailureReason::kNone ? "pinned"
                                                         : std::string(reason_name(report.reason))},
      {"message", report.message},
      {"exported_symbols", report.exported_symbols},
      {"unique_symbols", report.unique_symbols},
      {"warnings", report.warnings}};
  if (report.descriptor) {
    const auto& d = *report.descriptor;
    out["descriptor"] = {{"id", d.id},
                         {"version", d.version},
                         {"kind", kind_name(d.kind)},
                         {"description", d.description},
                         {"abi_major", d.abi_major},
                         {"abi_minor", d.abi_minor},
                         {"struct_size", d.struct_size},
                         {"fingerprint", d.fingerprint}};
  }
  return out;
}

}  // namespace samokoder::plugins
