#include "wire.hpp"

#include <algorithm>
#include <vector>

#include <samokoder/sdk/redact.hpp>

namespace samokoder::llm_anthropic {
namespace {

using llm_common::count_of;
using llm_common::quoted_message;
using nlohmann::json;

json ephemeral() {
  return {{"type", "ephemeral"}};
}

// Anthropic's usage object, as far as it carries fields, into the SDK's counts. message_delta repeats
// only the fields that changed, so absent ones keep their value.
void take_usage(const json& usage, std::uint64_t& input_tokens, sdk::TokenUsage& out) {
  if (!usage.is_object()) return;
  if (usage.contains("input_tokens")) input_tokens = count_of(usage, "input_tokens");
  if (usage.contains("output_tokens")) out.completion_tokens = count_of(usage, "output_tokens");
  if (usage.contains("cache_read_input_tokens"))
    out.cached_prompt_tokens = count_of(usage, "cache_read_input_tokens");
  if (usage.contains("cache_creation_input_tokens"))
    out.cache_write_tokens = count_of(usage, "cache_creation_input_tokens");
  // input_tokens counts only what came after the last cache breakpoint; the SDK's prompt_tokens is
  // the whole input.
  out.prompt_tokens = input_tokens + out.cached_prompt_tokens + out.cache_write_tokens;
}

sdk::StatusCode code_of_error_type(std::string_view type) {
  if (type == "rate_limit_error" || type == "billing_error") return sdk::StatusCode::kResourceExhausted;
  if (type == "authentication_error") return sdk::StatusCode::kUnauthenticated;
  if (type == "permission_error") return sdk::StatusCode::kPermissionDenied;
  if (type == "invalid_request_error" || type == "not_found_error" || type == "request_too_large")
    return sdk::StatusCode::kInvalidArgument;
  // overloaded_error, api_error, timeout_error and whatever the API adds later: the service is what
  // failed, so a retry may succeed.
  return sdk::StatusCode::kUnavailable;
}

sdk::StatusCode code_of_http_status(unsigned status, std::string_view error_type) {
  switch (status) {
    case 401:
      return sdk::StatusCode::kUnauthenticated;
    case 403:
      return sdk::StatusCode::kPermissionDenied;
    case 408:
      return sdk::StatusCode::kUnavailable;
    case 429:
      return sdk::StatusCode::kResourceExhausted;
    case 400:
    case 404:
    case 413:
    case 422:
      return sdk::StatusCode::kInvalidArgument;
    default:
      break;
  }
  if (status >= 500) return sdk::StatusCode::kUnavailable;  // 529 is Anthropic's "overloaded"
  if (status >= 400)
    return error_type.empty() ? sdk::StatusCode::kInvalidArgument : code_of_error_type(error_type);
  return sdk::StatusCode::kUnavailable;
}

}  // namespace

json request_body(const sdk::CompletionRequest& request, std::size_t cache_system_min_chars) {
  const bool cache_system = !request.system.empty() && request.system.size() >= cache_system_min_chars;
  std::vector<std::size_t> cached_messages;
  for (std::size_t i = 0; i < request.messages.size(); ++i) {
    if (request.messages[i].cache_prefix) cached_messages.push_back(i);
  }
  const std::size_t message_slots = kMaxCacheBreakpoints - (cache_system ? 1 : 0);
  if (cached_messages.size() > message_slots)
    cached_messages.erase(cached_messages.begin(),
                          cached_messages.end() - static_cast<std::ptrdiff_t>(message_slots));

  json body = {{"model", request.model}, {"max_tokens", request.max_tokens}, {"stream", request.stream}};
  if (request.temperature) body["temperature"] = *request.temperature;
  if (!request.system.empty()) {
    json block = {{"type", "text"}, {"text", request.system}};
    if (cache_system) block["cache_control"] = ephemeral();
    body["system"] = json::array({std::move(block)});
  }
  json messages = json::array();
  for (std::size_t i = 0; i < request.messages.size(); ++i) {
    const auto& message = request.messages[i];
    json block = {{"type", "text"}, {"text", message.content}};
    if (std::find(cached_messages.begin(), cached_messages.end(), i) != cached_messages.end())
      block["cache_control"] = ephemeral();
    messages.push_back({{"role", message.role}, {"content", json::array({std::move(block)})}});
  }
  body["messages"] = std::move(messages);
  if (request.json_output) {
    body["tools"] = json::array({{{"name", request.json_output->name},
                                  {"description", "Answer with exactly one JSON value matching this schema."},
                                  {"input_schema", request.json_output->schema}}});
    body["tool_choice"] = {{"type", "tool"}, {"name", request.json_output->name}};
  }
  return body;
}

std::string finish_reason_of(std::string_view stop_reason, bool forced_tool) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence") return "stop";
  if (stop_reason == "max_tokens") return "length";
  if (stop_reason == "tool_use") return forced_tool ? "stop" : "tool_use";
  if (stop_reason == "refusal") return "content_filter";
  return std::string(stop_reason);
}

sdk::Status error_status(unsigned http_status, std::string_view body) {
  std::string type;
  std::string message;
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    const json& error = parsed["error"];
    type = error.value("type", "");
    message = error.value("message", "");
  } else if (http_status != 0) {
    message = std::string(body);  // a proxy's or load balancer's page rather than the API's JSON
  }
  const sdk::StatusCode code =
      http_status != 0 ? code_of_http_status(http_status, type) : code_of_error_type(type);
  std::string text = http_status != 0 ? "anthropic answered HTTP " + std::to_string(http_status)
                                      : std::string("anthropic reported an error in the stream");
  if (!type.empty()) text += " (" + type + ")";
  if (!message.empty()) text += ": " + quoted_message(message);
  return {code, std::move(text)};
}

StreamDecoder::StreamDecoder(const sdk::CompletionRequest& request)
    : json_tool_(request.json_output.has_value()),
      tool_name_(request.json_output ? request.json_output->name : std::string()) {}

StreamDecoder::Step StreamDecoder::on_event(std::string_view event_name, std::string_view data) {
  Step step;
  const json event = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object()) {
    step.status = sdk::Status::internal("anthropic sent a " + std::string(event_name) +
                                        " event whose data is not a JSON object");
    return step;
  }
  const std::string type = event.value("type", std::string(event_name));
  if (type == "message_start") {
    const json& message = event.contains("message") ? event["message"] : json::object();
    if (message.is_object()) {
      model_ = message.value("model", model_);
      if (message.contains("usage")) {
        take_usage(message["usage"], input_tokens_, usage_);
        usage_known_ = step.usage_changed = true;
      }
    }
  } else if (type == "content_block_start") {
    const json& block = event.contains("content_block") ? event["content_block"] : json::object();
    const std::string block_type = block.is_object() ? block.value("type", "") : "";
    answer_block_ =
        json_tool_ ? block_type == "tool_use" && block.value("name", "") == tool_name_ : block_type == "text";
  } else if (type == "content_block_delta") {
    const json& delta = event.contains("delta") ? event["delta"] : json::object();
    const std::string delta_type = delta.is_object() ? delta.value("type", "") : "";
    const char* field = json_tool_ ? "partial_json" : "text";
    if (answer_block_ && delta_type == (json_tool_ ? "input_json_delta" : "text_delta")) {
      if (!delta.contains(field) || !delta[field].is_string()) {
        step.status = sdk::Status::internal("anthropic sent a " + delta_type + " without its " + field);
        return step;
      }
      std::string piece = delta[field].get<std::string>();
      content_ += piece;
      step.content = std::move(piece);
    }
  } else if (type == "content_block_stop") {
    answer_block_ = false;
  } else if (type == "message_delta") {
    if (event.contains("delta") && event["delta"].is_object()) {
      const json& stop = event["delta"].value("stop_reason", json());
      if (stop.is_string()) stop_reason_ = stop.get<std::string>();
    }
    if (event.contains("usage")) {
      take_usage(event["usage"], input_tokens_, usage_);
      usage_known_ = step.usage_changed = true;
    }
  } else if (type == "message_stop") {
    finished_ = true;
  } else if (type == "error") {
    step.status = error_status(0, data);
  }
  // ping, and event types added after this version: nothing to do, as the API's versioning policy asks.
  return step;
}

sdk::Result<sdk::Completion> parse_message(std::string_view body, const sdk::CompletionRequest& request,
                                           bool& usage_reported) {
  const json message = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!message.is_object() || !message.contains("content") || !message["content"].is_array())
    return sdk::Status::internal("anthropic answered 200 with a body that is not a message");
  sdk::Completion completion;
  completion.model = message.value("model", "");
  const json& stop = message.value("stop_reason", json());
  completion.finish_reason =
      finish_reason_of(stop.is_string() ? stop.get<std::string>() : "", request.json_output.has_value());
  for (const json& block : message["content"]) {
    if (!block.is_object()) continue;
    const std::string type = block.value("type", "");
    if (request.json_output) {
      if (type == "tool_use" && block.value("name", "") == request.json_output->name &&
          block.contains("input"))
        completion.content += block["input"].dump();
    } else if (type == "text" && block.contains("text") && block["text"].is_string()) {
      completion.content += block["text"].get<std::string>();
    }
  }
  usage_reported = message.contains("usage") && message["usage"].is_object();
  std::uint64_t input_tokens = 0;
  if (usage_reported) take_usage(message["usage"], input_tokens, completion.usage);
  return completion;
}

}  // namespace samokoder::llm_anthropic
