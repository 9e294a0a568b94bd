#include "model_server.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <stdexcept>

namespace samokoder::testing {
namespace {

using nlohmann::json;

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
}

std::string query_of(const std::string& target) {
  const auto at = target.find('?');
  return at == std::string::npos ? std::string() : target.substr(at + 1);
}

// The decoded value of `name` in a query string, or nullopt when it is absent.
std::optional<std::string> query_value(const std::string& query, std::string_view name) {
  std::size_t at = 0;
  while (at <= query.size()) {
    const auto end = std::min(query.find('&', at), query.size());
    const std::string_view pair = std::string_view(query).substr(at, end - at);
    const auto equals = pair.find('=');
    if (pair.substr(0, equals) == name) {
      std::string value;
      const std::string_view raw = equals == std::string_view::npos ? "" : pair.substr(equals + 1);
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '%' && i + 2 < raw.size() &&
            std::isxdigit(static_cast<unsigned char>(raw[i + 1])) != 0 &&
            std::isxdigit(static_cast<unsigned char>(raw[i + 2])) != 0) {
          value.push_back(static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16)));
          i += 2;
        } else {
          value.push_back(raw[i] == '+' ? ' ' : raw[i]);
        }
      }
      return value;
    }
    at = end + 1;
  }
  return std::nullopt;
}

// "Wed, 21 Oct 2015 07:28:00 GMT" (RFC 9110 IMF-fixdate), written by hand: strftime follows the locale.
std::string http_date(std::chrono::system_clock::time_point at) {
  constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  std::array<char, 40> text{};
  std::snprintf(text.data(), text.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays.at(parts.tm_wday),
                parts.tm_mday, kMonths.at(parts.tm_mon), parts.tm_year + 1900, parts.tm_hour, parts.tm_min,
                parts.tm_sec);
  return text.data();
}

// The text of a message's or system prompt's content: a string, or an array of blocks with "text".
std::string text_of(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (!content.is_array()) return text;
  for (const json& block : content) {
    if (!block.is_object()) continue;
    const auto it = block.find("text");
    if (it != block.end() && it->is_string()) {
      if (!text.empty()) text += "\n";
      text += it->get<std::string>();
    }
  }
  return text;
}

std::string reason_phrase(unsigned status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 529:
      return "Overloaded";
    default:
      return "Status";
  }
}

void respond(ServerConnection& connection, unsigned status, const json& body,
             const std::vector<std::string>& extra = {}) {
  const std::string text = body.dump();
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(text.size()) +
                    "\r\n";
  for (const std::string& header : extra)
    out += header + "\r\n";
  out += "\r\n" + text;
  connection.write(out);
}

std::string anthropic_error_type(unsigned status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return "api_error";
  }
}

std::string openai_error_type(unsigned status) {
  if (status == 429) return "rate_limit_exceeded";
  if (status == 401) return "invalid_api_key";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

// `type` empty: the format's type for `status`.
json error_body(WireFormat format, unsigned status, const std::string& message,
                const std::string& type = "") {
  if (format == WireFormat::kAnthropic) {
    return {{"type", "error"},
            {"error", {{"type", type.empty() ? anthropic_error_type(status) : type}, {"message", message}}}};
  }
  return {{"error",
           {{"message", message},
            {"type", type.empty() ? openai_error_type(status) : type},
            {"param", nullptr},
            {"code", status == 401 ? json("invalid_api_key") : json(nullptr)}}}};
}

std::string anthropic_stop_reason(const std::string& finish_reason) {
  if (finish_reason == "stop") return "end_turn";
  if (finish_reason == "length") return "max_tokens";
  return finish_reason;
}

// Anthropic reports cached input apart from input_tokens.
json anthropic_usage(const ScriptedUsage& usage, bool with_output) {
  const std::uint64_t cached = usage.cached_prompt_tokens + usage.cache_write_tokens;
  json out = {{"input_tokens", usage.prompt_tokens > cached ? usage.prompt_tokens - cached : 0},
              {"cache_read_input_tokens", usage.cached_prompt_tokens},
              {"cache_creation_input_tokens", usage.cache_write_tokens}};
  out["output_tokens"] = with_output ? usage.completion_tokens : 1;
  return out;
}

json openai_usage(const ScriptedUsage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_prompt_tokens}}}};
}

std::string joined(const std::vector<std::string>& pieces) {
  std::string all;
  for (const std::string& piece : pieces)
    all += piece;
  return all;
}

// The tool an Anthropic request forces (tool_choice.name), else its first tool.
std::string forced_tool(const json& body) {
  if (const auto choice = body.find("tool_choice"); choice != body.end() && choice->is_object()) {
    if (const auto name = choice->find("name"); name != choice->end() && name->is_string())
      return name->get<std::string>();
  }
  if (const auto tools = body.find("tools"); tools != body.end() && tools->is_array() && !tools->empty()) {
    if (const auto name = tools->front().find("name"); name != tools->front().end() && name->is_string())
      return name->get<std::string>();
  }
  return "json_output";
}

json call_to_json(const ModelCall& call) {
  return {{"format", call.format == WireFormat::kAnthropic ? "anthropic" : "openai"},
          {"method", call.method},
          {"path", call.path},
          {"query", call.query},
          {"headers", call.headers},
          {"body", call.body}};
}

}  // namespace

std::string ModelCall::model() const {
  if (body.is_object()) {
    if (const auto it = body.find("model"); it != body.end() && it->is_string())
      return it->get<std::string>();
  }
  return "";
}

bool ModelCall::streamed() const {
  if (!body.is_object()) return false;
  const auto it = body.find("stream");
  return it != body.end() && it->is_boolean() && it->get<bool>();
}

std::string ModelCall::prompt_text() const {
  std::string text;
  const auto append = [&](const std::string& piece) {
    if (piece.empty()) return;
    if (!text.empty()) text += "\n";
    text += piece;
  };
  if (!body.is_object()) return text;
  if (const auto system = body.find("system"); system != body.end()) append(text_of(*system));
  if (const auto messages = body.find("messages"); messages != body.end() && messages->is_array()) {
    for (const json& message : *messages) {
      if (message.is_object() && message.contains("content")) append(text_of(message["content"]));
    }
  }
  return text;
}

struct ScriptedModelServer::State {
  Options options;
  mutable std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::deque<ModelReply> script;
  Responder responder;
  std::vector<ModelCall> calls;
  std::size_t completion_requests = 0;
  std::size_t served = 0;  // numbers the answers' ids

  // Waits `delay` unless the server stops first; false when it stopped.
  bool sleep(std::chrono::milliseconds delay) {
    if (delay.count() <= 0) return true;
    std::unique_lock lock(mutex);
    return !wake.wait_for(lock, delay, [&] { return stopping; });
  }

  std::optional<ModelReply> next_reply(const ModelCall& call, std::size_t& number) {
    Responder fallback;
    {
      std::lock_guard lock(mutex);
      number = ++served;
      if (!script.empty()) {
        ModelReply reply = std::move(script.front());
        script.pop_front();
        return reply;
      }
      fallback = responder;
    }
    if (fallback) return fallback(call);
    return std::nullopt;
  }

  bool authorised(const ModelCall& call) const {
    if (options.expected_key.empty()) return true;
    const auto bearer = call.headers.find("authorization");
    if (bearer != call.headers.end() && bearer->second == "Bearer " + options.expected_key) return true;
    const auto api_key = call.headers.find("x-api-key");
    return api_key != call.headers.end() && api_key->second == options.expected_key;
  }

  void handle(const ReceivedRequest& request, ServerConnection& connection);
  void models(const ModelCall& call, ServerConnection& connection) const;
  void complete(const ModelCall& call, ServerConnection& connection);
  void control(const ReceivedRequest& request, const std::string& path, ServerConnection& connection);
};

void ScriptedModelServer::State::handle(const ReceivedRequest& request, ServerConnection& connection) {
  const std::string path = path_of(request.target);
  if (path.rfind("/__", 0) == 0) return control(request, path, connection);

  ModelCall call;
  call.method = request.method;
  call.path = path;
  call.query = query_of(request.target);
  call.headers = request.headers;
  call.body = json::parse(request.body, nullptr, false);
  if (call.body.is_discarded()) call.body = nullptr;
  const bool anthropic_headers =
      request.headers.count("x-api-key") || request.headers.count("anthropic-version");
  call.format = path == "/v1/messages" || (path != "/v1/chat/completions" && anthropic_headers)
                    ? WireFormat::kAnthropic
                    : WireFormat::kOpenAi;
  {
    std::lock_guard lock(mutex);
    calls.push_back(call);
  }
  if (!authorised(call)) {
    return respond(connection, 401, error_body(call.format, 401, "invalid x-api-key or bearer token"));
  }
  if (request.method == "GET" && path == "/v1/models") return models(call, connection);
  if (request.method == "POST" && (path == "/v1/chat/completions" || path == "/v1/messages")) {
    return complete(call, connection);
  }
  respond(connection, 404, error_body(call.format, 404, "no route " + request.method + " " + path));
}

void ScriptedModelServer::State::models(const ModelCall& call, ServerConnection& connection) const {
  json data = json::array();
  for (const std::string& id : options.models) {
    if (call.format == WireFormat::kAnthropic) {
      data.push_back(
          {{"type", "model"}, {"id", id}, {"display_name", id}, {"created_at", "2026-01-01T00:00:00Z"}});
    } else {
      data.push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "scripted"}});
    }
  }
  if (call.format == WireFormat::kAnthropic) {
    // A page: the models after after_id, as many as limit allows (20 unless asked, as the API does).
    std::size_t first = 0;
    if (const auto after = query_value(call.query, "after_id")) {
      const auto it = std::find(options.models.begin(), options.models.end(), *after);
      first = it == options.models.end() ? options.models.size()
                                         : static_cast<std::size_t>(it - options.models.begin()) + 1;
    }
    std::size_t limit = 20;
    if (const auto asked = query_value(call.query, "limit")) {
      std::size_t value = 0;
      const auto [end, error] = std::from_chars(asked->data(), asked->data() + asked->size(), value);
      if (error == std::errc() && end == asked->data() + asked->size() && value > 0) limit = value;
    }
    if (options.models_page_size > 0) limit = std::min(limit, options.models_page_size);
    const std::size_t end = std::min(options.models.size(), first + limit);
    json page = json::array();
    for (std::size_t i = first; i < end; ++i)
      page.push_back(data[i]);
    respond(connection, 200,
            {{"data", page},
             {"has_more", end < options.models.size()},
             {"first_id", first < end ? json(options.models[first]) : json(nullptr)},
             {"last_id", first < end ? json(options.models[end - 1]) : json(nullptr)}});
  } else {
    respond(connection, 200, {{"object", "list"}, {"data", data}});
  }
}

void ScriptedModelServer::State::control(const ReceivedRequest& request, const std::string& path,
                                         ServerConnection& connection) {
  if (request.method == "POST" && path == "/__script") {
    const json replies = json::parse(request.body, nullptr, false);
    if (!replies.is_array()) return respond(connection, 400, {{"error", "expected a JSON array of replies"}});
    std::vector<ModelReply> parsed;
    try {
      for (const json& reply : replies)
        parsed.push_back(model_reply_from_json(reply));
    } catch (const std::exception& e) {
      return respond(connection, 400, {{"error", e.what()}});
    }
    std::lock_guard lock(mutex);
    for (ModelReply& reply : parsed)
      script.push_back(std::move(reply));
    return respond(connection, 200, {{"queued", script.size()}});
  }
  if (request.method == "GET" && path == "/__calls") {
    json out = json::array();
    std::lock_guard lock(mutex);
    for (const ModelCall& call : calls)
      out.push_back(call_to_json(call));
    return respond(connection, 200, out);
  }
  respond(connection, 404, {{"error", "no control route " + path}});
}

void ScriptedModelServer::State::complete(const ModelCall& call, ServerConnection& connection) {
  std::size_t number = 0;
  {
    std::lock_guard lock(mutex);
    ++completion_requests;
  }
  const std::optional<ModelReply> scripted = next_reply(call, number);
  if (!scripted) return respond(connection, 500, error_body(call.format, 500, "script exhausted"));
  const ModelReply& reply = *scripted;
  if (reply.stall_before_headers) return connection.stall();
  if (reply.close_before_headers) return connection.close_after();
  if (!sleep(reply.delay_before_headers)) return;
  if (reply.status != 200) {
    std::vector<std::string> extra;
    if (reply.retry_after_seconds) {
      extra.push_back("Retry-After: " + (reply.retry_after_as_date
                                             ? http_date(std::chrono::system_clock::now() +
                                                         std::chrono::seconds(*reply.retry_after_seconds))
                                             : std::to_string(*reply.retry_after_seconds)));
    }
    return respond(connection, reply.status,
                   error_body(call.format, reply.status, reply.error_message, reply.error_type), extra);
  }

  const bool anthropic = call.format == WireFormat::kAnthropic;
  const std::string model = reply.model.empty() ? call.model() : reply.model;
  const std::string id = (anthropic ? "msg_scripted_" : "chatcmpl-scripted-") + std::to_string(number);
  const std::string tool = anthropic && reply.tool_json ? forced_tool(call.body) : "";

  if (!call.streamed()) {
    json body;
    const std::string text = joined(reply.deltas);
    if (anthropic) {
      json content = json::array();
      if (reply.tool_json) {
        content.push_back({{"type", "tool_use"},
                           {"id", "toolu_scripted_" + std::to_string(number)},
                           {"name", tool},
                           {"input", json::parse(text, nullptr, false)}});
      } else {
        content.push_back({{"type", "text"}, {"text", text}});
      }
      body = {{"id", id},
              {"type", "message"},
              {"role", "assistant"},
              {"model", model},
              {"content", content},
              {"stop_reason", reply.tool_json ? "tool_use" : anthropic_stop_reason(reply.finish_reason)},
              {"stop_sequence", nullptr}};
      if (reply.usage) body["usage"] = anthropic_usage(*reply.usage, true);
    } else {
      body = {{"id", id},
              {"object", "chat.completion"},
              {"created", 0},
              {"model", model},
              {"choices", json::array({{{"index", 0},
                                        {"message", {{"role", "assistant"}, {"content", text}}},
                                        {"finish_reason", reply.finish_reason}}})}};
      if (reply.usage) body["usage"] = openai_usage(*reply.usage);
    }
    return respond(connection, 200, body);
  }

  // --- streamed: build the events, then write them with the misbehaviour asked for ---------------
  struct Event {
    std::string bytes;
    bool content = false;  // counts for the *_after positions
  };
  std::vector<Event> events;
  const auto data = [](const json& payload) { return "data: " + payload.dump() + "\n\n"; };
  const auto named = [](const std::string& name, const json& payload) {
    return "event: " + name + "\ndata: " + payload.dump() + "\n\n";
  };
  if (anthropic) {
    json message = {{"id", id},
                    {"type", "message"},
                    {"role", "assistant"},
                    {"model", model},
                    {"content", json::array()},
                    {"stop_reason", nullptr},
                    {"stop_sequence", nullptr}};
    if (reply.usage) message["usage"] = anthropic_usage(*reply.usage, false);
    events.push_back({named("message_start", {{"type", "message_start"}, {"message", message}})});
    json block = reply.tool_json ? json{{"type", "tool_use"},
                                        {"id", "toolu_scripted_" + std::to_string(number)},
                                        {"name", tool},
                                        {"input", json::object()}}
                                 : json{{"type", "text"}, {"text", ""}};
    events.push_back({named("content_block_start",
                            {{"type", "content_block_start"}, {"index", 0}, {"content_block", block}})});
    for (const std::string& piece : reply.deltas) {
      json delta = reply.tool_json ? json{{"type", "input_json_delta"}, {"partial_json", piece}}
                                   : json{{"type", "text_delta"}, {"text", piece}};
      events.push_back(
          {named("content_block_delta", {{"type", "content_block_delta"}, {"index", 0}, {"delta", delta}}),
           true});
    }
    events.push_back({named("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}})});
    json message_delta = {
        {"type", "message_delta"},
        {"delta",
         {{"stop_reason", reply.tool_json ? "tool_use" : anthropic_stop_reason(reply.finish_reason)},
          {"stop_sequence", nullptr}}}};
    if (reply.usage) message_delta["usage"] = {{"output_tokens", reply.usage->completion_tokens}};
    events.push_back({named("message_delta", message_delta)});
    events.push_back({named("message_stop", {{"type", "message_stop"}})});
  } else {
    const auto chunk = [&](const json& delta, const json& finish) {
      return json{{"id", id},
                  {"object", "chat.completion.chunk"},
                  {"created", 0},
                  {"model", model},
                  {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
    };
    events.push_back({data(chunk({{"role", "assistant"}, {"content", ""}}, nullptr))});
    for (const std::string& piece : reply.deltas)
      events.push_back({data(chunk({{"content", piece}}, nullptr)), true});
    events.push_back({data(chunk(json::object(), reply.finish_reason))});
    const json& options_json =
        call.body.is_object() ? call.body.value("stream_options", json::object()) : json();
    const bool include_usage = options_json.is_object() && options_json.value("include_usage", false);
    if (reply.usage && include_usage) {
      events.push_back({data({{"id", id},
                              {"object", "chat.completion.chunk"},
                              {"created", 0},
                              {"model", model},
                              {"choices", json::array()},
                              {"usage", openai_usage(*reply.usage)}})});
    }
    if (!reply.omit_done) events.push_back({"data: [DONE]\n\n"});
  }

  if (!connection.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n")) {
    return;
  }
  std::string merged;
  const auto send = [&](const std::string& bytes) {
    if (reply.merge_events) {
      merged += bytes;
      return true;
    }
    if (reply.split_bytes == 0) return connection.write_chunk(bytes);
    for (std::size_t at = 0; at < bytes.size(); at += reply.split_bytes) {
      if (!connection.write_chunk(std::string_view(bytes).substr(at, reply.split_bytes))) return false;
    }
    return true;
  };
  const std::string keep_alive =
      ": keep-alive\n\n" + (anthropic ? named("ping", {{"type", "ping"}}) : std::string());
  std::string in_stream_error;
  if (anthropic) {
    const unsigned status = reply.stream_error_status == 0 ? 529 : reply.stream_error_status;
    in_stream_error =
        named("error", error_body(WireFormat::kAnthropic, status, reply.error_message, reply.error_type));
  } else {
    const unsigned status = reply.stream_error_status == 0 ? 500 : reply.stream_error_status;
    json error = error_body(WireFormat::kOpenAi, status, reply.error_message, reply.error_type);
    if (reply.stream_error_status != 0) error["error"]["code"] = reply.stream_error_status;
    in_stream_error = data(error);
  }
  const std::string malformed = anthropic
                                    ? "event: content_block_delta\ndata: {\"type\": this is not json\n\n"
                                    : "data: {\"choices\": [ this is not json\n\n";
  std::size_t content_written = 0;
  for (const Event& event : events) {
    if (event.content) {
      if (reply.malformed_after && *reply.malformed_after == content_written && !send(malformed)) return;
      if (reply.error_after && *reply.error_after == content_written) {
        // The endpoint reports the failure inside the stream and ends the body properly.
        if (!send(in_stream_error)) return;
        if (reply.merge_events) connection.write_chunk(merged);
        connection.write_chunk("");
        return;
      }
      if (reply.stall_after && *reply.stall_after == content_written) {
        if (reply.merge_events) connection.write_chunk(merged);
        return connection.stall();
      }
      if (reply.close_after && *reply.close_after == content_written) {
        if (reply.merge_events) connection.write_chunk(merged);
        return connection.close_after();
      }
      ++content_written;
    }
    if (reply.keep_alives && !send(keep_alive)) return;
    if (!send(event.bytes)) return;
    if (!reply.merge_events && !sleep(reply.delay_between_events)) return;
  }
  if (reply.merge_events && !connection.write_chunk(merged)) return;
  connection.write_chunk("");
}

ScriptedModelServer::ScriptedModelServer() : ScriptedModelServer(Options{}) {}

ScriptedModelServer::ScriptedModelServer(Options options) : state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  std::shared_ptr<State> state = state_;
  server_ = std::make_unique<LoopbackHttpServer>(
      [state](const ReceivedRequest& request, ServerConnection& connection) {
        state->handle(request, connection);
      },
      state_->options.tls);
}

ScriptedModelServer::~ScriptedModelServer() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  server_.reset();
}

void ScriptedModelServer::script(std::vector<ModelReply> replies) {
  std::lock_guard lock(state_->mutex);
  for (ModelReply& reply : replies)
    state_->script.push_back(std::move(reply));
}

void ScriptedModelServer::respond_with(Responder responder) {
  std::lock_guard lock(state_->mutex);
  state_->responder = std::move(responder);
}

std::uint16_t ScriptedModelServer::port() const noexcept {
  return server_->port();
}

std::string ScriptedModelServer::url(std::string_view path) const {
  return server_->url(path, state_->options.tls != nullptr ? "localhost" : "127.0.0.1");
}

std::size_t ScriptedModelServer::request_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->completion_requests;
}

std::vector<ModelCall> ScriptedModelServer::calls() const {
  std::lock_guard lock(state_->mutex);
  return state_->calls;
}

std::size_t ScriptedModelServer::connections_accepted() const {
  return server_->accepted();
}

std::size_t ScriptedModelServer::connections_closed() const {
  return server_->closed();
}

ModelReply model_reply_from_json(const nlohmann::json& in) {
  if (!in.is_object()) throw std::invalid_argument("a reply must be a JSON object");
  static const std::vector<std::string> kKnown = {"deltas",
                                                  "tool_json",
                                                  "finish_reason",
                                                  "model",
                                                  "usage",
                                                  "status",
                                                  "error_message",
                                                  "retry_after_seconds",
                                                  "retry_after_as_date",
                                                  "error_type",
                                                  "stream_error_status",
                                                  "omit_done",
                                                  "delay_before_headers_ms",
                                                  "delay_between_events_ms",
                                                  "split_bytes",
                                                  "merge_events",
                                                  "keep_alives",
                                                  "malformed_after",
                                                  "error_after",
                                                  "stall_after",
                                                  "close_after",
                                                  "stall_before_headers",
                                                  "close_before_headers"};
  for (const auto& [key, value] : in.items()) {
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end())
      throw std::invalid_argument("unknown reply field \"" + key + "\"");
  }
  ModelReply reply;
  if (in.contains("deltas")) reply.deltas = in.at("deltas").get<std::vector<std::string>>();
  reply.tool_json = in.value("tool_json", reply.tool_json);
  reply.finish_reason = in.value("finish_reason", reply.finish_reason);
  reply.model = in.value("model", reply.model);
  if (const auto usage = in.find("usage"); usage != in.end()) {
    if (usage->is_null()) {
      reply.usage.reset();
    } else {
      ScriptedUsage u;
      u.prompt_tokens = usage->value("prompt_tokens", u.prompt_tokens);
      u.completion_tokens = usage->value("completion_tokens", u.completion_tokens);
      u.cached_prompt_tokens = usage->value("cached_prompt_tokens", u.cached_prompt_tokens);
      u.cache_write_tokens = usage->value("cache_write_tokens", u.cache_write_tokens);
      reply.usage = u;
    }
  }
  reply.status = in.value("status", reply.status);
  reply.error_message = in.value("error_message", reply.error_message);
  if (in.contains("retry_after_seconds")) reply.retry_after_seconds = in.at("retry_after_seconds").get<int>();
  reply.retry_after_as_date = in.value("retry_after_as_date", reply.retry_after_as_date);
  reply.error_type = in.value("error_type", reply.error_type);
  reply.stream_error_status = in.value("stream_error_status", reply.stream_error_status);
  reply.omit_done = in.value("omit_done", reply.omit_done);
  reply.delay_before_headers = std::chrono::milliseconds(in.value("delay_before_headers_ms", 0));
  reply.delay_between_events = std::chrono::milliseconds(in.value("delay_between_events_ms", 0));
  reply.split_bytes = in.value("split_bytes", reply.split_bytes);
  reply.merge_events = in.value("merge_events", reply.merge_events);
  reply.keep_alives = in.value("keep_alives", reply.keep_alives);
  const auto position = [&](const char* key, std::optional<std::size_t>& out) {
    if (in.contains(key)) out = in.at(key).get<std::size_t>();
  };
  position("malformed_after", reply.malformed_after);
  position("error_after", reply.error_after);
  position("stall_after", reply.stall_after);
  position("close_after", reply.close_after);
  reply.stall_before_headers = in.value("stall_before_headers", reply.stall_before_headers);
  reply.close_before_headers = in.value("close_before_headers", reply.close_before_headers);
  return reply;
}

}  // namespace samokoder::testing
