#include "cgroup.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace samokoder::preview_sandbox {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHolderName = "samokoder-previews";
const fs::path kCgroupMount = "/sys/fs/cgroup";

// Writes `value` with one write(2), as cgroup files expect; returns 0 or the errno.
int write_file(const fs::path& path, const std::string& value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int error = n < 0 ? errno : (static_cast<std::size_t>(n) == value.size() ? 0 : EIO);
  ::close(fd);
  return error;
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool has_word(const std::string& text, std::string_view word) {
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

std::string describe(int error) {
  return std::strerror(error);
}

// The server's own cgroup path in the hierarchy with `controller` (v1), or the unified one ("").
std::optional<std::string> own_cgroup(std::string_view controller) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controller.empty()) {
      if (line.substr(0, first) == "0" && controllers.empty()) return path;
      continue;
    }
    std::istringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');)
      if (c == controller) return path;
  }
  return std::nullopt;
}

// The server's cgroup directory under a mount: the mount plus its own path when that is visible there
// (it is not when the mount shows another cgroup namespace's root), else the mount itself.
fs::path own_dir(const fs::path& mount, const std::optional<std::string>& own) {
  if (own && *own != "/") {
    const fs::path candidate = mount / fs::path(*own).relative_path();
    std::error_code ec;
    if (fs::is_directory(candidate, ec)) return candidate;
  }
  return mount;
}

bool make_dir(const fs::path& dir, std::string* reason) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return true;
  *reason = "cannot create " + dir.string() + ": " + describe(errno);
  return false;
}

// Enables `controller` for the children of `dir` (v2); true when it is (or already was) enabled.
bool enable_controller(const fs::path& dir, std::string_view controller, std::string* reason) {
  const auto enabled = read_file(dir / "cgroup.subtree_control");
  if (enabled && has_word(*enabled, controller)) return true;
  const int error = write_file(dir / "cgroup.subtree_control", "+" + std::string(controller));
  if (error == 0) return true;
  *reason = "cannot enable the " + std::string(controller) + " controller in " +
            (dir / "cgroup.subtree_control").string() + ": " + describe(error);
  if (error == EBUSY)
    *reason +=
        " (a cgroup v2 cgroup that holds processes cannot hand controllers to children: run the "
        "server in a delegated cgroup, e.g. systemd Delegate=yes, and set cgroup_root to an empty "
        "cgroup of it)";
  return false;
}

std::string probe_name() {
  static std::atomic<std::uint64_t> counter{0};
  return "probe-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

// Makes and removes one cgroup under `holder`, writing `file` = `value` in it.
bool probe(const fs::path& holder, const char* file, const std::string& value, bool v2, std::string* reason) {
  const fs::path dir = holder / probe_name();
  if (::mkdir(dir.c_str(), 0755) != 0) {
    *reason = "cannot create a cgroup in " + holder.string() + ": " + describe(errno);
    return false;
  }
  const int error = write_file(dir / file, value);
  empty_and_remove_cgroup(dir, v2);
  if (error != 0) {
    *reason = "cannot write " + (dir / file).string() + ": " + describe(error);
    return false;
  }
  return true;
}

CgroupLayout detect_v2(const std::optional<fs::path>& root) {
  CgroupLayout layout;
  std::string reason;
  fs::path holder;
  if (root) {
    holder = *root;
  } else {
    const fs::path own = own_dir(kCgroupMount, own_cgroup(""));
    const auto available = read_file(own / "cgroup.controllers");
    if (!available || !has_word(*available, "pids")) {
      layout.reason = "the pids controller is not available in " + own.string();
      return layout;
    }
    if (!enable_controller(own, "pids", &reason)) {
      layout.reason = reason;
      return layout;
    }
    if (has_word(*available, "memory")) (void)enable_controller(own, "memory", &reason);
    holder = own / kHolderName;
    if (!make_dir(holder, &reason)) {
      layout.reason = reason;
      return layout;
    }
  }
  const auto available = read_file(holder / "cgroup.controllers");
  if (!available || !has_word(*available, "pids")) {
    layout.reason = "the pids controller is not available in " + holder.string();
    return layout;
  }
  if (!enable_controller(holder, "pids", &reason) || !probe(holder, "pids.max", "16", true, &reason)) {
    layout.reason = reason;
    return layout;
  }
  layout.version = CgroupLayout::Version::kV2;
  layout.holder = holder;
  if (has_word(*available, "memory") && enable_controller(holder, "memory", &reason) &&
      probe(holder, "memory.max", "1073741824", true, &reason)) {
    layout.v2_memory = true;
  } else {
    layout.reason = reason.empty() ? "the memory controller is not available in " + holder.string() : reason;
  }
  return layout;
}

CgroupLayout detect_v1(const std::optional<fs::path>& root) {
  CgroupLayout layout;
  std::string reason;
  const fs::path pids_mount = kCgroupMount / "pids";
  fs::path holder;
  if (root) {
    holder = *root;
  } else {
    std::error_code ec;
    if (!fs::exists(pids_mount / "cgroup.procs", ec)) {
      layout.reason = "no pids cgroup: neither cgroup v2 (" + (kCgroupMount / "cgroup.controllers").string() +
                      ") nor v1 (" + pids_mount.string() + ") is mounted";
      return layout;
    }
    holder = own_dir(pids_mount, own_cgroup("pids")) / kHolderName;
    if (!make_dir(holder, &reason)) {
      layout.reason = reason;
      return layout;
    }
  }
  if (!probe(holder, "pids.max", "16", false, &reason)) {
    layout.reason = reason;
    return layout;
  }
  layout.version = CgroupLayout::Version::kV1;
  layout.holder = holder;

  const fs::path memory_mount = kCgroupMount / "memory";
  std::error_code ec;
  if (!fs::exists(memory_mount / "cgroup.procs", ec)) {
    layout.reason = "no memory cgroup hierarchy at " + memory_mount.string();
    return layout;
  }
  const fs::path memory_holder = own_dir(memory_mount, own_cgroup("memory")) / kHolderName;
  if (make_dir(memory_holder, &reason) &&
      probe(memory_holder, "memory.limit_in_bytes", "1073741824", false, &reason)) {
    layout.memory_holder = memory_holder;
  } else {
    layout.reason = reason;
  }
  return layout;
}

}  // namespace

CgroupLayout detect_cgroups(const std::optional<std::filesystem::path>& root) {
  std::error_code ec;
  if (root) {
    if (!fs::is_directory(*root, ec)) {
      CgroupLayout layout;
      layout.reason = "cgroup_root " + root->string() + " is not a directory";
      return layout;
    }
    // A v2 cgroup lists its controllers; a v1 one does not.
    return fs::exists(*root / "cgroup.controllers", ec) ? detect_v2(root) : detect_v1(root);
  }
  return fs::exists(kCgroupMount / "cgroup.controllers", ec) ? detect_v2(root) : detect_v1(root);
}

bool empty_and_remove_cgroup(const std::filesystem::path& dir, bool v2) noexcept {
  try {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return true;
    // cgroup.kill (Linux 5.14) kills the whole cgroup at once, so a fork bomb cannot race the loop below.
    if (v2) (void)write_file(dir / "cgroup.kill", "1");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto procs = read_file(dir / "cgroup.procs");
      if (!procs) return !fs::exists(dir, ec);
      std::istringstream in(*procs);
      bool any = false;
      for (long pid = 0; in >> pid;) {
        if (pid > 0) {
          ::kill(static_cast<pid_t>(pid), SIGKILL);
          any = true;
        }
      }
      // Exited processes can keep the cgroup busy until their parent reaped them: retry the rmdir.
      if (!any && ::rmdir(dir.c_str()) == 0) return true;
      if (!any && errno == ENOENT) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return ::rmdir(dir.c_str()) == 0;
  } catch (...) {
    return false;
  }
}

sdk::Result<std::shared_ptr<PreviewCgroup>> PreviewCgroup::create(const CgroupLayout& layout,
                                                                  const std::string& name,
                                                                  std::uint64_t pids_max,
                                                                  std::uint64_t memory_bytes) {
  if (layout.version == CgroupLayout::Version::kNone)
    return sdk::Status::failed_precondition("no cgroup available: " + layout.reason);
  const bool v2 = layout.version == CgroupLayout::Version::kV2;
  std::vector<fs::path> dirs{layout.holder / name};
  const bool memory = memory_bytes > 0 && layout.limits_memory();
  if (!v2 && memory) dirs.push_back(layout.memory_holder / name);

  std::vector<fs::path> made;
  auto fail = [&](const std::string& message) -> sdk::Status {
    for (const auto& dir : made)
      empty_and_remove_cgroup(dir, v2);
    return sdk::Status::unavailable(message);
  };
  for (const auto& dir : dirs) {
    if (::mkdir(dir.c_str(), 0755) != 0) {
      // A leftover of a server that died: whatever still runs in it is not ours to keep.
      if (errno != EEXIST || !empty_and_remove_cgroup(dir, v2) || ::mkdir(dir.c_str(), 0755) != 0)
        return fail("cannot create the preview's cgroup " + dir.string() + ": " + describe(errno));
    }
    made.push_back(dir);
  }
  std::string failure;
  auto set = [&](const fs::path& file, const std::string& value) {
    const int error = write_file(file, value);
    if (error != 0 && failure.empty()) failure = "cannot write " + file.string() + ": " + describe(error);
    return error == 0;
  };
  if (!set(dirs[0] / "pids.max", std::to_string(pids_max))) return fail(failure);
  if (memory) {
    const std::string bytes = std::to_string(memory_bytes);
    if (v2) {
      if (!set(dirs[0] / "memory.max", bytes)) return fail(failure);
      // Without swap the limit ends the hog instead of paging it out; absent when swap is not accounted.
      (void)write_file(dirs[0] / "memory.swap.max", "0");
    } else {
      if (!set(dirs[1] / "memory.limit_in_bytes", bytes)) return fail(failure);
      (void)write_file(dirs[1] / "memory.memsw.limit_in_bytes", bytes);
    }
  }
  return std::shared_ptr<PreviewCgroup>(new PreviewCgroup(v2, std::move(dirs)));
}

PreviewCgroup::~PreviewCgroup() {
  destroy();
}

std::vector<std::string> PreviewCgroup::procs_files() const {
  std::vector<std::string> files;
  for (const auto& dir : dirs_)
    files.push_back((dir / "cgroup.procs").string());
  return files;
}

void PreviewCgroup::destroy() noexcept {
  std::lock_guard lock(mutex_);
  if (destroyed_) return;
  bool removed = true;
  for (const auto& dir : dirs_)
    removed = empty_and_remove_cgroup(dir, v2_) && removed;
  destroyed_ = removed;  // a later call tries again
}

}  // namespace samokoder::preview_sandbox
