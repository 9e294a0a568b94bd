// PromptedAgent: the base of the pipeline's agent plugins. It loads the agent's PromptBook at init (the
// built-in prompts, overridden from config) and makes one model call per prompt: "system.md" as the
// system prompt, "<call>.md" rendered as the user's message, and "<call>.schema.json" as the JSON the
// answer must be, which the kernel's gateway validates before the agent sees it.
//
// Ownership: the host outlives the instance (sdk::Plugin::init). Thread-safety: after init the book is
// immutable; ask() uses only its arguments, so calls for different runs may run at once, as the SDK
// requires of an agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/agent_common/prompt_book.hpp>
#include <samokoder/sdk/agent.hpp>

namespace samokoder::agent_common {

struct AskOptions {
  // Messages between the rendered prompt and the model's answer: earlier turns of the same exchange,
  // such as a rejected draft and the reviewer's notes.
  std::vector<sdk::ChatMessage> follow_up;
  std::uint32_t max_tokens = 4096;
  std::optional<double> temperature;
};

class PromptedAgent : public sdk::Agent {
 public:
  sdk::Status init(sdk::HostServices& host) final;

 protected:
  // The agent's own config keys, after the prompts loaded (config is the plugin's section).
  virtual sdk::Status configure(const nlohmann::json& config);

  // One call: the JSON answer (validated against "<call>.schema.json"). Errors are the context's
  // (kAborted while the model is waited for is not one: a model call never pauses a step).
  sdk::Result<nlohmann::json> ask(sdk::AgentContext& context, std::string_view call,
                                  const nlohmann::json& values, const AskOptions& options = {}) const;

  const PromptBook& prompts() const noexcept { return prompts_; }
  sdk::HostServices& host() const noexcept { return *host_; }

 private:
  sdk::HostServices* host_ = nullptr;
  PromptBook prompts_;
};

}  // namespace samokoder::agent_common
