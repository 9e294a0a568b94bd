#include "direct_agent.hpp"

#include "bench_agent.hpp"

namespace samokoder::bench {

std::unique_ptr<sdk::Agent> make_direct_agent() {
  return std::make_unique<BenchAgent>();
}

}  // namespace samokoder::bench
