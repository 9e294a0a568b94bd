// The bubblewrap Containment of the sandbox preview runner: every child of a preview (the dependency
// install and the app) runs under bwrap in its own user, PID, IPC, UTS and cgroup namespaces, sees
// only read-only system directories, a private /tmp and its workspace, has no capabilities, is bounded
// in processes (and memory) by a cgroup of its own, and, for the app with network "none", has no
// network: the kernel's proxy reaches it through a Unix socket bridged into the sandbox by socat.
// README.md next to this folder says what this gives and does not give.
//
// Ownership: the runner owns the Containment; it borrows the HostServices, which outlives it. A
// Launch's cleanup holds what it removes (cgroup, socket directory) and may outlive the Containment.
// Thread-safety: check_machine() and contain() may be called concurrently, for different projects too.
// Exceptions: none escape; failures are Status.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/preview_common/containment.hpp>
#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::preview_sandbox {

enum class Network : std::uint32_t {
  kNone = 0,  // the app gets a network namespace of its own (loopback only); install keeps the host's
  kHost = 1,  // every step shares the host's network; the app answers on 127.0.0.1:port
};

struct SandboxOptions {
  std::string bwrap = "/usr/bin/bwrap";
  std::string socat = "/usr/bin/socat";  // the bridge into an app without network
  Network network = Network::kNone;
  // Most processes (and threads) one child may have at once, the bwrap, sh and socat around it included.
  std::uint64_t pids_max = 512;
  // Memory of one child, through the cgroup memory controller when there is one (0: no limit);
  // without one, the child's own rlimits are all there is.
  std::uint64_t memory_bytes = 2ULL * 1024 * 1024 * 1024;
  // Host directories visible read-only at the same path; those that do not exist are skipped, and a
  // symlink (as /bin on merged-/usr systems) is recreated as the same symlink.
  std::vector<std::string> ro_binds = {"/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc"};
  // The cgroup in which per-preview cgroups are made; empty: found from /proc/self/cgroup.
  std::string cgroup_root;
  // Where the app's sockets live, one directory per project; absolute once parsed.
  std::string socket_dir = "var/run/previews";
};

// Reads the options from a JSON object (the runner's "sandbox" config); absent keys keep their
// defaults, and a relative socket_dir is made absolute against the current working directory. An
// unknown key, a wrong type or a bad value is kInvalidArgument naming the key.
sdk::Result<SandboxOptions> parse_sandbox_options(const nlohmann::json& json);

std::unique_ptr<preview_common::Containment> make_bubblewrap_containment(sdk::HostServices& host,
                                                                         SandboxOptions options);

}  // namespace samokoder::preview_sandbox
