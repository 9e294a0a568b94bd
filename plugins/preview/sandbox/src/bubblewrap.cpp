#include "bubblewrap.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup.hpp"

namespace samokoder::preview_sandbox {
namespace {

namespace fs = std::filesystem;
using preview_common::Launch;
using preview_common::Step;

// Where the project's socket directory appears inside the sandbox, and the socket socat listens on.
constexpr const char* kSandboxSocketDir = "/run/preview";
constexpr const char* kSandboxSocket = "/run/preview/http.sock";
constexpr const char* kSocketName = "http.sock";

// Runs inside the sandbox: starts the bridge from the socket to the app's port in the background, then
// becomes the app. Every value arrives as a positional parameter ($1 socat, $2 socket, $3 port, then
// the app's argv), so nothing of the child is ever parsed by a shell.
constexpr const char* kBridgeScript =
    R"("$1" "UNIX-LISTEN:$2,fork,mode=600,backlog=1024" "TCP:127.0.0.1:$3" & shift 3; exec "$@")";
// Runs outside: joins the preview's cgroup(s) ($0, $1) before it becomes bwrap, so bwrap and every
// process of the sandbox are counted from the first fork on.
constexpr const char* kJoinOneScript = R"(echo $$ > "$0" && exec "$@")";
constexpr const char* kJoinTwoScript = R"(echo $$ > "$0" && echo $$ > "$1" && shift && exec "$@")";

// Files under the read-only system directories that hold host secrets. The sandbox maps the server's
// uid to itself, so a server running as root would otherwise let the app read them (no capability is
// needed to read a file one owns).
constexpr const char* kMaskedFiles[] = {"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
                                        "/etc/sudoers"};
constexpr const char* kMaskedDirs[] = {"/etc/ssh", "/etc/ssl/private", "/etc/sudoers.d", "/etc/samokoder"};

std::string short_json(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

sdk::Status bad_option(std::string_view key, std::string_view expected, const nlohmann::json& value) {
  return sdk::Status::invalid_argument("sandbox option `" + std::string(key) + "` must be " +
                                       std::string(expected) + ", got " + short_json(value));
}

// JSON integers written as literals are signed in nlohmann::json even when positive.
bool is_non_negative_integer(const nlohmann::json& value) {
  return value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
}

bool is_clean_absolute(const std::string& path) {
  if (path.empty() || path.front() != '/') return false;
  const fs::path p(path);
  if (p.lexically_normal().string() != path) return false;
  return std::none_of(p.begin(), p.end(), [](const fs::path& part) { return part == ".."; });
}

bool is_under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         (dir == "/" || path[dir.size()] == '/'));
}

bool valid_project_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

std::string trimmed(std::string text, std::size_t max = 2000) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  if (text.size() > max) text = text.substr(0, max) + "...";
  return text;
}

class BubblewrapContainment final : public preview_common::Containment {
 public:
  BubblewrapContainment(sdk::HostServices& host, SandboxOptions options)
      : host_(host), options_(std::move(options)) {}

  sdk::Status check_machine() override;
  sdk::Result<Launch> contain(const sdk::ProcessSpec& child, std::string_view project_id, std::uint16_t port,
                              Step step) override;

 private:
  const CgroupLayout& layout() {
    std::call_once(layout_once_, [this] {
      std::optional<fs::path> root;
      if (!options_.cgroup_root.empty()) root = options_.cgroup_root;
      layout_ = detect_cgroups(root);
    });
    return layout_;
  }

  // The confinement every child gets, up to (not including) its workspace.
  std::vector<std::string> sandbox_args(bool unshare_net) const;
  // Refusal when nothing bounds the number of processes; OK otherwise.
  sdk::Status process_bound();
  bool visible(const std::string& path) const {
    return std::any_of(options_.ro_binds.begin(), options_.ro_binds.end(), [&](const std::string& bind) {
      std::error_code ec;
      return is_under(path, bind) && fs::exists(bind, ec);
    });
  }

  sdk::HostServices& host_;
  const SandboxOptions options_;
  std::once_flag layout_once_;
  CgroupLayout layout_;
  std::atomic<std::uint64_t> sequence_{0};
};

std::vector<std::string> BubblewrapContainment::sandbox_args(bool unshare_net) const {
  std::vector<std::string> args = {"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                                   "--unshare-cgroup-try"};
  if (unshare_net) args.emplace_back("--unshare-net");
  // No --new-session: it would move bwrap's namespace init out of the process group the kernel's process
  // service ends, and --die-with-parent alone lost that race now and then (the init outlived a killed
  // parent). The setsid it adds guards against TIOCSTI on a controlling terminal, and children of the
  // process service have none (they start in a session of their own with stdin from /dev/null).
  for (const char* arg : {"--die-with-parent", "--cap-drop", "ALL", "--hostname", "preview"})
    args.emplace_back(arg);
  std::vector<std::string> bound;
  for (const auto& path : options_.ro_binds) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;  // absent on this machine: nothing to show
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const fs::path target = fs::read_symlink(path, ec);
      if (ec) continue;
      args.insert(args.end(), {"--symlink", target.string(), path});
    } else {
      args.insert(args.end(), {"--ro-bind", path, path});
      bound.push_back(path);
    }
  }
  auto under_bound = [&](const std::string& path) {
    return std::any_of(bound.begin(), bound.end(),
                       [&](const std::string& dir) { return is_under(path, dir); });
  };
  for (const char* file : kMaskedFiles) {
    struct stat st {};
    if (under_bound(file) && ::lstat(file, &st) == 0 && S_ISREG(st.st_mode))
      args.insert(args.end(), {"--ro-bind", "/dev/null", file});
  }
  for (const char* dir : kMaskedDirs) {
    struct stat st {};
    if (under_bound(dir) && ::lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
      args.insert(args.end(), {"--tmpfs", dir, "--remount-ro", dir});
  }
  for (const char* arg : {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"})
    args.emplace_back(arg);
  return args;
}

sdk::Status BubblewrapContainment::process_bound() {
  const CgroupLayout& cgroups = layout();
  if (cgroups.version != CgroupLayout::Version::kNone || ::geteuid() != 0) return sdk::Status::ok_status();
  return sdk::Status::failed_precondition(
      "nothing can bound the number of processes of a preview: no writable pids cgroup (" + cgroups.reason +
      "), and the server runs as root, which RLIMIT_NPROC does not bound (not even inside a user "
      "namespace); give the server a pids cgroup it may write (cgroup v2 with the pids controller "
      "delegated, see the sandbox option cgroup_root, or cgroup v1 /sys/fs/cgroup/pids) or run it as a "
      "user other than root; the sandbox runner refuses to run previews without that bound");
}

sdk::Status BubblewrapContainment::check_machine() {
  const std::string refuses = "the sandbox runner refuses to run previews unsandboxed";
  if (::access(options_.bwrap.c_str(), X_OK) != 0)
    return sdk::Status::failed_precondition("bubblewrap is not installed at " + options_.bwrap +
                                            " (sandbox option `bwrap`): install the bubblewrap package; " +
                                            refuses + "; use preview.process explicitly if you accept that");
  if (options_.network == Network::kNone && ::access(options_.socat.c_str(), X_OK) != 0)
    return sdk::Status::failed_precondition(
        "socat is not installed at " + options_.socat +
        " (sandbox option `socat`): it bridges the proxy's Unix socket into an app without network; "
        "install the socat package, or set network \"host\"");
  if (auto bound = process_bound(); !bound.ok()) return bound;

  const std::string socket = options_.socket_dir + "/" + std::string(32, 'x') + "/" + kSocketName;
  if (options_.network == Network::kNone && socket.size() >= sizeof(sockaddr_un::sun_path))
    return sdk::Status::failed_precondition("sandbox option `socket_dir` " + options_.socket_dir +
                                            " is too long: a socket path under it would have " +
                                            std::to_string(socket.size()) + " bytes, Unix sockets allow " +
                                            std::to_string(sizeof(sockaddr_un::sun_path) - 1));

  // The namespaces the app gets, tried for real: a kernel or container that forbids any of them fails
  // here, at init, rather than on the first preview.
  sdk::ProcessSpec probe;
  probe.argv = {options_.bwrap};
  auto args = sandbox_args(options_.network == Network::kNone);
  probe.argv.insert(probe.argv.end(), args.begin(), args.end());
  probe.argv.insert(probe.argv.end(), {"--chdir", "/", "--", "true"});
  probe.working_directory = "/";
  probe.environment = {{"PATH", "/usr/bin:/bin"}};
  probe.timeout = std::chrono::seconds(20);
  auto ran = host_.processes().run(probe, sdk::never_cancelled());
  if (!ran.ok())
    return sdk::Status::failed_precondition("cannot run bubblewrap (" + options_.bwrap +
                                            "): " + ran.status().to_string() + "; " + refuses);
  if (!ran->succeeded()) {
    std::string how = ran->exit_code   ? "exited with " + std::to_string(*ran->exit_code)
                      : ran->timed_out ? std::string("timed out")
                                       : "was killed by signal " + std::to_string(ran->signal.value_or(0));
    return sdk::Status::failed_precondition(
        "bubblewrap cannot create the sandbox on this machine (`bwrap --unshare-user --unshare-pid ... "
        "true` " +
        how + ": " + trimmed(ran->stderr_data) +
        "): this machine cannot create user namespaces (or the PID, IPC, UTS or network namespaces the "
        "sandbox needs; see kernel.unprivileged_userns_clone, user.max_user_namespaces, or the container's "
        "seccomp and AppArmor profile); " +
        refuses + "; use preview.process explicitly if you accept that");
  }

  const CgroupLayout& cgroups = layout();
  if (cgroups.version == CgroupLayout::Version::kNone) {
    host_.log(sdk::LogLevel::kWarn, "preview sandbox: no pids cgroup (" + cgroups.reason +
                                        "); processes bounded by RLIMIT_NPROC of the server's user");
  } else if (options_.memory_bytes > 0 && !cgroups.limits_memory()) {
    host_.log(sdk::LogLevel::kWarn, "preview sandbox: memory is not limited by cgroup (" + cgroups.reason +
                                        "); only the children's rlimits bound it");
  }
  return sdk::Status::ok_status();
}

sdk::Result<Launch> BubblewrapContainment::contain(const sdk::ProcessSpec& child, std::string_view project_id,
                                                   std::uint16_t port, Step step) {
  if (!valid_project_id(project_id))
    return sdk::Status::invalid_argument("project id must be 1 to 64 of [a-z0-9], got \"" +
                                         std::string(project_id.substr(0, 80)) + "\"");
  if (child.argv.empty() || child.argv.front().empty())
    return sdk::Status::invalid_argument("the child's argv is empty");
  if (child.shell && child.argv.size() != 1)
    return sdk::Status::invalid_argument("a shell child's argv must hold exactly one string");
  if (step == Step::kApp && port == 0) return sdk::Status::invalid_argument("the app needs a port");

  std::error_code ec;
  if (child.working_directory.empty() || child.working_directory.front() != '/')
    return sdk::Status::invalid_argument(
        "the sandbox needs the workspace (an absolute path) as the child's "
        "working directory, got \"" +
        child.working_directory + "\"");
  const fs::path canonical = fs::canonical(child.working_directory, ec);
  if (ec || !fs::is_directory(canonical, ec))
    return sdk::Status::invalid_argument("no such workspace directory: " + child.working_directory);
  const std::string workspace = canonical.string();
  // Binding a workspace that holds a system directory would make that directory writable inside.
  for (const auto& bind : options_.ro_binds)
    if (is_under(bind, workspace))
      return sdk::Status::invalid_argument("the workspace " + workspace + " contains the system directory " +
                                           bind + "; the sandbox cannot make it writable");

  if (auto bound = process_bound(); !bound.ok()) return bound;
  const CgroupLayout& cgroups = layout();

  Launch launch;
  launch.spec = child;
  launch.spec.shell = false;
  const bool bridge = step == Step::kApp && options_.network == Network::kNone;

  std::shared_ptr<PreviewCgroup> cgroup;
  if (cgroups.version != CgroupLayout::Version::kNone) {
    const std::string name = std::string(project_id) + (step == Step::kApp ? "-app-" : "-install-") +
                             std::to_string(::getpid()) + "-" + std::to_string(sequence_.fetch_add(1));
    auto made = PreviewCgroup::create(cgroups, name, options_.pids_max, options_.memory_bytes);
    if (!made.ok()) return made.status();
    cgroup = std::move(*made);
  } else {
    // Not root (process_bound): RLIMIT_NPROC of the server's user is the bound.
    auto& processes = launch.spec.limits.processes;
    processes = std::min(processes.value_or(options_.pids_max), options_.pids_max);
  }

  fs::path socket_dir;
  dev_t socket_dev = 0;
  ino_t socket_ino = 0;
  if (bridge) {
    socket_dir = fs::path(options_.socket_dir) / std::string(project_id);
    const std::string socket = (socket_dir / kSocketName).string();
    if (socket.size() >= sizeof(sockaddr_un::sun_path))
      return sdk::Status::failed_precondition("the app's socket path " + socket +
                                              " is too long for a Unix socket");
    fs::create_directories(options_.socket_dir, ec);
    // Whatever an earlier run left (or the app put there) goes: the directory is the app's only way out.
    fs::remove_all(socket_dir, ec);
    if (::mkdir(socket_dir.c_str(), 0700) != 0)
      return sdk::Status::unavailable("cannot create the socket directory " + socket_dir.string() + ": " +
                                      std::system_category().message(errno));
    struct stat st {};
    if (::lstat(socket_dir.c_str(), &st) != 0)
      return sdk::Status::unavailable("socket directory " + socket_dir.string() + " vanished");
    socket_dev = st.st_dev;
    socket_ino = st.st_ino;
    launch.endpoint.socket_path = socket;
  } else if (step == Step::kApp) {
    launch.endpoint.port = port;
  }

  std::vector<std::string> bwrap = {options_.bwrap};
  auto args = sandbox_args(bridge);
  bwrap.insert(bwrap.end(), args.begin(), args.end());
  if (bridge && !visible(options_.socat))
    bwrap.insert(bwrap.end(), {"--ro-bind", options_.socat, options_.socat});
  bwrap.insert(bwrap.end(), {"--bind", workspace, workspace, "--chdir", workspace});
  if (bridge) bwrap.insert(bwrap.end(), {"--bind", socket_dir.string(), kSandboxSocketDir});
  bwrap.emplace_back("--");
  if (bridge)
    bwrap.insert(bwrap.end(), {"/bin/sh", "-c", kBridgeScript, "sh", options_.socat, kSandboxSocket,
                               std::to_string(port)});
  if (child.shell) {
    bwrap.insert(bwrap.end(), {"/bin/sh", "-c", child.argv.front()});
  } else {
    bwrap.insert(bwrap.end(), child.argv.begin(), child.argv.end());
  }

  if (cgroup) {
    const auto files = cgroup->procs_files();
    std::vector<std::string> argv = {"/bin/sh", "-c", files.size() == 1 ? kJoinOneScript : kJoinTwoScript};
    argv.insert(argv.end(), files.begin(), files.end());
    argv.insert(argv.end(), std::make_move_iterator(bwrap.begin()), std::make_move_iterator(bwrap.end()));
    launch.spec.argv = std::move(argv);
  } else {
    launch.spec.argv = std::move(bwrap);
  }

  launch.cleanup = [cgroup, socket_dir, socket_dev, socket_ino] {
    if (cgroup) cgroup->destroy();
    if (socket_dir.empty()) return;
    // Only the directory this launch made: a later launch of the project may have replaced it.
    struct stat st {};
    if (::lstat(socket_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == socket_dev &&
        st.st_ino == socket_ino) {
      std::error_code ignored;
      fs::remove_all(socket_dir, ignored);
    }
  };
  return launch;
}

}  // namespace

sdk::Result<SandboxOptions> parse_sandbox_options(const nlohmann::json& json) {
  if (!json.is_object())
    return sdk::Status::invalid_argument("sandbox options must be a JSON object, got " + short_json(json));
  SandboxOptions options;
  for (const auto& [key, value] : json.items()) {
    if (key == "bwrap" || key == "socat") {
      if (!value.is_string() || !is_clean_absolute(value.get<std::string>()))
        return bad_option(key, "an absolute path", value);
      (key == "bwrap" ? options.bwrap : options.socat) = value.get<std::string>();
    } else if (key == "network") {
      const std::string network = value.is_string() ? value.get<std::string>() : "";
      if (network == "none") {
        options.network = Network::kNone;
      } else if (network == "host") {
        options.network = Network::kHost;
      } else {
        return bad_option(key, "\"none\" or \"host\"", value);
      }
    } else if (key == "pids_max") {
      if (!is_non_negative_integer(value) || value.get<std::uint64_t>() == 0)
        return bad_option(key, "a positive integer", value);
      options.pids_max = value.get<std::uint64_t>();
    } else if (key == "memory_bytes") {
      if (!is_non_negative_integer(value))
        return bad_option(key, "a non-negative integer (0: no limit)", value);
      options.memory_bytes = value.get<std::uint64_t>();
    } else if (key == "ro_binds") {
      if (!value.is_array()) return bad_option(key, "an array of absolute paths", value);
      options.ro_binds.clear();
      for (const auto& item : value) {
        if (!item.is_string() || !is_clean_absolute(item.get<std::string>()) ||
            item.get<std::string>() == "/")
          return bad_option(key, "an array of absolute paths other than /", item);
        options.ro_binds.push_back(item.get<std::string>());
      }
    } else if (key == "cgroup_root") {
      if (!value.is_string() ||
          (!value.get<std::string>().empty() && !is_clean_absolute(value.get<std::string>())))
        return bad_option(key, "an absolute path", value);
      options.cgroup_root = value.get<std::string>();
    } else if (key == "socket_dir") {
      if (!value.is_string() || value.get<std::string>().empty()) return bad_option(key, "a path", value);
      options.socket_dir = value.get<std::string>();
    } else {
      return sdk::Status::invalid_argument(
          "unknown sandbox option `" + key +
          "` (known: bwrap, socat, network, pids_max, memory_bytes, ro_binds, cgroup_root, socket_dir)");
    }
  }
  std::error_code ec;
  const fs::path socket_dir = fs::absolute(options.socket_dir, ec);
  if (ec) return sdk::Status::invalid_argument("sandbox option `socket_dir`: " + ec.message());
  options.socket_dir = socket_dir.lexically_normal().string();
  while (options.socket_dir.size() > 1 && options.socket_dir.back() == '/')
    options.socket_dir.pop_back();
  return options;
}

std::unique_ptr<preview_common::Containment> make_bubblewrap_containment(sdk::HostServices& host,
                                                                         SandboxOptions options) {
  return std::make_unique<BubblewrapContainment>(host, std::move(options));
}

}  // namespace samokoder::preview_sandbox
