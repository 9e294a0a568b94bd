// Test helpers for export archives: run the system `tar` on an archive and read the unpacked tree
// back, so the tests check exports the way users will open them.
//
// Thread-safety: reentrant (each call spawns its own child process). Failures throw std::runtime_error.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace samokoder::testing {

// Runs argv[0] (looked up in PATH) with `argv`, returns its exit status and stdout.
struct ProcessResult {
  int exit_code = -1;
  std::string output;
};
ProcessResult run_process(const std::vector<std::string>& argv);

// Writes `archive` to dir/export.tar.gz, unpacks it with `tar -xzf` into dir/out and returns every
// regular file under dir/out as relative path -> content. Throws if tar fails or the tree holds
// anything but regular files and directories.
std::map<std::string, std::string> unpack_tar_gz(std::string_view archive, const std::filesystem::path& dir);

// `tar --utc -tvzf` of the archive written to dir/listing.tar.gz: one line per entry.
std::vector<std::string> list_tar_gz(std::string_view archive, const std::filesystem::path& dir);

}  // namespace samokoder::testing
