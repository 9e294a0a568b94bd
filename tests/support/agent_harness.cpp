#include "agent_harness.hpp"

#include <algorithm>
#include <utility>

namespace samokoder::testing {

ScriptedAgentContext::ScriptedAgentContext(nlohmann::json state, nlohmann::json task)
    : state_(std::move(state)), task_(std::move(task)) {}

void ScriptedAgentContext::script_model(const std::string& call, std::vector<nlohmann::json> answers) {
  auto shared = std::make_shared<std::vector<nlohmann::json>>(std::move(answers));
  auto next = std::make_shared<std::size_t>(0);
  model_[call] = [shared, next](const sdk::ModelRequest&) -> sdk::Result<nlohmann::json> {
    if (shared->empty()) return sdk::Status::unavailable("no answer scripted");
    const auto index = std::min(*next, shared->size() - 1);
    ++*next;
    return (*shared)[index];
  };
}

void ScriptedAgentContext::script_model(const std::string& call, ModelAnswerer answerer) {
  model_[call] = std::move(answerer);
}

void ScriptedAgentContext::answer(const std::string& question_id, std::string text) {
  answers_[question_id] = std::move(text);
}

void ScriptedAgentContext::script_commands(CommandAnswerer answerer) {
  commands_answerer_ = std::move(answerer);
}

std::size_t ScriptedAgentContext::calls_of(const std::string& call) const {
  return static_cast<std::size_t>(std::count(model_call_names.begin(), model_call_names.end(), call));
}

sdk::Result<sdk::ModelAnswer> ScriptedAgentContext::ask_model(const sdk::ModelRequest& request) {
  const std::string name = request.json_output ? request.json_output->name : std::string();
  model_calls.push_back(request);
  model_call_names.push_back(name);
  const auto it = model_.find(name);
  if (it == model_.end()) return sdk::Status::unavailable("the test scripted no answer to " + name);
  auto json = it->second(request);
  if (!json.ok()) return json.status();
  sdk::ModelAnswer answer;
  answer.content = json->dump();
  answer.json = std::move(json).value();
  answer.model = "scripted/test-model";
  return answer;
}

sdk::Result<sdk::UserAnswer> ScriptedAgentContext::ask_user(const sdk::UserQuestion& question) {
  questions.push_back(question);
  const auto it = answers_.find(question.id);
  if (it == answers_.end()) return sdk::Status::aborted("waiting for the user");
  return sdk::UserAnswer{it->second, false};
}

sdk::Result<sdk::CommandResult> ScriptedAgentContext::run_command(const sdk::CommandRequest& request) {
  commands.push_back(request);
  if (!commands_answerer_) return sdk::Status::unimplemented("the test scripted no commands");
  return commands_answerer_(request);
}

sdk::Result<std::string> ScriptedAgentContext::read_file(std::string_view path) {
  ++reads;
  const auto it = files.find(std::string(path));
  if (it == files.end()) return sdk::Status::not_found("no file " + std::string(path));
  return it->second;
}

sdk::Result<std::vector<std::string>> ScriptedAgentContext::list_files() {
  std::vector<std::string> paths;
  for (const auto& [path, content] : files)
    paths.push_back(path);
  return paths;
}

sdk::Status ScriptedAgentContext::write_file(std::string_view path, std::string_view content) {
  if (path.empty() || path.front() == '/' || path.find("..") != std::string_view::npos)
    return sdk::Status::invalid_argument("a workspace path is relative and stays inside it");
  files[std::string(path)] = std::string(content);
  written.emplace_back(path);
  return {};
}

sdk::Status ScriptedAgentContext::delete_file(std::string_view path) {
  if (files.erase(std::string(path)) == 0) return sdk::Status::not_found("no file " + std::string(path));
  written.push_back("-" + std::string(path));
  return {};
}

sdk::Status ScriptedAgentContext::emit_event(std::string_view type, const nlohmann::json& payload) {
  events.emplace_back(std::string(type), payload);
  return {};
}

sdk::Status ScriptedAgentContext::start_preview() {
  ++previews_started;
  return preview_result;
}

sdk::CommandResult command_exited(int exit_code, std::string out, std::string err) {
  sdk::CommandResult result;
  result.exit_code = exit_code;
  result.stdout_tail = std::move(out);
  result.stderr_tail = std::move(err);
  return result;
}

AgentHarness::AgentHarness(std::string plugin_id, const std::filesystem::path& plugin_file,
                           nlohmann::json config)
    : plugin_id_(std::move(plugin_id)), dir_("samokoder-agent") {
  config::PluginsConfig plugins;
  plugins.runtime_dir = dir_.path() / "run";
  config::PluginEntry entry;
  entry.id = plugin_id_;
  entry.file = plugin_file.string();
  entry.config = std::move(config);
  plugins.plugins.push_back(std::move(entry));
  manager_ = std::make_unique<plugins::PluginManager>(plugins, registry_, clock_);
  (void)manager_->start();
}

AgentHarness::~AgentHarness() = default;

std::string AgentHarness::error() const {
  const auto info = manager_->find(plugin_id_);
  if (!info) return "the plugin manager does not know " + plugin_id_;
  if (info->state == plugins::PluginState::kActive) return {};
  return info->failure_message.empty() ? std::string("not active") : info->failure_message;
}

bool AgentHarness::wants(const nlohmann::json& state) {
  auto wanted = manager_->acquire(plugin_id_).call<sdk::Agent>([&](sdk::Agent& agent) -> sdk::Result<bool> {
    return agent.wants(state);
  });
  return wanted.ok() && *wanted;
}

sdk::Result<sdk::AgentStepResult> AgentHarness::run_step(sdk::AgentContext& context) {
  return manager_->acquire(plugin_id_).call<sdk::Agent>([&](sdk::Agent& agent) {
    return agent.run_step(context);
  });
}

std::string AgentHarness::role() {
  auto role =
      manager_->acquire(plugin_id_).call<sdk::Agent>([&](sdk::Agent& agent) -> sdk::Result<std::string> {
        return std::string(agent.role());
      });
  return role.ok() ? *role : std::string();
}

}  // namespace samokoder::testing
