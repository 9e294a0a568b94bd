// The bench agent as a loadable plugin (see bench_agent.hpp). Built twice, as 1.0.0 and 2.0.0, so
// the reload benchmark can alternate versions and see which one answered.
#include "bench_agent.hpp"

SAMOKODER_PLUGIN(samokoder::bench::BenchAgent, "agent.bench", BENCH_AGENT_VERSION,
                 "Benchmark agent: trivial calls for measuring the plugin boundary")
