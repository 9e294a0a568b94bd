#include "api/openapi.hpp"

#include <memory>
#include <stdexcept>

#include "api/resource_routes.hpp"
#include "http/response.hpp"

namespace samokoder::api {
namespace embedded {
extern const unsigned char openapi_json[];
extern const std::size_t openapi_json_size;
}  // namespace embedded

const nlohmann::json& openapi_document() {
  static const nlohmann::json document = [] {
    const auto* begin = reinterpret_cast<const char*>(embedded::openapi_json);
    auto parsed = nlohmann::json::parse(begin, begin + embedded::openapi_json_size, nullptr, false);
    if (parsed.is_discarded()) throw std::logic_error("the embedded OpenAPI document is not valid JSON");
    return parsed;
  }();
  return document;
}

std::string openapi_path(std::string_view router_pattern) {
  std::string out(router_pattern);
  for (auto pos = out.find("...}"); pos != std::string::npos; pos = out.find("...}", pos))
    out.erase(pos, 3);
  return out;
}

void add_openapi_routes(http::Router& router, ApiContext& /*context*/) {
  // Rendered once: the document never changes while the process runs.
  auto body = std::make_shared<const std::string>(http::dump_json(openapi_document()));
  http::RouteOptions options;
  options.dispatch = http::Dispatch::kInline;
  options.max_body_bytes = 0;
  options.group = std::string(kGroupDefault);
  router.add(
      boost::beast::http::verb::get, "/api/v1/openapi.json",
      [body](http::Request&) {
        http::Response response;
        response.status = 200;
        response.content_type = "application/json";
        response.body = *body;
        return response;
      },
      options);
}

}  // namespace samokoder::api
