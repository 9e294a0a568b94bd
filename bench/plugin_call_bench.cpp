// The cost of calling into a plugin (docs/architecture.md "The plugin boundary"): every call takes a lease on
// the plugin's active generation, calls through the SDK interface inside Lease::call's exception guard, and
// releases the lease. Measured against a direct virtual call to the same method body of the same class
// compiled into this program (bench/plugin/bench_agent.hpp), so the difference is the boundary alone.
//
//   BM_DirectVirtualCall           the baseline: a virtual call the compiler cannot devirtualize
//   BM_VirtualCallIntoPlugin       the same call on the plugin's instance, with no lease (the DSO hop)
//   BM_LeaseAcquireRelease         taking and dropping a lease, no call
//   BM_PluginCallThroughSlot       the kernel's hot path: cached PluginSlot*, acquire, call, release
//   BM_PluginCallThroughManager    the same, looking the slot up by id first
// The two-thread variants show what sharing the generation's lease counter costs.
//
//   build-bench/bin/plugin_call_bench --benchmark_repetitions=5
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include <benchmark/benchmark.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugin/direct_agent.hpp"
#include "plugins/plugin_manager.hpp"

namespace {

using samokoder::sdk::Agent;
using samokoder::sdk::Status;

constexpr const char* kPluginId = "agent.bench";

// The bench agent loaded through a real PluginManager, once per process (benchmarks with several
// threads share it, as the kernel's request threads do).
class LoadedAgent {
 public:
  static LoadedAgent& instance() {
    static LoadedAgent loaded;
    return loaded;
  }
  ~LoadedAgent() {
    manager_->stop();
    manager_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir_, ignored);
  }

  samokoder::plugins::PluginManager& manager() { return *manager_; }
  samokoder::plugins::PluginSlot& slot() { return *slot_; }

 private:
  LoadedAgent()
      : runtime_dir_(std::filesystem::temp_directory_path() /
                     ("samokoder-plugin-bench-" + std::to_string(::getpid()))) {
    samokoder::config::PluginsConfig config;
    config.runtime_dir = runtime_dir_;
    samokoder::config::PluginEntry entry;
    entry.id = kPluginId;
    entry.file = SAMOKODER_BENCH_AGENT_PLUGIN;
    entry.required = true;
    config.plugins = {entry};
    manager_ = std::make_unique<samokoder::plugins::PluginManager>(config, registry_, clock_);
    if (const Status started = manager_->start(); !started.ok()) {
      throw std::runtime_error("cannot load " SAMOKODER_BENCH_AGENT_PLUGIN ": " + started.to_string());
    }
    slot_ = manager_->slot(kPluginId);
  }

  std::filesystem::path runtime_dir_;
  samokoder::metrics::Registry registry_;
  samokoder::core::SystemClock clock_;
  std::unique_ptr<samokoder::plugins::PluginManager> manager_;
  samokoder::plugins::PluginSlot* slot_ = nullptr;
};

void BM_DirectVirtualCall(benchmark::State& state) {
  const std::unique_ptr<Agent> agent = samokoder::bench::make_direct_agent();
  Agent* target = agent.get();
  for (auto _ : state) {
    benchmark::DoNotOptimize(target);
    Status status = target->self_test();
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_DirectVirtualCall)->Threads(1)->Threads(2);

void BM_VirtualCallIntoPlugin(benchmark::State& state) {
  const samokoder::plugins::Lease held = LoadedAgent::instance().slot().acquire();
  Agent* target = held.as<Agent>();
  for (auto _ : state) {
    benchmark::DoNotOptimize(target);
    Status status = target->self_test();
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_VirtualCallIntoPlugin);

void BM_LeaseAcquireRelease(benchmark::State& state) {
  samokoder::plugins::PluginSlot& slot = LoadedAgent::instance().slot();
  for (auto _ : state) {
    samokoder::plugins::Lease lease = slot.acquire();
    benchmark::DoNotOptimize(lease);
  }
}
BENCHMARK(BM_LeaseAcquireRelease);

void BM_PluginCallThroughSlot(benchmark::State& state) {
  samokoder::plugins::PluginSlot& slot = LoadedAgent::instance().slot();
  for (auto _ : state) {
    Status status = slot.acquire().call<Agent>([](Agent& agent) { return agent.self_test(); });
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_PluginCallThroughSlot)->Threads(1)->Threads(2);

void BM_PluginCallThroughManager(benchmark::State& state) {
  samokoder::plugins::PluginManager& manager = LoadedAgent::instance().manager();
  for (auto _ : state) {
    Status status = manager.acquire(kPluginId).call<Agent>([](Agent& agent) { return agent.self_test(); });
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_PluginCallThroughManager);

}  // namespace

BENCHMARK_MAIN();
