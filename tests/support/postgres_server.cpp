#include "postgres_server.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace samokoder::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kDirPrefix = "samokoder-pg-";
constexpr std::string_view kOwnerFile = "owner.pid";
// Startup includes crash recovery after kill_and_restart(); on a loaded 2-core machine that can take a while.
constexpr auto kStartDeadline = std::chrono::seconds(60);
constexpr auto kStopDeadline = std::chrono::seconds(30);
constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr int kPortAttempts = 8;

fs::path temp_base() {
  const char* base = std::getenv("TMPDIR");
  return fs::path(base && *base ? base : "/tmp");
}

// A zombie counts as dead: where PID 1 does not reap (some containers) dead owners linger as zombies.
bool process_alive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  // comm is parenthesised and may contain spaces; the state follows the last ')'.
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto close = line.rfind(')');
  return close == std::string::npos || line.compare(close + 1, 3, " Z ") != 0;
}

// Directories of test processes that died without running destructors (SIGKILL, ctest timeout). Their
// postmaster died with them (PDEATHSIG); a directory whose postmaster still runs is left alone.
void remove_abandoned_directories() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(temp_base(), ec)) {
    if (entry.path().filename().string().rfind(kDirPrefix, 0) != 0) continue;
    pid_t owner = 0;
    pid_t postmaster = 0;
    if (std::ifstream in(entry.path() / kOwnerFile); !(in >> owner)) continue;
    if (std::ifstream in(entry.path() / "data" / "postmaster.pid"); in) in >> postmaster;
    if (process_alive(owner) || process_alive(postmaster)) continue;
    fs::remove_all(entry.path(), ec);
  }
}

std::uint16_t pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct RunAs {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// What the child of spawn() failed to do before exec, sent back through a close-on-exec pipe.
struct SpawnFailure {
  int step;  // index into kSpawnSteps
  int error;
};
constexpr const char* kSpawnSteps[] = {"switch to the postgres user", "open the log file", "exec"};

// fork + exec with stdout/stderr appended to `log`. The child leads its own process group and dies with
// the thread that spawned it. Everything the child needs is prepared before fork(): between fork and
// exec only async-signal-safe calls are allowed. A failure before exec throws here with its reason
// (the log may not even exist then).
pid_t spawn(const std::vector<std::string>& args, const fs::path& log, const RunAs& as) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string log_path = log.string();
  const pid_t parent = ::getpid();
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(report[0]);
    ::close(report[1]);
    throw std::system_error(error, std::generic_category(), "fork");
  }
  if (pid == 0) {
    const auto fail = [&](int step) {
      const SpawnFailure failure{step, errno};
      (void)!::write(report[1], &failure, sizeof failure);
      ::_exit(126);
    };
    ::close(report[0]);
    ::setpgid(0, 0);
    if (as.drop && (::setgroups(0, nullptr) != 0 || ::setgid(as.gid) != 0 || ::setuid(as.uid) != 0)) fail(0);
    // Set after the credential change, which clears it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) fail(1);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::execv(argv[0], argv.data());
    fail(2);
  }
  ::close(report[1]);
  SpawnFailure failure{};
  ssize_t n = 0;
  while ((n = ::read(report[0], &failure, sizeof failure)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    ::waitpid(pid, nullptr, 0);
    throw std::system_error(failure.error, std::generic_category(),
                            std::string(args[0]) + ": could not " + kSpawnSteps[failure.step] +
                                (failure.step == 1 ? " " + log_path : "") +
                                (as.drop ? " (as user postgres)" : ""));
  }
  return pid;
}

// Reaps `pid` if it exits before `deadline`; returns its wait status.
std::optional<int> wait_exit(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with status " + std::to_string(status);
}

// Throws, naming the binary and how to install it, unless every server binary is in `bin_dir`.
void require_binaries(const fs::path& bin_dir) {
  for (const char* tool : {"initdb", "postgres"}) {
    const fs::path path = bin_dir / tool;
    if (::access(path.c_str(), X_OK) != 0) {
      throw std::runtime_error("PostgreSQL 15 server binary " + path.string() +
                               " is missing (the PostgreSQL tests run a real server): install it with "
                               "`scripts/install-deps.sh test` (Debian package postgresql-15), which "
                               "`make test` runs");
    }
  }
}

std::string conninfo(std::uint16_t port, std::string_view database) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=" + std::string(database) +
         " connect_timeout=5";
}

// postmaster.pid: line 1 is the pid, line 8 the state, "ready" once the sockets are bound and it serves.
bool owns_ready_pid_file(const fs::path& data_dir, pid_t pid) {
  std::ifstream in(data_dir / "postmaster.pid");
  std::vector<std::string> lines;
  for (std::string line; lines.size() < 8 && std::getline(in, line);)
    lines.push_back(std::move(line));
  return lines.size() == 8 && lines[0] == std::to_string(pid) && lines[7].rfind("ready", 0) == 0;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // Fields after the parenthesised command: state, ppid, ...
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) children.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return children;
}

}  // namespace

PostgresServer::PostgresServer(fs::path bin_dir) : bin_dir_(std::move(bin_dir)), owner_(::getpid()) {
  require_binaries(bin_dir_);
  remove_abandoned_directories();
  std::string pattern = (temp_base() / (std::string(kDirPrefix) + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  dir_ = pattern;
  data_dir_ = dir_ / "data";
  log_path_ = dir_ / "server.log";
  std::ofstream(dir_ / kOwnerFile) << owner_ << '\n';
  try {
    if (::geteuid() == 0) {
      // PostgreSQL refuses to run as root.
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("running as root but there is no `postgres` system user");
      drop_to_postgres_ = true;
      run_uid_ = pw->pw_uid;
      run_gid_ = pw->pw_gid;
      if (::chown(dir_.c_str(), run_uid_, run_gid_) != 0) {
        throw std::system_error(errno, std::generic_category(), "chown " + dir_.string());
      }
    }
    init_cluster();
    start(/*same_port=*/false);
    create_database(kDefaultDatabase);
  } catch (...) {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw;
  }
}

PostgresServer::~PostgresServer() {
  // A forked child inherits this object; only the creator owns the server and the directory.
  if (::getpid() != owner_) return;
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

PostgresServer& PostgresServer::shared() {
  static std::mutex mutex;
  static std::unique_ptr<PostgresServer> server;
  static std::string failure;
  std::lock_guard lock(mutex);
  if (server) return *server;
  if (!failure.empty()) throw std::runtime_error(failure);
  try {
    server = std::make_unique<PostgresServer>();
  } catch (const std::exception& e) {
    failure = e.what();
    throw;
  }
  return *server;
}

std::string PostgresServer::url(std::string_view database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + std::string(database);
}

std::string PostgresServer::create_database(std::string_view name) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo(port_, "postgres").c_str()),
                                                    &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to the test server: " + std::string(PQerrorMessage(conn.get())));
  }
  std::unique_ptr<char, decltype(&PQfreemem)> quoted(PQescapeIdentifier(conn.get(), name.data(), name.size()),
                                                     &PQfreemem);
  if (!quoted)
    throw std::runtime_error("cannot quote database name: " + std::string(PQerrorMessage(conn.get())));
  const std::string sql = "CREATE DATABASE " + std::string(quoted.get());
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    throw std::runtime_error(sql + " failed: " + std::string(PQresultErrorMessage(result.get())));
  }
  return url(name);
}

void PostgresServer::kill_and_restart() {
  kill_group();
  start(/*same_port=*/true);
}

std::string PostgresServer::log_tail(std::size_t max_lines) const {
  std::ifstream in(log_path_);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > max_lines) lines.pop_front();
  }
  std::string out;
  for (const auto& line : lines)
    out += line + '\n';
  return out;
}

void PostgresServer::init_cluster() {
  // --no-sync only skips flushing the fresh cluster at initdb time; the server itself runs with fsync on.
  const pid_t pid = spawn({(bin_dir_ / "initdb").string(), "-D", data_dir_.string(), "-U", "postgres", "-A",
                           "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                          log_path_, RunAs{drop_to_postgres_, run_uid_, run_gid_});
  const auto status = wait_exit(pid, Clock::now() + kStartDeadline);
  if (!status) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw std::runtime_error("initdb did not finish in time; log:\n" + log_tail());
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw std::runtime_error("initdb " + describe_status(*status) + "; log:\n" + log_tail());
  }
}

void PostgresServer::start(bool same_port) {
  const auto deadline = Clock::now() + kStartDeadline;
  std::string failure;
  if (same_port) {
    // Backends of a killed server may still hold its shared memory for a moment; the new postmaster refuses
    // to start until they are gone, so retry until the deadline.
    while (!try_start_on(port_, failure)) {
      if (Clock::now() >= deadline) {
        throw std::runtime_error("PostgreSQL did not restart on port " + std::to_string(port_) + ": " +
                                 failure + "\nlog:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return;
  }
  // Another process may take the port between our probe and the postmaster's bind; pick another one then.
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    if (try_start_on(pick_free_port(), failure)) return;
    if (log_tail(10).find("Address already in use") == std::string::npos) break;
  }
  throw std::runtime_error("PostgreSQL did not start: " + failure + "\nlog:\n" + log_tail());
}

bool PostgresServer::try_start_on(std::uint16_t port, std::string& failure) {
  const pid_t pid =
      spawn({(bin_dir_ / "postgres").string(), "-D", data_dir_.string(), "-p", std::to_string(port), "-c",
             "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_.string(), "-c", "fsync=on",
             "-c", "synchronous_commit=on", "-c", "full_page_writes=on", "-c", "shared_buffers=32MB", "-c",
             "logging_collector=off"},
            log_path_, RunAs{drop_to_postgres_, run_uid_, run_gid_});
  const std::string info = conninfo(port, "postgres");
  const auto deadline = Clock::now() + kStartDeadline;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      failure = "postgres " + describe_status(status);
      return false;
    }
    // The pid file check makes sure the server answering is ours, not one that took the port after our
    // postmaster failed to bind it and before we noticed its exit.
    if (owns_ready_pid_file(data_dir_, pid) && PQping(info.c_str()) == PQPING_OK) {
      postmaster_ = pid;
      port_ = port;
      return true;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  failure = "postgres did not accept connections within " + std::to_string(kStartDeadline.count()) + " s";
  return false;
}

void PostgresServer::stop() noexcept {
  if (postmaster_ <= 0) return;
  // SIGQUIT is PostgreSQL's "immediate" shutdown (pg_ctl stop -m immediate): end every backend and exit
  // without the shutdown checkpoint. "fast" would fsync the whole cluster first (seconds on this
  // machine, per test program) only for the directory to be deleted right after.
  ::kill(postmaster_, SIGQUIT);
  if (wait_exit(postmaster_, Clock::now() + kStopDeadline)) {
    postmaster_ = -1;
    return;
  }
  kill_group();
}

void PostgresServer::kill_group() noexcept {
  if (postmaster_ <= 0) return;
  // Backends call setsid(), so they are not in the postmaster's process group. Freeze the postmaster so it
  // cannot fork more, kill its children, then kill it: as close to a power cut as processes allow.
  ::kill(postmaster_, SIGSTOP);
  for (const pid_t child : children_of(postmaster_))
    ::kill(child, SIGKILL);
  ::kill(-postmaster_, SIGKILL);
  while (::waitpid(postmaster_, nullptr, 0) < 0 && errno == EINTR) {
  }
  postmaster_ = -1;
}

}  // namespace samokoder::testing
