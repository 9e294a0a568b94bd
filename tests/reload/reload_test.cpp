// Reloading plugins while clients keep calling routes that go through them: no failed request, no
// connection error, no stale mapping, bounded memory; upgrades switch cleanly; broken successors
// leave the running generation serving; slow calls keep the old generation DRAINING, then PINNED.
#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <malloc.h>

#include <samokoder/sdk.hpp>

#include "abi_versions.hpp"
#include "fixed_agent_context.hpp"
#include "http/server.hpp"
#include "http_client.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

// GCC defines __SANITIZE_ADDRESS__; clang says it through __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define SAMOKODER_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAMOKODER_UNDER_ASAN 1
#endif
#endif

#if defined(SAMOKODER_UNDER_ASAN)
// From compiler-rt's sanitizer/allocator_interface.h, which GCC 12 does not ship.
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace samokoder {
namespace {

namespace bhttp = boost::beast::http;
using plugins::PluginInfo;
using plugins::PluginManager;
using plugins::PluginState;

// A wait on the load threads ends in a test failure after this long, never in a hang.
constexpr auto kWaitDeadline = std::chrono::seconds(60);

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(SAMOKODER_FIXTURE_DIR) / (name + ".so");
}

// Memory this process holds, in KiB. Normally the resident set after free heap went back to the kernel.
// Under AddressSanitizer the resident set mostly measures the sanitizer (shadow pages for every address a
// plugin copy was ever mapped at, the quarantine), so the live heap it tracks exactly stands in for it;
// the mapping check next to it covers libraries that stay loaded.
long held_memory_kib() {
#if defined(SAMOKODER_UNDER_ASAN)
  return static_cast<long>(__sanitizer_get_current_allocated_bytes() / 1024);
#else
  malloc_trim(0);
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
#endif
}

// Distinct private plugin copies mapped in this process.
std::set<std::string> mapped_copies(const std::filesystem::path& runtime_dir) {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> copies;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(runtime_dir.string()) != std::string::npos) copies.insert(line.substr(line.rfind(' ') + 1));
  }
  return copies;
}

class ReloadUnderLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    echo_file_ = dir_.path() / "agent_echo.so";
    install("fixture_echo_v1");
    config::PluginsConfig plugins;
    plugins.runtime_dir = runtime_dir();
    plugins.drain_timeout_ms = 10000;
    config::PluginEntry echo;
    echo.id = "agent.fixture_echo";
    echo.file = echo_file_.string();
    echo.required = true;
    config::PluginEntry storage;
    storage.id = "storage.sqlite";
    storage.file = SAMOKODER_PLUGIN_DIR "/storage_sqlite.so";
    storage.required = true;
    storage.config = {{"path", (dir_.path() / "samokoder.db").string()}};
    plugins.plugins = {echo, storage};
    manager_ = std::make_unique<PluginManager>(plugins, registry_, clock_);
    ASSERT_TRUE(manager_->start().ok());

    auto user = manager_->acquire("storage.sqlite").call<sdk::Storage>([](sdk::Storage& s) {
      sdk::NewUser u;
      u.email = "load@example.com";
      u.password_hash = "x";
      return s.users().create_user(u);
    });
    ASSERT_TRUE(user.ok()) << user.status().to_string();
    owner_ = user->id;

    auto router = std::make_shared<http::Router>();
    echo_slot_ = manager_->slot("agent.fixture_echo");
    storage_slot_ = manager_->slot("storage.sqlite");
    router->add(bhttp::verb::get, "/echo", [this](http::Request&) {
      testing::FixedAgentContext context;
      auto step = echo_slot_->acquire().call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); });
      if (!step.ok())
        return http::Response::problem(503, "plugin_failed", "Plugin failed", step.status().message());
      return http::Response::json(200, {{"version", step->next_state["version"]}});
    });
    router->add(bhttp::verb::post, "/projects", [this](http::Request& request) {
      auto project = storage_slot_->acquire().call<sdk::Storage>([&](sdk::Storage& s) {
        sdk::NewProject p;
        p.owner_id = owner_;
        p.name = request.body();
        return s.projects().create_project(p);
      });
      if (!project.ok())
        return http::Response::problem(503, "storage_failed", "Storage failed", project.status().message());
      return http::Response::json(201, {{"id", project->id}});
    });
    config::ServerConfig server;
    server.listen = {"127.0.0.1", 0};
    server.io_threads = 2;
    server.request_pool.threads = 4;
    server_ = std::make_unique<http::Server>(server, config::Environment::kDevelopment, router, registry_,
                                             http::ServerOptions{.access_log = false});
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  std::filesystem::path runtime_dir() const { return dir_.path() / "run"; }
  void install(const std::string& name) {
    std::filesystem::copy_file(fixture(name), echo_file_, std::filesystem::copy_options::overwrite_existing);
  }
  PluginInfo info(std::string_view id) const { return manager_->find(id).value(); }

  // Client threads calling `target` until stopped; every answer is recorded.
  struct Load {
    std::atomic<bool> stop{false};
    std::atomic<long> ok{0};
    std::atomic<long> failed{0};
    std::mutex mutex;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
  };
  void start_load(Load& load, int threads, bhttp::verb method, const std::string& target,
                  const std::function<void(const testing::ClientResponse&,
                                           std::chrono::steady_clock::time_point)>& observe = {}) {
    for (int t = 0; t < threads; ++t) {
      load.threads.emplace_back([&, method, target, observe] {
        testing::HttpClient client("127.0.0.1", server_->port());
        while (!load.stop.load()) {
          const auto sent = std::chrono::steady_clock::now();
          try {
            const auto response = client.request(method, target, method == bhttp::verb::post ? "p" : "");
            if (response.status / 100 == 2) {
              load.ok.fetch_add(1);
              if (observe) observe(response, sent);
            } else {
              load.failed.fetch_add(1);
              std::lock_guard lock(load.mutex);
              load.failures.push_back(std::to_string(response.status) + " " + response.body);
            }
          } catch (const std::exception& e) {
            load.failed.fetch_add(1);
            std::lock_guard lock(load.mutex);
            load.failures.push_back(std::string("connection error: ") + e.what());
          }
        }
      });
    }
    // Let every client get going before the first reload.
    EXPECT_TRUE(testing::wait_until([&] { return load.ok.load() >= threads * 10 || load.failed.load() != 0; },
                                    kWaitDeadline))
        << "the clients did not get going: " << load.ok.load() << " calls";
  }
  static void stop_load(Load& load) {
    load.stop.store(true);
    for (auto& thread : load.threads)
      thread.join();
  }
  static std::string first_failures(Load& load) {
    std::string out;
    for (std::size_t i = 0; i < load.failures.size() && i < 5; ++i)
      out += load.failures[i] + "\n";
    return out;
  }

  testing::TempDir dir_{"samokoder-reload"};
  std::filesystem::path echo_file_;
  metrics::Registry registry_;
  core::SystemClock clock_;
  std::unique_ptr<PluginManager> manager_;
  std::unique_ptr<http::Server> server_;
  plugins::PluginSlot* echo_slot_ = nullptr;
  plugins::PluginSlot* storage_slot_ = nullptr;
  std::string owner_;
};

TEST_F(ReloadUnderLoad, HundredReloadsWithEightClientsFailNothingAndLeakNoMapping) {
  Load load;
  start_load(load, 8, bhttp::verb::get, "/echo");
  long held_after_warmup = 0;
  for (int round = 1; round <= 100; ++round) {
    install(round % 2 == 0 ? "fixture_echo_v1" : "fixture_echo_v2");
    auto outcome = manager_->reload("agent.fixture_echo");
    ASSERT_TRUE(outcome.ok()) << "round " << round << ": " << outcome.status().to_string();
    ASSERT_TRUE(outcome->previous_unmapped) << "round " << round;
    if (round == 10) held_after_warmup = held_memory_kib();
  }
  const long held_at_end = held_memory_kib();
  stop_load(load);
  EXPECT_EQ(load.failed.load(), 0) << first_failures(load);
  EXPECT_GT(load.ok.load(), 100);
  EXPECT_EQ(info("agent.fixture_echo").generation, 101u);
  EXPECT_EQ(mapped_copies(runtime_dir()).size(), 2u) << "only the active echo and storage copies stay mapped";
  // Ninety reloads after warm-up: a leaked library or instance per reload would show here.
  EXPECT_LT(held_at_end - held_after_warmup, 16 * 1024)
      << "memory held grew from " << held_after_warmup << " KiB to " << held_at_end << " KiB";
}

TEST_F(ReloadUnderLoad, UpgradeAnswersFromV1OrV2AndOnlyV2AfterTheSwap) {
  std::atomic<std::chrono::steady_clock::time_point::rep> swapped_at{
      std::chrono::steady_clock::time_point::max().time_since_epoch().count()};
  std::atomic<long> unexpected{0};
  std::atomic<long> v1_after_swap{0};
  Load load;
  start_load(load, 8, bhttp::verb::get, "/echo",
             [&](const testing::ClientResponse& response, std::chrono::steady_clock::time_point sent) {
               const std::string version = response.json()["version"];
               if (version != "1.0.0" && version != "2.0.0") unexpected.fetch_add(1);
               if (version == "1.0.0" && sent.time_since_epoch().count() > swapped_at.load()) {
                 v1_after_swap.fetch_add(1);
               }
             });
  install("fixture_echo_v2");
  auto outcome = manager_->reload("agent.fixture_echo");
  ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();
  swapped_at.store(std::chrono::steady_clock::now().time_since_epoch().count());
  const long before = load.ok.load();
  EXPECT_TRUE(testing::wait_until([&] { return load.ok.load() >= before + 200; }, kWaitDeadline))
      << "calls stopped after the reload: " << load.ok.load() - before;
  stop_load(load);
  EXPECT_EQ(load.failed.load(), 0) << first_failures(load);
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(v1_after_swap.load(), 0) << "a request sent after the swap was answered by v1";
  EXPECT_EQ(info("agent.fixture_echo").version, "2.0.0");
}

TEST_F(ReloadUnderLoad, BrokenSuccessorsLeaveV1ServingAndSayWhy) {
  Load load;
  start_load(load, 8, bhttp::verb::get, "/echo");
  const std::pair<const char*, std::string> broken[] = {
      {"fixture_abi_major", testing::next_major_refusal()},
      {"fixture_echo_init_throws", "init threw fixture: this version cannot start"},
      {"fixture_echo_self_test_fails", "self_test failed"},
  };
  for (const auto& [name, reason] : broken) {
    install(name);
    auto outcome = manager_->reload("agent.fixture_echo");
    ASSERT_FALSE(outcome.ok()) << name;
    EXPECT_NE(outcome.status().message().find(reason), std::string::npos) << outcome.status().message();
    const PluginInfo plugin = info("agent.fixture_echo");
    EXPECT_EQ(plugin.state, PluginState::kActive);
    EXPECT_EQ(plugin.version, "1.0.0");
    EXPECT_NE(plugin.failure_message.find(reason), std::string::npos);
  }
  const long before = load.ok.load();
  EXPECT_TRUE(testing::wait_until([&] { return load.ok.load() >= before + 100; }, kWaitDeadline))
      << "calls stopped after the failed reloads: " << load.ok.load() - before;
  stop_load(load);
  EXPECT_EQ(load.failed.load(), 0) << first_failures(load);
}

TEST_F(ReloadUnderLoad, SlowCallKeepsTheOldGenerationDrainingThenPinned) {
  auto slow_call = echo_slot_->acquire();  // a call that has not returned yet
  install("fixture_echo_v2");
  std::thread reloader([&] { EXPECT_TRUE(manager_->reload("agent.fixture_echo").ok()); });
  auto draining = [&] {
    const auto retired = info("agent.fixture_echo").retired;
    return retired.size() == 1 && retired[0].state == PluginState::kDraining;
  };
  EXPECT_TRUE(testing::wait_until(draining, kWaitDeadline)) << "the old generation never drained";
  EXPECT_EQ(info("agent.fixture_echo").version, "2.0.0") << "new calls already reach v2";
  slow_call = plugins::Lease();  // the call returns
  reloader.join();
  EXPECT_TRUE(info("agent.fixture_echo").retired.empty());

  // Now a call that outlives the drain deadline: the old generation is kept, PINNED, never torn down
  // under the caller, and reclaimed by a later reload once the call has returned.
  config::PluginsConfig short_drain;
  short_drain.runtime_dir = runtime_dir();
  short_drain.drain_timeout_ms = 50;
  for (const auto& plugin : manager_->list()) {
    config::PluginEntry entry;
    entry.id = plugin.id;
    entry.file = plugin.file;
    entry.required = plugin.required;
    if (plugin.id == "storage.sqlite") entry.config = {{"path", (dir_.path() / "samokoder.db").string()}};
    short_drain.plugins.push_back(entry);
  }
  ASSERT_TRUE(manager_->apply_config(short_drain).ok());
  auto stuck = echo_slot_->acquire();
  install("fixture_echo_v1");
  auto outcome = manager_->reload("agent.fixture_echo");
  ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();
  EXPECT_FALSE(outcome->previous_unmapped);
  auto retired = info("agent.fixture_echo").retired;
  ASSERT_EQ(retired.size(), 1u);
  EXPECT_EQ(retired[0].state, PluginState::kPinned);
  testing::FixedAgentContext context;
  EXPECT_TRUE(stuck.call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); }).ok())
      << "the pinned generation still serves its caller";
  stuck = plugins::Lease();
  install("fixture_echo_v2");
  ASSERT_TRUE(manager_->reload("agent.fixture_echo").ok());
  EXPECT_TRUE(info("agent.fixture_echo").retired.empty());
  EXPECT_EQ(mapped_copies(runtime_dir()).size(), 2u);
}

TEST_F(ReloadUnderLoad, StorageReloadUnderWritesLosesNoWrite) {
  Load load;
  std::mutex ids_mutex;
  std::set<std::string> acknowledged;
  start_load(load, 8, bhttp::verb::post, "/projects",
             [&](const testing::ClientResponse& response, std::chrono::steady_clock::time_point) {
               std::lock_guard lock(ids_mutex);
               acknowledged.insert(response.json()["id"].get<std::string>());
             });
  for (int round = 0; round < 20; ++round) {
    auto outcome = manager_->reload("storage.sqlite");
    ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();
  }
  stop_load(load);
  EXPECT_EQ(load.failed.load(), 0) << first_failures(load);
  EXPECT_EQ(info("storage.sqlite").generation, 21u);
  // Every acknowledged write is in the database, exactly once.
  std::set<std::string> stored;
  std::string cursor;
  do {
    auto page = storage_slot_->acquire().call<sdk::Storage>([&](sdk::Storage& s) {
      return s.projects().list_projects(owner_, sdk::PageRequest{500, cursor});
    });
    ASSERT_TRUE(page.ok()) << page.status().to_string();
    for (const auto& project : page->items)
      EXPECT_TRUE(stored.insert(project.id).second) << "duplicate " << project.id;
    cursor = page->next_cursor;
  } while (!cursor.empty());
  EXPECT_EQ(stored, acknowledged);
}

}  // namespace
}  // namespace samokoder
