// preview.sandbox: the runner engine with the bubblewrap containment. The app and its dependency
// install run in their own user, PID, IPC, UTS and (for the app) network namespaces, see only the
// system read-only plus their workspace, and are bounded in processes and memory by a cgroup; the
// kernel reaches the app through a Unix socket the sandbox exposes. On a machine where that cannot be
// done the plugin fails its init with the reason, and previews are refused rather than run uncontained.
#include <memory>

#include <samokoder/preview_common/runner.hpp>
#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/preview.hpp>

#include "bubblewrap.hpp"

namespace samokoder::preview_sandbox {

namespace {

// The keys of the sandbox's own options (parse_sandbox_options), taken out of the runner's config
// object before the engine reads the rest.
const std::vector<std::string>& sandbox_keys() {
  static const std::vector<std::string> kKeys = {"bwrap",        "socat",    "network",     "pids_max",
                                                 "memory_bytes", "ro_binds", "cgroup_root", "socket_dir"};
  return kKeys;
}

}  // namespace

class SandboxRunner final : public preview_common::EngineRunner {
 protected:
  sdk::Result<std::unique_ptr<preview_common::Containment>> make_containment(
      sdk::HostServices& host, const nlohmann::json& config) override {
    nlohmann::json own = nlohmann::json::object();
    if (config.is_object()) {
      for (const auto& key : sandbox_keys()) {
        if (const auto it = config.find(key); it != config.end()) own[key] = *it;
      }
    }
    auto options = parse_sandbox_options(own);
    if (!options.ok()) return options.status();
    return make_bubblewrap_containment(host, std::move(options).value());
  }
  std::vector<std::string> containment_config_keys() const override { return sandbox_keys(); }
};

}  // namespace samokoder::preview_sandbox

SAMOKODER_PLUGIN(samokoder::preview_sandbox::SandboxRunner, "preview.sandbox", "1.0.0",
                 "Runs a project's app in a bubblewrap sandbox: namespaces, read-only system, cgroup limits, "
                 "no network")
