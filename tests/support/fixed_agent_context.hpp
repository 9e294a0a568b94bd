// FixedAgentContext: the sdk::AgentContext tests hand to agent plugins that only need one. It holds a
// fixed run state, has no files (read_file answers kNotFound, writes are accepted and dropped), drops
// events, has no model, user, commands or previews (kUnimplemented) and is never cancelled.
//
// Ownership: owns its state. Thread-safety: const after construction; the mutating calls do nothing.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk.hpp>

namespace samokoder::testing {

class FixedAgentContext final : public sdk::AgentContext {
 public:
  explicit FixedAgentContext(nlohmann::json state = nlohmann::json::object()) : state_(std::move(state)) {}
  std::string_view run_id() const noexcept override { return "fixed-run"; }
  std::string_view project_id() const noexcept override { return "fixed-project"; }
  const nlohmann::json& state() const noexcept override { return state_; }
  const nlohmann::json& task() const noexcept override { return task_; }
  sdk::Result<sdk::ModelAnswer> ask_model(const sdk::ModelRequest&) override {
    return sdk::Status::unimplemented("no model in a fixed context");
  }
  sdk::Result<sdk::UserAnswer> ask_user(const sdk::UserQuestion&) override {
    return sdk::Status::unimplemented("no user in a fixed context");
  }
  sdk::Result<sdk::CommandResult> run_command(const sdk::CommandRequest&) override {
    return sdk::Status::unimplemented("no commands in a fixed context");
  }
  sdk::Result<std::string> read_file(std::string_view) override { return sdk::Status::not_found("no files"); }
  sdk::Result<std::vector<std::string>> list_files() override { return std::vector<std::string>{}; }
  sdk::Status write_file(std::string_view, std::string_view) override { return {}; }
  sdk::Status delete_file(std::string_view) override { return sdk::Status::not_found("no files"); }
  sdk::Status emit_event(std::string_view, const nlohmann::json&) override { return {}; }
  sdk::CancelToken cancel_token() const noexcept override { return sdk::never_cancelled(); }
  sdk::Status start_preview() override {
    return sdk::Status::unimplemented("no previews in a fixed context");
  }

 private:
  nlohmann::json state_;
  nlohmann::json task_;
};

}  // namespace samokoder::testing
