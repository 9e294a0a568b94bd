// An agent plugin written against the installed SDK only, as docs/sdk.md shows.
#include <samokoder/sdk/agent.hpp>

namespace {

class GreeterAgent final : public samokoder::sdk::Agent {
 public:
  samokoder::sdk::Status init(samokoder::sdk::HostServices& host) override {
    name_ = host.config().value("name", std::string("world"));
    return {};
  }
  std::string_view role() const noexcept override { return "greeter"; }
  samokoder::sdk::Result<samokoder::sdk::AgentStepResult> run_step(samokoder::sdk::AgentContext&) override {
    return samokoder::sdk::AgentStepResult{{{"greeting", "hello, " + name_}}, "greeted"};
  }

 private:
  std::string name_;
};

}  // namespace

SAMOKODER_PLUGIN(GreeterAgent, "agent.greeter", "0.1.0", "Greets, built out of tree")
