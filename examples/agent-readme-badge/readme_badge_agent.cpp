// agent.readme_badge: puts a "built with Samokoder" badge at the top of the generated app's README.md
// once the pipeline finished the app. An example of an integrator's agent: out of tree, against the
// installed SDK only, and put into the pipeline by config alone (docs/sdk.md).
#include <string>

#include <samokoder/sdk/agent.hpp>

namespace {

namespace sdk = samokoder::sdk;

#define BADGE_STR2(x) #x
#define BADGE_STR(x) BADGE_STR2(x)
constexpr const char* kRelease = BADGE_STR(BADGE_RELEASE);

class ReadmeBadgeAgent final : public sdk::Agent {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    // The badge's text comes from the config, so ops can brand it without a rebuild.
    label_ = host.config().value("label", std::string("built with Samokoder"));
    return {};
  }

  std::string_view role() const noexcept override { return "readme_badge"; }

  // Once the app is done, and once per release: the state remembers which release put its badge.
  bool wants(const nlohmann::json& state) const override {
    return state.value("done", false) && state.value("readme_badge", std::string()) != kRelease;
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    std::string readme;
    if (auto existing = context.read_file("README.md"); existing.ok()) {
      readme = std::move(existing).value();
    } else if (existing.status().code() != sdk::StatusCode::kNotFound) {
      return existing.status();
    }
    // A badge of an earlier release is replaced, not stacked.
    if (readme.starts_with("![badge]")) readme.erase(0, readme.find('\n') + 1);
    const std::string badge = "![badge](https://img.shields.io/badge/" + escape(label_) + "-v" + kRelease +
                              "-blue) " + label_ + " (badge release " + kRelease + ")\n";
    if (auto written = context.write_file("README.md", badge + readme); !written.ok()) return written;
    if (auto emitted = context.emit_event("badge.added", {{"release", kRelease}}); !emitted.ok())
      return emitted;
    nlohmann::json next = context.state();
    next["readme_badge"] = kRelease;
    return sdk::AgentStepResult{std::move(next), std::string("README badge, release ") + kRelease};
  }

 private:
  // shields.io path segments: spaces as %20, dashes doubled.
  static std::string escape(const std::string& text) {
    std::string out;
    for (const char c : text)
      out += c == ' ' ? std::string("%20") : c == '-' ? std::string("--") : std::string(1, c);
    return out;
  }

  std::string label_;
};

}  // namespace

SAMOKODER_PLUGIN(ReadmeBadgeAgent, "agent.readme_badge", BADGE_STR(BADGE_RELEASE) ".0.0",
                 "Adds a 'built with Samokoder' badge to the generated app's README")
