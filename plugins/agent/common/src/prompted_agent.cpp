#include <string>
#include <utility>

#include <samokoder/agent_common/prompted_agent.hpp>
#include <samokoder/sdk/host.hpp>

namespace samokoder::agent_common {

sdk::Status PromptedAgent::init(sdk::HostServices& host) {
  host_ = &host;
  auto book = PromptBook::load(builtin_prompts(), host.config());
  if (!book.ok()) return book.status();
  prompts_ = std::move(book).value();
  return configure(host.config());
}

sdk::Status PromptedAgent::configure(const nlohmann::json& /*config*/) {
  return {};
}

sdk::Result<nlohmann::json> PromptedAgent::ask(sdk::AgentContext& context, std::string_view call,
                                               const nlohmann::json& values,
                                               const AskOptions& options) const {
  auto system = prompts_.render("system", values);
  if (!system.ok()) return system.status();
  auto prompt = prompts_.render(call, values);
  if (!prompt.ok()) return prompt.status();
  auto schema = prompts_.schema(call);
  if (!schema.ok()) return schema.status();

  sdk::ModelRequest request;
  request.system = std::move(system).value();
  // The rendered prompt carries the spec and the files, the stable part a provider can cache.
  request.messages.push_back({"user", std::move(prompt).value(), /*cache_prefix=*/true});
  for (const auto& message : options.follow_up)
    request.messages.push_back(message);
  request.json_output = sdk::JsonOutput{std::string(call), std::move(schema).value()};
  request.max_tokens = options.max_tokens;
  request.temperature = options.temperature;
  auto answer = context.ask_model(request);
  if (!answer.ok()) return answer.status();
  if (!answer->json)
    return sdk::Status::internal("the model's answer to " + std::string(call) + " carries no JSON");
  return std::move(*answer->json);
}

}  // namespace samokoder::agent_common
