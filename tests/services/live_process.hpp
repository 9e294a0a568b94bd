// live_process: whether a pid names a running process, and the pids a child reported, for the
// child-process tests. A zombie counts as gone: it runs nothing, and in a container whose init does not
// reap, an orphan killed by a test stays one until the container ends.
#pragma once

#include <chrono>
#include <istream>
#include <vector>

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

// The pids a child printed (or wrote to a file), one per whitespace-separated word.
inline std::vector<int> pids_in(std::istream& in) {
  std::vector<int> pids;
  for (int pid = 0; in >> pid;)
    pids.push_back(pid);
  return pids;
}

}  // namespace samokoder::testing
