// Integration tests: a real Server on 127.0.0.1 (free port) with a test router, driven by HttpClient.
#include "http/server.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "http_client.hpp"

namespace samokoder::http {
namespace {

namespace bhttp = boost::beast::http;
using samokoder::testing::ClientResponse;
using samokoder::testing::HttpClient;
using samokoder::testing::parse_responses;
using namespace std::chrono_literals;

// Lets a test hold pool handlers inside the handler and release them when it chooses.
class Gate {
 public:
  void enter_and_wait() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    ++left_;
    changed_.notify_all();
  }
  bool wait_entered(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return entered_ >= count; });
  }
  bool wait_left(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return left_ >= count; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int entered_ = 0;
  int left_ = 0;
  bool open_ = false;
};

// Short-circuits requests carrying X-Block with 429 and tags every response.
class TestMiddleware final : public Middleware {
 public:
  std::optional<Response> before(Request& request) override {
    if (!request.header("X-Block").empty()) {
      Response r = Response::problem(429, "rate_limited", "Too Many Requests", "Slow down.");
      r.set_header("Retry-After", "1");
      return r;
    }
    return std::nullopt;
  }
  void after(const Request& request, Response& response) override {
    response.set_header("X-After", std::string(request.request_id()));
    ++after_calls;
  }
  std::atomic<int> after_calls{0};
};

config::ServerConfig test_config() {
  config::ServerConfig c;
  c.listen.host = "127.0.0.1";
  c.listen.port = 0;
  c.io_threads = 2;
  c.request_pool.threads = 2;
  c.max_body_bytes = 1024;
  c.max_header_bytes = 2048;
  c.keep_alive_timeout_ms = 10000;
  c.request_timeout_ms = 10000;
  c.shutdown_grace_ms = 10000;
  c.cors_allowed_origins = {"https://app.example"};
  return c;
}

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : router_(std::make_shared<Router>()) {
    const RouteOptions inline_route = RouteOptions::inline_handler();
    router_->add(
        bhttp::verb::get, "/healthz", [](Request&) { return Response::text(200, "ok"); }, inline_route);
    router_->add(bhttp::verb::get, "/items/{id}", [](Request& r) {
      return Response::json(200, {{"id", r.param("id")}});
    });
    router_->add(bhttp::verb::delete_, "/items/{id}", [](Request&) { return Response::no_content(); });
    router_->add(bhttp::verb::get, "/items/special", [](Request&) { return Response::text(200, "special"); });
    router_->add(bhttp::verb::get, "/items/{id}/files/{path...}", [](Request& r) {
      return Response::json(200, {{"id", r.param("id")}, {"path", r.param("path")}});
    });
    router_->add(bhttp::verb::post, "/echo", [](Request& r) { return Response::text(200, r.body()); });
    router_->add(
        bhttp::verb::post, "/upload",
        [](Request& r) { return Response::text(200, std::to_string(r.body().size())); },
        RouteOptions::body_limit(4096));
    router_->add(
        bhttp::verb::post, "/tiny", [](Request& r) { return Response::text(200, r.body()); },
        RouteOptions::body_limit(16));
    router_->add(bhttp::verb::get, "/info", [](Request& r) {
      return Response::json(200, {{"request_id", r.request_id()},
                                  {"remote", r.remote_address()},
                                  {"route", r.route_pattern()},
                                  {"path", r.path()},
                                  {"method", r.method_string()},
                                  {"q", r.query_param("q").value_or("<none>")},
                                  {"x_test", r.header("x-test")}});
    });
    router_->add(bhttp::verb::get, "/throw", [](Request&) -> Response {
      throw std::runtime_error("secret database password is hunter2");
    });
    router_->add(
        bhttp::verb::get, "/throw-inline", [](Request&) -> Response { throw 42; }, inline_route);
    router_->add(bhttp::verb::get, "/cache", [](Request&) {
      Response r = Response::text(200, "cached");
      r.set_header("Cache-Control", "max-age=60");
      return r;
    });
    router_->add(bhttp::verb::get, "/split", [](Request&) {
      Response r = Response::text(200, "x");
      r.set_header("X-Evil", "a\r\nSet-Cookie: stolen=1");
      return r;
    });
    router_->add(bhttp::verb::get, "/slow", [this](Request&) {
      gate_.enter_and_wait();
      return Response::text(200, "slow done");
    });
  }

  // GET /slow on its own connection; it blocks in gate_ until the test opens it.
  std::future<ClientResponse> slow_request() {
    return std::async(std::launch::async, [port = server_->port()] {
      HttpClient slow("127.0.0.1", port);
      return slow.get("/slow");
    });
  }

  ~ServerTest() override {
    gate_.open();  // never leave a handler blocked, whatever the test did
    server_.reset();
  }

  void start(config::ServerConfig config = test_config(),
             config::Environment env = config::Environment::kDevelopment,
             std::shared_ptr<Middleware> middleware = nullptr, bool access_log = false) {
    ServerOptions options;
    options.access_log = access_log;
    server_ = std::make_unique<Server>(config, env, router_, registry_, options);
    if (middleware) server_->use(middleware);
    const sdk::Status status = server_->start();
    ASSERT_TRUE(status.ok()) << status.to_string();
    ASSERT_NE(server_->port(), 0);
  }

  std::unique_ptr<HttpClient> client() { return std::make_unique<HttpClient>("127.0.0.1", server_->port()); }

  std::string raw(std::string_view bytes, std::chrono::milliseconds timeout = 5000ms) {
    raw_client_ = client();
    return raw_client_->send_raw(bytes, timeout);
  }
  bool raw_closed() const { return raw_client_ && raw_client_->last_raw_closed(); }

  double counter_value(const std::string& route, const std::string& method, const std::string& status) {
    return registry_
        .counter("samokoder_http_requests_total", "HTTP requests answered.",
                 {{"route", route}, {"method", method}, {"status", status}})
        .value();
  }

  std::shared_ptr<Router> router_;
  metrics::Registry registry_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<HttpClient> raw_client_;
  Gate gate_;
};

void expect_security_headers(const ClientResponse& r, bool production = false) {
  SCOPED_TRACE("status " + std::to_string(r.status));
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(r.header("Referrer-Policy"), "no-referrer");
  EXPECT_EQ(r.header("Content-Security-Policy"), "default-src 'none'; frame-ancestors 'none'");
  EXPECT_EQ(r.header("Cross-Origin-Opener-Policy"), "same-origin");
  EXPECT_EQ(r.header("Server"), "samokoder");
  EXPECT_FALSE(r.header("X-Request-Id").empty());
  EXPECT_FALSE(r.header("Date").empty());
  if (production) {
    EXPECT_EQ(r.header("Strict-Transport-Security"), "max-age=31536000; includeSubDomains");
  } else {
    EXPECT_FALSE(r.has_header("Strict-Transport-Security"));
  }
}

void expect_problem(const ClientResponse& r, unsigned status, const std::string& slug) {
  SCOPED_TRACE("expected problem " + slug);
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
  const auto doc = nlohmann::json::parse(r.body);
  EXPECT_EQ(doc["type"], "https://samokoder.dev/problems/" + slug);
  EXPECT_EQ(doc["status"], status);
  EXPECT_TRUE(doc["title"].is_string());
  EXPECT_TRUE(doc["detail"].is_string());
  EXPECT_TRUE(doc["errors"].is_array());
  EXPECT_EQ(doc["request_id"], r.header("X-Request-Id"));
}

ClientResponse single_response(const std::string& bytes) {
  auto responses = parse_responses(bytes);
  if (responses.size() != 1)
    throw std::runtime_error("expected one response, got " + std::to_string(responses.size()));
  return responses.front();
}

TEST_F(ServerTest, RoutesWithParamsTailsAndPercentDecoding) {
  start();
  auto c = client();
  EXPECT_EQ(c->get("/items/42").json(), (nlohmann::json{{"id", "42"}}));
  EXPECT_EQ(c->get("/items/special").body, "special");
  EXPECT_EQ(c->get("/items/a%20b").json()["id"], "a b");
  EXPECT_EQ(c->get("/items/a%2Fb").json()["id"], "a/b");
  EXPECT_EQ(c->get("/items/7/files/src/main.cpp").json(),
            (nlohmann::json{{"id", "7"}, {"path", "src/main.cpp"}}));
  EXPECT_EQ(c->get("/items/7/files/a%20b/c").json()["path"], "a b/c");
  EXPECT_EQ(c->get("/items/7/files/").status, 404U);
  EXPECT_EQ(c->get("/items/").status, 404U);

  const auto info = c->get("/info?q=hello%20world+again&z=1", {{"X-Test", "yes"}}).json();
  EXPECT_EQ(info["route"], "/info");
  EXPECT_EQ(info["path"], "/info");
  EXPECT_EQ(info["method"], "GET");
  EXPECT_EQ(info["q"], "hello world again");
  EXPECT_EQ(info["x_test"], "yes");
  EXPECT_EQ(info["remote"], "127.0.0.1");
  EXPECT_EQ(c->get("/info").json()["q"], "<none>");

  const auto absolute = single_response(
      raw("GET http://localhost/items/5 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(absolute.json()["id"], "5");
  expect_problem(single_response(raw("GET /items/%zz HTTP/1.1\r\nHost: x\r\n\r\n")), 400, "bad_request");
  EXPECT_EQ(c->connects(), 1U);
}

TEST_F(ServerTest, NotFoundAndMethodNotAllowedAreProblems) {
  start();
  auto c = client();
  const auto missing = c->get("/nope?x=1");
  expect_problem(missing, 404, "not_found");
  EXPECT_EQ(missing.json()["instance"], "/nope");
  expect_security_headers(missing);

  const auto wrong = c->request(bhttp::verb::post, "/items/42", "{}");
  expect_problem(wrong, 405, "method_not_allowed");
  EXPECT_EQ(wrong.header("Allow"), "DELETE, GET, HEAD, OPTIONS");
  EXPECT_EQ(wrong.json()["instance"], "/items/42");
  expect_security_headers(wrong);

  const auto unknown = single_response(raw("BREW /items/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  expect_problem(unknown, 501, "not_implemented");
  EXPECT_EQ(c->connects(), 1U);
}

TEST_F(ServerTest, HeadUsesTheGetRouteWithoutBody) {
  start();
  auto c = client();
  const auto get = c->get("/items/42");
  const auto head = c->request(bhttp::verb::head, "/items/42");
  EXPECT_EQ(head.status, 200U);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("Content-Length"), std::to_string(get.body.size()));
  EXPECT_EQ(c->get("/items/43").json()["id"], "43");  // the connection is still in sync
  EXPECT_EQ(c->request(bhttp::verb::delete_, "/items/43").status, 204U);
}

TEST_F(ServerTest, BodyOverLimitByContentLengthIs413AndCloses) {
  start();
  auto c = client();
  EXPECT_EQ(c->request(bhttp::verb::post, "/echo", std::string(1024, 'a')).status, 200U);
  const auto big = c->request(bhttp::verb::post, "/echo", std::string(1025, 'a'));
  expect_problem(big, 413, "payload_too_large");
  expect_security_headers(big);
  EXPECT_EQ(big.header("Connection"), "close");

  // Without the body being sent at all: the answer comes from the header alone.
  const auto early = raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n");
  expect_problem(single_response(early), 413, "payload_too_large");
  EXPECT_TRUE(raw_closed());
}

TEST_F(ServerTest, ChunkedBodyOverLimitIs413AndCloses) {
  start();
  const auto ok =
      raw("POST /tiny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
          "8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n");
  const auto ok_response = single_response(ok);
  EXPECT_EQ(ok_response.status, 200U);
  EXPECT_EQ(ok_response.body, "0123456789abcdef");

  const auto over =
      raw("POST /tiny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          "10\r\n0123456789abcdef\r\n1\r\nX\r\n0\r\n\r\n");
  expect_problem(single_response(over), 413, "payload_too_large");
  EXPECT_TRUE(raw_closed());
}

TEST_F(ServerTest, PerRouteBodyLimitOverridesServerLimit) {
  start();
  auto c = client();
  const auto uploaded = c->request(bhttp::verb::post, "/upload", std::string(3000, 'u'));
  EXPECT_EQ(uploaded.status, 200U);
  EXPECT_EQ(uploaded.body, "3000");
  EXPECT_EQ(c->request(bhttp::verb::post, "/upload", std::string(4097, 'u')).status, 413U);
  EXPECT_EQ(c->request(bhttp::verb::post, "/echo", std::string(3000, 'u')).status, 413U);
  EXPECT_EQ(c->request(bhttp::verb::post, "/tiny", std::string(17, 't')).status, 413U);
  EXPECT_EQ(c->request(bhttp::verb::post, "/tiny", std::string(16, 't')).status, 200U);
}

TEST_F(ServerTest, ExpectContinueIsAnsweredOnlyWithinTheLimit) {
  auto config = test_config();
  config.request_timeout_ms = 300;
  start(config);
  // Headers only: the server invites the body, then times the request out when it never comes.
  const auto invited = parse_responses(
      raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  ASSERT_EQ(invited.size(), 2U);
  EXPECT_EQ(invited[0].status, 100U);
  expect_problem(invited[1], 408, "request_timeout");
  EXPECT_TRUE(raw_closed());

  const auto refused =
      raw("POST /tiny HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
  expect_problem(single_response(refused), 413, "payload_too_large");
}

TEST_F(ServerTest, MalformedRequestsAre400AndClose) {
  start();
  for (const char* request :
       {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n", "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        "GET /items/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        // Request smuggling: both framings at once.
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}) {
    SCOPED_TRACE(request);
    const auto response = single_response(raw(request));
    expect_problem(response, 400, "bad_request");
    expect_security_headers(response);
    EXPECT_EQ(response.header("Connection"), "close");
    EXPECT_TRUE(raw_closed());
  }
}

TEST_F(ServerTest, OversizedHeadersAre431AndClose) {
  start();
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n";
  const auto response = single_response(raw(request));
  expect_problem(response, 431, "header_fields_too_large");
  expect_security_headers(response);
  EXPECT_TRUE(raw_closed());
  // Just under the limit is fine.
  auto c = client();
  EXPECT_EQ(c->get("/healthz", {{"X-Big", std::string(1500, 'b')}}).status, 200U);
}

TEST_F(ServerTest, SecurityHeadersOnEveryResponse) {
  start();
  auto c = client();
  const auto ok = c->get("/healthz");
  EXPECT_EQ(ok.status, 200U);
  expect_security_headers(ok);
  EXPECT_EQ(ok.header("Cache-Control"), "no-store");
  expect_security_headers(c->get("/nope"));
  expect_security_headers(c->request(bhttp::verb::put, "/healthz"));
  expect_security_headers(c->get("/throw"));
  expect_security_headers(c->request(bhttp::verb::post, "/tiny", std::string(100, 'x')));
  expect_security_headers(single_response(raw("NOT HTTP\r\n\r\n")));

  // A handler's own Cache-Control wins, and appears once.
  const auto cached = c->get("/cache");
  EXPECT_EQ(cached.header("Cache-Control"), "max-age=60");
  EXPECT_EQ(cached.header_count("Cache-Control"), 1U);
}

TEST_F(ServerTest, ProductionAddsHsts) {
  start(test_config(), config::Environment::kProduction);
  auto c = client();
  expect_security_headers(c->get("/healthz"), true);
  expect_security_headers(c->get("/nope"), true);
}

TEST_F(ServerTest, RequestIdIsEchoedOrGenerated) {
  start();
  auto c = client();
  const auto echoed = c->get("/info", {{"X-Request-Id", "client-id_1.2"}});
  EXPECT_EQ(echoed.header("X-Request-Id"), "client-id_1.2");
  EXPECT_EQ(echoed.json()["request_id"], "client-id_1.2");

  for (const std::string& bad : {std::string("bad id"), std::string(65, 'x'), std::string("")}) {
    const auto generated = c->get("/info", {{"X-Request-Id", bad}});
    const std::string id = generated.header("X-Request-Id");
    EXPECT_EQ(id.size(), 32U);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(generated.json()["request_id"], id);
  }
  EXPECT_NE(c->get("/healthz").header("X-Request-Id"), c->get("/healthz").header("X-Request-Id"));
  expect_problem(c->get("/nope", {{"X-Request-Id", "trace-404"}}), 404, "not_found");
  EXPECT_EQ(c->get("/nope", {{"X-Request-Id", "trace-404"}}).json()["request_id"], "trace-404");
}

TEST_F(ServerTest, HandlerExceptionsBecomeGeneric500s) {
  start();
  auto c = client();
  for (const char* target : {"/throw", "/throw-inline", "/split"}) {
    SCOPED_TRACE(target);
    const auto r = c->get(target);
    expect_problem(r, 500, "internal");
    expect_security_headers(r);
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos);
    EXPECT_FALSE(r.has_header("X-Evil"));
    EXPECT_FALSE(r.has_header("Set-Cookie"));
  }
  EXPECT_EQ(c->get("/healthz").status, 200U);  // the connection survives
  EXPECT_EQ(c->connects(), 1U);
}

TEST_F(ServerTest, BlockedWorkerHandlerDoesNotBlockInlineRoutes) {
  auto config = test_config();
  config.io_threads = 1;
  config.request_pool.threads = 1;
  start(config);
  auto slow_result = slow_request();
  ASSERT_TRUE(gate_.wait_entered(1));
  // The only request thread is blocked inside /slow; the only I/O thread still answers inline routes.
  auto c = client();
  EXPECT_EQ(c->get("/healthz").body, "ok");
  EXPECT_EQ(c->get("/nope").status, 404U);
  EXPECT_EQ(slow_result.wait_for(0s), std::future_status::timeout);
  gate_.open();
  const auto slow = slow_result.get();
  EXPECT_EQ(slow.status, 200U);
  EXPECT_EQ(slow.body, "slow done");
}

TEST_F(ServerTest, ThousandKeepAliveRequestsOnOneConnection) {
  start();
  auto c = client();
  for (int i = 0; i < 1000; ++i) {
    const auto r = i % 2 == 0 ? c->get("/healthz") : c->get("/items/" + std::to_string(i));
    ASSERT_EQ(r.status, 200U) << "request " << i;
    if (i % 2 == 1) {
      ASSERT_EQ(r.json()["id"], std::to_string(i));
    }
  }
  EXPECT_EQ(c->connects(), 1U);
  EXPECT_EQ(registry_.counter("samokoder_http_connections_total", "").value(), 1.0);
  EXPECT_EQ(counter_value("/healthz", "GET", "200"), 500.0);
  EXPECT_EQ(counter_value("/items/{id}", "GET", "200"), 500.0);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  std::string pipeline;
  for (int i = 1; i <= 5; ++i) {
    pipeline += "GET /items/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n";
    if (i == 5) pipeline += "Connection: close\r\n";
    pipeline += "\r\n";
  }
  pipeline += "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlost";  // after close: ignored
  const auto responses = parse_responses(raw(pipeline));
  ASSERT_EQ(responses.size(), 5U);
  for (int i = 1; i <= 5; ++i)
    EXPECT_EQ(responses[i - 1].json()["id"], std::to_string(i));
  EXPECT_EQ(responses[4].header("Connection"), "close");
  EXPECT_TRUE(raw_closed());
}

TEST_F(ServerTest, Http10ClosesUnlessKeepAliveAsked) {
  start();
  const auto closed = single_response(raw("GET /healthz HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(closed.status, 200U);
  EXPECT_EQ(closed.header("Connection"), "close");
  EXPECT_TRUE(raw_closed());

  const auto kept = parse_responses(
      raw("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /items/2 HTTP/1.0\r\n\r\n"));
  ASSERT_EQ(kept.size(), 2U);
  EXPECT_EQ(kept[0].header("Connection"), "keep-alive");
  EXPECT_EQ(kept[1].json()["id"], "2");
  EXPECT_TRUE(raw_closed());
}

TEST_F(ServerTest, CorsForAllowedOriginsOnly) {
  start();
  auto c = client();
  const auto allowed = c->get("/items/1", {{"Origin", "https://app.example"}});
  EXPECT_EQ(allowed.header("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(allowed.header("Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(allowed.header("Vary"), "Origin");
  EXPECT_NE(allowed.header("Access-Control-Expose-Headers").find("X-Request-Id"), std::string::npos);
  EXPECT_EQ(c->get("/nope", {{"Origin", "https://app.example"}}).header("Access-Control-Allow-Origin"),
            "https://app.example");

  for (const char* origin : {"https://evil.example", "https://app.example.evil", "null"}) {
    const auto denied = c->get("/items/1", {{"Origin", origin}});
    EXPECT_EQ(denied.status, 200U);
    EXPECT_FALSE(denied.has_header("Access-Control-Allow-Origin")) << origin;
    EXPECT_FALSE(denied.has_header("Access-Control-Allow-Credentials")) << origin;
  }

  const auto preflight = c->request(bhttp::verb::options, "/items/1", "",
                                    {{"Origin", "https://app.example"},
                                     {"Access-Control-Request-Method", "DELETE"},
                                     {"Access-Control-Request-Headers", "authorization, content-type"}});
  EXPECT_EQ(preflight.status, 204U);
  EXPECT_EQ(preflight.header("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(preflight.header("Access-Control-Allow-Methods"), "DELETE, GET, HEAD, OPTIONS");
  EXPECT_NE(preflight.header("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
  EXPECT_EQ(preflight.header("Access-Control-Max-Age"), "600");
  EXPECT_EQ(preflight.header("Allow"), "DELETE, GET, HEAD, OPTIONS");
  expect_security_headers(preflight);

  const auto denied_preflight =
      c->request(bhttp::verb::options, "/items/1", "",
                 {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "DELETE"}});
  EXPECT_EQ(denied_preflight.status, 204U);
  EXPECT_FALSE(denied_preflight.has_header("Access-Control-Allow-Origin"));
  EXPECT_FALSE(denied_preflight.has_header("Access-Control-Allow-Methods"));

  EXPECT_EQ(c->request(bhttp::verb::options, "/nope", "",
                       {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "GET"}})
                .status,
            404U);
}

TEST_F(ServerTest, MiddlewareShortCircuitsAndSeesEveryResponse) {
  auto middleware = std::make_shared<TestMiddleware>();
  start(test_config(), config::Environment::kDevelopment, middleware);
  auto c = client();
  const auto blocked = c->get("/items/1", {{"X-Block", "1"}, {"X-Request-Id", "blocked-1"}});
  expect_problem(blocked, 429, "rate_limited");
  EXPECT_EQ(blocked.header("Retry-After"), "1");
  EXPECT_EQ(blocked.header("X-After"), "blocked-1");
  expect_security_headers(blocked);

  const auto normal = c->get("/items/1");
  EXPECT_EQ(normal.status, 200U);
  EXPECT_EQ(normal.header("X-After"), normal.header("X-Request-Id"));
  const auto missing = c->get("/nope", {{"X-Request-Id", "nf-1"}});
  EXPECT_EQ(missing.header("X-After"), "nf-1");
  const auto thrown = c->get("/throw", {{"X-Request-Id", "t-1"}});
  EXPECT_EQ(thrown.header("X-After"), "t-1");
  const auto malformed = single_response(raw("GET / HTTP/1.1\r\nBad Header\r\n\r\n"));
  EXPECT_EQ(malformed.header("X-After"), malformed.header("X-Request-Id"));
}

TEST_F(ServerTest, MetricsCountRequestsByRoutePattern) {
  start(test_config(), config::Environment::kDevelopment, nullptr, /*access_log=*/true);
  auto c = client();
  c->get("/items/1");
  c->get("/items/2");
  c->get("/definitely/not/here");
  c->request(bhttp::verb::post, "/items/3", "{}");
  const std::string text = registry_.render();
  EXPECT_NE(text.find(R"(samokoder_http_requests_total{route="/items/{id}",method="GET",status="200"} 2)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(samokoder_http_requests_total{route="unmatched",method="GET",status="404"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(samokoder_http_requests_total{route="/items/{id}",method="POST",status="405"} 1)"),
            std::string::npos);
  EXPECT_EQ(text.find("definitely"), std::string::npos);  // raw paths never become labels
  EXPECT_NE(text.find(R"(samokoder_http_request_duration_seconds_count{route="/items/{id}"} 3)"),
            std::string::npos);
  EXPECT_NE(text.find("samokoder_http_connections_active 1"), std::string::npos);
  EXPECT_NE(text.find("samokoder_http_requests_in_flight 0"), std::string::npos);
}

TEST_F(ServerTest, RequestTimeoutAnswers408) {
  auto config = test_config();
  config.request_timeout_ms = 200;
  start(config);
  const auto response = single_response(raw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  expect_problem(response, 408, "request_timeout");
  expect_security_headers(response);
  EXPECT_TRUE(raw_closed());
}

// A config reload shortens the timeouts of the running server: the next request that is too slow gets
// 408 after the new request_timeout_ms (the startup one is 10 s, past the 5 s the client waits), and a
// handler past the new call_timeout_ms is answered 504.
TEST_F(ServerTest, TimeoutsAppliedLiveTakeEffectForTheNextRequest) {
  start();
  auto live = test_config();
  live.request_timeout_ms = 200;
  live.request_pool.call_timeout_ms = 200;
  server_->apply_live(live, /*access_log=*/false);
  const auto response = single_response(raw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  expect_problem(response, 408, "request_timeout");
  const auto slow = client()->get("/slow");
  EXPECT_EQ(slow.status, 504u) << slow.body;
  gate_.open();
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosed) {
  auto config = test_config();
  config.keep_alive_timeout_ms = 200;
  start(config);
  auto c = client();
  EXPECT_EQ(c->get("/healthz").status, 200U);
  EXPECT_TRUE(c->wait_for_close(5000ms));
  EXPECT_EQ(c->get("/healthz").status, 200U);  // the client reconnects
  EXPECT_EQ(c->connects(), 2U);
}

TEST_F(ServerTest, GracefulStopLetsInFlightRequestFinish) {
  start();
  auto idle = client();
  ASSERT_EQ(idle->get("/healthz").status, 200U);
  auto slow_result = slow_request();
  ASSERT_TRUE(gate_.wait_entered(1));
  auto stopped = std::async(std::launch::async, [this] { server_->stop(); });
  // stop() closes idle connections first: once ours is closed, the stop is under way.
  ASSERT_TRUE(idle->wait_for_close(10000ms));
  EXPECT_EQ(stopped.wait_for(0s), std::future_status::timeout);
  gate_.open();
  const auto slow = slow_result.get();
  EXPECT_EQ(slow.status, 200U);
  EXPECT_EQ(slow.body, "slow done");
  EXPECT_EQ(slow.header("Connection"), "close");
  stopped.get();
  EXPECT_THROW(client()->get("/healthz"), std::runtime_error);  // no longer accepting
  EXPECT_EQ(registry_.gauge("samokoder_http_requests_in_flight", "").value(), 0.0);
  EXPECT_EQ(registry_.gauge("samokoder_http_connections_active", "").value(), 0.0);
}

TEST_F(ServerTest, StopLeavesBehindAHandlerThatOutlivesTheGrace) {
  auto config = test_config();
  config.shutdown_grace_ms = 100;
  start(config);
  auto slow_result = slow_request();
  ASSERT_TRUE(gate_.wait_entered(1));
  auto stopped = std::async(std::launch::async, [this] { server_->stop(); });
  // The grace runs out while the handler still blocks: the client loses its connection, and stop()
  // returns without waiting for the handler, naming it.
  EXPECT_THROW(slow_result.get(), std::runtime_error);
  ASSERT_EQ(stopped.wait_for(10s), std::future_status::ready);
  stopped.get();
  ASSERT_EQ(server_->unfinished_calls().size(), 1U);
  EXPECT_EQ(server_->unfinished_calls()[0].pool, "request");
  EXPECT_EQ(server_->unfinished_calls()[0].what, "GET /slow");
  EXPECT_EQ(registry_.gauge("samokoder_http_requests_in_flight", "").value(), 0.0);
  EXPECT_EQ(registry_.gauge("samokoder_http_connections_active", "").value(), 0.0);
  // The handler returns into a stopped server, harmlessly.
  gate_.open();
  EXPECT_TRUE(gate_.wait_left(1));
}

TEST_F(ServerTest, AFullRequestQueueAnswers503WithRetryAfterWithoutWaiting) {
  auto config = test_config();
  config.request_pool = {.threads = 1, .queue_limit = 0, .call_timeout_ms = 60000};
  start(config);
  auto slow_result = slow_request();
  ASSERT_TRUE(gate_.wait_entered(1));
  // The only request thread is busy and nothing may wait: the next request is refused at once.
  auto c = client();
  const auto refused = c->get("/slow");
  EXPECT_EQ(refused.status, 503U);
  EXPECT_EQ(refused.header("Retry-After"), "1");
  EXPECT_EQ(refused.json()["type"], "https://samokoder.dev/problems/overloaded");
  EXPECT_EQ(registry_.counter("samokoder_work_pool_rejected_total", "", {{"pool", "request"}}).value(), 1.0);
  EXPECT_EQ(c->get("/healthz").status, 200U);  // same connection, inline route
  gate_.open();
  EXPECT_EQ(slow_result.get().status, 200U);
  EXPECT_EQ(c->get("/slow").status, 200U);
}

TEST_F(ServerTest, StartFailsOnAPortInUse) {
  start();
  auto config = test_config();
  config.listen.port = server_->port();
  Server second(config, config::Environment::kDevelopment, router_, registry_);
  const sdk::Status status = second.start();
  EXPECT_EQ(status.code(), sdk::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(std::to_string(server_->port())), std::string::npos);
  EXPECT_EQ(server_->endpoint(), "127.0.0.1:" + std::to_string(server_->port()));
}

}  // namespace
}  // namespace samokoder::http
