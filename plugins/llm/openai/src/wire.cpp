#include "wire.hpp"

#include <vector>

#include <samokoder/sdk/redact.hpp>

namespace samokoder::llm_openai {
namespace {

using llm_common::count_of;
using llm_common::quoted_message;
using nlohmann::json;

// OpenAI reports cached input inside prompt_tokens (prompt_tokens_details.cached_tokens); DeepSeek
// names it prompt_cache_hit_tokens.
sdk::TokenUsage usage_of(const json& usage) {
  sdk::TokenUsage out;
  out.prompt_tokens = count_of(usage, "prompt_tokens");
  out.completion_tokens = count_of(usage, "completion_tokens");
  const auto details = usage.find("prompt_tokens_details");
  if (details != usage.end() && details->is_object())
    out.cached_prompt_tokens = count_of(*details, "cached_tokens");
  if (out.cached_prompt_tokens == 0) out.cached_prompt_tokens = count_of(usage, "prompt_cache_hit_tokens");
  return out;
}

std::string text_of(const json& value) {
  return value.is_string() ? value.get<std::string>() : std::string();
}

// The error type or code as OpenAI and the compatible servers name them.
std::optional<sdk::StatusCode> code_of_error_name(std::string_view name) {
  if (name == "rate_limit_exceeded" || name == "rate_limit_error" || name == "insufficient_quota" ||
      name == "tokens" || name == "requests")
    return sdk::StatusCode::kResourceExhausted;
  if (name == "invalid_api_key" || name == "authentication_error" || name == "invalid_authentication")
    return sdk::StatusCode::kUnauthenticated;
  if (name == "permission_error" || name == "permission_denied" ||
      name == "unsupported_country_region_territory")
    return sdk::StatusCode::kPermissionDenied;
  if (name == "invalid_request_error" || name == "model_not_found" || name == "context_length_exceeded" ||
      name == "not_found_error" || name == "BadRequestError" || name == "NotFoundError")
    return sdk::StatusCode::kInvalidArgument;
  if (name == "server_error" || name == "api_error" || name == "overloaded_error" ||
      name == "service_unavailable")
    return sdk::StatusCode::kUnavailable;
  return std::nullopt;
}

sdk::StatusCode code_of_http_status(unsigned status) {
  switch (status) {
    case 401:
      return sdk::StatusCode::kUnauthenticated;
    case 403:
      return sdk::StatusCode::kPermissionDenied;
    case 408:
      return sdk::StatusCode::kUnavailable;
    case 429:
      return sdk::StatusCode::kResourceExhausted;
    default:
      break;
  }
  // 400, 404 (model not found), 413, 422 and the rest of 4xx: retrying the same request fails again.
  if (status >= 400 && status < 500) return sdk::StatusCode::kInvalidArgument;
  return sdk::StatusCode::kUnavailable;
}

}  // namespace

json request_body(const sdk::CompletionRequest& request, const ProviderConfig& config) {
  std::string system = request.system;
  if (request.json_output && config.json_mode != JsonMode::kJsonSchema) {
    if (!system.empty()) system += "\n\n";
    system += "Answer with exactly one JSON value, and nothing else, that matches this JSON Schema:\n" +
              request.json_output->schema.dump();
  }
  json messages = json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", std::move(system)}});
  for (const auto& message : request.messages)
    messages.push_back({{"role", message.role}, {"content", message.content}});

  json body = {{"model", request.model},
               {"messages", std::move(messages)},
               {"max_tokens", request.max_tokens},
               {"stream", request.stream}};
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.stream && config.stream_usage) body["stream_options"] = {{"include_usage", true}};
  if (request.json_output) {
    if (config.json_mode == JsonMode::kJsonSchema) {
      body["response_format"] = {
          {"type", "json_schema"},
          {"json_schema",
           {{"name", request.json_output->name}, {"schema", request.json_output->schema}, {"strict", true}}}};
    } else if (config.json_mode == JsonMode::kJsonObject) {
      body["response_format"] = {{"type", "json_object"}};
    }
  }
  return body;
}

std::string finish_reason_of(std::string_view finish_reason) {
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  if (finish_reason == "eos" || finish_reason == "end_turn") return "stop";
  return std::string(finish_reason);
}

sdk::Status error_status(unsigned http_status, std::string_view body) {
  std::string name;
  std::string message;
  std::optional<unsigned> numeric_code;  // OpenRouter and vLLM put an HTTP status in "code"
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const json* error = nullptr;
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    error = &parsed["error"];
  } else if (parsed.is_object() && parsed.value("object", "") == "error") {
    error = &parsed;
  }
  if (error != nullptr) {
    message = text_of(error->value("message", json()));
    const json& code = error->value("code", json());
    if (code.is_number_unsigned()) numeric_code = code.get<unsigned>();
    const std::string type = text_of(error->value("type", json()));
    const std::string code_name = text_of(code);
    // The code is the more specific of the two (rate_limit_exceeded beside type "requests").
    name = !code_name.empty() && code_of_error_name(code_name) ? code_name : type;
    if (name.empty()) name = code_name;
  } else if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    message = parsed["error"].get<std::string>();  // Ollama, llama.cpp server
  } else if (parsed.is_object() && parsed.contains("detail")) {
    message = parsed["detail"].is_string() ? parsed["detail"].get<std::string>() : parsed["detail"].dump();
  } else if (http_status != 0) {
    message = std::string(body);  // a proxy's or load balancer's page rather than the API's JSON
  }

  sdk::StatusCode code = sdk::StatusCode::kUnavailable;
  if (http_status != 0) {
    code = code_of_http_status(http_status);
  } else if (auto by_name = code_of_error_name(name)) {
    code = *by_name;
  } else if (numeric_code && *numeric_code >= 400) {
    code = code_of_http_status(*numeric_code);
  }
  std::string text = http_status != 0 ? "openai answered HTTP " + std::to_string(http_status)
                                      : std::string("openai reported an error in the stream");
  if (!name.empty()) text += " (" + name + ")";
  if (!message.empty()) text += ": " + quoted_message(message);
  return {code, std::move(text)};
}

StreamDecoder::Step StreamDecoder::on_event(std::string_view data) {
  Step step;
  if (data == "[DONE]") {
    done_ = true;
    return step;
  }
  const json chunk = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!chunk.is_object()) {
    step.status = sdk::Status::internal("openai sent a stream chunk whose data is not a JSON object");
    return step;
  }
  if (chunk.contains("error") && !chunk["error"].is_null()) {
    step.status = error_status(0, data);
    return step;
  }
  if (chunk.contains("model") && chunk["model"].is_string()) model_ = chunk["model"].get<std::string>();
  // The final chunk of stream_options.include_usage has empty choices; some servers put usage on
  // the finishing chunk instead, or null on every chunk.
  if (chunk.contains("usage") && chunk["usage"].is_object()) {
    usage_ = usage_of(chunk["usage"]);
    usage_known_ = step.usage_changed = true;
  }
  const json& choices = chunk.value("choices", json::array());
  if (!choices.is_array()) {
    step.status = sdk::Status::internal("openai sent a stream chunk whose choices are not an array");
    return step;
  }
  if (choices.empty() || !choices[0].is_object()) return step;
  const json& choice = choices[0];
  const json& delta = choice.value("delta", json::object());
  if (delta.is_object() && delta.contains("content") && delta["content"].is_string()) {
    std::string piece = delta["content"].get<std::string>();
    if (!piece.empty()) {
      content_ += piece;
      step.content = std::move(piece);
    }
  }
  const json& finish = choice.value("finish_reason", json());
  if (finish.is_string() && !finish.get<std::string>().empty()) finish_reason_ = finish.get<std::string>();
  return step;
}

sdk::Result<sdk::Completion> parse_completion(std::string_view body, bool& usage_reported) {
  const json answer = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!answer.is_object() || !answer.contains("choices") || !answer["choices"].is_array() ||
      answer["choices"].empty() || !answer["choices"][0].is_object())
    return sdk::Status::internal("openai answered 200 with a body that is not a chat completion");
  const json& choice = answer["choices"][0];
  sdk::Completion completion;
  completion.model = text_of(answer.value("model", json()));
  completion.finish_reason = finish_reason_of(text_of(choice.value("finish_reason", json())));
  const json& message = choice.value("message", json::object());
  if (message.is_object()) completion.content = text_of(message.value("content", json()));
  usage_reported = answer.contains("usage") && answer["usage"].is_object();
  if (usage_reported) completion.usage = usage_of(answer["usage"]);
  return completion;
}

sdk::Result<std::vector<sdk::ModelInfo>> parse_models(std::string_view body) {
  const json list = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!list.is_object() || !list.contains("data") || !list["data"].is_array())
    return sdk::Status::internal("openai's model list is not an object with a data array");
  std::vector<sdk::ModelInfo> models;
  for (const json& entry : list["data"]) {
    if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_string()) continue;
    models.push_back({entry["id"].get<std::string>(), text_of(entry.value("owned_by", json()))});
  }
  return models;
}

}  // namespace samokoder::llm_openai
