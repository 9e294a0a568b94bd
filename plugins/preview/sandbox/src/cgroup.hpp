// Cgroups for sandboxed previews: where this machine lets the server make a cgroup per preview child
// (CgroupLayout, found once), and one such cgroup (PreviewCgroup) bounding the child's processes
// (pids.max) and memory, which its processes join before bubblewrap runs and which is emptied and
// removed when the child ended.
//
// Why cgroups: RLIMIT_NPROC does not bound a server running as root (the kernel exempts real uid 0,
// and a user namespace does not change the real uid), so a fork bomb in a preview would only stop at
// the machine's limits. A pids cgroup bounds it for any uid. Both cgroup v2 (unified) and v1 (the
// pids and memory hierarchies) are supported; on v2 every preview cgroup lives under one holder
// cgroup with the pids (and, when available, memory) controller enabled.
//
// Ownership: a PreviewCgroup owns its directories and removes them in destroy() (or its destructor).
// Thread-safety: detect_cgroups() is reentrant; a PreviewCgroup may be destroyed from any thread, and
// destroy() may be called concurrently and more than once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <samokoder/sdk/status.hpp>

namespace samokoder::preview_sandbox {

struct CgroupLayout {
  enum class Version { kNone, kV1, kV2 };
  Version version = Version::kNone;
  // The holder in which per-preview cgroups are made: the unified one (v2) or the pids hierarchy's (v1).
  std::filesystem::path holder;
  // v1 only: the holder in the memory hierarchy; empty when memory cannot be limited by cgroup.
  std::filesystem::path memory_holder;
  bool v2_memory = false;  // v2: the memory controller is enabled in the holder
  // Why there is no cgroup (kNone), or why memory is not limited by one; empty otherwise.
  std::string reason;

  bool limits_memory() const noexcept {
    return version == Version::kV2 ? v2_memory : version == Version::kV1 && !memory_holder.empty();
  }
};

// Finds (and prepares: holder directory, controllers enabled) where preview cgroups go. `root` is the
// cgroup_root option: the cgroup in which to make them directly; without it, a holder
// "samokoder-previews" in the server's own cgroup (from /proc/self/cgroup). Probes by making and
// removing one cgroup, so a layout that is not kNone is known to work.
CgroupLayout detect_cgroups(const std::optional<std::filesystem::path>& root);

class PreviewCgroup {
 public:
  // Makes <holder>/<name> (in both v1 hierarchies when memory is limited) with pids.max and, when the
  // layout can, the memory limit (memory_bytes 0: none). A leftover of the same name is emptied and
  // replaced. Errors: kUnavailable naming the file that could not be written.
  static sdk::Result<std::shared_ptr<PreviewCgroup>> create(const CgroupLayout& layout,
                                                            const std::string& name, std::uint64_t pids_max,
                                                            std::uint64_t memory_bytes);
  ~PreviewCgroup();
  PreviewCgroup(const PreviewCgroup&) = delete;
  PreviewCgroup& operator=(const PreviewCgroup&) = delete;

  // The cgroup.procs files a process writes its pid to, to join (one per hierarchy).
  std::vector<std::string> procs_files() const;
  // Kills every process left in the cgroup (cgroup.kill on v2 when the kernel has it, SIGKILL to each
  // pid otherwise, until none is left) and removes the directories. Waits at most a few seconds.
  void destroy() noexcept;

 private:
  PreviewCgroup(bool v2, std::vector<std::filesystem::path> dirs) : v2_(v2), dirs_(std::move(dirs)) {}

  const bool v2_;
  const std::vector<std::filesystem::path> dirs_;
  std::mutex mutex_;
  bool destroyed_ = false;
};

// Kills what is in one cgroup directory and removes it (also used for leftovers); false when it could
// not be removed in time.
bool empty_and_remove_cgroup(const std::filesystem::path& dir, bool v2) noexcept;

}  // namespace samokoder::preview_sandbox
