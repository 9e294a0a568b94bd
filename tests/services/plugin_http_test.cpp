// A plugin built like any other (samokoder_add_plugin, SDK headers only) reaches a TLS API through
// HostServices::http() alone, streams the answer, and an asynchronous call it leaves running is
// cancelled and completed before its library is unloaded.
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <samokoder/sdk/llm.hpp>

#include "core/clock.hpp"
#include "loopback_http.hpp"
#include "outbound_http/service.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::outbound_http {
namespace {

using namespace std::chrono_literals;
using testing::ReceivedRequest;
using testing::ServerConnection;

constexpr std::string_view kPluginId = "llm.fixture_http";

class PluginHttpTest : public ::testing::Test {
 protected:
  PluginHttpTest() {
    const auto ca_file = dir_.path() / "ca.pem";
    std::ofstream(ca_file) << pki_.ca_cert;
    config::HttpClientConfig http;
    http.extra_ca_file = ca_file.string();
    service_ = std::make_unique<Service>(http, ProxySettings{}, registry_);

    config::PluginEntry entry;
    entry.id = std::string(kPluginId);
    entry.file = SAMOKODER_FIXTURE_DIR "/fixture_http_llm.so";
    entry.required = true;
    config::PluginsConfig plugins;
    plugins.runtime_dir = dir_.path() / "run";
    plugins.plugins = {entry};
    manager_ = std::make_unique<plugins::PluginManager>(plugins, registry_, clock_,
                                                        plugins::KernelServices{.http = service_.get()});
  }

  sdk::Result<sdk::Completion> complete(const std::string& model, const std::string& url,
                                        sdk::CompletionObserver* sink = nullptr,
                                        sdk::CancelToken cancel = sdk::never_cancelled()) {
    sdk::CompletionRequest request;
    request.model = model;
    request.base_url = url;
    request.api_key = "sk-plugin-key";
    request.messages = {{"user", "hi"}};
    auto lease = manager_->acquire(kPluginId);
    return lease.call<sdk::LlmProvider>(
        [&](sdk::LlmProvider& llm) { return llm.complete(request, sink, cancel); });
  }

  const testing::TestPki pki_ = testing::make_pki();
  testing::TempDir dir_{"samokoder-services"};
  metrics::Registry registry_;
  core::SystemClock clock_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<plugins::PluginManager> manager_;
};

// Streams "data: <n>" events in chunks, as a provider's server-sent events arrive.
void stream_events(const ReceivedRequest& request, ServerConnection& connection) {
  if (request.target == "/stall") return connection.stall();
  connection.write(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n");
  for (const char* event : {"data: 1\n\n", "data: 2\n\n", "data: [DONE]\n\n", ""})
    connection.write_chunk(event);
}

TEST_F(PluginHttpTest, APluginStreamsAnHttpsAnswerThroughHostServicesAlone) {
  testing::LoopbackHttpServer server(stream_events, &pki_);
  ASSERT_TRUE(manager_->start().ok());
  struct Sink final : sdk::CompletionObserver {
    bool on_delta(std::string_view text) override {
      deltas.emplace_back(text);
      return true;
    }
    std::vector<std::string> deltas;
  } sink;
  auto completion = complete("streamed", server.url("/v1/chat", "localhost"), &sink);
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
  EXPECT_FALSE(sink.deltas.empty());
  const auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].method, "POST");
  EXPECT_EQ(received[0].header("authorization"), "Bearer sk-plugin-key");
  EXPECT_EQ(received[0].body, "hi");
  EXPECT_EQ(registry_
                .counter("samokoder_http_client_requests_total", "",
                         {{"plugin", std::string(kPluginId)},
                          {"host", "localhost:" + std::to_string(server.port())},
                          {"class", "2xx"}})
                .value(),
            1);
}

TEST_F(PluginHttpTest, TheCallersTokenEndsACompletionWaitingOnASilentProvider) {
  testing::LoopbackHttpServer server(stream_events, &pki_);
  ASSERT_TRUE(manager_->start().ok());
  sdk::CancelSource run;
  std::thread canceller([&] {
    testing::wait_until([&] { return server.requests() == 1; }, 10s);
    run.request_stop();  // the user cancels the run while the model has not answered
  });
  auto completion = complete("streamed", server.url("/stall", "localhost"), nullptr, run.get_token());
  canceller.join();
  EXPECT_EQ(completion.status().code(), sdk::StatusCode::kCancelled) << completion.status().to_string();
  // A timeout would have ended it deadline_exceeded; the server saw its connection closed.
  EXPECT_TRUE(testing::wait_until([&] { return server.closed() == 1; }, 10s)) << "the connection stays open";
}

TEST_F(PluginHttpTest, UnloadCancelsTheCallsAPluginLeftRunningBeforeItsLibraryGoes) {
  testing::LoopbackHttpServer server(stream_events, &pki_);
  ASSERT_TRUE(manager_->start().ok());
  auto started = complete("background", server.url("/stall", "localhost"));
  ASSERT_TRUE(started.ok()) << started.status().to_string();
  ASSERT_TRUE(testing::wait_until([&] { return server.requests() == 1; }, 10s));

  // The completion is plugin code: unload returns only after it ran, and the library is unmapped.
  const auto begun = std::chrono::steady_clock::now();
  ASSERT_TRUE(manager_->unload(kPluginId).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 5s);
  EXPECT_EQ(manager_->find(kPluginId)->state, plugins::PluginState::kUnloaded);
  EXPECT_EQ(registry_
                .counter("samokoder_http_client_errors_total", "",
                         {{"plugin", std::string(kPluginId)},
                          {"host", "localhost:" + std::to_string(server.port())},
                          {"code", "cancelled"}})
                .value(),
            1);
  EXPECT_TRUE(testing::wait_until([&] { return server.closed() == 1; }, 10s)) << "the connection stays open";
}

}  // namespace
}  // namespace samokoder::outbound_http
