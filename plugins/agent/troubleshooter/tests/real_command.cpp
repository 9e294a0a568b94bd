#include "real_command.hpp"

#include <cerrno>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace samokoder::testing {
namespace {

constexpr std::size_t kTailBytes = 16 * 1024;  // as the kernel's CommandResult
constexpr const char* kPath = "/usr/local/bin:/usr/bin:/bin";

std::string resolve(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  std::string path = kPath;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto colon = path.find(':', start);
    const std::string candidate =
        path.substr(start, colon == std::string::npos ? std::string::npos : colon - start) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return program;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& text : strings)
    out.push_back(text.data());
  out.push_back(nullptr);
  return out;
}

void keep_tail(std::string& text) {
  if (text.size() > kTailBytes) text.erase(0, text.size() - kTailBytes);
}

}  // namespace

sdk::Result<sdk::CommandResult> run_for_real(const sdk::CommandRequest& request,
                                             const std::filesystem::path& directory) {
  if (request.argv.empty()) return sdk::Status::invalid_argument("a command needs argv");
  std::vector<std::string> argv =
      request.shell ? std::vector<std::string>{"/bin/sh", "-c", request.argv[0]} : request.argv;
  argv[0] = resolve(argv[0]);
  std::vector<std::string> env = {std::string("PATH=") + kPath, "HOME=" + directory.string(), "LANG=C.UTF-8"};
  for (const auto& [name, value] : request.environment)
    env.push_back(name + "=" + value);
  auto argv_pointers = pointers(argv);
  auto env_pointers = pointers(env);
  const std::string cwd = directory.string();

  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return sdk::Status::internal("pipe failed");
  if (::pipe2(err, O_CLOEXEC) != 0) return sdk::Status::internal("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) return sdk::Status::internal("fork failed");
  if (pid == 0) {
    ::setsid();
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(argv_pointers[0], argv_pointers.data(), env_pointers.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);

  sdk::CommandResult result;
  const auto timeout = request.timeout.count() > 0 ? request.timeout : std::chrono::milliseconds(120'000);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.stdout_tail, &result.stderr_tail};
  int open_streams = 2;
  while (open_streams > 0) {
    if (std::chrono::steady_clock::now() >= deadline && !result.timed_out) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
    }
    if (::poll(fds, 2, 100) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buffer[4096];
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(got));
        keep_tail(*sinks[i]);
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_streams;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::kill(-pid, SIGKILL);  // what the child left in its own group, as the kernel does
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

bool process_ended(int pid, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z') return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace samokoder::testing
