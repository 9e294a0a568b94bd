// A CommandRequest run for real, for the troubleshooter's tests: the agent's smoke check is a program
// (python3 -c <script>) that starts an app, talks HTTP to it and must stop it, and only a real child
// process proves that. Run as the kernel's command service runs an agent's command, minus the sandbox:
// argv directly (or /bin/sh -c for shell), a session of its own, the kernel's clean environment (PATH,
// HOME, LANG plus the request's), the timeout ending the child's whole group, and the group killed
// once the child exits.
//
// Thread-safety: call from one thread; it forks.
#pragma once

#include <filesystem>

#include <samokoder/sdk/agent.hpp>

namespace samokoder::testing {

// Runs `request` with `directory` as its working directory and HOME.
sdk::Result<sdk::CommandResult> run_for_real(const sdk::CommandRequest& request,
                                             const std::filesystem::path& directory);

// Whether process `pid` has ended (gone, or a zombie nobody reaped yet), waiting up to `wait`.
bool process_ended(int pid, std::chrono::milliseconds wait);

}  // namespace samokoder::testing
