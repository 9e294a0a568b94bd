// preview.process: the runner engine with the pass-through containment. The app runs as the kernel's
// process service starts every child (own process group, clean environment, rlimits) and nothing more:
// it sees the machine's files and network as the server's user does. preview.sandbox is the contained
// runner.
#include <memory>

#include <samokoder/preview_common/runner.hpp>
#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/preview.hpp>

namespace samokoder::preview_process {

class ProcessRunner final : public preview_common::EngineRunner {
 protected:
  sdk::Result<std::unique_ptr<preview_common::Containment>> make_containment(
      sdk::HostServices& /*host*/, const nlohmann::json& /*config*/) override {
    return preview_common::make_plain_containment();
  }
};

}  // namespace samokoder::preview_process

SAMOKODER_PLUGIN(samokoder::preview_process::ProcessRunner, "preview.process", "1.0.0",
                 "Runs a project's app as a child process (process group, clean environment, rlimits)")
