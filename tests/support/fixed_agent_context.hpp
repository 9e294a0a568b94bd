// FixedAgentContext: the sdk::AgentContext tests hand to agent plugins that only need one. It holds a
// fixed run state, has no files (read_file answers kNotFound, writes are accepted and dropped), drops
// events and is never cancelled.
//
// Ownership: owns its state. Thread-safety: const after construction; the mutating calls do nothing.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include <samokoder/sdk.hpp>

namespace samokoder::testing {

class FixedAgentContext final : public sdk::AgentContext {
 public:
  explicit FixedAgentContext(nlohmann::json state = nlohmann::json::object()) : state_(std::move(state)) {}
  const nlohmann::json& state() const noexcept override { return state_; }
  sdk::Result<std::string> read_file(std::string_view) override { return sdk::Status::not_found("no files"); }
  sdk::Status write_file(std::string_view, std::string_view) override { return {}; }
  sdk::Status emit_event(std::string_view, const nlohmann::json&) override { return {}; }
  sdk::CancelToken cancel_token() const noexcept override { return sdk::never_cancelled(); }

 private:
  nlohmann::json state_;
};

}  // namespace samokoder::testing
