// ChildJournal: one small file per live child under processes.state_dir, so a server that was killed
// (kill -9, OOM, power to the process lost) finds the children of its earlier run at the next start.
//
// A record holds the child's pid (also its process-group and session id), its start time from
// /proc/<pid>/stat, the plugin that started it, and the pid and start time of the server that started it:
// several servers may share one directory (nodes of a cluster on one host, tests run in parallel), and a
// sweep leaves the records of a server that still runs alone. It is written while the child is held before
// exec (Child::release), so no child program ever runs unrecorded, and removed once the group has ended.
// sweep() ends a recorded group only when it is still the same one: a live leader must have the
// recorded start time (a recycled pid is left alone); a group whose leader is gone is found by scanning
// /proc for members of that group and session, which a pid's reuse cannot produce while they live.
//
// Ownership: owns nothing but the directory's contents. Thread-safety: record() and forget() may run
// concurrently (one file per child); sweep() runs once at startup, before any child is started.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <samokoder/sdk/status.hpp>

namespace samokoder::processes {

class ChildJournal {
 public:
  // An empty directory keeps no records.
  explicit ChildJournal(std::filesystem::path directory);

  // Creates the directory (0700); called once before the first record.
  sdk::Status open();
  sdk::Status record(int pid, std::uint64_t start_time, const std::string& owner);
  void forget(int pid, std::uint64_t start_time) noexcept;

  struct SweepReport {
    std::size_t records = 0;  // records of servers that are gone
    std::size_t ended = 0;    // groups that were still alive and were killed
  };
  // Kills (SIGKILL) every group recorded by a server that is no longer running and is still alive, and
  // removes those records.
  SweepReport sweep();

 private:
  // Named by pid and start time, so a recycled pid's record never replaces a live one's.
  std::filesystem::path file_of(int pid, std::uint64_t start_time) const;

  std::filesystem::path directory_;
  const int server_pid_;
  const std::uint64_t server_start_time_;
};

}  // namespace samokoder::processes
