#include "console/routes.hpp"

#include <utility>

#include "api/rate_limit.hpp"
#include "http/field_value.hpp"

namespace samokoder::console {
namespace {

using boost::beast::http::verb;

// Does an If-None-Match header name this ETag (or "*")? Weak validators compare weakly, as RFC 9110
// asks for If-None-Match.
bool matches(std::string_view if_none_match, std::string_view etag) {
  for (std::size_t start = 0; start < if_none_match.size();) {
    auto end = if_none_match.find(',', start);
    if (end == std::string_view::npos) end = if_none_match.size();
    std::string_view candidate = http::trim_ows(if_none_match.substr(start, end - start));
    if (candidate.starts_with("W/")) candidate.remove_prefix(2);
    if (candidate == "*" || candidate == etag) return true;
    start = end + 1;
  }
  return false;
}

http::Response serve(const Asset& asset, const http::Request& request, const std::string* policy) {
  Encoded chosen = choose_encoding(asset, request.header("Accept-Encoding"));
  http::Response response;
  response.set_header("ETag", chosen.etag);
  response.set_header("Vary", "Accept-Encoding");
  response.set_header("Cache-Control", asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (policy != nullptr) response.set_header("Content-Security-Policy", *policy);
  if (matches(request.header("If-None-Match"), chosen.etag)) {
    response.status = 304;
    return response;
  }
  response.status = 200;
  response.content_type = asset.content_type;
  if (!chosen.content_encoding.empty()) {
    response.set_header("Content-Encoding", std::string(chosen.content_encoding));
  }
  response.body.assign(chosen.body);
  return response;
}

}  // namespace

std::string page_policy(std::string_view frame_source) {
  return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
         "connect-src 'self'; frame-src " +
         std::string(frame_source) + "; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
}

std::string preview_frame_source(std::string_view public_url) {
  const auto scheme_end = public_url.find("://");
  if (scheme_end == std::string_view::npos) return "'none'";
  const std::string_view scheme = public_url.substr(0, scheme_end);
  std::string_view authority = public_url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  constexpr std::string_view kProject = "{project}";
  const auto project = authority.find(kProject);
  if (project == std::string_view::npos) return std::string(scheme) + "://" + std::string(authority);
  const auto first_dot = authority.find('.');
  if (first_dot == std::string_view::npos || project > first_dot) return std::string(scheme) + ":";
  return std::string(scheme) + "://*" + std::string(authority.substr(first_dot));
}

void add_console_routes(http::Router& router, std::shared_ptr<const ConsoleAssets> assets,
                        std::string page_policy) {
  http::RouteOptions options = http::RouteOptions::inline_handler();
  options.max_body_bytes = 0;
  options.group = std::string(api::kUnlimitedGroup);
  auto policy = std::make_shared<const std::string>(std::move(page_policy));
  router.add(
      verb::get, "/",
      [assets, policy](http::Request& request) {
        const Asset* page = assets->find("index.html");
        return serve(*page, request, policy.get());
      },
      options);
  router.add(
      verb::get, "/assets/{path...}",
      [assets](http::Request& request) {
        const Asset* asset = assets->find("assets/" + std::string(request.param("path")));
        if (asset == nullptr) {
          return http::Response::problem(404, "not_found", "Not Found", "no such console file");
        }
        return serve(*asset, request, nullptr);
      },
      options);
}

}  // namespace samokoder::console
