// live_process: whether a pid names a running process, for the child-process tests. A zombie counts as
// gone: it runs nothing, and in a container whose init does not reap, an orphan killed by a test stays
// one until the container ends.
#pragma once

#include <chrono>

#include "processes/child.hpp"
#include "wait_until.hpp"

namespace samokoder::testing {

inline bool alive(int pid) {
  const auto fields = processes::stat_fields(pid);
  return !fields.empty() && fields[0] != "Z";
}

inline bool gone_soon(int pid) {
  return wait_until([&] { return !alive(pid); }, std::chrono::seconds(5));
}

}  // namespace samokoder::testing
