// BenchAgent: the smallest useful agent plugin, for the benchmarks. The same class is built as a
// plugin (bench_agent.cpp, loaded through the PluginManager) and compiled straight into the
// plugin-call benchmark, so "through a plugin with its lease" and "a direct virtual call" run the
// exact same method body and differ only by the boundary.
//
// Ownership: the kernel (or the benchmark) owns the instance. Thread-safety: every method may run
// concurrently; the call counter is atomic.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include <samokoder/sdk/agent.hpp>

#ifndef BENCH_AGENT_VERSION
#define BENCH_AGENT_VERSION "1.0.0"
#endif

namespace samokoder::bench {

class BenchAgent final : public sdk::Agent {
 public:
  sdk::Status init(sdk::HostServices&) override { return {}; }

  // The measured call: no I/O and no allocation, so what a benchmark sees is the call itself.
  sdk::Status self_test() override { return {}; }

  std::string_view role() const noexcept override { return "bench"; }
  bool wants(const nlohmann::json&) const override { return false; }

  // The reload benchmark's route answers with this, so every answer names the generation's version.
  sdk::Result<sdk::AgentStepResult> run_step(sdk::AgentContext&) override {
    const long calls = calls_.fetch_add(1, std::memory_order_relaxed) + 1;
    return sdk::AgentStepResult{{{"version", BENCH_AGENT_VERSION}, {"calls", calls}}, "bench"};
  }

 private:
  std::atomic<long> calls_{0};
};

}  // namespace samokoder::bench
