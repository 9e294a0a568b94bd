// Router, URI decoding, Request and Response without a server.
#include "http/router.hpp"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/uri.hpp"

namespace samokoder::http {
namespace {

namespace bhttp = boost::beast::http;

Request make_request(bhttp::verb method, std::string target,
                     std::initializer_list<std::pair<std::string, std::string>> headers = {}) {
  Request::Message message{method, target, 11};
  for (const auto& [name, value] : headers)
    message.set(name, value);
  auto result = Request::make(std::move(message));
  if (!result.ok()) throw std::runtime_error(result.status().to_string());
  return std::move(result).value();
}

Handler named(std::string name) {
  return [name](Request&) { return Response::text(200, name); };
}

// Matches and returns the handler's name ("" when nothing matched).
std::string route_name(const Router& router, bhttp::verb method, std::string target, Request* out = nullptr) {
  Request request = make_request(method, std::move(target));
  const RouteMatch match = router.match(method, request);
  if (match.outcome != RouteMatch::Outcome::kFound) return "";
  std::string name = match.route->handler(request).body;
  if (out != nullptr) *out = std::move(request);
  return name;
}

TEST(UriTest, DecodesPathSegments) {
  std::string out;
  EXPECT_TRUE(decode_path_segment("a%20b%2Fc", out));
  EXPECT_EQ(out, "a b/c");
  out.clear();
  EXPECT_TRUE(decode_path_segment("plus+stays", out));
  EXPECT_EQ(out, "plus+stays");
  for (const char* bad : {"%", "%4", "%zz", "a%g1", "%00"}) {
    out.clear();
    EXPECT_FALSE(decode_path_segment(bad, out)) << bad;
  }
}

TEST(UriTest, FindsQueryParameters) {
  EXPECT_EQ(find_query_param("a=1&b=x%20y+z", "b"), "x y z");
  EXPECT_EQ(find_query_param("a=1&a=2", "a"), "1");
  EXPECT_EQ(find_query_param("flag&x=1", "flag"), "");
  EXPECT_EQ(find_query_param("na%6De=v", "name"), "v");
  EXPECT_EQ(find_query_param("bad=%zz", "bad"), "%zz");
  EXPECT_EQ(find_query_param("a=1", "b"), std::nullopt);
  EXPECT_EQ(find_query_param("", "a"), std::nullopt);
}

TEST(RequestTest, ParsesTargetAndHeaders) {
  Request r = make_request(bhttp::verb::get, "/a%20b/c?q=hello+world&x", {{"X-Thing", "v"}});
  EXPECT_EQ(r.target(), "/a%20b/c?q=hello+world&x");
  EXPECT_EQ(r.raw_path(), "/a%20b/c");
  EXPECT_EQ(r.path(), "/a b/c");
  EXPECT_EQ(r.query(), "q=hello+world&x");
  EXPECT_EQ(r.query_param("q"), "hello world");
  EXPECT_EQ(r.query_param("x"), "");
  EXPECT_EQ(r.query_param("missing"), std::nullopt);
  EXPECT_EQ(r.header("x-thing"), "v");
  EXPECT_EQ(r.header("X-Missing"), "");
  EXPECT_EQ(r.request_id().size(), 32U);

  Request absolute = make_request(bhttp::verb::get, "http://example.com:8080/x/y?z=1");
  EXPECT_EQ(absolute.path(), "/x/y");
  EXPECT_EQ(absolute.query_param("z"), "1");

  for (const char* bad : {"relative", "/bad%zz", "/nul%00", "*", "http://host-without-path"}) {
    EXPECT_FALSE(Request::make(Request::Message{bhttp::verb::get, bad, 11}).ok()) << bad;
  }
}

TEST(RequestTest, KeepsOnlyValidIncomingRequestIds) {
  EXPECT_EQ(make_request(bhttp::verb::get, "/", {{"X-Request-Id", "abc-123_X.y"}}).request_id(),
            "abc-123_X.y");
  for (const std::string& bad : {std::string("has space"), std::string(65, 'a'), std::string("semi;colon")}) {
    const Request r = make_request(bhttp::verb::get, "/", {{"X-Request-Id", bad}});
    EXPECT_NE(r.request_id(), bad);
    EXPECT_EQ(r.request_id().size(), 32U);
  }
  EXPECT_NE(make_request(bhttp::verb::get, "/").request_id(),
            make_request(bhttp::verb::get, "/").request_id());
}

TEST(RouterTest, MatchesLiteralsParamsAndTails) {
  Router router;
  router.add(bhttp::verb::get, "/", named("root"));
  router.add(bhttp::verb::get, "/plugins", named("list"));
  router.add(bhttp::verb::get, "/plugins/{id}", named("one"));
  router.add(bhttp::verb::get, "/plugins/installed", named("installed"));
  router.add(bhttp::verb::get, "/projects/{id}/files/{path...}", named("file"));

  EXPECT_EQ(route_name(router, bhttp::verb::get, "/"), "root");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/plugins"), "list");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/plugins/installed"), "installed");

  Request r;
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/plugins/storage.sqlite", &r), "one");
  EXPECT_EQ(r.param("id"), "storage.sqlite");
  EXPECT_EQ(r.route_pattern(), "/plugins/{id}");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/plugins/a%2Fb", &r), "one");
  EXPECT_EQ(r.param("id"), "a/b");
  EXPECT_EQ(r.param("missing"), "");

  EXPECT_EQ(route_name(router, bhttp::verb::get, "/projects/7/files/src/main%20x.cpp", &r), "file");
  EXPECT_EQ(r.param("id"), "7");
  EXPECT_EQ(r.param("path"), "src/main x.cpp");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/projects/7/files/dir/", &r), "file");
  EXPECT_EQ(r.param("path"), "dir/");

  // Empty parameters and tails, and trailing slashes, do not match.
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/projects/7/files/"), "");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/projects/7/files"), "");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/plugins/"), "");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/projects//files/x"), "");
}

TEST(RouterTest, BacktracksFromLiteralToParamByMethod) {
  Router router;
  router.add(bhttp::verb::post, "/a/b", named("post-literal"));
  router.add(bhttp::verb::get, "/a/{x}", named("get-param"));
  router.add(bhttp::verb::get, "/a/b/c", named("deep-literal"));
  router.add(bhttp::verb::get, "/a/{x}/d", named("deep-param"));
  EXPECT_EQ(route_name(router, bhttp::verb::post, "/a/b"), "post-literal");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/a/b"), "get-param");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/a/b/c"), "deep-literal");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/a/b/d"), "deep-param");
}

TEST(RouterTest, ReportsNotFoundAndMethodNotAllowed) {
  Router router;
  router.add(bhttp::verb::get, "/items/{id}", named("get"));
  router.add(bhttp::verb::delete_, "/items/{item}", named("delete"));

  Request request = make_request(bhttp::verb::post, "/items/3");
  RouteMatch match = router.match(bhttp::verb::post, request);
  EXPECT_EQ(match.outcome, RouteMatch::Outcome::kMethodNotAllowed);
  EXPECT_EQ(Router::format_methods(match.allowed_methods), "DELETE, GET, HEAD");
  EXPECT_EQ(match.pattern, "/items/{id}");
  EXPECT_EQ(request.route(), nullptr);

  // Routes sharing a path shape may name their parameters differently.
  Request del = make_request(bhttp::verb::delete_, "/items/9");
  ASSERT_EQ(router.match(bhttp::verb::delete_, del).outcome, RouteMatch::Outcome::kFound);
  EXPECT_EQ(del.param("item"), "9");
  EXPECT_EQ(del.param("id"), "");

  Request head = make_request(bhttp::verb::head, "/items/3");
  match = router.match(bhttp::verb::head, head);
  ASSERT_EQ(match.outcome, RouteMatch::Outcome::kFound);
  EXPECT_EQ(match.route->method, bhttp::verb::get);

  Request missing = make_request(bhttp::verb::get, "/nothing");
  match = router.match(bhttp::verb::get, missing);
  EXPECT_EQ(match.outcome, RouteMatch::Outcome::kNotFound);
  EXPECT_EQ(match.allowed_methods, 0U);
  EXPECT_EQ(missing.route_pattern(), "");
}

TEST(RouterTest, RejectsBadPatternsAndDuplicates) {
  Router router;
  router.add(bhttp::verb::get, "/a/{id}", named("x"));
  const char* bad_patterns[] = {"",      "relative", "/a/",      "/a//b",        "/{id",   "/x{id}",
                                "/{1x}", "/{}",      "/{a}/{a}", "/{rest...}/x", "/a%20b", "/a?b"};
  for (const char* pattern : bad_patterns) {
    EXPECT_THROW(router.add(bhttp::verb::get, pattern, named("bad")), std::invalid_argument) << pattern;
  }
  EXPECT_THROW(router.add(bhttp::verb::get, "/a/{other}", named("dup")), std::invalid_argument);
  EXPECT_THROW(router.add(bhttp::verb::get, "/b", Handler()), std::invalid_argument);
  // The same shape under another method is a different route, not a duplicate; the rejected ones left
  // no trace.
  router.add(bhttp::verb::put, "/a/{other}", named("put"));
  Request put;
  EXPECT_EQ(route_name(router, bhttp::verb::put, "/a/7", &put), "put");
  EXPECT_EQ(put.param("other"), "7");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/a/7"), "x");
  EXPECT_EQ(route_name(router, bhttp::verb::get, "/b"), "");
  EXPECT_EQ(router.routes().size(), 2U);
}

TEST(RouterTest, ListsRoutesWithOptions) {
  Router router;
  router.add(bhttp::verb::get, "/healthz", named("h"), RouteOptions::inline_handler());
  router.add(bhttp::verb::post, "/auth/login", named("l"), {Dispatch::kRequest, 1024, "auth"});
  router.add(bhttp::verb::get, "/auth/login", named("g"));
  ASSERT_EQ(router.routes().size(), 3U);
  EXPECT_EQ(router.routes()[0].pattern, "/healthz");
  EXPECT_EQ(router.routes()[0].options.dispatch, Dispatch::kInline);
  EXPECT_EQ(router.routes()[1].method, bhttp::verb::post);
  EXPECT_EQ(router.routes()[1].options.max_body_bytes, 1024U);
  EXPECT_EQ(router.routes()[1].options.group, "auth");
  EXPECT_EQ(router.routes()[2].options.dispatch, Dispatch::kRequest);
  EXPECT_EQ(router.patterns(), (std::vector<std::string>{"/healthz", "/auth/login"}));
  EXPECT_EQ(router.routes()[2].pattern_id, 1U);
}

TEST(ResponseTest, ProblemRendersInstanceAndRequestId) {
  Response r = Response::problem(422, "validation_failed", "Validation Failed", "The body has errors.",
                                 {Response::field_error("/email", "must be an email address")});
  EXPECT_EQ(r.content_type, "application/problem+json");
  r.render_problem("/api/v1/auth/register", "req-1");
  const auto doc = nlohmann::json::parse(r.body);
  EXPECT_EQ(doc["type"], "https://samokoder.dev/problems/validation_failed");
  EXPECT_EQ(doc["title"], "Validation Failed");
  EXPECT_EQ(doc["status"], 422);
  EXPECT_EQ(doc["detail"], "The body has errors.");
  EXPECT_EQ(doc["instance"], "/api/v1/auth/register");
  EXPECT_EQ(doc["request_id"], "req-1");
  ASSERT_EQ(doc["errors"].size(), 1U);
  EXPECT_EQ(doc["errors"][0]["path"], "/email");
  EXPECT_FALSE(r.problem_document.has_value());

  Response plain = Response::problem(404, "not_found", "Not Found", "x");
  plain.render_problem("", "");
  EXPECT_FALSE(nlohmann::json::parse(plain.body).contains("instance"));
  EXPECT_EQ(nlohmann::json::parse(plain.body)["errors"], nlohmann::json::array());
}

TEST(ResponseTest, HeadersAreCaseInsensitive) {
  Response r = Response::json(201, {{"a", "\xff"}});
  EXPECT_EQ(r.body, "{\"a\":\"\xef\xbf\xbd\"}");  // invalid UTF-8 is replaced, never thrown on
  r.set_header("X-One", "1");
  r.set_header("x-one", "2");
  r.add_header("Set-Cookie", "a=1");
  r.add_header("Set-Cookie", "b=2");
  EXPECT_EQ(r.header("X-ONE"), "2");
  EXPECT_EQ(r.headers.size(), 3U);
  EXPECT_TRUE(r.has_header("set-cookie"));
  EXPECT_FALSE(r.has_header("X-Two"));
}

}  // namespace
}  // namespace samokoder::http
