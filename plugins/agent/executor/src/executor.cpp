// agent.executor: runs the current step's command in the project's workspace (docs/pipeline.md). The
// kernel confines every agent command (the preview sandbox: the system read-only, the workspace the only
// writable place), so the allow-list is not the security boundary; it decides which commands a developer
// may run without the user's say-so, and anything else (a command off the list, or one that chains or
// redirects through the shell) is put to the user first. A failed command becomes the run state's
// `error`, which the error handler turns into a fix; no model call: the error handler diagnoses.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/agent_common/run_state.hpp>

namespace {

using samokoder::agent_common::trimmed;

namespace sdk = samokoder::sdk;
namespace common = samokoder::agent_common;

constexpr std::size_t kOutputTailBytes = 4096;
// The shell's metacharacters that chain, substitute or redirect: an allowed prefix followed by any of
// them could run anything ("npm test && rm -rf ~"), so such a command is asked about.
constexpr std::string_view kShellMetacharacters = ";&|`$()<>\n\r";

const std::vector<std::string>& default_allow_list() {
  static const std::vector<std::string> list = {
      "npm install", "npm ci",       "npm run build",         "npm test",          "npm run test",
      "npx tsc",     "node --check", "python3 -m py_compile", "python3 -m pytest", "pip install",
      "ls",          "cat"};
  return list;
}

// obj[key] when it is a string, else "" (nlohmann's value() throws on a member of another type).
std::string text_of(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
  return text;
}

// The last bytes of a command's output as valid UTF-8: the state is stored and sent as JSON, and a tail
// cut inside a character (or a program's binary output) would make it unserializable.
std::string output_tail(const std::string& output) {
  std::size_t start = output.size() > kOutputTailBytes ? output.size() - kOutputTailBytes : 0;
  // Skip the continuation bytes of a character the cut split.
  for (int skipped = 0;
       skipped < 3 && start < output.size() && (static_cast<unsigned char>(output[start]) & 0xC0U) == 0x80U;
       ++skipped)
    ++start;
  const nlohmann::json text = output.substr(start);
  const std::string quoted = text.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto clean = nlohmann::json::parse(quoted, nullptr, /*allow_exceptions=*/false);
  return clean.is_string() ? clean.get<std::string>() : std::string();
}

class Executor final : public common::PromptedAgent {
 public:
  std::string_view role() const noexcept override { return "executor"; }

  bool wants(const nlohmann::json& state) const override {
    const auto index = common::current_step(state);
    if (!index) return false;
    const auto& step = state["steps"][*index];
    const auto type = step.find("type");
    return type != step.end() && type->is_string() && type->get<std::string>() == "command";
  }

  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext& context) override {
    try {
      return execute(context);
    } catch (const std::exception& e) {
      return sdk::Status::internal(std::string("agent.executor: ") + e.what());
    }
  }

 protected:
  sdk::Status configure(const nlohmann::json& config) override {
    allow_ = default_allow_list();
    if (const auto allow = config.find("allow"); allow != config.end()) {
      if (!allow->is_array())
        return sdk::Status::invalid_argument("allow must be an array of command prefixes");
      allow_.clear();
      for (const auto& prefix : *allow) {
        if (!prefix.is_string() || trimmed(prefix.get<std::string>()).empty())
          return sdk::Status::invalid_argument("allow holds an entry that is not a non-empty command prefix");
        allow_.push_back(trimmed(prefix.get<std::string>()));
      }
    }
    if (const auto ask = config.find("ask_outside_allow_list"); ask != config.end()) {
      if (!ask->is_boolean())
        return sdk::Status::invalid_argument("ask_outside_allow_list must be true or false");
      ask_outside_allow_list_ = ask->get<bool>();
    }
    if (auto read = seconds(config, "max_timeout_s", max_timeout_s_); !read.ok()) return read;
    if (auto read = seconds(config, "default_timeout_s", default_timeout_s_); !read.ok()) return read;
    default_timeout_s_ = std::min(default_timeout_s_, max_timeout_s_);
    return {};
  }

 private:
  static sdk::Status seconds(const nlohmann::json& config, const char* key, std::int64_t& out) {
    const auto it = config.find(key);
    if (it == config.end()) return {};
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > 24 * 3600)
      return sdk::Status::invalid_argument(std::string(key) +
                                           " must be a whole number of seconds from 1 to 86400");
    out = it->get<std::int64_t>();
    return {};
  }

  bool allowed(const std::string& command) const {
    if (command.find_first_of(kShellMetacharacters) != std::string::npos) return false;
    return std::any_of(allow_.begin(), allow_.end(), [&](const std::string& prefix) {
      return command.starts_with(prefix) &&
             (command.size() == prefix.size() || command[prefix.size()] == ' ');
    });
  }

  std::int64_t timeout_of(const nlohmann::json& step) const {
    const auto it = step.find("timeout_s");
    if (it == step.end() || !it->is_number() || !(it->get<double>() >= 1)) return default_timeout_s_;
    // Clamped as a double first: a huge value must not overflow the conversion.
    return static_cast<std::int64_t>(std::min(it->get<double>(), static_cast<double>(max_timeout_s_)));
  }

  sdk::Result<sdk::AgentStepResult> execute(sdk::AgentContext& context) const {
    nlohmann::json next = context.state();
    const auto index = common::current_step(next);
    if (!index) return sdk::Status::failed_precondition("there is no current step to run");
    auto& step = next["steps"][*index];
    const auto step_id = step.value("id", nlohmann::json(nullptr));
    const std::string command = trimmed(text_of(step, "command"));
    if (command.empty())
      return sdk::Status::invalid_argument("command step " + step_id.dump() + " has no command");

    if (!allowed(command)) {
      std::string reason;
      if (!ask_outside_allow_list_) {
        reason = "it is not on the allow-list";
      } else {
        const std::string id =
            "run." + (step_id.is_number_integer() ? step_id.dump() : std::to_string(*index + 1));
        auto answer = context.ask_user(
            {id, "The developer wants to run `" + command + "` in the workspace. Run it?", {"run", "skip"}});
        if (!answer.ok()) return answer.status();  // kAborted: the step waits for the user
        if (lowercase(trimmed(answer->text)) != "run") reason = "the user skipped it";
      }
      if (!reason.empty()) {
        step["completed"] = true;
        step["skipped"] = true;
        if (auto emitted = context.emit_event(
                "exec.skipped", {{"step_id", step_id}, {"command", command}, {"reason", reason}});
            !emitted.ok())
          return emitted;
        return sdk::AgentStepResult{std::move(next), "skipped `" + command + "`: " + reason};
      }
    }

    const std::int64_t timeout_s = timeout_of(step);
    sdk::CommandRequest request;
    request.argv = {command};
    request.shell = true;
    request.timeout = std::chrono::seconds(timeout_s);
    auto ran = context.run_command(request);
    // A command that could not start (no containment, a cancelled run) is not the code's fault: the
    // run fails with the kernel's reason rather than sending the developer after a phantom bug.
    if (!ran.ok()) return ran.status();

    if (ran->succeeded()) {
      step["completed"] = true;
      step["exit_code"] = 0;
      return sdk::AgentStepResult{std::move(next), "ran `" + command + "`"};
    }
    std::string outcome;
    if (ran->timed_out)
      outcome = "timed out after " + std::to_string(timeout_s) + " s";
    else if (ran->signal)
      outcome = "was killed by signal " + std::to_string(*ran->signal);
    else if (ran->exit_code)
      outcome = "exited with " + std::to_string(*ran->exit_code);
    else
      outcome = "ended without an exit status";
    const std::string message = "`" + command + "` " + outcome;
    next["error"] = {
        {"message", message},
        {"command", command},
        {"exit_code", ran->exit_code ? nlohmann::json(*ran->exit_code) : nlohmann::json(nullptr)},
        {"stdout", output_tail(ran->stdout_tail)},
        {"stderr", output_tail(ran->stderr_tail)},
        {"step_id", step_id}};
    return sdk::AgentStepResult{std::move(next), message};
  }

  // Set once by configure() at init; read-only afterwards, so concurrent runs share them safely.
  std::vector<std::string> allow_;
  bool ask_outside_allow_list_ = true;
  std::int64_t max_timeout_s_ = 600;
  std::int64_t default_timeout_s_ = 120;
};

}  // namespace

SAMOKODER_PLUGIN(
    Executor, "agent.executor", "1.0.0",
    "Runs the current command step in the workspace, asking the user about commands off its allow-list")
