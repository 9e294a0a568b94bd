// agent.bootstrap: gives the project its starting files (docs/pipeline.md). The model picks the project
// template that fits the spec and the architecture (or none) and a name for the project; the template's
// files are copied into the workspace with the name and the description filled in. Files the
// workspace already has are kept, so a continued project loses nothing. Later agents read the state's
// "template" member for the template's conventions and its run command.
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>

#include "templates.hpp"

namespace {

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;
namespace bootstrap = samokoder::bootstrap;

class Bootstrap final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "bootstrap"; }

  bool wants(const nlohmann::json& state) const override {
    if (!state.is_object()) return false;
    const auto architecture = state.find("architecture");
    return architecture != state.end() && !architecture->is_null() && !state.contains("template");
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return apply(context);
    } catch (const std::exception& error) {
      return sdk::Status::internal(std::string("bootstrap: ") + error.what());
    }
  }

 protected:
  sdk::Status configure(const nlohmann::json& config) override {
    try {
      auto loaded = bootstrap::TemplateSet::load(common::bootstrap_templates(), config);
      if (!loaded.ok()) return loaded.status();
      templates_ = std::move(loaded).value();
      return {};
    } catch (const std::exception& error) {
      return sdk::Status::invalid_argument(std::string("cannot load the templates: ") + error.what());
    }
  }

 private:
  sdk::Result<sdk::AgentStepResult> apply(sdk::AgentContext& context) const {
    nlohmann::json next = context.state();
    nlohmann::json offered = nlohmann::json::array();
    for (const auto& [name, template_] : templates_.all())
      offered.push_back({{"name", name}, {"description", template_.description}, {"stack", template_.stack}});

    auto answer = ask(context, "template_choice",
                      {{"spec", common::text_at(next, "/spec/description")},
                       {"architecture", next["architecture"]},
                       {"templates", offered}});
    if (!answer.ok()) return answer.status();
    std::string name = answer->value("template", std::string());
    const std::string project_name =
        bootstrap::sanitize_project_name(answer->value("project_name", std::string()));
    const bootstrap::Template* chosen = name == "none" ? nullptr : templates_.find(name);
    if (name != "none" && chosen == nullptr) {
      // A name the model made up: go on from an empty project rather than fail the run.
      if (auto emitted = context.emit_event("template.unknown", {{"name", name}}); !emitted.ok())
        return emitted;
      name = "none";
    }

    nlohmann::json written = nlohmann::json::array();
    nlohmann::json skipped = nlohmann::json::array();
    std::string summary;
    std::string run_command;
    if (chosen != nullptr) {
      auto existing = context.list_files();
      if (!existing.ok()) return existing.status();
      const std::set<std::string> present(existing->begin(), existing->end());
      std::string description = common::text_at(next, "/spec/original_description");
      if (description.empty()) description = common::text_at(next, "/description");
      description = bootstrap::one_line(description);
      for (const auto& [path, content] : chosen->files) {
        if (present.contains(path)) {
          skipped.push_back(path);
          continue;
        }
        if (auto saved =
                context.write_file(path, bootstrap::render(content, path, project_name, description));
            !saved.ok())
          return saved;
        written.push_back(path);
      }
      summary = bootstrap::render(chosen->summary, "", project_name, description);
      run_command = chosen->run_command;
    }

    next["template"] = {{"name", name}, {"summary", summary}, {"run_command", run_command}};
    if (auto emitted = context.emit_event("template.applied",
                                          {{"name", name}, {"files", written}, {"skipped", skipped}});
        !emitted.ok())
      return emitted;
    std::string line = name == "none" ? "no template: the project starts empty"
                                      : "template " + name + ": " + std::to_string(written.size()) +
                                            " files for " + project_name;
    if (!skipped.empty()) line += " (" + std::to_string(skipped.size()) + " kept as they were)";
    return sdk::AgentStepResult{std::move(next), line};
  }

  bootstrap::TemplateSet templates_;  // immutable after init: shared by every run
};

}  // namespace

SAMOKODER_PLUGIN(Bootstrap, "agent.bootstrap", "1.0.0",
                 "Picks a project template for the architecture and copies its files into the workspace")
