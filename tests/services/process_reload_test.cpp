// A plugin generation's children across a hot reload: a call waiting on a child while the plugin is
// reloaded finishes normally, the old generation's forgotten long-lived child is ended once that call
// returned, and the new generation's child lives on until the manager stops.
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <signal.h>

#include <samokoder/sdk/agent.hpp>

#include "fixed_agent_context.hpp"
#include "live_process.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"
#include "wait_until.hpp"

namespace samokoder::plugins {
namespace {

using namespace std::chrono_literals;
using testing::alive;

std::vector<int> read_pids(const std::filesystem::path& file) {
  std::ifstream in(file);
  return testing::pids_in(in);
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ProcessReloadTest, ACallWaitingOnAChildSurvivesAReloadAndLeavesNoOrphan) {
  testing::TempDir dir("samokoder-process-reload");
  metrics::Registry registry;
  core::SystemClock clock;
  config::ProcessesConfig processes_config;
  processes_config.state_dir = dir.path() / "state";
  processes_config.kill_grace_ms = 300;
  processes::ProcessService processes(processes_config, registry);

  config::PluginsConfig plugins;
  plugins.runtime_dir = dir.path() / "runtime";
  plugins.drain_timeout_ms = 20000;
  config::PluginEntry entry;
  entry.id = "agent.fixture_children";
  entry.file = SAMOKODER_FIXTURE_DIR "/fixture_children.so";
  entry.required = true;
  entry.config = {{"dir", dir.path().string()}};
  plugins.plugins = {entry};
  auto manager =
      std::make_unique<PluginManager>(plugins, registry, clock, KernelServices{.processes = &processes});
  ASSERT_TRUE(manager->start().ok());
  const auto server_pids = dir.path() / "server_pids";
  ASSERT_TRUE(testing::wait_until([&] { return read_pids(server_pids).size() == 1; }, 10s));
  const int first_server = read_pids(server_pids)[0];
  ASSERT_TRUE(alive(first_server));

  // A step of generation 1 waits on its child.
  std::optional<sdk::Result<sdk::AgentStepResult>> step;
  std::thread call([&] {
    testing::FixedAgentContext context;
    step = manager->acquire(entry.id).call<sdk::Agent>(
        [&](sdk::Agent& agent) { return agent.run_step(context); });
  });
  ASSERT_TRUE(testing::wait_until([&] { return read_pids(dir.path() / "step_pid").size() == 1; }, 10s));
  const int step_child = read_pids(dir.path() / "step_pid")[0];

  // The reload swaps generation 2 in and then drains generation 1, whose call is still inside its child.
  std::optional<sdk::Result<ReloadOutcome>> reloaded;
  std::thread reload([&] { reloaded = manager->reload(entry.id); });
  ASSERT_TRUE(testing::wait_until([&] { return read_pids(server_pids).size() == 2; }, 10s));
  const int second_server = read_pids(server_pids)[1];
  EXPECT_TRUE(alive(first_server));  // generation 1 is draining, not gone
  EXPECT_TRUE(alive(step_child));
  EXPECT_EQ(processes.running(), 3u);

  std::ofstream(dir.path() / "release").put('1');
  call.join();
  reload.join();
  ASSERT_TRUE(step.has_value() && step->ok()) << (step ? step->status().to_string() : "no result");
  EXPECT_EQ((*step)->next_state["exit_code"], 0);
  EXPECT_EQ((*step)->next_state["stdout"], "released\n");
  ASSERT_TRUE(reloaded.has_value() && reloaded->ok()) << (reloaded ? reloaded->status().to_string() : "none");
  EXPECT_EQ((*reloaded)->generation, 2u);

  // Generation 1 is gone, and so is the child it never stopped; generation 2's child serves on.
  EXPECT_FALSE(alive(first_server));
  EXPECT_FALSE(alive(step_child));
  EXPECT_TRUE(alive(second_server));
  EXPECT_EQ(processes.running(), 1u);
  // Ended before the instance was destroyed, so no callback of it could run against a gone instance.
  EXPECT_EQ(read_text(dir.path() / "destroyed"), "gone\n");

  manager->stop();
  EXPECT_FALSE(alive(second_server));
  EXPECT_EQ(read_text(dir.path() / "destroyed"), "gone\ngone\n");
  EXPECT_EQ(processes.running(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(processes_config.state_dir));
}

}  // namespace
}  // namespace samokoder::plugins
