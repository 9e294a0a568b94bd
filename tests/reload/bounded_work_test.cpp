// Bounded work: a real server whose plugin route calls a fixture agent that blocks until the test
// releases it (tests/abi/fixtures/blocking_agent.cpp). A stuck plugin call must not starve request
// work, a full plugin queue answers 503 with Retry-After, a call past its deadline answers 504 without
// costing the pool its capacity, and shutdown returns in bounded time, names the stuck call and keeps
// the plugin mapped, so the stuck thread returns safely whenever it does.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <samokoder/sdk.hpp>

#include "fixed_agent_context.hpp"
#include "http/server.hpp"
#include "http_client.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"

namespace samokoder {
namespace {

namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::HttpClient;

// Polls `condition` until it holds or `limit` passes; the shared CPU makes everything slow, so limits
// are generous and only a broken server reaches them.
template <typename F>
bool eventually(F condition, milliseconds limit = milliseconds(20000)) {
  const auto deadline = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

bool copy_mapped(const std::filesystem::path& runtime_dir) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find(runtime_dir.string()) != std::string::npos) return true;
  }
  return false;
}

class BoundedWork : public ::testing::Test {
 protected:
  void start(const config::ServerConfig& server) {
    config::PluginsConfig plugins;
    plugins.runtime_dir = dir_.path() / "run";
    plugins.drain_timeout_ms = 10000;
    config::PluginEntry blocking;
    blocking.id = "agent.fixture_blocking";
    blocking.file = SAMOKODER_FIXTURE_DIR "/fixture_blocking.so";
    blocking.required = true;
    blocking.config = {{"dir", dir_.path().string()}};
    plugins.plugins = {blocking};
    manager_ = std::make_unique<plugins::PluginManager>(plugins, registry_, clock_);
    ASSERT_TRUE(manager_->start().ok());

    auto router = std::make_shared<http::Router>();
    router->add(
        bhttp::verb::get, "/ok", [](http::Request&) { return http::Response::text(200, "ok"); },
        http::RouteOptions{});
    plugins::PluginSlot* slot = manager_->slot("agent.fixture_blocking");
    router->add(
        bhttp::verb::post, "/agent",
        [slot](http::Request&) {
          testing::FixedAgentContext context;
          auto step = slot->acquire().call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); });
          if (!step.ok())
            return http::Response::problem(503, "plugin_failed", "Plugin failed", step.status().message());
          return http::Response::text(200, step->summary);
        },
        http::RouteOptions::plugin_call());
    server_ = std::make_unique<http::Server>(server, config::Environment::kDevelopment, router, registry_,
                                             http::ServerOptions{.access_log = false});
    ASSERT_TRUE(server_->start().ok());
  }

  void TearDown() override {
    release();
    if (server_) server_->stop();
  }

  static config::ServerConfig server_config() {
    config::ServerConfig server;
    server.listen = {"127.0.0.1", 0};
    server.io_threads = 1;
    // One thread each: in a single shared pool the stuck call would take the only thread.
    server.request_pool = {.threads = 1, .queue_limit = 16, .call_timeout_ms = 60000};
    server.plugin_pool = {.threads = 1, .queue_limit = 1, .call_timeout_ms = 60000};
    server.shutdown_grace_ms = 300;
    server.cors_allowed_origins = {"https://app.example"};
    return server;
  }

  std::future<testing::ClientResponse> call_agent() {
    return std::async(std::launch::async, [port = server_->port()] {
      HttpClient client("127.0.0.1", port, milliseconds(60000));
      return client.request(bhttp::verb::post, "/agent");
    });
  }
  bool entered() const { return std::filesystem::exists(dir_.path() / "entered"); }
  bool returned() const { return std::filesystem::exists(dir_.path() / "returned"); }
  void release() const { std::ofstream(dir_.path() / "release").put('1'); }
  double gauge(const char* name) { return registry_.gauge(name, "", {{"pool", "plugin"}}).value(); }
  double counter(const char* name) { return registry_.counter(name, "", {{"pool", "plugin"}}).value(); }

  testing::TempDir dir_{"samokoder-bounded"};
  core::SystemClock clock_;
  metrics::Registry registry_;
  std::unique_ptr<plugins::PluginManager> manager_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(BoundedWork, AStuckPluginCallNeitherStarvesRequestsNorHangsShutdown) {
  start(server_config());
  auto stuck = call_agent();
  ASSERT_TRUE(eventually([&] { return entered(); }));

  HttpClient client("127.0.0.1", server_->port());
  for (int i = 0; i < 5; ++i) {
    const auto response = client.get("/ok");
    EXPECT_EQ(response.status, 200U);
    EXPECT_EQ(response.body, "ok");
  }

  const auto stop_began = Clock::now();
  server_->stop();
  const auto stop_took = Clock::now() - stop_began;
  EXPECT_LT(stop_took, milliseconds(10000)) << "the grace is 300 ms";
  EXPECT_THROW(stuck.get(), std::runtime_error);  // the stuck request's connection was closed

  const auto& unfinished = server_->unfinished_calls();
  ASSERT_EQ(unfinished.size(), 1U);
  EXPECT_EQ(unfinished[0].pool, "plugin");
  EXPECT_EQ(unfinished[0].what, "POST /agent");
  EXPECT_EQ(unfinished[0].plugin, "agent.fixture_blocking");
  EXPECT_GE(unfinished[0].running, milliseconds(300));
  EXPECT_FALSE(unfinished[0].timed_out);

  // Shutdown goes on as Application::stop does: the generation in use stays PINNED, and destroying the
  // manager leaves its library mapped.
  const auto unload_began = Clock::now();
  manager_->stop(milliseconds::zero());
  EXPECT_LT(Clock::now() - unload_began, milliseconds(5000));
  EXPECT_EQ(manager_->find("agent.fixture_blocking")->state, plugins::PluginState::kPinned);
  manager_.reset();
  EXPECT_TRUE(copy_mapped(dir_.path() / "run"));

  // The stuck call finally returns into its library, its lease and the handler: nothing was freed
  // under it.
  release();
  EXPECT_TRUE(eventually([&] { return returned(); }));
  EXPECT_TRUE(copy_mapped(dir_.path() / "run"));
}

TEST_F(BoundedWork, AFullQueueAnswers503WithRetryAfterAtOnce) {
  start(server_config());
  auto first = call_agent();
  ASSERT_TRUE(eventually([&] { return entered(); }));
  auto queued = call_agent();
  ASSERT_TRUE(eventually([&] { return gauge("samokoder_work_pool_queue_depth") == 1.0; }));

  HttpClient client("127.0.0.1", server_->port(), milliseconds(10000));
  const auto refused = client.request(bhttp::verb::post, "/agent");
  EXPECT_EQ(refused.status, 503U);
  EXPECT_EQ(refused.header("Retry-After"), "1");
  EXPECT_EQ(refused.header("Content-Type"), "application/problem+json");
  EXPECT_EQ(refused.json().value("status", 0), 503);
  EXPECT_EQ(counter("samokoder_work_pool_rejected_total"), 1.0);
  // The connection stays usable, and request work is not affected.
  EXPECT_EQ(client.get("/ok").status, 200U);

  release();
  EXPECT_EQ(first.get().status, 200U);
  EXPECT_EQ(queued.get().status, 200U);
  EXPECT_EQ(gauge("samokoder_work_pool_queue_depth"), 0.0);
}

TEST_F(BoundedWork, ACallPastItsDeadlineAnswers504AndThePoolKeepsItsCapacity) {
  auto server = server_config();
  server.plugin_pool.call_timeout_ms = 300;
  start(server);

  HttpClient client("127.0.0.1", server_->port(), milliseconds(20000));
  const auto began = Clock::now();
  const auto timed_out = client.request(
      bhttp::verb::post, "/agent", "", {{"Origin", "https://app.example"}, {"X-Request-Id", "stuck-call-1"}});
  EXPECT_EQ(timed_out.status, 504U);
  EXPECT_EQ(timed_out.header("Content-Type"), "application/problem+json");
  EXPECT_EQ(timed_out.json()["type"], "https://samokoder.dev/problems/handler_timeout");
  EXPECT_EQ(timed_out.header("Connection"), "close");
  EXPECT_EQ(timed_out.header("Access-Control-Allow-Origin"), "https://app.example");  // a browser can read it
  EXPECT_EQ(timed_out.header("X-Request-Id"), "stuck-call-1");
  EXPECT_GE(Clock::now() - began, milliseconds(300));
  EXPECT_EQ(counter("samokoder_work_pool_timeouts_total"), 1.0);
  EXPECT_EQ(gauge("samokoder_work_pool_stuck_threads"), 1.0);

  // The only thread is stuck, yet a replacement serves the next call (which blocks and times out too)
  // instead of a 503.
  EXPECT_EQ(client.request(bhttp::verb::post, "/agent").status, 504U);
  EXPECT_EQ(gauge("samokoder_work_pool_stuck_threads"), 2.0);

  release();
  EXPECT_TRUE(eventually([&] { return gauge("samokoder_work_pool_stuck_threads") == 0.0; }));
  EXPECT_TRUE(eventually([&] { return gauge("samokoder_work_pool_busy_threads") == 0.0; }));
  const auto after = client.request(bhttp::verb::post, "/agent");
  EXPECT_EQ(after.status, 200U);
  EXPECT_EQ(after.body, "released");
}

}  // namespace
}  // namespace samokoder
