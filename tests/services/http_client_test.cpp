// Outbound HTTP for plugins (kernel/outbound_http) against real servers on loopback: plain and TLS
// with a CA made at test time, chunked bodies, servers that stall, trickle or close mid-body, a
// CONNECT proxy, and the plugin's view through HostServices.
#include <chrono>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "core/clock.hpp"
#include "core/logging.hpp"
#include "loopback_http.hpp"
#include "outbound_http/service.hpp"
#include "plugins/plugin_host.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::outbound_http {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::LoopbackHttpServer;
using ::testing::Not;
using testing::ReceivedRequest;
using testing::ServerConnection;

// Answers every request with "hello <target>".
void hello(const ReceivedRequest& request, ServerConnection& connection) {
  connection.respond(200, "hello " + request.target, {"Content-Type: text/plain"});
}

// Writes `head`, then `piece` every `interval` until the client goes away (at most 20 s): a slow or
// endless answer.
void trickle(ServerConnection& connection, std::string_view head, std::string_view piece,
             std::chrono::milliseconds interval) {
  connection.write(head);
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until && connection.write(piece))
    std::this_thread::sleep_for(interval);
}

class HttpClientTest : public ::testing::Test {
 protected:
  // A service with short defaults, so a test that goes wrong fails quickly instead of hanging.
  std::unique_ptr<Service> make_service(const std::map<std::string, std::string>& environment = {},
                                        const std::function<void(config::HttpClientConfig&)>& adjust = {}) {
    config::HttpClientConfig config;
    config.connect_timeout_ms = 5000;
    config.first_byte_timeout_ms = 5000;
    config.idle_timeout_ms = 5000;
    config.total_timeout_ms = 20000;
    if (adjust) adjust(config);
    std::vector<std::string> errors;
    auto proxies = ProxySettings::from_environment(environment, errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
    return std::make_unique<Service>(config, std::move(proxies), registry_);
  }

  std::string write_ca(const testing::TestPki& pki) {
    const auto path = dir_.path() / "extra-ca.pem";
    std::ofstream(path) << pki.ca_cert;
    return path.string();
  }

  double counter(std::string_view name, metrics::Labels labels) {
    return registry_.counter(name, "", labels).value();
  }

  static sdk::HttpRequest get(std::string url) {
    sdk::HttpRequest request;
    request.url = std::move(url);
    return request;
  }

  metrics::Registry registry_;
  testing::TempDir dir_;
};

TEST_F(HttpClientTest, GetsAResponseAndCountsItForThePluginAndHost) {
  LoopbackHttpServer server(hello);
  auto service = make_service();
  auto client = service->client("llm.test");
  sdk::HttpRequest request = get(server.url("/v1/models?x=1"));
  request.headers.push_back({"Accept", "text/plain"});
  auto response = client->send(request, sdk::never_cancelled());
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->body, "hello /v1/models?x=1");
  EXPECT_EQ(response->body_bytes, response->body.size());
  EXPECT_FALSE(response->stopped);
  const auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].header("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(received[0].header("accept"), "text/plain");
  EXPECT_EQ(received[0].header("user-agent"), "samokoder");

  const std::string host = "127.0.0.1:" + std::to_string(server.port());
  EXPECT_EQ(counter("samokoder_http_client_requests_total",
                    {{"plugin", "llm.test"}, {"host", host}, {"class", "2xx"}}),
            1);
  EXPECT_EQ(counter("samokoder_http_client_received_bytes_total", {{"plugin", "llm.test"}, {"host", host}}),
            static_cast<double>(response->body.size()));
  EXPECT_EQ(
      registry_
          .histogram("samokoder_http_client_request_seconds", "", {{"plugin", "llm.test"}, {"host", host}})
          .count(),
      1u);
}

TEST_F(HttpClientTest, AnErrorStatusIsAResponseAndPostSendsItsBody) {
  LoopbackHttpServer server([](const ReceivedRequest& request, ServerConnection& connection) {
    connection.respond(503, "busy: " + request.body);
  });
  auto service = make_service();
  auto client = service->client("p");
  sdk::HttpRequest request = get(server.url("/submit"));
  request.method = "POST";
  request.body = R"({"a":1})";
  request.headers.push_back({"Content-Type", "application/json"});
  auto response = client->send(request, {});
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->status, 503u);
  EXPECT_EQ(response->body, R"(busy: {"a":1})");
  EXPECT_EQ(server.received().at(0).header("content-length"), "7");
  EXPECT_EQ(
      counter("samokoder_http_client_requests_total",
              {{"plugin", "p"}, {"host", "127.0.0.1:" + std::to_string(server.port())}, {"class", "5xx"}}),
      1);
}

TEST_F(HttpClientTest, SendsALargeBodyWhole) {
  LoopbackHttpServer server([](const ReceivedRequest& request, ServerConnection& connection) {
    connection.respond(200, std::to_string(request.body.size()));
  });
  auto service = make_service();
  auto client = service->client("p");
  sdk::HttpRequest request = get(server.url("/upload"));
  request.method = "PUT";
  for (int i = 0; request.body.size() < 4 * 1024 * 1024; ++i)
    request.body += std::to_string(i) + ",";
  request.timeouts.idle = 2s;
  auto response = client->send(request, {});
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->body, std::to_string(request.body.size()));
  EXPECT_TRUE(server.received().at(0).body == request.body);
  EXPECT_EQ(counter("samokoder_http_client_sent_bytes_total",
                    {{"plugin", "p"}, {"host", "127.0.0.1:" + std::to_string(server.port())}}),
            static_cast<double>(request.body.size()));
}

void chunked(const ReceivedRequest&, ServerConnection& connection) {
  connection.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (const char* piece : {"first,", "second,", "third", ""})
    connection.write_chunk(piece);
}

TEST_F(HttpClientTest, DecodesChunkedBodiesBufferedAndStreamed) {
  LoopbackHttpServer server(chunked);
  auto service = make_service();
  auto client = service->client("p");
  auto buffered = client->send(get(server.url()), {});
  ASSERT_TRUE(buffered.ok()) << buffered.status().to_string();
  EXPECT_EQ(buffered->body, "first,second,third");

  std::string streamed;
  unsigned head_status = 0;
  sdk::HttpRequest request = get(server.url());
  request.on_headers = [&](const sdk::HttpResponseHead& head) {
    head_status = head.status;
    return true;
  };
  request.on_body = [&](std::string_view piece) {
    streamed += piece;
    return true;
  };
  auto response = client->send(request, {});
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(head_status, 200u);
  EXPECT_EQ(streamed, "first,second,third");
  EXPECT_TRUE(response->body.empty());
  EXPECT_EQ(response->body_bytes, streamed.size());
}

TEST_F(HttpClientTest, ReusesAKeptAliveConnectionPerHost) {
  LoopbackHttpServer server(hello);
  LoopbackHttpServer other(chunked);
  auto service = make_service();
  auto client = service->client("p");
  for (int i = 0; i < 3; ++i) {
    auto response = client->send(get(server.url("/" + std::to_string(i))), {});
    ASSERT_TRUE(response.ok()) << response.status().to_string();
    EXPECT_EQ(response->reused_connection, i > 0);
    ASSERT_TRUE(client->send(get(other.url()), {}).ok());
  }
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(other.accepted(), 1u);
  EXPECT_EQ(service->idle_connections(), 2u);
  EXPECT_EQ(counter("samokoder_http_client_connections_total",
                    {{"plugin", "p"}, {"host", "127.0.0.1:" + std::to_string(server.port())}}),
            1);
}

TEST_F(HttpClientTest, AConnectionTheServerClosedIsReplacedNotReported) {
  LoopbackHttpServer server([](const ReceivedRequest& request, ServerConnection& connection) {
    hello(request, connection);
    connection.close_after();  // without saying Connection: close, like a server's idle timeout
  });
  auto service = make_service();
  auto client = service->client("p");
  ASSERT_TRUE(client->send(get(server.url()), {}).ok());
  ASSERT_TRUE(testing::wait_until([&] { return server.closed() == 1; }, 10s));
  auto second = client->send(get(server.url("/again")), {});
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(second->body, "hello /again");
  EXPECT_EQ(server.accepted(), 2u);
}

TEST_F(HttpClientTest, FirstByteTimeoutWhenTheServerStallsBeforeHeaders) {
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection& connection) { connection.stall(); });
  auto service = make_service();
  auto client = service->client("p");
  sdk::HttpRequest request = get(server.url());
  request.timeouts.first_byte = 200ms;
  const auto started = std::chrono::steady_clock::now();
  auto response = client->send(request, {});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(response.status().message(), HasSubstr("first_byte timeout (200 ms)"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
  EXPECT_TRUE(testing::wait_until([&] { return server.closed() == 1; }, 10s)) << "the connection stays open";
  EXPECT_EQ(
      counter("samokoder_http_client_errors_total", {{"plugin", "p"},
                                                     {"host", "127.0.0.1:" + std::to_string(server.port())},
                                                     {"code", "deadline_exceeded"}}),
      1);
}

TEST_F(HttpClientTest, IdleTimeoutWhenTheServerStallsMidBody) {
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection& connection) {
    connection.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome of it");
    connection.stall();
  });
  auto service = make_service();
  auto client = service->client("p");
  sdk::HttpRequest request = get(server.url());
  request.timeouts.idle = 200ms;
  std::string streamed;
  request.on_body = [&](std::string_view piece) {
    streamed += piece;
    return true;
  };
  auto response = client->send(request, {});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(response.status().message(), HasSubstr("idle timeout (200 ms)"));
  EXPECT_EQ(streamed, "some of it");
}

TEST_F(HttpClientTest, TotalTimeoutBoundsAServerThatAnswersSlowly) {
  // A byte every 50 ms never trips the idle timeout, only the total one.
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection& connection) {
    trickle(connection, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "x", 50ms);
  });
  auto service = make_service();
  auto client = service->client("p");
  sdk::HttpRequest request = get(server.url());
  request.timeouts.idle = 2s;
  request.timeouts.total = 400ms;
  const auto started = std::chrono::steady_clock::now();
  auto response = client->send(request, {});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(response.status().message(), HasSubstr("total timeout (400 ms)"));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 400ms);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST_F(HttpClientTest, ConnectTimeoutCoversATlsHandshakeThatNeverAnswers) {
  // A plain server that waits for a request line never answers a ClientHello.
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection&) {});
  auto service = make_service();
  auto client = service->client("p");
  sdk::HttpRequest request = get("https://127.0.0.1:" + std::to_string(server.port()) + "/");
  request.timeouts.connect = 200ms;
  auto response = client->send(request, {});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(response.status().message(), HasSubstr("connect timeout (200 ms) passed while TLS handshake"));
}

TEST_F(HttpClientTest, CancellationFromAnotherThreadClosesTheConnectionAtOnce) {
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection& connection) { connection.stall(); });
  auto service = make_service();
  auto client = service->client("p");
  sdk::CancelSource source;
  std::thread canceller([&] {
    if (testing::wait_until([&] { return server.requests() == 1; }, 10s)) source.request_stop();
  });
  const auto started = std::chrono::steady_clock::now();
  auto response = client->send(get(server.url()), source.get_token());  // first_byte default: 5 s
  const auto took = std::chrono::steady_clock::now() - started;
  canceller.join();
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kCancelled);
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(testing::wait_until([&] { return server.closed() == 1; }, 2s))
      << "the server still holds the connection";
}

TEST_F(HttpClientTest, AnAlreadyCancelledTokenSendsNothing) {
  LoopbackHttpServer server(hello);
  auto service = make_service();
  auto client = service->client("p");
  sdk::CancelSource source;
  source.request_stop();
  auto response = client->send(get(server.url()), source.get_token());
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kCancelled);
  EXPECT_EQ(server.requests(), 0u);
}

TEST_F(HttpClientTest, TheBodyCallbackStopsAnEndlessStream) {
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection& connection) {
    trickle(connection, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\ntick,\r\n", 5ms);
  });
  auto service = make_service();
  auto client = service->client("p");
  sdk::HttpRequest request = get(server.url());
  int pieces = 0;
  request.on_body = [&](std::string_view) { return ++pieces < 3; };
  auto response = client->send(request, {});
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_TRUE(response->stopped);
  EXPECT_EQ(pieces, 3);
  EXPECT_TRUE(testing::wait_until([&] { return server.closed() == 1; }, 10s)) << "the stream was not closed";
  EXPECT_EQ(service->idle_connections(), 0u);
}

TEST_F(HttpClientTest, CapsTheResponseAndTheRequestSize) {
  LoopbackHttpServer server([](const ReceivedRequest& request, ServerConnection& connection) {
    if (request.target == "/chunked") return chunked(request, connection);
    connection.respond(200, std::string(1000, 'x'));
  });
  auto service = make_service({}, [](config::HttpClientConfig& c) { c.max_request_bytes = 10; });
  auto client = service->client("p");
  sdk::HttpRequest request = get(server.url());
  request.max_response_bytes = 999;
  auto declared = client->send(request, {});
  EXPECT_EQ(declared.status().code(), sdk::StatusCode::kResourceExhausted);
  EXPECT_THAT(declared.status().message(), HasSubstr("max_response_bytes (999)"));

  request = get(server.url("/chunked"));
  request.max_response_bytes = 10;  // the chunked body has 18 bytes and no Content-Length
  auto streamed = client->send(request, {});
  EXPECT_EQ(streamed.status().code(), sdk::StatusCode::kResourceExhausted);

  request = get(server.url());
  request.max_response_bytes = 1000;
  EXPECT_TRUE(client->send(request, {}).ok());

  request.method = "POST";
  request.body = std::string(11, 'y');
  auto too_big = client->send(request, {});
  EXPECT_EQ(too_big.status().code(), sdk::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_big.status().message(), HasSubstr("max_request_bytes (10)"));
}

TEST_F(HttpClientTest, AServerThatClosesMidBodyIsUnavailable) {
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection& connection) {
    connection.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
    connection.close_after();
  });
  auto service = make_service();
  auto client = service->client("p");
  auto response = client->send(get(server.url()), {});
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(),
              HasSubstr("closed the connection while reading the response body"));
}

TEST_F(HttpClientTest, RefusesBadUrlsAndHeaders) {
  auto service = make_service();
  auto client = service->client("p");
  for (const char* url : {"ftp://example.com/", "example.com/path", "https://user:pw@example.com/",
                          "http://:80/", "http://host:99999/", "http://host/a b"}) {
    auto response = client->send(get(url), {});
    EXPECT_EQ(response.status().code(), sdk::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(response.status().message(), Not(HasSubstr("pw"))) << url;
  }
  sdk::HttpRequest request = get("http://127.0.0.1:1/");
  request.headers.push_back({"Transfer-Encoding", "chunked"});
  EXPECT_EQ(client->send(request, {}).status().code(), sdk::StatusCode::kInvalidArgument);
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  std::uint16_t port = 0;
  {
    LoopbackHttpServer gone(hello);
    port = gone.port();
  }
  auto service = make_service();
  auto client = service->client("p");
  auto response = client->send(get("http://127.0.0.1:" + std::to_string(port) + "/"), {});
  EXPECT_EQ(response.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), HasSubstr("connecting failed"));
}

TEST_F(HttpClientTest, HttpsVerifiesAgainstTheExtraCaFileWithSniAndHostName) {
  const testing::TestPki pki = testing::make_pki({"localhost", "127.0.0.1"});
  LoopbackHttpServer server(hello, &pki);

  auto untrusting = make_service();
  auto refused = untrusting->client("p")->send(get(server.url("/", "localhost")), {});
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("TLS handshake failed"));
  EXPECT_THAT(refused.status().message(), HasSubstr("certificate verify failed"));

  const std::string ca_file = write_ca(pki);
  auto trusting = make_service({}, [&](config::HttpClientConfig& c) { c.extra_ca_file = ca_file; });
  ASSERT_TRUE(trusting->status().ok()) << trusting->status().to_string();
  auto client = trusting->client("p");
  for (const char* host : {"localhost", "127.0.0.1"}) {
    auto response = client->send(get(server.url("/secure", host)), {});
    ASSERT_TRUE(response.ok()) << host << ": " << response.status().to_string();
    EXPECT_EQ(response->body, "hello /secure");
  }

  // Trusted CA, but a certificate for another name.
  const testing::TestPki other = testing::make_pki({"other.example"});
  LoopbackHttpServer impostor(hello, &other);
  const std::string other_ca = dir_.path() / "other-ca.pem";
  std::ofstream(other_ca) << other.ca_cert;
  auto service = make_service({}, [&](config::HttpClientConfig& c) { c.extra_ca_file = other_ca; });
  auto mismatch = service->client("p")->send(get(impostor.url("/", "localhost")), {});
  EXPECT_EQ(mismatch.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(HttpClientTest, AnUnreadableExtraCaFileIsReported) {
  auto service = make_service(
      {}, [&](config::HttpClientConfig& c) { c.extra_ca_file = (dir_.path() / "missing.pem").string(); });
  EXPECT_EQ(service->status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_THAT(service->status().message(), HasSubstr("missing.pem"));
}

TEST_F(HttpClientTest, HttpsGoesThroughTheProxyTunnelUnlessNoProxyNamesTheHost) {
  const testing::TestPki pki = testing::make_pki();
  LoopbackHttpServer server(hello, &pki);
  LoopbackHttpServer plain(hello);
  testing::LoopbackProxy proxy;
  const std::string ca_file = write_ca(pki);
  const std::string proxy_url = "http://user:p%40ss@127.0.0.1:" + std::to_string(proxy.port());
  auto service = make_service(
      {{"HTTPS_PROXY", proxy_url}, {"http_proxy", proxy_url}, {"NO_PROXY", "example.com,127.0.0.1"}},
      [&](config::HttpClientConfig& c) { c.extra_ca_file = ca_file; });
  auto client = service->client("p");

  auto tunnelled = client->send(get(server.url("/via", "localhost")), {});
  ASSERT_TRUE(tunnelled.ok()) << tunnelled.status().to_string();
  EXPECT_EQ(tunnelled->body, "hello /via");
  const std::string authority = "localhost:" + std::to_string(server.port());
  ASSERT_EQ(proxy.request_lines(), std::vector<std::string>{"CONNECT " + authority + " HTTP/1.1"});
  EXPECT_EQ(proxy.authorizations().at(0), "Basic dXNlcjpwQHNz");  // user:p@ss

  // Plain HTTP through the proxy: an absolute-form target, answered by the proxy itself.
  auto forwarded = client->send(get(plain.url("/x?y=1", "localhost")), {});
  ASSERT_TRUE(forwarded.ok()) << forwarded.status().to_string();
  EXPECT_EQ(forwarded->body, "proxied GET http://localhost:" + std::to_string(plain.port()) + "/x?y=1");
  EXPECT_EQ(plain.requests(), 0u);

  // NO_PROXY lists 127.0.0.1: straight to the server.
  auto direct = client->send(get(server.url("/direct", "127.0.0.1")), {});
  ASSERT_TRUE(direct.ok()) << direct.status().to_string();
  EXPECT_EQ(proxy.request_lines().size(), 2u);
}

TEST_F(HttpClientTest, NoProxyMatchesHostsSubdomainsAndPorts) {
  std::vector<std::string> errors;
  const auto settings = ProxySettings::from_environment(
      {{"HTTPS_PROXY", "proxy.internal:3128"}, {"no_proxy", " .corp.example, api.test:8443 ,[::1]"}}, errors);
  ASSERT_TRUE(errors.empty());
  auto via_proxy = [&](const char* url) { return settings.proxy_for(*parse_url(url)) != nullptr; };
  EXPECT_TRUE(via_proxy("https://example.com/"));
  EXPECT_FALSE(via_proxy("https://corp.example/"));
  EXPECT_FALSE(via_proxy("https://a.b.corp.example/"));
  EXPECT_TRUE(via_proxy("https://notcorp.example/"));
  EXPECT_FALSE(via_proxy("https://api.test:8443/"));
  EXPECT_TRUE(via_proxy("https://api.test/"));
  EXPECT_FALSE(via_proxy("https://[::1]/"));
  EXPECT_FALSE(via_proxy("http://example.com/")) << "no HTTP_PROXY was given";

  const auto broken =
      ProxySettings::from_environment({{"HTTPS_PROXY", "https://u:hunter22@proxy:1/"}}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("HTTPS_PROXY is ignored"));
  EXPECT_THAT(errors[0], Not(HasSubstr("hunter22")));
}

TEST_F(HttpClientTest, SecretHeaderValuesNeverReachLogsOrErrors) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  core::logger("http_client")->sinks().push_back(sink);
  config::LogConfig verbose;
  verbose.level = "trace";
  core::init_logging(verbose);

  LoopbackHttpServer server([](const ReceivedRequest& request, ServerConnection& connection) {
    if (request.target == "/stall") return connection.stall();
    hello(request, connection);
  });
  auto service = make_service();
  auto client = service->client("p");
  const std::vector<sdk::HttpHeader> headers = {{"Authorization", "Bearer tok-AUTH-1234", false},
                                                {"X-Api-Key", "key-XAPI-5678", false},
                                                {"Cookie", "session=cookie-COOK-9012", false},
                                                {"X-Signature", "sig-MARKED-3456", true},
                                                {"X-Trace", "visible-trace-id", false}};
  std::vector<std::string> messages;
  sdk::HttpRequest ok = get(server.url("/ok"));
  ok.headers = headers;
  ASSERT_TRUE(client->send(ok, {}).ok());

  sdk::HttpRequest stalled = get(server.url("/stall"));
  stalled.headers = headers;
  stalled.timeouts.first_byte = 100ms;
  messages.push_back(client->send(stalled, {}).status().message());

  sdk::HttpRequest bad = get(server.url("/bad"));
  bad.headers = headers;
  bad.headers.push_back({"Authorization", "Bearer tok-AUTH-1234\r\nX-Injected: 1", false});
  messages.push_back(client->send(bad, {}).status().message());

  core::logger("http_client")->error("secret-test-marker");
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto lines = sink->last_formatted();
        return !lines.empty() && lines.back().find("secret-test-marker") != std::string::npos;
      },
      10s));
  std::string logged;
  for (const auto& line : sink->last_formatted())
    logged += line;
  core::init_logging(config::LogConfig{});

  EXPECT_THAT(logged, HasSubstr("visible-trace-id")) << "the trace line with the request headers is missing";
  EXPECT_THAT(logged, HasSubstr("first_byte timeout"));
  for (const char* secret : {"tok-AUTH-1234", "key-XAPI-5678", "cookie-COOK-9012", "sig-MARKED-3456"}) {
    EXPECT_THAT(logged, Not(HasSubstr(secret)));
    for (const auto& message : messages)
      EXPECT_THAT(message, Not(HasSubstr(secret)));
  }
}

TEST_F(HttpClientTest, AsyncCallsCompleteOnServiceThreadsAndCloseCancelsThem) {
  LoopbackHttpServer server([](const ReceivedRequest& request, ServerConnection& connection) {
    if (request.target == "/stall") return connection.stall();
    hello(request, connection);
  });
  auto service = make_service();
  auto client = service->client("p");

  std::mutex mutex;
  std::vector<sdk::Result<sdk::HttpResponse>> results;
  std::vector<std::thread::id> threads;
  auto done = [&](sdk::Result<sdk::HttpResponse> result) {
    std::lock_guard lock(mutex);
    results.push_back(std::move(result));
    threads.push_back(std::this_thread::get_id());
  };
  client->send_async(get(server.url("/quick")), {}, done);
  ASSERT_TRUE(testing::wait_until([&] { return std::lock_guard(mutex), results.size() == 1; }, 10s));
  ASSERT_TRUE(results[0].ok()) << results[0].status().to_string();
  EXPECT_EQ(results[0]->body, "hello /quick");
  EXPECT_NE(threads[0], std::this_thread::get_id());

  // A blocking send from inside a callback would wait for its own thread: refused.
  sdk::Result<sdk::HttpResponse> nested = sdk::Status::internal("not run");
  client->send_async(get(server.url("/outer")), {}, [&](sdk::Result<sdk::HttpResponse>) {
    nested = client->send(get(server.url("/inner")), {});
    done(sdk::HttpResponse{});
  });
  ASSERT_TRUE(testing::wait_until([&] { return std::lock_guard(mutex), results.size() == 2; }, 10s));
  EXPECT_EQ(nested.status().code(), sdk::StatusCode::kFailedPrecondition);

  // What the plugin left running when it shut down is cancelled, and close() returns after `done`.
  client->send_async(get(server.url("/stall")), {}, done);
  ASSERT_TRUE(testing::wait_until([&] { return server.requests() == 3; }, 10s));
  client->close();
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[2].status().code(), sdk::StatusCode::kCancelled);
  }
  auto refused = client->send(get(server.url("/late")), {});
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kUnavailable);
}

TEST_F(HttpClientTest, CloseWaitsForTheRefusalOfACallMadeFromACompletion) {
  LoopbackHttpServer server([](const ReceivedRequest&, ServerConnection& connection) { connection.stall(); });
  auto service = make_service();
  auto client = service->client("p");
  std::atomic<bool> retry_completed{false};
  // A's completion (plugin code) retries once close() has begun; the retry is refused, and its
  // completion is plugin code too: it must have run before close() lets the plugin be unloaded.
  client->send_async(get(server.url("/first")), {}, [&](sdk::Result<sdk::HttpResponse>) {
    client->send_async(get(server.url("/retry")), {}, [&](sdk::Result<sdk::HttpResponse> retried) {
      std::this_thread::sleep_for(200ms);  // a slow completion widens the window
      retry_completed = retried.status().code() == sdk::StatusCode::kUnavailable;
    });
  });
  ASSERT_TRUE(testing::wait_until([&] { return server.requests() == 1; }, 10s));
  client->close();
  EXPECT_TRUE(retry_completed.load()) << "close() returned before the refused call's completion ran";
}

TEST_F(HttpClientTest, PluginsReachTheServiceThroughHostServices) {
  LoopbackHttpServer server(hello);
  auto service = make_service();
  core::SystemClock clock;
  plugins::PluginHost host("llm.openai", 1, nlohmann::json::object(), registry_, clock,
                           plugins::KernelServices{.http = service.get()});
  sdk::HostServices& services = host;
  auto response = services.http().send(get(server.url("/from-plugin")), {});
  ASSERT_TRUE(response.ok()) << response.status().to_string();
  EXPECT_EQ(response->body, "hello /from-plugin");
  EXPECT_EQ(
      counter("samokoder_http_client_requests_total", {{"plugin", "llm.openai"},
                                                       {"host", "127.0.0.1:" + std::to_string(server.port())},
                                                       {"class", "2xx"}}),
      1);

  host.close_http();
  EXPECT_EQ(services.http().send(get(server.url()), {}).status().code(), sdk::StatusCode::kUnavailable);

  plugins::PluginHost offline("x.y", 1, nlohmann::json::object(), registry_, clock);
  EXPECT_EQ(offline.http().send(get(server.url()), {}).status().code(), sdk::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace samokoder::outbound_http
