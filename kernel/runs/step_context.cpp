#include "runs/step_context.hpp"

#include <algorithm>
#include <memory>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include <samokoder/sdk/preview.hpp>
#include <samokoder/sdk/storage.hpp>

#include "core/logging.hpp"
#include "security/encoding.hpp"
#include "security/jwt.hpp"
#include "security/path_guard.hpp"

namespace samokoder::runs {

namespace {

constexpr std::size_t kMaxFileBytes = 16 * 1024 * 1024;
constexpr std::size_t kMaxEventPayloadBytes = 64 * 1024;
constexpr std::size_t kOutputTailBytes = 16 * 1024;
constexpr std::size_t kMaxQuestionChars = 4000;
constexpr std::size_t kMaxOptions = 20;
// The kernel's own processes are attributed to this owner in the process service's table and metrics.
const processes::Owner kRunsOwner{"kernel.runs", 0};
// runs.command_containment for commands that run as plain children of the kernel.
constexpr std::string_view kUnconfined = "none";
// Enters the command's directory inside the confinement (the runner confines the whole workspace):
// the directory is $0 and the command "$@", so neither is ever parsed as shell text.
constexpr const char* kEnterDirectory = R"(cd -- "$0" && exec "$@")";

bool is_name(std::string_view text, std::string_view extra) {
  if (text.empty() || text.size() > 64) return false;
  return std::all_of(text.begin(), text.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || extra.find(c) != std::string_view::npos;
  });
}

bool is_env_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string tail(const std::string& text) {
  return text.size() <= kOutputTailBytes ? text : text.substr(text.size() - kOutputTailBytes);
}

// What identifies a model request: a re-run that asks something else gets a fresh answer.
std::string fingerprint(const sdk::ModelRequest& request, const std::string& role) {
  nlohmann::json doc = {{"role", role}, {"system", request.system}, {"max_tokens", request.max_tokens}};
  auto& messages = doc["messages"] = nlohmann::json::array();
  for (const auto& m : request.messages)
    messages.push_back({m.role, m.content});
  if (request.temperature) doc["temperature"] = *request.temperature;
  if (request.json_output) doc["json"] = {request.json_output->name, request.json_output->schema};
  auto mac = security::hmac_sha256("samokoder.run.request",
                                   doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return mac.ok() ? security::hex_encode(*mac) : std::string();
}

// Relays the model's text to the run's watchers as it streams.
class DeltaRelay final : public sdk::CompletionObserver {
 public:
  DeltaRelay(RunEventHub& hub, const StepIdentity& identity, int index, sdk::CancelToken cancel)
      : hub_(hub), identity_(identity), index_(index), cancel_(std::move(cancel)) {}
  bool on_delta(std::string_view text) override {
    hub_.transient(identity_.run_id, event_type::kLlmDelta,
                   {{"base", identity_.base},
                    {"branch", identity_.branch},
                    {"index", index_},
                    {"agent", identity_.agent_id},
                    {"text", text}});
    return !cancel_.stop_requested();
  }

 private:
  RunEventHub& hub_;
  const StepIdentity& identity_;
  const int index_;
  sdk::CancelToken cancel_;
};

// A command confined by the preview runner runs.command_containment names. The contained spec and its
// cleanup are the runner's (std::function targets in its library), so the runner's lease is held as
// long as they exist: the runner cannot be unloaded under them, and a reload of it waits for the
// command (drain_timeout_ms). The cleanup runs once, after the child ended or when the command failed,
// always before the lease goes (members are destroyed in reverse order).
class ConfinedCommand {
 public:
  ConfinedCommand(plugins::Lease lease, sdk::ContainedCommand command)
      : lease_(std::move(lease)), command_(std::move(command)) {}
  ~ConfinedCommand() { cleanup(); }
  ConfinedCommand(const ConfinedCommand&) = delete;
  ConfinedCommand& operator=(const ConfinedCommand&) = delete;

  sdk::ProcessSpec& spec() noexcept { return command_.spec; }

  void cleanup() noexcept {
    if (!command_.cleanup) return;
    auto cleanup = std::exchange(command_.cleanup, nullptr);
    // Through the lease, so a throw of the runner's code becomes a Status here.
    const sdk::Status done = lease_.call<sdk::PreviewRunner>([&](sdk::PreviewRunner&) {
      cleanup();
      return sdk::Status();
    });
    if (!done.ok())
      core::logger("runs")->warn("the cleanup of a command confined by {} failed: {}",
                                 lease_.generation().descriptor().id, done.to_string());
  }

 private:
  plugins::Lease lease_;
  sdk::ContainedCommand command_;
};

// Confines `command` through the runner `runner_id`. kFailedPrecondition naming the runner when it is
// not active, is no preview runner or does not confine commands (kUnimplemented, kFailedPrecondition):
// a command never runs unconfined because its runner is missing. Other errors keep their code.
sdk::Result<std::unique_ptr<ConfinedCommand>> confine(plugins::PluginManager& plugins,
                                                      const std::string& runner_id,
                                                      const sdk::ProcessSpec& command,
                                                      const std::string& project_id) {
  const std::string refused = "the command did not run: agents' commands run confined by " + runner_id +
                              " (runs.command_containment)";
  plugins::Lease lease = plugins.acquire(runner_id);
  if (!lease) {
    const auto info = plugins.find(runner_id);
    std::string why = info ? std::string(plugins::state_name(info->state)) : "not configured";
    if (info && !info->failure_message.empty()) why += ": " + info->failure_message;
    return sdk::Status::failed_precondition(refused + ", which is not active (" + why + ")");
  }
  if (lease.as<sdk::PreviewRunner>() == nullptr)
    return sdk::Status::failed_precondition(refused + ", which is not a preview runner");
  auto contained = lease.call<sdk::PreviewRunner>(
      [&](sdk::PreviewRunner& runner) { return runner.contain_command(command, project_id); });
  if (!contained.ok()) {
    const sdk::StatusCode code = contained.status().code();
    if (code == sdk::StatusCode::kUnimplemented || code == sdk::StatusCode::kFailedPrecondition)
      return sdk::Status::failed_precondition(refused +
                                              ", which cannot confine it: " + contained.status().message());
    return sdk::Status(code, runner_id + " (runs.command_containment) could not confine the command: " +
                                 contained.status().message());
  }
  return std::make_unique<ConfinedCommand>(std::move(lease), std::move(contained).value());
}

}  // namespace

std::string question_id(std::int64_t base, int branch, std::string_view id) {
  std::string scope = branch == -1 ? "step" : branch == -2 ? "kernel" : "b" + std::to_string(branch);
  return std::to_string(base) + "." + scope + "." + std::string(id);
}

StepContext::StepContext(StepServices services, StepIdentity identity, const nlohmann::json& state,
                         nlohmann::json task, const RunRecord& record, sdk::CancelToken cancel)
    : services_(services),
      identity_(std::move(identity)),
      state_(state),
      task_(std::move(task)),
      record_(record),
      cancel_(std::move(cancel)) {}

sdk::Status StepContext::record(const char* type, nlohmann::json payload) {
  auto appended = services_.plugins.acquire_storage().call<sdk::Storage>([&](sdk::Storage& storage) {
    return storage.store<sdk::RunStore>().append_run_event(identity_.owner_id, identity_.run_id, type,
                                                           payload);
  });
  if (!appended.ok()) return appended.status();
  services_.hub.committed(identity_.run_id);
  return {};
}

sdk::Result<sdk::ModelAnswer> StepContext::ask_model(const sdk::ModelRequest& request) {
  const int index = model_calls_++;
  const std::string print = fingerprint(request, identity_.role);
  if (const auto* recorded = record_.find(RunRecord::key(identity_.branch, "llm", std::to_string(index)));
      recorded != nullptr) {
    if (recorded->value("fingerprint", std::string()) == print) {
      sdk::ModelAnswer answer;
      answer.content = recorded->value("content", std::string());
      if (const auto it = recorded->find("json"); it != recorded->end()) answer.json = *it;
      answer.model = recorded->value("model", std::string());
      const auto& usage = recorded->value("usage", nlohmann::json::object());
      answer.usage.prompt_tokens = usage.value("prompt_tokens", std::uint64_t{0});
      answer.usage.completion_tokens = usage.value("completion_tokens", std::uint64_t{0});
      answer.usage.cached_prompt_tokens = usage.value("cached_prompt_tokens", std::uint64_t{0});
      answer.replayed = true;
      return answer;
    }
    core::logger("runs")->warn(
        "run {}: {} asked the model something else than its recorded call {} of step {}; asking "
        "the model again (an agent must be deterministic, or it was upgraded mid-step)",
        identity_.run_id, identity_.agent_id, index, identity_.base + 1);
  }
  if (cancel_.stop_requested()) return sdk::Status::cancelled("the run was cancelled");

  llm::LlmCall call;
  call.user_id = identity_.owner_id;
  call.project_id = identity_.project_id;
  call.run_id = identity_.run_id;
  call.role = identity_.role;
  call.system = request.system;
  call.messages = request.messages;
  call.json_output = request.json_output;
  call.max_tokens = request.max_tokens;
  call.temperature = request.temperature;
  call.model = identity_.model;
  DeltaRelay relay(services_.hub, identity_, index, cancel_);
  auto answer = services_.llm.complete(call, &relay, cancel_);
  if (!answer.ok()) return answer.status();
  if (cancel_.stop_requested()) return sdk::Status::cancelled("the run was cancelled");

  const auto& usage = answer->completion.usage;
  nlohmann::json payload = {{"base", identity_.base},
                            {"branch", identity_.branch},
                            {"index", index},
                            {"fingerprint", print},
                            {"agent", identity_.agent_id},
                            {"model", answer->provider + "/" + answer->model},
                            {"content", answer->completion.content},
                            {"finish_reason", answer->completion.finish_reason},
                            {"usage",
                             {{"prompt_tokens", usage.prompt_tokens},
                              {"completion_tokens", usage.completion_tokens},
                              {"cached_prompt_tokens", usage.cached_prompt_tokens}}},
                            {"cost_micro_usd", answer->cost_micro_usd},
                            {"attempts", answer->attempts},
                            {"request_id", answer->request_id}};
  if (answer->json) payload["json"] = *answer->json;
  // Recorded before the agent sees it: a step run again after a crash gets this answer back.
  if (auto recorded = record(event_type::kLlmExchange, std::move(payload)); !recorded.ok()) return recorded;

  sdk::ModelAnswer result;
  result.content = std::move(answer->completion.content);
  result.json = std::move(answer->json);
  result.model = answer->provider + "/" + answer->model;
  result.usage = usage;
  return result;
}

sdk::Result<sdk::UserAnswer> StepContext::ask_user(const sdk::UserQuestion& question) {
  if (!is_name(question.id, "_.-"))
    return sdk::Status::invalid_argument("a question id is 1..64 of [a-z0-9_.-]");
  if (question.text.empty() || question.text.size() > kMaxQuestionChars)
    return sdk::Status::invalid_argument("a question's text is 1.." + std::to_string(kMaxQuestionChars) +
                                         " bytes");
  if (question.options.size() > kMaxOptions)
    return sdk::Status::invalid_argument("a question has at most " + std::to_string(kMaxOptions) +
                                         " options");
  const auto* recorded = record_.find(RunRecord::key(identity_.branch, "ask", question.id));
  if (recorded != nullptr && recorded->contains("answer")) {
    return sdk::UserAnswer{recorded->value("answer", std::string()), true};
  }
  const std::string id = question_id(identity_.base, identity_.branch, question.id);
  if (recorded == nullptr) {
    auto asked = record(event_type::kQuestionAsked, {{"base", identity_.base},
                                                     {"branch", identity_.branch},
                                                     {"id", question.id},
                                                     {"question_id", id},
                                                     {"agent", identity_.agent_id},
                                                     {"text", question.text},
                                                     {"options", question.options}});
    if (!asked.ok()) return asked;
  }
  waiting_for_ = id;
  return sdk::Status::aborted("waiting for the user's answer to question " + id);
}

sdk::Result<sdk::CommandResult> StepContext::run_command(const sdk::CommandRequest& request) {
  const int index = commands_++;
  if (const auto* recorded = record_.find(RunRecord::key(identity_.branch, "cmd", std::to_string(index)));
      recorded != nullptr) {
    sdk::CommandResult result;
    if (const auto it = recorded->find("exit_code"); it != recorded->end() && it->is_number())
      result.exit_code = it->get<int>();
    if (const auto it = recorded->find("signal"); it != recorded->end() && it->is_number())
      result.signal = it->get<int>();
    result.timed_out = recorded->value("timed_out", false);
    result.stdout_tail = recorded->value("stdout_tail", std::string());
    result.stderr_tail = recorded->value("stderr_tail", std::string());
    result.replayed = true;
    return result;
  }
  if (request.argv.empty()) return sdk::Status::invalid_argument("a command needs argv");
  if (request.shell && request.argv.size() != 1)
    return sdk::Status::invalid_argument("a shell command is exactly one string");
  if (cancel_.stop_requested()) return sdk::Status::cancelled("the run was cancelled");
  auto root = services_.workspaces.directory(identity_.project_id);
  if (!root.ok()) return root.status();
  const bool confining = services_.command_containment != kUnconfined;
  // Absolute, so HOME means the same from any directory; the real path when confined, since a runner
  // shows the workspace inside at its real path (and HOME must name it there).
  std::error_code ec;
  std::filesystem::path workspace = confining ? std::filesystem::canonical(*root, ec)
                                              : std::filesystem::absolute(*root, ec).lexically_normal();
  if (ec) workspace = *root;
  std::filesystem::path directory = workspace;
  std::string relative_directory;
  if (!request.working_directory.empty()) {
    auto relative = security::normalize_relative_path(request.working_directory);
    if (!relative.ok()) return relative.status();
    directory /= *relative;
    relative_directory = std::move(relative).value();
  }
  if (!std::filesystem::is_directory(directory, ec) || std::filesystem::is_symlink(directory, ec))
    return sdk::Status::not_found("the command's working directory " + request.working_directory +
                                  " is not a directory of the workspace");

  sdk::ProcessSpec spec;
  spec.argv = request.argv;
  spec.shell = request.shell;
  spec.working_directory = directory.string();
  spec.environment = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", workspace.string()}, {"LANG", "C.UTF-8"}};
  for (const auto& [name, value] : request.environment) {
    if (!is_env_name(name)) return sdk::Status::invalid_argument("invalid environment variable name " + name);
    spec.environment.emplace_back(name, value);
  }
  spec.timeout = request.timeout.count() > 0 ? request.timeout : services_.command_timeout;

  std::unique_ptr<ConfinedCommand> confined;
  if (confining) {
    // The runner gets the workspace as the working directory (what it confines the command to); a
    // command of a directory in it enters that directory inside.
    sdk::ProcessSpec command = spec;
    command.working_directory = workspace.string();
    if (!relative_directory.empty()) {
      command.argv = {"/bin/sh", "-c", kEnterDirectory, relative_directory};
      if (request.shell) {
        command.argv.insert(command.argv.end(), {"/bin/sh", "-c", request.argv.front()});
      } else {
        command.argv.insert(command.argv.end(), request.argv.begin(), request.argv.end());
      }
      command.shell = false;
    }
    auto made = confine(services_.plugins, services_.command_containment, command, identity_.project_id);
    if (!made.ok()) return made.status();
    confined = std::move(made).value();
    // What the runner returned runs under the kernel's deadline, output cap and stdin whatever it
    // set: those are the run's, not the runner's.
    confined->spec().timeout = spec.timeout;
    confined->spec().output_limit_bytes = spec.output_limit_bytes;
    confined->spec().stdin_data = spec.stdin_data;
  }
  sdk::ProcessSpec& launched = confined ? confined->spec() : spec;
  RunEventHub& hub = services_.hub;
  const StepIdentity& who = identity_;
  launched.on_line = [&hub, &who, index](sdk::OutputStream stream, std::string_view line) {
    hub.transient(who.run_id, event_type::kCommandOutput,
                  {{"base", who.base},
                   {"branch", who.branch},
                   {"index", index},
                   {"stream", stream == sdk::OutputStream::kStdout ? "stdout" : "stderr"},
                   {"line", line}});
  };
  auto ran = services_.processes.run(kRunsOwner, launched, cancel_);
  confined.reset();  // the child ended: the runner's cleanup runs, then its lease goes
  if (!ran.ok()) return ran.status();
  if (ran->cancelled || cancel_.stop_requested()) return sdk::Status::cancelled("the run was cancelled");

  sdk::CommandResult result;
  result.exit_code = ran->exit_code;
  result.signal = ran->signal;
  result.timed_out = ran->timed_out;
  result.stdout_tail = tail(ran->stdout_data);
  result.stderr_tail = tail(ran->stderr_data);
  nlohmann::json payload = {{"base", identity_.base},
                            {"branch", identity_.branch},
                            {"index", index},
                            {"agent", identity_.agent_id},
                            {"argv", request.argv},
                            {"shell", request.shell},
                            {"exit_code", result.exit_code ? nlohmann::json(*result.exit_code) : nullptr},
                            {"signal", result.signal ? nlohmann::json(*result.signal) : nullptr},
                            {"timed_out", result.timed_out},
                            {"stdout_tail", result.stdout_tail},
                            {"stderr_tail", result.stderr_tail},
                            {"wall_ms", ran->wall_time.count()}};
  if (auto recorded = record(event_type::kCommandFinished, std::move(payload)); !recorded.ok())
    return recorded;
  return result;
}

sdk::Result<std::string> StepContext::stored_content(const std::string& path) {
  auto file = services_.plugins.acquire_storage().call<sdk::Storage>([&](sdk::Storage& storage) {
    return storage.store<sdk::FileStore>().get_file(identity_.owner_id, identity_.project_id, path,
                                                    std::nullopt);
  });
  if (!file.ok()) return file.status();
  return std::move(file->content);
}

sdk::Result<std::string> StepContext::read_file(std::string_view raw) {
  auto path = security::normalize_relative_path(raw);
  if (!path.ok()) return path.status();
  if (const auto it = changes_.find(*path); it != changes_.end()) {
    if (!it->second) return sdk::Status::not_found("no file " + *path + " (this step deleted it)");
    return *it->second;
  }
  return stored_content(*path);
}

sdk::Result<std::vector<std::string>> StepContext::list_files() {
  std::set<std::string> paths;
  sdk::PageRequest page;
  page.limit = sdk::kMaxPageLimit;
  for (;;) {
    auto listed = services_.plugins.acquire_storage().call<sdk::Storage>([&](sdk::Storage& storage) {
      return storage.store<sdk::FileStore>().list_files(identity_.owner_id, identity_.project_id, "", page);
    });
    if (!listed.ok()) return listed.status();
    for (const auto& file : listed->items)
      paths.insert(file.path);
    if (listed->next_cursor.empty()) break;
    page.cursor = listed->next_cursor;
  }
  for (const auto& [path, content] : changes_) {
    if (content) {
      paths.insert(path);
    } else {
      paths.erase(path);
    }
  }
  return std::vector<std::string>(paths.begin(), paths.end());
}

sdk::Status StepContext::write_file(std::string_view raw, std::string_view content) {
  auto path = security::normalize_relative_path(raw);
  if (!path.ok()) return path.status();
  if (content.size() > kMaxFileBytes)
    return sdk::Status::resource_exhausted("a file written by a step is at most " +
                                           std::to_string(kMaxFileBytes) + " bytes");
  if (auto checked = services_.workspaces.check_path(identity_.project_id, *path, true); !checked.ok())
    return checked;
  if (auto written = services_.workspaces.write_file(identity_.project_id, *path, content); !written.ok())
    return written;
  changes_[*path] = std::string(content);
  return {};
}

sdk::Status StepContext::delete_file(std::string_view raw) {
  auto path = security::normalize_relative_path(raw);
  if (!path.ok()) return path.status();
  auto existing = read_file(*path);
  if (!existing.ok()) return existing.status();
  if (auto checked = services_.workspaces.check_path(identity_.project_id, *path, true); !checked.ok())
    return checked;
  if (auto removed = services_.workspaces.remove_file(identity_.project_id, *path); !removed.ok())
    return removed;
  changes_[*path] = std::nullopt;
  return {};
}

sdk::Status StepContext::emit_event(std::string_view type, const nlohmann::json& payload) {
  if (!is_name(type, "_.") || is_kernel_event_type(type))
    return sdk::Status::invalid_argument(
        "an agent's event type is 1..64 of [a-z0-9_.] outside the kernel's "
        "prefixes (run., step., llm., question., command., message., file., "
        "budget.)");
  if (payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size() > kMaxEventPayloadBytes)
    return sdk::Status::resource_exhausted("an event's payload is at most 64 KiB");
  emitted_.push_back({std::string(type), payload});
  return {};
}

void StepContext::undo_changes() {
  restore_workspace(services_, identity_.owner_id, identity_.project_id, identity_.run_id, changes_);
}

void restore_workspace(const StepServices& services, const std::string& owner_id,
                       const std::string& project_id, const std::string& run_id,
                       const std::map<std::string, std::optional<std::string>>& changes) {
  for (const auto& change : changes) {
    const std::string& path = change.first;
    auto stored = services.plugins.acquire_storage().call<sdk::Storage>([&](sdk::Storage& storage) {
      return storage.store<sdk::FileStore>().get_file(owner_id, project_id, path, std::nullopt);
    });
    sdk::Status restored;
    if (stored.ok()) {
      restored = services.workspaces.write_file(project_id, path, stored->content);
    } else if (stored.status().code() == sdk::StatusCode::kNotFound) {
      restored = services.workspaces.remove_file(project_id, path);
    } else {
      restored = stored.status();
    }
    if (!restored.ok())
      core::logger("runs")->warn("run {}: could not undo an uncommitted change to {}: {}", run_id, path,
                                 restored.to_string());
  }
}

sdk::Status StepContext::start_preview() {
  if (!services_.start_preview) return sdk::Status::unavailable("this server runs no live previews");
  return services_.start_preview(identity_.owner_id, identity_.project_id);
}

}  // namespace samokoder::runs
