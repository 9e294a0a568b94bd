// A BenchAgent created in this process, behind its interface only. It lives in its own translation
// unit so the benchmark that calls it never sees the concrete class and the compiler cannot
// devirtualize the call: the baseline is a real virtual call, as a call into a plugin is.
//
// Ownership: the caller owns the returned agent. Thread-safety: as BenchAgent.
#pragma once

#include <memory>

#include <samokoder/sdk/agent.hpp>

namespace samokoder::bench {

std::unique_ptr<sdk::Agent> make_direct_agent();

}  // namespace samokoder::bench
