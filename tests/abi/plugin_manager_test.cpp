#include "plugins/plugin_manager.hpp"

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <samokoder/sdk.hpp>

#include "abi_fixtures.hpp"
#include "abi_versions.hpp"
#include "core/file_util.hpp"
#include "fixed_agent_context.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::plugins {
namespace {

using testing::fixture;
using testing::mapped_in_process;
using testing::plugin_entry;

// A wait on another thread ends in a test failure after this long, never in a hang.
constexpr auto kWaitDeadline = std::chrono::seconds(30);

class PluginManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<PluginManager> make_manager(std::vector<config::PluginEntry> entries,
                                              std::uint32_t drain_timeout_ms = 30000) {
    config::PluginsConfig config;
    config.plugin_dir = SAMOKODER_FIXTURE_DIR;
    config.runtime_dir = runtime_.path() / "run";
    config.drain_timeout_ms = drain_timeout_ms;
    config.plugins = std::move(entries);
    return std::make_unique<PluginManager>(std::move(config), registry_, clock_);
  }

  static PluginInfo info(const PluginManager& manager, std::string_view id) {
    auto found = manager.find(id);
    EXPECT_TRUE(found.has_value()) << id;
    return found.value_or(PluginInfo{});
  }

  // The failure a single fixture produces when it is the only configured plugin.
  PluginInfo load_alone(config::PluginEntry entry) {
    auto manager = make_manager({entry});
    EXPECT_TRUE(manager->start().ok());
    return info(*manager, entry.id);
  }

  testing::TempDir runtime_{"samokoder-abi"};
  metrics::Registry registry_;
  core::SystemClock clock_;
};

// The real embedded storage backend stands in as the good storage plugin.
config::PluginEntry sqlite_entry(const std::filesystem::path& dir) {
  config::PluginEntry entry;
  entry.id = "storage.sqlite";
  entry.file = SAMOKODER_PLUGIN_DIR "/storage_sqlite.so";
  entry.required = true;
  entry.config = {{"path", (dir / "samokoder.db").string()}};
  return entry;
}

TEST_F(PluginManagerTest, GoodPluginOfEachKindBecomesActiveAndAnswers) {
  auto manager =
      make_manager({sqlite_entry(runtime_.path()),
                    plugin_entry("agent.fixture_echo", "fixture_echo_v1", true, {{"greeting", "hi"}}),
                    plugin_entry("llm.fixture", "fixture_llm", true),
                    plugin_entry("auth.fixture", "fixture_auth", true, {{"secret", "s3"}}),
                    plugin_entry("preview.fixture", "fixture_preview", true)});
  ASSERT_TRUE(manager->start().ok());
  const std::pair<const char*, const char*> expected[] = {{"storage.sqlite", "storage"},
                                                          {"agent.fixture_echo", "agent"},
                                                          {"llm.fixture", "llm"},
                                                          {"auth.fixture", "auth"},
                                                          {"preview.fixture", "preview"}};
  for (const auto& [id, kind] : expected) {
    const PluginInfo plugin = info(*manager, id);
    EXPECT_EQ(plugin.state, PluginState::kActive) << id << ": " << plugin.failure_message;
    EXPECT_EQ(plugin.kind, kind);
    EXPECT_EQ(plugin.generation, 1u);
    EXPECT_EQ(plugin.sha256, core::sha256_file(plugin.file).value());
    EXPECT_TRUE(plugin.loaded_at.has_value());
  }

  testing::FixedAgentContext context;
  auto step = manager->acquire("agent.fixture_echo").call<sdk::Agent>([&](sdk::Agent& a) {
    return a.run_step(context);
  });
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["greeting"], "hi");
  EXPECT_EQ(step->next_state["version"], "1.0.0");

  auto verified = manager->acquire("auth.fixture").call<sdk::AuthProvider>([](sdk::AuthProvider& a) {
    return a.verify_secret("s3", "plain:s3");
  });
  ASSERT_TRUE(verified.ok()) << verified.status().to_string();
  EXPECT_TRUE(*verified);

  auto completion = manager->acquire("llm.fixture").call<sdk::LlmProvider>([](sdk::LlmProvider& l) {
    sdk::CompletionRequest request;
    request.model = "m";
    request.messages = {{"user", "hello"}};
    return l.complete(request, nullptr, sdk::never_cancelled());
  });
  ASSERT_TRUE(completion.ok());
  EXPECT_EQ(completion->content, "fixed answer");

  auto preview = manager->acquire("preview.fixture").call<sdk::PreviewRunner>([](sdk::PreviewRunner& p) {
    return p.status("p1");
  });
  ASSERT_TRUE(preview.ok());
  EXPECT_EQ(preview->state, sdk::PreviewState::kStopped);

  EXPECT_TRUE(
      manager->acquire("storage.sqlite").call<sdk::Storage>([](sdk::Storage& s) { return s.health(); }).ok());
  EXPECT_TRUE(
      manager->acquire("storage.sqlite").call<sdk::Storage>([](sdk::Storage& s) { return s.health(); }).ok());
  EXPECT_EQ(manager->active_ids(SAMOKODER_KIND_AUTH), std::vector<std::string>{"auth.fixture"});
}

// acquire_storage() reads a published slot instead of the plugin records: it must follow every
// activation and retirement of the storage plugin, and reach the generation that is active.
TEST_F(PluginManagerTest, StorageLeaseFollowsActivationAndRetirement) {
  auto manager =
      make_manager({sqlite_entry(runtime_.path()), plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  EXPECT_FALSE(manager->acquire_storage());  // nothing loaded yet
  ASSERT_TRUE(manager->start().ok());
  auto generation = [&]() -> std::uint64_t {
    const Lease lease = manager->acquire_storage();
    if (!lease) return 0;
    EXPECT_NE(lease.as<sdk::Storage>(), nullptr);
    return lease.generation().number();
  };
  EXPECT_EQ(generation(), 1u);
  ASSERT_TRUE(manager->reload("storage.sqlite").ok());
  EXPECT_EQ(generation(), 2u);
  // Another kind coming and going changes nothing.
  ASSERT_TRUE(manager->unload("agent.fixture_echo").ok());
  EXPECT_EQ(generation(), 2u);
  ASSERT_TRUE(manager->unload("storage.sqlite").ok());
  EXPECT_EQ(generation(), 0u);
  ASSERT_TRUE(manager->reload("storage.sqlite").ok());  // restarts the unloaded plugin
  EXPECT_EQ(generation(), 3u);
  manager->stop();
  EXPECT_EQ(generation(), 0u);
}

TEST_F(PluginManagerTest, DisablingTheOnlyStorageBackendIsRefused) {
  auto manager = make_manager({sqlite_entry(runtime_.path())});
  ASSERT_TRUE(manager->start().ok());
  const sdk::Status refused = manager->set_enabled("storage.sqlite", false);
  EXPECT_EQ(refused.code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("only active storage backend"), std::string::npos) << refused.message();
  EXPECT_EQ(info(*manager, "storage.sqlite").state, PluginState::kActive);

  config::PluginsConfig without_storage;
  without_storage.plugin_dir = SAMOKODER_FIXTURE_DIR;
  without_storage.runtime_dir = runtime_.path() / "run";
  without_storage.plugins = {plugin_entry("agent.fixture_echo", "fixture_echo_v1")};
  auto applied = manager->apply_config(without_storage);
  EXPECT_EQ(applied.status().code(), sdk::StatusCode::kFailedPrecondition);
  // Refused whole: nothing was added either.
  EXPECT_FALSE(manager->find("agent.fixture_echo").has_value());
  EXPECT_EQ(info(*manager, "storage.sqlite").state, PluginState::kActive);
}

TEST_F(PluginManagerTest, LeaseOfTheWrongKindRefusesTheCall) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  auto lease = manager->acquire("agent.fixture_echo");
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease.as<sdk::Storage>(), nullptr);
  auto result = lease.call<sdk::AuthProvider>([](sdk::AuthProvider& a) { return a.issue_secret(); });
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kUnavailable);
  EXPECT_FALSE(manager->acquire("agent.unknown"));
}

TEST_F(PluginManagerTest, PluginConfigAndMetricsReachTheHost) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  testing::FixedAgentContext context;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(manager->acquire("agent.fixture_echo")
                    .call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); })
                    .ok());
  }
  const std::string text = registry_.render();
  EXPECT_NE(text.find("samokoder_plugin_fixture_steps_total{plugin=\"agent.fixture_echo\",role=\"echo\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("samokoder_plugin_state{plugin=\"agent.fixture_echo\",state=\"ACTIVE\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("samokoder_plugin_generation{plugin=\"agent.fixture_echo\"} 1"), std::string::npos);
}

TEST_F(PluginManagerTest, ThrowFromPluginCallBecomesFailedCallAndPluginKeepsServing) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  testing::FixedAgentContext throwing(nlohmann::json{{"throw", true}});
  auto failed = manager->acquire("agent.fixture_echo").call<sdk::Agent>([&](sdk::Agent& a) {
    return a.run_step(throwing);
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), sdk::StatusCode::kInternal);
  EXPECT_NE(failed.status().message().find("agent.fixture_echo"), std::string::npos);

  testing::FixedAgentContext fine;
  EXPECT_TRUE(manager->acquire("agent.fixture_echo")
                  .call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(fine); })
                  .ok());
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kActive);
}

struct NegativeCase {
  const char* name;
  const char* id;
  const char* fixture;
  FailureReason reason;
  std::string message;  // a fragment the failure message must contain
};

void PrintTo(const NegativeCase& c, std::ostream* out) {
  *out << c.name << " (" << c.fixture << ")";
}

class NegativeFixture : public PluginManagerTest, public ::testing::WithParamInterface<NegativeCase> {};

TEST_P(NegativeFixture, EndsFailedWithItsReasonAndMessage) {
  const NegativeCase& c = GetParam();
  const PluginInfo plugin = load_alone(plugin_entry(c.id, c.fixture));
  EXPECT_EQ(plugin.state, PluginState::kFailed);
  EXPECT_EQ(reason_name(plugin.failure_reason), reason_name(c.reason));
  EXPECT_NE(plugin.failure_message.find(c.message), std::string::npos) << plugin.failure_message;
  EXPECT_NE(registry_.render().find("samokoder_plugin_load_failures_total{reason=\"" +
                                    std::string(reason_name(c.reason)) + "\"} 1"),
            std::string::npos);
  // Nothing of a rejected plugin may stay mapped.
  EXPECT_FALSE(mapped_in_process(runtime_.path() / "run"));
}

INSTANTIATE_TEST_SUITE_P(
    AbiFixtures, NegativeFixture,
    ::testing::Values(
        NegativeCase{"WrongAbiMajor", "agent.fixture_abi_major", "fixture_abi_major",
                     FailureReason::kAbiMajor, testing::next_major_refusal()},
        NegativeCase{"NewerAbiMinor", "agent.fixture_abi_minor", "fixture_abi_minor",
                     FailureReason::kAbiMinor, testing::next_minor_refusal()},
        NegativeCase{"WrongFingerprint", "agent.fixture_fingerprint", "fixture_fingerprint",
                     FailureReason::kFingerprint, "built with toolchain \"gcc7/libstdc++7/cxx11abi0\""},
        NegativeCase{"NoEntrySymbol", "agent.fixture_no_entry", "fixture_no_entry",
                     FailureReason::kNoEntrySymbol, "does not export samokoder_plugin_entry"},
        NegativeCase{"NotElf", "agent.fixture_not_elf", "not_elf", FailureReason::kNotElf, "not an ELF file"},
        NegativeCase{"MissingFile", "agent.fixture_missing", "no_such_plugin", FailureReason::kFileNotFound,
                     "plugin file does not exist"},
        NegativeCase{"InitThrows", "agent.fixture_init_throws", "fixture_init_throws",
                     FailureReason::kInitFailed, "init threw fixture: init exploded"},
        NegativeCase{"InitReturnsError", "agent.fixture_init_error", "fixture_init_error",
                     FailureReason::kInitFailed,
                     "init failed: failed_precondition: fixture: the api_key setting is missing"},
        NegativeCase{"IdMismatch", "agent.other_name", "fixture_echo_v1", FailureReason::kIdMismatch,
                     "declares id \"agent.fixture_echo\" but is configured as \"agent.other_name\""}),
    [](const ::testing::TestParamInfo<NegativeCase>& param) { return std::string(param.param.name); });

TEST_F(PluginManagerTest, DuplicateIdLeavesTheFirstActiveAndTheSecondFailed) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1"),
                               plugin_entry("agent.fixture_echo", "fixture_echo_v2")});
  ASSERT_TRUE(manager->start().ok());
  const auto plugins = manager->list();
  ASSERT_EQ(plugins.size(), 2u);
  EXPECT_EQ(plugins[0].state, PluginState::kActive);
  EXPECT_EQ(plugins[0].version, "1.0.0");
  EXPECT_EQ(plugins[1].state, PluginState::kFailed);
  EXPECT_EQ(plugins[1].failure_reason, FailureReason::kDuplicateId);
  EXPECT_NE(plugins[1].failure_message.find("configured more than once"), std::string::npos);
}

TEST_F(PluginManagerTest, OptionalFailureLeavesOthersActive) {
  auto manager = make_manager({plugin_entry("agent.fixture_abi_major", "fixture_abi_major"),
                               plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  EXPECT_EQ(info(*manager, "agent.fixture_abi_major").state, PluginState::kFailed);
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kActive);
}

TEST_F(PluginManagerTest, RequiredFailureStopsStartupWithItsReasonAndUnloadsTheRest) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1"),
                               plugin_entry("agent.fixture_init_throws", "fixture_init_throws", true)});
  const sdk::Status status = manager->start();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("required plugin agent.fixture_init_throws failed to load"),
            std::string::npos);
  EXPECT_NE(status.message().find("init threw fixture: init exploded"), std::string::npos)
      << status.message();
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kUnloaded);
}

TEST_F(PluginManagerTest, DisabledPluginIsNeverLoaded) {
  auto entry = plugin_entry("agent.fixture_echo", "fixture_echo_v1");
  entry.enabled = false;
  auto manager = make_manager({entry});
  ASSERT_TRUE(manager->start().ok());
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kDisabled);
  EXPECT_FALSE(manager->acquire("agent.fixture_echo"));
}

TEST_F(PluginManagerTest, LoadsFromPrivateCopyAndUnloadRemovesEveryTrace) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  std::filesystem::path copy;
  {
    auto lease = manager->acquire("agent.fixture_echo");
    ASSERT_TRUE(lease);
    copy = lease.generation().private_copy();
  }
  EXPECT_EQ(copy.parent_path(), std::filesystem::absolute(runtime_.path() / "run"));
  EXPECT_TRUE(mapped_in_process(copy));
  EXPECT_FALSE(mapped_in_process(fixture("fixture_echo_v1")));

  ASSERT_TRUE(manager->unload("agent.fixture_echo").ok());
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kUnloaded);
  EXPECT_FALSE(mapped_in_process(copy));
  EXPECT_FALSE(std::filesystem::exists(copy));
  EXPECT_FALSE(manager->acquire("agent.fixture_echo"));
  EXPECT_EQ(manager->unload("agent.fixture_echo").code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager->unload("agent.nope").code(), sdk::StatusCode::kNotFound);
}

TEST_F(PluginManagerTest, GnuUniqueSymbolEndsPinnedAndReported) {
  auto manager = make_manager({plugin_entry("agent.fixture_unique", "fixture_unique")});
  ASSERT_TRUE(manager->start().ok());
  PluginInfo loaded = info(*manager, "agent.fixture_unique");
  ASSERT_EQ(loaded.state, PluginState::kActive) << loaded.failure_message;
  EXPECT_FALSE(loaded.unique_symbols.empty());

  const sdk::Status status = manager->unload("agent.fixture_unique");
  EXPECT_EQ(status.code(), sdk::StatusCode::kAborted);
  EXPECT_NE(status.message().find("PINNED"), std::string::npos);
  const PluginInfo after = info(*manager, "agent.fixture_unique");
  EXPECT_EQ(after.state, PluginState::kPinned);
  EXPECT_EQ(after.pinned_generations, 1u);
  EXPECT_NE(registry_.render().find("samokoder_plugin_pinned_total 1"), std::string::npos);
}

TEST_F(PluginManagerTest, UnloadWaitsForCallsInFlight) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  auto lease = manager->acquire("agent.fixture_echo");
  ASSERT_TRUE(lease);
  std::thread unloader([&] { EXPECT_TRUE(manager->unload("agent.fixture_echo").ok()); });
  EXPECT_TRUE(testing::wait_until(
      [&] { return info(*manager, "agent.fixture_echo").state == PluginState::kDraining; }, kWaitDeadline))
      << "the unload never started draining";
  // New calls no longer reach the draining generation; the one in flight still works.
  EXPECT_FALSE(manager->acquire("agent.fixture_echo"));
  testing::FixedAgentContext context;
  EXPECT_TRUE(lease.call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); }).ok());
  lease = Lease();
  unloader.join();
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kUnloaded);
  EXPECT_TRUE(info(*manager, "agent.fixture_echo").retired.empty());
}

TEST_F(PluginManagerTest, CallThatOutlivesTheDrainDeadlinePinsTheGeneration) {
  auto manager =
      make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")}, /*drain_timeout_ms=*/20);
  ASSERT_TRUE(manager->start().ok());
  auto lease = manager->acquire("agent.fixture_echo");
  const sdk::Status status = manager->unload("agent.fixture_echo");
  EXPECT_EQ(status.code(), sdk::StatusCode::kAborted);
  const PluginInfo pinned = info(*manager, "agent.fixture_echo");
  EXPECT_EQ(pinned.state, PluginState::kPinned);
  ASSERT_EQ(pinned.retired.size(), 1u);
  EXPECT_EQ(pinned.retired[0].number, 1u);
  EXPECT_EQ(pinned.retired[0].state, PluginState::kPinned);
  // The pinned generation was not torn down under the caller: it still answers.
  testing::FixedAgentContext context;
  EXPECT_TRUE(lease.call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); }).ok());
}

TEST_F(PluginManagerTest, LeasesRacingAnUnloadNeverSeeATornDownGeneration) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      testing::FixedAgentContext context;
      while (!stop.load()) {
        auto lease = manager->acquire("agent.fixture_echo");
        if (!lease) continue;
        if (lease.call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); }).ok()) {
          served.fetch_add(1);
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  EXPECT_TRUE(testing::wait_until([&] { return served.load() >= 1000; }, kWaitDeadline))
      << "only " << served.load() << " calls served";
  EXPECT_TRUE(manager->unload("agent.fixture_echo").ok());
  stop.store(true);
  for (auto& caller : callers)
    caller.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kUnloaded);
}

TEST_F(PluginManagerTest, StartRemovesCopiesLeftByDeadProcesses) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);  // its pid now belongs to nobody
  const auto stale =
      runtime_.write("run/agent.fixture_echo.g1." + std::to_string(child) + ".00ff00ff00ff00ff.so", "x");
  const auto mine = runtime_.write("run/agent.fixture_echo.g1." + std::to_string(::getpid()) + ".0a.so", "x");
  auto manager = make_manager({});
  ASSERT_TRUE(manager->start().ok());
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(mine));
}

}  // namespace
}  // namespace samokoder::plugins

namespace samokoder::plugins {
namespace {

// Reload: the operator replaces the configured file and asks for a reload.
class ReloadTest : public PluginManagerTest {
 protected:
  void SetUp() override {
    file_ = files_.path() / "agent_echo.so";
    install("fixture_echo_v1");
    manager_ = make_manager({plugin_entry("agent.fixture_echo", "unused")});
    ASSERT_TRUE(manager_->start().ok());
  }
  void install(const std::string& fixture_name) {
    std::filesystem::copy_file(fixture(fixture_name), file_,
                               std::filesystem::copy_options::overwrite_existing);
  }
  std::unique_ptr<PluginManager> make_manager(std::vector<config::PluginEntry> entries) {
    for (auto& entry : entries)
      entry.file = file_.string();
    return PluginManagerTest::make_manager(std::move(entries));
  }
  std::size_t mapped_copies_count() const {
    std::ifstream maps("/proc/self/maps");
    std::set<std::string> copies;
    for (std::string line; std::getline(maps, line);) {
      if (line.find((runtime_.path() / "run").string()) != std::string::npos)
        copies.insert(line.substr(line.rfind(' ') + 1));
    }
    return copies.size();
  }
  std::string answering_version() {
    testing::FixedAgentContext context;
    auto step = manager_->acquire("agent.fixture_echo").call<sdk::Agent>([&](sdk::Agent& a) {
      return a.run_step(context);
    });
    return step.ok() ? step->next_state["version"].get<std::string>() : step.status().to_string();
  }

  testing::TempDir files_{"samokoder-reload"};
  std::filesystem::path file_;
  std::unique_ptr<PluginManager> manager_;
};

TEST_F(ReloadTest, UpgradeSwapsToTheNewVersionAndUnloadsTheOld) {
  ASSERT_EQ(answering_version(), "1.0.0");
  std::filesystem::path old_copy;
  {
    auto lease = manager_->acquire("agent.fixture_echo");
    old_copy = lease.generation().private_copy();
  }
  install("fixture_echo_v2");
  auto outcome = manager_->reload("agent.fixture_echo");
  ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();
  EXPECT_EQ(outcome->generation, 2u);
  EXPECT_EQ(outcome->version, "2.0.0");
  EXPECT_TRUE(outcome->previous_unmapped);
  EXPECT_EQ(answering_version(), "2.0.0");
  const PluginInfo plugin = info(*manager_, "agent.fixture_echo");
  EXPECT_EQ(plugin.state, PluginState::kActive);
  EXPECT_EQ(plugin.generation, 2u);
  EXPECT_EQ(plugin.version, "2.0.0");
  EXPECT_EQ(plugin.sha256, core::sha256_file(file_).value());
  EXPECT_FALSE(mapped_in_process(old_copy));
  const std::string metrics = registry_.render();
  EXPECT_NE(metrics.find("samokoder_plugin_reloads_total{outcome=\"swapped\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("samokoder_plugin_reload_swap_seconds_count 1"), std::string::npos);
  EXPECT_NE(metrics.find("samokoder_plugin_generation{plugin=\"agent.fixture_echo\"} 2"), std::string::npos);
}

TEST_F(ReloadTest, BrokenSuccessorLeavesTheRunningGenerationActiveAndSaysWhy) {
  const std::pair<const char*, std::string> broken[] = {
      {"fixture_echo_init_throws", "init threw fixture: this version cannot start"},
      {"fixture_echo_self_test_fails", "self_test failed: unavailable: fixture: self-test found no upstream"},
      {"fixture_abi_major", testing::next_major_refusal()},
      {"not_elf", "not an ELF file"},
  };
  for (const auto& [name, reason] : broken) {
    install(name);
    auto outcome = manager_->reload("agent.fixture_echo");
    ASSERT_FALSE(outcome.ok()) << name;
    EXPECT_NE(outcome.status().message().find(reason), std::string::npos) << outcome.status().message();
    const PluginInfo plugin = info(*manager_, "agent.fixture_echo");
    EXPECT_EQ(plugin.state, PluginState::kActive) << name;
    EXPECT_EQ(plugin.version, "1.0.0");
    EXPECT_EQ(plugin.generation, 1u);
    EXPECT_NE(plugin.failure_message.find(reason), std::string::npos) << plugin.failure_message;
    EXPECT_EQ(answering_version(), "1.0.0") << name;
  }
  install("fixture_echo_v2");
  ASSERT_TRUE(manager_->reload("agent.fixture_echo").ok());
  EXPECT_EQ(info(*manager_, "agent.fixture_echo").failure_reason, FailureReason::kNone);
}

TEST_F(ReloadTest, CallsInFlightFinishOnTheOldGenerationWhileNewCallsReachTheNew) {
  auto old_lease = manager_->acquire("agent.fixture_echo");
  install("fixture_echo_v2");
  std::thread reloader([&] { EXPECT_TRUE(manager_->reload("agent.fixture_echo").ok()); });
  // The swap happens before the drain, so v2 answers while the old lease is still held.
  EXPECT_TRUE(testing::wait_until([&] { return answering_version() == "2.0.0"; }, kWaitDeadline))
      << "v2 never answered";
  testing::FixedAgentContext context;
  auto old_step = old_lease.call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); });
  ASSERT_TRUE(old_step.ok());
  EXPECT_EQ(old_step->next_state["version"], "1.0.0");
  old_lease = Lease();
  reloader.join();
}

TEST_F(ReloadTest, RepeatedReloadsUnderConcurrentCallsFailNothingAndLeaveNoMapping) {
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::atomic<int> served{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      testing::FixedAgentContext context;
      while (!stop.load()) {
        auto result = manager_->acquire("agent.fixture_echo").call<sdk::Agent>([&](sdk::Agent& a) {
          return a.run_step(context);
        });
        (result.ok() ? served : failed).fetch_add(1);
      }
    });
  }
  for (int round = 0; round < 20; ++round) {
    install(round % 2 == 0 ? "fixture_echo_v2" : "fixture_echo_v1");
    auto outcome = manager_->reload("agent.fixture_echo");
    ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();
    EXPECT_TRUE(outcome->previous_unmapped);
  }
  stop.store(true);
  for (auto& caller : callers)
    caller.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(served.load(), 0);
  EXPECT_EQ(info(*manager_, "agent.fixture_echo").generation, 21u);
  // Only the active generation's copy is mapped.
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> copies;
  for (std::string line; std::getline(maps, line);) {
    if (line.find((runtime_.path() / "run").string()) != std::string::npos)
      copies.insert(line.substr(line.rfind(' ') + 1));
  }
  EXPECT_EQ(copies.size(), 1u);
}

TEST_F(ReloadTest, StateIsHandedToTheSuccessorOrTheReloadIsCancelled) {
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(answering_version(), "1.0.0");
  install("fixture_echo_v2");
  ASSERT_TRUE(manager_->reload("agent.fixture_echo").ok());
  testing::FixedAgentContext context;
  auto step = manager_->acquire("agent.fixture_echo").call<sdk::Agent>([&](sdk::Agent& a) {
    return a.run_step(context);
  });
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->next_state["version"], "2.0.0");
  EXPECT_EQ(step->next_state["calls"], 4) << "v2 continues v1's count";

  install("fixture_echo_import_fails");
  auto refused = manager_->reload("agent.fixture_echo");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("import_state of the new generation failed"), std::string::npos)
      << refused.status().message();
  const PluginInfo plugin = info(*manager_, "agent.fixture_echo");
  EXPECT_EQ(plugin.version, "2.0.0");
  EXPECT_EQ(plugin.state, PluginState::kActive);
  EXPECT_EQ(plugin.failure_reason, FailureReason::kStateTransferFailed);
  EXPECT_EQ(answering_version(), "2.0.0");
  EXPECT_EQ(mapped_copies_count(), 1u) << "the refused generation was unloaded";
}

TEST_F(ReloadTest, ReloadRestartsAnUnloadedPlugin) {
  ASSERT_TRUE(manager_->unload("agent.fixture_echo").ok());
  auto outcome = manager_->reload("agent.fixture_echo");
  ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();
  EXPECT_EQ(info(*manager_, "agent.fixture_echo").state, PluginState::kActive);
  EXPECT_EQ(answering_version(), "1.0.0");
  EXPECT_EQ(manager_->reload("agent.nope").status().code(), sdk::StatusCode::kNotFound);
}

}  // namespace
}  // namespace samokoder::plugins

namespace samokoder::plugins {
namespace {

TEST_F(PluginManagerTest, DisableDrainsAndEnableLoadsAgain) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  ASSERT_TRUE(manager->set_enabled("agent.fixture_echo", false).ok());
  EXPECT_EQ(info(*manager, "agent.fixture_echo").state, PluginState::kDisabled);
  EXPECT_FALSE(info(*manager, "agent.fixture_echo").enabled);
  EXPECT_FALSE(manager->acquire("agent.fixture_echo"));
  ASSERT_TRUE(manager->set_enabled("agent.fixture_echo", true).ok());
  const PluginInfo plugin = info(*manager, "agent.fixture_echo");
  EXPECT_EQ(plugin.state, PluginState::kActive);
  EXPECT_EQ(plugin.generation, 2u);
  EXPECT_TRUE(manager->acquire("agent.fixture_echo"));
  EXPECT_EQ(manager->set_enabled("agent.nope", true).code(), sdk::StatusCode::kNotFound);
}

TEST_F(PluginManagerTest, ApplyConfigAddsRemovesAndReconfigures) {
  auto manager =
      make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1", false, {{"greeting", "a"}}),
                    plugin_entry("llm.fixture", "fixture_llm")});
  ASSERT_TRUE(manager->start().ok());
  config::PluginsConfig next;
  next.plugin_dir = SAMOKODER_FIXTURE_DIR;
  next.runtime_dir = runtime_.path() / "run";
  next.plugins = {plugin_entry("agent.fixture_echo", "fixture_echo_v1", false, {{"greeting", "b"}}),
                  plugin_entry("auth.fixture", "fixture_auth")};
  testing::FixedAgentContext before;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(manager->acquire("agent.fixture_echo")
                    .call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(before); })
                    .ok());
  }
  std::vector<std::string> observed;
  auto changes =
      manager->apply_config(next, [&](const std::string& id, const sdk::Result<ReloadOutcome>& outcome) {
        observed.push_back(id + "@" + (outcome.ok() ? std::to_string(outcome->generation) : "failed"));
      });
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  // Removals first, then the new config in its order.
  EXPECT_EQ(*changes,
            (std::vector<std::string>{"disabled llm.fixture", "reloaded agent.fixture_echo (generation 2)",
                                      "added auth.fixture"}));
  // A reload started by the config goes the admin reload's way: observed, counted, state handed over.
  EXPECT_EQ(observed, (std::vector<std::string>{"agent.fixture_echo@2"}));
  EXPECT_NE(registry_.render().find("samokoder_plugin_reloads_total{outcome=\"swapped\"} 1"),
            std::string::npos)
      << registry_.render();
  EXPECT_EQ(info(*manager, "llm.fixture").state, PluginState::kDisabled);
  EXPECT_EQ(info(*manager, "auth.fixture").state, PluginState::kActive);
  EXPECT_EQ(info(*manager, "agent.fixture_echo").generation, 2u);
  testing::FixedAgentContext context;
  auto step = manager->acquire("agent.fixture_echo").call<sdk::Agent>([&](sdk::Agent& a) {
    return a.run_step(context);
  });
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->next_state["greeting"], "b");
  EXPECT_EQ(step->next_state["calls"], 4) << "the call count was not handed to the new generation";

  // The same config again changes nothing.
  auto again = manager->apply_config(next);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST_F(PluginManagerTest, ApplyConfigWithABrokenUpgradeKeepsTheRunningGeneration) {
  auto manager = make_manager({plugin_entry("agent.fixture_echo", "fixture_echo_v1")});
  ASSERT_TRUE(manager->start().ok());
  config::PluginsConfig next;
  next.plugin_dir = SAMOKODER_FIXTURE_DIR;
  next.runtime_dir = runtime_.path() / "run";
  next.plugins = {plugin_entry("agent.fixture_echo", "fixture_echo_init_throws")};
  std::vector<std::string> observed;
  auto changes =
      manager->apply_config(next, [&](const std::string& id, const sdk::Result<ReloadOutcome>& outcome) {
        observed.push_back(id + (outcome.ok() ? " swapped" : " failed: " + outcome.status().message()));
      });
  ASSERT_FALSE(changes.ok());
  // The failed reload is reported to the observer too, so it is audited like an admin's.
  ASSERT_EQ(observed.size(), 1u);
  EXPECT_TRUE(observed[0].starts_with("agent.fixture_echo failed: ")) << observed[0];
  EXPECT_NE(changes.status().message().find("init threw fixture: this version cannot start"),
            std::string::npos)
      << changes.status().message();
  const PluginInfo plugin = info(*manager, "agent.fixture_echo");
  EXPECT_EQ(plugin.state, PluginState::kActive);
  EXPECT_EQ(plugin.version, "1.0.0");
}

}  // namespace
}  // namespace samokoder::plugins
