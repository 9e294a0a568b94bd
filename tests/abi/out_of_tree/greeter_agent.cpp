// An agent plugin written against the installed SDK only, as docs/sdk.md shows. Its greeting comes from
// a child process run with limits through the host services, so the out-of-tree build proves a plugin
// needs nothing else to run programs.
#include <samokoder/sdk/agent.hpp>
#include <samokoder/sdk/process.hpp>

namespace {

namespace sdk = samokoder::sdk;

class GreeterAgent final : public sdk::Agent {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    host_ = &host;
    name_ = host.config().value("name", std::string("world"));
    return {};
  }
  std::string_view role() const noexcept override { return "greeter"; }
  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext&) override {
    sdk::ProcessSpec spec;
    spec.argv = {"/bin/echo", "hello, " + name_};
    spec.limits.address_space_bytes = 256ULL * 1024 * 1024;
    spec.limits.open_files = 64;
    spec.timeout = std::chrono::seconds(10);
    auto echoed = host_->processes().run(spec, sdk::never_cancelled());
    if (!echoed.ok()) return echoed.status();
    if (!echoed->succeeded()) return sdk::Status::internal("echo failed");
    std::string greeting = echoed->stdout_data;
    if (!greeting.empty() && greeting.back() == '\n') greeting.pop_back();
    return sdk::AgentStepResult{{{"greeting", greeting}}, "greeted"};
  }

 private:
  sdk::HostServices* host_ = nullptr;
  std::string name_;
};

}  // namespace

SAMOKODER_PLUGIN(GreeterAgent, "agent.greeter", "0.1.0", "Greets through a child process, built out of tree")
