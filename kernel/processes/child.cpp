#include "processes/child.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace samokoder::processes {
namespace {

using Clock = std::chrono::steady_clock;

// What the child reports through the error pipe: which step failed, and its errno.
enum class Step : int { kSetup = 1, kDirectory = 2, kLimits = 3, kExec = 4 };
struct ChildError {
  int step = 0;
  int error = 0;
};

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

bool has_slash(std::string_view s) {
  return s.find('/') != std::string_view::npos;
}

bool executable_file(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

// --- between fork and exec: async-signal-safe only -----------------------------------------------

[[noreturn]] void child_fail(int error_fd, Step step) noexcept {
  const ChildError report{static_cast<int>(step), errno};
  [[maybe_unused]] const auto written = ::write(error_fd, &report, sizeof report);
  ::_exit(127);
}

void close_other_fds(int keep, int max_fd) noexcept {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, static_cast<unsigned>(keep - 1), 0U) == 0 &&
      ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U) == 0) {
    return;
  }
#endif
  for (int fd = 3; fd < max_fd; ++fd) {
    if (fd != keep) ::close(fd);
  }
}

void set_limit(int resource, std::uint64_t value, int error_fd) noexcept {
  if (value == 0) return;
  const rlimit limit{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
  if (::setrlimit(resource, &limit) != 0) child_fail(error_fd, Step::kLimits);
}

struct ChildSetup {
  const char* program;
  char* const* argv;
  char* const* envp;
  const char* directory;
  ResolvedLimits limits;
  int stdin_fd;  // -1: /dev/null
  int stdout_fd;
  int stderr_fd;
  int go_fd;
  int error_fd;
  int max_fd;
};

// The kernel's own struct sigaction (x86-64 and arm64 share this layout). glibc refuses the signals it
// reserves for its threads (32 and 33), so an ignore of those inherited from whatever started the
// server would otherwise pass on to every child; the raw system call resets them too.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  unsigned long mask;
};

void reset_to_default(int sig) noexcept {
  const KernelSigaction default_action{SIG_DFL, 0, nullptr, 0};
  ::syscall(SYS_rt_sigaction, sig, &default_action, nullptr, sizeof(default_action.mask));
}

[[noreturn]] void run_child(const ChildSetup& s) noexcept {
  int error_fd = s.error_fd;
  // A new session: its own process group (pgid == pid) and no controlling terminal.
  if (::setsid() < 0) child_fail(error_fd, Step::kSetup);
  // The server's blocked and ignored signals (SIGPIPE, the ones its signal thread waits for) must not
  // follow the child into its program.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) reset_to_default(sig);
  }
  int in = s.stdin_fd;
  if (in < 0) in = ::open("/dev/null", O_RDONLY);
  if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(s.stdout_fd, 1) < 0 || ::dup2(s.stderr_fd, 2) < 0) {
    child_fail(error_fd, Step::kSetup);
  }
  // Wait for the parent to record this child before anything of the program runs.
  char go = 0;
  ssize_t got = 0;
  do {
    got = ::read(s.go_fd, &go, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) ::_exit(127);  // the parent gave up on this child
  close_other_fds(error_fd, s.max_fd);
  if (::chdir(s.directory) != 0) child_fail(error_fd, Step::kDirectory);
  set_limit(RLIMIT_CPU, s.limits.cpu_seconds, error_fd);
  set_limit(RLIMIT_AS, s.limits.address_space_bytes, error_fd);
  set_limit(RLIMIT_NPROC, s.limits.processes, error_fd);
  set_limit(RLIMIT_FSIZE, s.limits.file_size_bytes, error_fd);
  set_limit(RLIMIT_NOFILE, s.limits.open_files, error_fd);
  ::execve(s.program, s.argv, s.envp);
  child_fail(error_fd, Step::kExec);
}

// --- parent side -----------------------------------------------------------------------------------

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings)
    out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

sdk::Status exec_failure(const Launch& launch, const ChildError& report) {
  const std::string what = std::strerror(report.error);
  switch (static_cast<Step>(report.step)) {
    case Step::kDirectory:
      return sdk::Status::not_found("working directory \"" + launch.working_directory +
                                    "\" cannot be entered: " + what);
    case Step::kLimits:
      return sdk::Status::invalid_argument("a resource limit could not be applied: " + what);
    case Step::kExec:
      if (report.error == ENOENT)
        return sdk::Status::not_found("program \"" + launch.program + "\": " + what);
      if (report.error == EACCES) {
        return sdk::Status::permission_denied("program \"" + launch.program + "\": " + what);
      }
      return sdk::Status::failed_precondition("program \"" + launch.program +
                                              "\" cannot be executed: " + what);
    case Step::kSetup:
      break;
  }
  return sdk::Status::internal("child setup failed: " + what);
}

// A stream's bounded capture plus its line splitter.
struct Stream {
  sdk::OutputStream which;
  std::string* captured;
  bool* truncated;
  std::string partial;

  void feed(std::string_view data, const Child::Options& options) {
    const std::size_t room = options.output_limit - std::min(options.output_limit, captured->size());
    captured->append(data.substr(0, room));
    if (data.size() > room) *truncated = true;
    if (!options.on_line) return;
    for (;;) {
      const auto newline = data.find('\n');
      const auto take = newline == std::string_view::npos ? data.size() : newline;
      const std::size_t space =
          options.output_limit > partial.size() ? options.output_limit - partial.size() : 0;
      if (take > space) {  // a line longer than the limit arrives in pieces
        partial.append(data.substr(0, space));
        options.on_line(which, partial);
        partial.clear();
        data.remove_prefix(space);
        continue;
      }
      if (newline == std::string_view::npos) {
        partial.append(data);
        return;
      }
      partial.append(data.substr(0, newline));
      options.on_line(which, partial);
      partial.clear();
      data.remove_prefix(newline + 1);
    }
  }
  void finish(const Child::Options& options) {
    if (options.on_line && !partial.empty()) options.on_line(which, partial);
    partial.clear();
  }
};

// Reads what is available, at most 1 MiB per call so a child that writes as fast as we read cannot keep
// the loop from its deadlines; false at end of stream or on an error (then the fd is closed).
bool drain(int& fd, Stream& stream, const Child::Options& options) {
  char buffer[65536];
  for (int reads = 0; reads < 16; ++reads) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got > 0) {
      stream.feed(std::string_view(buffer, static_cast<std::size_t>(got)), options);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    stream.finish(options);
    close_fd(fd);
    return false;
  }
  return true;
}

int poll_timeout(Clock::time_point now, Clock::time_point until) {
  if (until <= now) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
  return static_cast<int>(std::min<std::int64_t>(ms, INT_MAX));
}

}  // namespace

std::vector<std::string> stat_fields(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {};
  std::istringstream in_fields(stat.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string field; in_fields >> field;)
    fields.push_back(field);
  return fields;
}

std::uint64_t process_start_time(int pid) noexcept {
  try {
    const auto fields = stat_fields(pid);
    if (fields.size() > 22 - 3) return std::stoull(fields[22 - 3]);
  } catch (...) {
  }
  return 0;
}

sdk::Result<Launch> prepare_launch(const sdk::ProcessSpec& spec, const ResolvedLimits& limits) {
  Launch launch;
  if (spec.shell) {
    if (spec.argv.size() != 1) {
      return sdk::Status::invalid_argument("a shell spec takes exactly one argv string, found " +
                                           std::to_string(spec.argv.size()));
    }
    launch.argv = {"/bin/sh", "-c", spec.argv[0]};
  } else {
    if (spec.argv.empty() || spec.argv[0].empty()) {
      return sdk::Status::invalid_argument("argv must name a program");
    }
    launch.argv = spec.argv;
  }
  for (const auto& arg : launch.argv) {
    if (arg.find('\0') != std::string::npos) return sdk::Status::invalid_argument("argv holds a NUL byte");
  }
  std::string path_variable;
  for (const auto& [name, value] : spec.environment) {
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return sdk::Status::invalid_argument("environment name \"" + name + "\" is not valid");
    }
    if (name == "PATH") path_variable = value;
    launch.environment.push_back(name + "=" + value);
  }
  const std::string& name = launch.argv[0];
  if (has_slash(name)) {
    launch.program = name;
  } else {
    // The spec's PATH, never the server's: the child sees the programs its environment names.
    std::istringstream dirs(path_variable);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
      if (executable_file(candidate)) {
        launch.program = candidate;
        break;
      }
    }
    if (launch.program.empty()) {
      return sdk::Status::not_found("program \"" + name + "\" is not in the PATH the spec gives (" +
                                    (path_variable.empty() ? std::string("none") : path_variable) + ")");
    }
  }
  launch.working_directory = spec.working_directory.empty() ? "/" : spec.working_directory;
  launch.limits = limits;
  launch.has_stdin = spec.stdin_data.has_value();
  return launch;
}

sdk::Result<Child> spawn(const Launch& launch) {
  Child child;
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  int go_pipe[2] = {-1, -1};
  int error_pipe[2] = {-1, -1};
  int in_pair[2] = {-1, -1};
  auto close_pair = [](int(&pair)[2]) {
    close_fd(pair[0]);
    close_fd(pair[1]);
  };
  auto cleanup = [&] {
    close_pair(out_pipe);
    close_pair(err_pipe);
    close_pair(go_pipe);
    close_pair(error_pipe);
    close_pair(in_pair);
  };
  // stdin is a socket pair, so a child that stops reading fails our send() with EPIPE (MSG_NOSIGNAL)
  // rather than raising SIGPIPE in the server.
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(go_pipe, O_CLOEXEC) != 0 || ::pipe2(error_pipe, O_CLOEXEC) != 0 ||
      (launch.has_stdin && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0)) {
    const std::string what = std::strerror(errno);
    cleanup();
    return sdk::Status::resource_exhausted("cannot create the child's pipes: " + what);
  }
  child.wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (child.wake_fd_ < 0) {
    cleanup();
    return sdk::Status::resource_exhausted("cannot create an eventfd: " + std::string(std::strerror(errno)));
  }
  auto argv = c_strings(launch.argv);
  auto envp = c_strings(launch.environment);
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  const ChildSetup setup{launch.program.c_str(),
                         argv.data(),
                         envp.data(),
                         launch.working_directory.c_str(),
                         launch.limits,
                         in_pair[1],
                         out_pipe[1],
                         err_pipe[1],
                         go_pipe[0],
                         error_pipe[1],
                         static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20))};
  const pid_t pid = ::fork();
  if (pid < 0) {
    const std::string what = std::strerror(errno);
    cleanup();
    return sdk::Status::resource_exhausted("fork failed: " + what);
  }
  if (pid == 0) run_child(setup);

  child.pid_ = pid;
  child.go_fd_ = std::exchange(go_pipe[1], -1);
  child.error_fd_ = std::exchange(error_pipe[0], -1);
  child.stdout_fd_ = std::exchange(out_pipe[0], -1);
  child.stderr_fd_ = std::exchange(err_pipe[0], -1);
  child.stdin_fd_ = std::exchange(in_pair[0], -1);
  cleanup();  // the child's ends
  for (int fd : {child.stdout_fd_, child.stderr_fd_, child.stdin_fd_}) {
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
#ifdef SYS_pidfd_open
  child.pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // -1 on kernels before 5.3
#endif
  child.start_time_ = process_start_time(pid);
  return child;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      start_time_(other.start_time_),
      pidfd_(std::exchange(other.pidfd_, -1)),
      go_fd_(std::exchange(other.go_fd_, -1)),
      error_fd_(std::exchange(other.error_fd_, -1)),
      stdin_fd_(std::exchange(other.stdin_fd_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      stderr_fd_(std::exchange(other.stderr_fd_, -1)),
      wake_fd_(std::exchange(other.wake_fd_, -1)),
      stop_requested_(other.stop_requested_.load()),
      reaped_(other.reaped_) {}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    kill_group(SIGKILL);
    reap();
  }
  close_streams();
  close_fd(wake_fd_);
}

void Child::close_streams() noexcept {
  for (int* fd : {&pidfd_, &go_fd_, &error_fd_, &stdin_fd_, &stdout_fd_, &stderr_fd_})
    close_fd(*fd);
}

void Child::kill_group(int signal) const noexcept {
  // The zombie of an exited leader still holds the group id, so this never reaches a stranger.
  if (pid_ > 0 && !reaped_) ::kill(-pid_, signal);
}

int Child::reap() noexcept {
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  return status;
}

sdk::Status Child::release(const Launch& launch) {
  const char go = 1;
  ssize_t written = 0;
  do {
    written = ::write(go_fd_, &go, 1);
  } while (written < 0 && errno == EINTR);
  close_fd(go_fd_);
  ChildError report;
  ssize_t got = 0;
  do {
    got = ::read(error_fd_, &report, sizeof report);
  } while (got < 0 && errno == EINTR);
  close_fd(error_fd_);
  if (got == 0) return sdk::Status::ok_status();  // EOF: exec succeeded and closed the pipe
  kill_group(SIGKILL);
  reap();
  if (got != static_cast<ssize_t>(sizeof report)) return sdk::Status::internal("child setup failed");
  return exec_failure(launch, report);
}

void Child::request_stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
}

sdk::ProcessResult Child::supervise(const Options& options) {
  sdk::ProcessResult result;
  Stream out{sdk::OutputStream::kStdout, &result.stdout_data, &result.stdout_truncated, {}};
  Stream err{sdk::OutputStream::kStderr, &result.stderr_data, &result.stderr_truncated, {}};
  std::string_view pending_stdin = options.stdin_data;
  if (stdin_fd_ >= 0 && pending_stdin.empty()) close_fd(stdin_fd_);

  bool exited = false;
  int status = 0;
  Clock::time_point term_sent_at{};
  bool term_sent = false;
  bool kill_sent = false;
  Clock::time_point exited_at{};

  auto begin_termination = [&] {
    if (term_sent) return;
    term_sent = true;
    term_sent_at = Clock::now();
    kill_group(SIGTERM);
    if (options.kill_grace.count() == 0) {
      kill_group(SIGKILL);
      kill_sent = true;
    }
  };

  auto leader_exited = [&]() {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
    return info.si_pid == pid_;
  };

  while (!exited || stdout_fd_ >= 0 || stderr_fd_ >= 0) {
    const auto now = Clock::now();
    if (!exited) {
      if (!term_sent && now >= options.deadline) {
        result.timed_out = true;
        begin_termination();
      }
      if (!term_sent && stop_requested_.load(std::memory_order_acquire)) {
        result.cancelled = true;
        begin_termination();
      }
      if (term_sent && !kill_sent && now >= term_sent_at + options.kill_grace) {
        kill_group(SIGKILL);
        kill_sent = true;
      }
    } else if (now >= exited_at + options.kill_grace) {
      // Something outside the group (a grandchild that made its own session) still holds a pipe:
      // stop reading rather than wait on it.
      if (stdout_fd_ >= 0) out.finish(options);
      if (stderr_fd_ >= 0) err.finish(options);
      close_fd(stdout_fd_);
      close_fd(stderr_fd_);
      break;
    }

    Clock::time_point wake_at = Clock::time_point::max();
    if (!exited) {
      if (!term_sent)
        wake_at = options.deadline;
      else if (!kill_sent)
        wake_at = term_sent_at + options.kill_grace;
    } else {
      wake_at = exited_at + options.kill_grace;
    }
    int timeout = wake_at == Clock::time_point::max() ? -1 : poll_timeout(now, wake_at);
    if (!exited && pidfd_ < 0) timeout = timeout < 0 ? 20 : std::min(timeout, 20);  // no pidfd: poll waitid

    pollfd fds[5];
    nfds_t count = 0;
    auto add = [&](int fd, short events) -> pollfd* {
      if (fd < 0) return nullptr;
      fds[count] = {fd, events, 0};
      return &fds[count++];
    };
    pollfd* out_poll = add(stdout_fd_, POLLIN);
    pollfd* err_poll = add(stderr_fd_, POLLIN);
    pollfd* in_poll = add(stdin_fd_, POLLOUT);
    pollfd* exit_poll = exited ? nullptr : add(pidfd_, POLLIN);
    pollfd* wake_poll = add(wake_fd_, POLLIN);
    const int ready = ::poll(fds, count, timeout);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0 && pidfd_ >= 0) continue;

    if (out_poll != nullptr && out_poll->revents != 0) drain(stdout_fd_, out, options);
    if (err_poll != nullptr && err_poll->revents != 0) drain(stderr_fd_, err, options);
    if (in_poll != nullptr && in_poll->revents != 0) {
      const ssize_t sent =
          ::send(stdin_fd_, pending_stdin.data(), pending_stdin.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) pending_stdin.remove_prefix(static_cast<std::size_t>(sent));
      if ((sent < 0 && errno != EAGAIN && errno != EINTR) || pending_stdin.empty()) close_fd(stdin_fd_);
    }
    if (wake_poll != nullptr && wake_poll->revents != 0) {
      std::uint64_t value = 0;
      [[maybe_unused]] const auto got = ::read(wake_fd_, &value, sizeof value);
    }
    if (!exited && (exit_poll != nullptr ? exit_poll->revents != 0 : leader_exited())) {
      // The leader is a zombie now: end whatever it left in its group, then reap it.
      kill_group(SIGKILL);
      status = reap();
      exited = true;
      exited_at = Clock::now();
      close_fd(stdin_fd_);
    }
  }
  if (!exited) {  // poll itself failed: never leave the child behind
    kill_group(SIGKILL);
    status = reap();
  }
  close_streams();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.wall_time = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - options.started);
  return result;
}

}  // namespace samokoder::processes
