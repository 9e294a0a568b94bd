#include "archive_util.hpp"

#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX

namespace samokoder::testing {
namespace {

void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    throw std::runtime_error("cannot start " + argv[0]);
  }
  ProcessResult result;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0)
    result.output.append(buffer, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::map<std::string, std::string> unpack_tar_gz(std::string_view archive, const std::filesystem::path& dir) {
  const auto file = dir / "export.tar.gz";
  const auto out = dir / "out";
  std::filesystem::create_directories(dir);
  write_file(file, archive);
  std::filesystem::create_directories(out);
  const auto result = run_process({"tar", "-xzf", file.string(), "-C", out.string()});
  if (result.exit_code != 0)
    throw std::runtime_error("tar -xzf failed with " + std::to_string(result.exit_code));
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(out)) {
    const auto status = entry.symlink_status();
    if (std::filesystem::is_directory(status)) continue;
    if (!std::filesystem::is_regular_file(status)) {
      throw std::runtime_error("unpacked something that is not a regular file: " + entry.path().string());
    }
    files[std::filesystem::relative(entry.path(), out).string()] = read_file(entry.path());
  }
  return files;
}

std::vector<std::string> list_tar_gz(std::string_view archive, const std::filesystem::path& dir) {
  const auto file = dir / "listing.tar.gz";
  write_file(file, archive);
  const auto result = run_process({"tar", "--utc", "-tvzf", file.string()});
  if (result.exit_code != 0)
    throw std::runtime_error("tar -tvzf failed with " + std::to_string(result.exit_code));
  std::vector<std::string> lines;
  std::istringstream in(result.output);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

}  // namespace samokoder::testing
