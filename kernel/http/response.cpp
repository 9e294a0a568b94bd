#include "http/response.hpp"

#include <algorithm>
#include <stdexcept>

#include <boost/beast/core/string.hpp>

namespace samokoder::http {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return boost::beast::iequals(a, b);
}

}  // namespace

void Response::set_header(std::string_view name, std::string value) {
  std::erase_if(headers, [&](const auto& h) { return iequals(h.first, name); });
  headers.emplace_back(std::string(name), std::move(value));
}

void Response::add_header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
}

std::string_view Response::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

bool Response::has_header(std::string_view name) const noexcept {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); });
}

Response Response::json(unsigned status, const nlohmann::json& document) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = dump_json(document);
  return r;
}

Response Response::text(unsigned status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Response Response::no_content() {
  Response r;
  r.status = 204;
  return r;
}

Response Response::event_stream(std::shared_ptr<StreamHandler> handler, StreamOptions options) {
  if (!handler) throw std::invalid_argument("Response::event_stream needs a handler");
  Response r;
  r.status = 200;
  r.content_type = "text/event-stream";
  // A cached or buffered event stream is a broken one: proxies (nginx above all) hold events back
  // unless told not to.
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Accel-Buffering", "no");
  r.stream_kind = StreamKind::kServerSentEvents;
  r.stream = std::move(handler);
  r.stream_options = options;
  return r;
}

Response Response::websocket(std::shared_ptr<StreamHandler> handler, StreamOptions options) {
  if (!handler) throw std::invalid_argument("Response::websocket needs a handler");
  Response r;
  r.status = 101;
  r.stream_kind = StreamKind::kWebSocket;
  r.stream = std::move(handler);
  r.stream_options = options;
  return r;
}

Response Response::problem(unsigned status, std::string_view type_slug, std::string_view title,
                           std::string_view detail, nlohmann::json errors) {
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  std::string type(kProblemTypeBase);
  type += type_slug;
  r.problem_document =
      nlohmann::json{{"type", std::move(type)},
                     {"title", title},
                     {"status", status},
                     {"detail", detail},
                     {"errors", errors.is_array() ? std::move(errors) : nlohmann::json::array()}};
  return r;
}

nlohmann::json Response::field_error(std::string_view path, std::string_view message) {
  return nlohmann::json{{"path", path}, {"message", message}};
}

void Response::render_problem(std::string_view instance, std::string_view request_id) {
  if (!problem_document) return;
  nlohmann::json& doc = *problem_document;
  if (doc.is_object()) {
    if (!instance.empty() && !doc.contains("instance")) doc["instance"] = instance;
    if (!request_id.empty() && !doc.contains("request_id")) doc["request_id"] = request_id;
  }
  body = dump_json(doc);
  problem_document.reset();
}

std::string dump_json(const nlohmann::json& document) {
  return document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace samokoder::http
