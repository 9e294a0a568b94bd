// agent.architect: decides what the spec becomes on this machine (docs/pipeline.md). The model picks
// the app type, the stack and the dependencies; every system dependency's test command then runs in
// the workspace, so later agents know what is really installed. A required one that is missing is the
// user's call: install it and continue, or skip it. Dependencies this machine or the project templates
// cannot serve (Docker, database servers, frameworks without a template) are flagged for the user's
// timeline rather than refused: the plan may still work without them.
#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>

namespace {

using samokoder::agent_common::trimmed;

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;

constexpr std::chrono::seconds kTestTimeout{30};
constexpr std::size_t kStderrShown = 300;

struct Caveat {
  std::string_view word;  // a word of the dependency's name, lowercased
  std::string_view reason;
};

constexpr std::string_view kContainers =
    "needs containers (Docker/Kubernetes), which this machine does not run";
constexpr std::string_view kDatabase =
    "needs a database server, which this machine does not run; keep data in files, SQLite or memory";
constexpr std::string_view kServer =
    "needs a server of its own (a message broker or search engine), which this machine does not run";
constexpr std::string_view kFramework = "is a framework none of the project templates covers";

constexpr std::array<Caveat, 35> kCaveats = {{
    {"docker", kContainers},  {"podman", kContainers},   {"kubernetes", kContainers},
    {"kubectl", kContainers}, {"k8s", kContainers},      {"minikube", kContainers},
    {"helm", kContainers},    {"postgres", kDatabase},   {"postgresql", kDatabase},
    {"pg", kDatabase},        {"mysql", kDatabase},      {"mysql2", kDatabase},
    {"mariadb", kDatabase},   {"mongodb", kDatabase},    {"mongo", kDatabase},
    {"mongoose", kDatabase},  {"redis", kDatabase},      {"elasticsearch", kServer},
    {"cassandra", kDatabase}, {"couchdb", kDatabase},    {"rabbitmq", kServer},
    {"kafka", kServer},       {"mssql", kDatabase},      {"next", kFramework},
    {"nextjs", kFramework},   {"nuxt", kFramework},      {"vue", kFramework},
    {"svelte", kFramework},   {"sveltekit", kFramework}, {"angular", kFramework},
    {"django", kFramework},   {"flask", kFramework},     {"rails", kFramework},
    {"laravel", kFramework},  {"spring", kFramework},
}};

// The lowercased words of a dependency's name ("Next.js" -> next, js; "@angular/core" -> angular, core).
std::vector<std::string> words_of(std::string_view name) {
  std::vector<std::string> words;
  std::string word;
  for (const char c : name) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) {
      word += lower;
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::string_view caveat_of(std::string_view name) {
  for (const auto& word : words_of(name))
    for (const auto& caveat : kCaveats)
      if (word == caveat.word) return caveat.reason;
  return {};
}

// "install.<name>" with the name lowercased and everything outside [a-z0-9_-] made "_", within the 64
// characters a question id may have; a second dependency of the same id gets its position appended.
std::string question_id(std::string_view name, std::size_t index, std::set<std::string>& used) {
  std::string id = "install.";
  for (const char c : name) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const bool kept =
        (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') || lower == '_' || lower == '-';
    id += kept ? lower : '_';
  }
  id.resize(std::min<std::size_t>(id.size(), 56));
  if (!used.insert(id).second) {
    id += "." + std::to_string(index + 1);
    used.insert(id);
  }
  return id;
}

// A model-written command as a question quotes it: bounded, so the question stays within its limit.
std::string shown(const std::string& command) {
  return command.size() <= 200 ? command : command.substr(0, 200) + "...";
}

// Why a test failed, short enough for a question: the end of its stderr (else stdout), or how it ended.
std::string failure_of(const sdk::Result<sdk::CommandResult>& result) {
  if (!result.ok()) return result.status().message();
  if (result->timed_out) return "timed out after " + std::to_string(kTestTimeout.count()) + " s";
  std::string out = trimmed(result->stderr_tail.empty() ? result->stdout_tail : result->stderr_tail);
  if (out.size() > kStderrShown) {
    std::size_t cut = out.size() - kStderrShown;
    while (cut < out.size() && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80)
      ++cut;  // not inside a UTF-8 character
    out = "..." + out.substr(cut);
  }
  if (!out.empty()) return out;
  if (result->exit_code) return "exit code " + std::to_string(*result->exit_code);
  if (result->signal) return "killed by signal " + std::to_string(*result->signal);
  return "it failed";
}

class Architect final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "architect"; }

  bool wants(const nlohmann::json& state) const override {
    if (!state.is_object() || !common::has_text(state, "/spec/description")) return false;
    const auto architecture = state.find("architecture");
    return architecture == state.end() || architecture->is_null();
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return decide(context);
    } catch (const std::exception& error) {
      return sdk::Status::internal(std::string("architect: ") + error.what());
    }
  }

 private:
  sdk::Result<sdk::AgentStepResult> decide(sdk::AgentContext& context) const {
    nlohmann::json next = context.state();
    auto answer = ask(context, "architecture", {{"spec", common::text_at(next, "/spec/description")}});
    if (!answer.ok()) return answer.status();
    nlohmann::json architecture = std::move(answer).value();
    if (auto valid = validate(architecture); !valid.ok()) return valid;

    // Warnings first: they concern the plan, whatever this machine turns out to have.
    std::set<std::string> warned;
    for (const char* member : {"system_dependencies", "package_dependencies"}) {
      for (const auto& dependency : architecture[member]) {
        const std::string name = dependency.value("name", std::string());
        const auto reason = caveat_of(name);
        if (reason.empty() || !warned.insert(name).second) continue;
        if (auto emitted = context.emit_event("architecture.warning",
                                              {{"name", name}, {"reason", name + " " + std::string(reason)}});
            !emitted.ok())
          return emitted;
      }
    }

    std::set<std::string> ids;
    auto& system = architecture["system_dependencies"];
    for (std::size_t i = 0; i < system.size(); ++i) {
      auto& dependency = system[i];
      const std::string name = dependency.value("name", std::string());
      const std::string test = dependency.value("test", std::string());
      auto result = run_test(context, test);
      if (!result.ok() && result.status().code() == sdk::StatusCode::kCancelled) return result.status();
      bool installed = result.ok() && result->succeeded();
      const std::string id = question_id(name, i, ids);
      if (!installed && dependency.value("required_locally", false)) {
        sdk::UserQuestion question;
        question.id = id;
        question.text = name + " is needed but `" + shown(test) + "` failed here: " + failure_of(result) +
                        ". Install it and answer \"continue\", or answer \"skip\" to go on without it.";
        question.options = {"continue", "skip"};
        auto reply = context.ask_user(question);
        if (!reply.ok()) return reply.status();
        if (reply->text == "continue") {
          auto again = run_test(context, test);
          if (!again.ok() && again.status().code() == sdk::StatusCode::kCancelled) return again.status();
          installed = again.ok() && again->succeeded();
          if (!installed) {
            if (auto emitted = context.emit_event(
                    "architecture.warning",
                    {{"name", name}, {"reason", name + " is still missing: " + failure_of(again)}});
                !emitted.ok())
              return emitted;
          }
        }
      }
      dependency["installed"] = installed;
    }

    next["architecture"] = architecture;
    const std::string app_type = architecture.value("app_type", std::string());
    const std::string summary = architecture.value("summary", std::string());
    if (auto emitted =
            context.emit_event("architecture.chosen", {{"app_type", app_type}, {"summary", summary}});
        !emitted.ok())
      return emitted;
    return sdk::AgentStepResult{std::move(next), app_type + ": " + summary};
  }

  static sdk::Result<sdk::CommandResult> run_test(sdk::AgentContext& context, const std::string& test) {
    sdk::CommandRequest request;
    request.argv = {test};
    request.shell = true;
    request.timeout = kTestTimeout;
    return context.run_command(request);
  }

  // What the gateway's schema check cannot say: names and tests that are there, an app type we know.
  static sdk::Status validate(nlohmann::json& architecture) {
    const std::string app_type = architecture.value("app_type", std::string());
    if (app_type != "web-app" && app_type != "api-service" && app_type != "cli-tool")
      return sdk::Status::invalid_argument("architecture answered app_type \"" + app_type +
                                           "\"; expected web-app, api-service or cli-tool");
    for (const char* member : {"system_dependencies", "package_dependencies"}) {
      auto& list = architecture[member];
      if (list.is_null()) list = nlohmann::json::array();
      if (!list.is_array()) return sdk::Status::invalid_argument(std::string(member) + " is not a list");
      for (const auto& dependency : list) {
        if (!dependency.is_object() || trimmed(dependency.value("name", std::string())).empty())
          return sdk::Status::invalid_argument(std::string("a dependency of ") + member + " has no name");
      }
    }
    for (const auto& dependency : architecture["system_dependencies"])
      if (trimmed(dependency.value("test", std::string())).empty())
        return sdk::Status::invalid_argument(
            "the system dependency " + dependency.value("name", std::string()) + " has no test command");
    return {};
  }
};

}  // namespace

SAMOKODER_PLUGIN(Architect, "agent.architect", "1.0.0",
                 "Chooses the app type, stack and dependencies, and checks the system dependencies on this "
                 "machine")
