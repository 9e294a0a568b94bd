// PostgresServer: a throwaway PostgreSQL 15 server for tests, started from Debian's binaries
// (/usr/lib/postgresql/15/bin). The constructor runs initdb in a fresh temporary directory, starts the
// postmaster on 127.0.0.1 and an ephemeral port (unix socket inside that directory, fsync on, trust
// authentication for the `postgres` superuser), waits until it accepts connections and creates the database
// `samokoder_test`. When the test runs as root, initdb and postgres run as the `postgres` system user and the
// directory is handed to that user; otherwise they run as the current user.
//
// Ownership: the object owns the server processes and the directory. The destructor stops the server
// (immediate shutdown, SIGKILL on timeout) and deletes the directory; only the process that created the
// object does this, so a forked child that exits never stops its parent's server. If the test process dies
// without running destructors, the kernel kills the postmaster (PR_SET_PDEATHSIG, tied to the thread that
// started it: start it from the main thread), and the next PostgresServer removes directories left by dead
// processes.
//
// Failures to start throw std::runtime_error carrying the tail of the server log. Missing server binaries
// are such a failure, never a reason to skip: the message names the binary and how to install it
// (`scripts/install-deps.sh test`, which `make test` runs), so a suite cannot pass without PostgreSQL.
//
// Thread-safety: none for one object; shared() is safe to call from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace samokoder::testing {

class PostgresServer {
 public:
  static constexpr std::string_view kDefaultDatabase = "samokoder_test";

  static constexpr std::string_view kDefaultBinDir = "/usr/lib/postgresql/15/bin";

  // `bin_dir` holds initdb and postgres.
  explicit PostgresServer(std::filesystem::path bin_dir = kDefaultBinDir);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // One server per test program, started on first use and stopped at exit. A failed start is remembered and
  // rethrown on every later call, so a broken environment costs one startup, not one per test.
  static PostgresServer& shared();

  // postgresql://postgres@127.0.0.1:PORT/samokoder_test (or the given database).
  std::string url() const { return url(kDefaultDatabase); }
  std::string url(std::string_view database) const;
  std::uint16_t port() const noexcept { return port_; }
  // The directory holding the cluster (data/), the socket and server.log.
  const std::filesystem::path& directory() const noexcept { return dir_; }

  // Creates an empty database and returns its URL. Throws if it exists or the server refuses.
  std::string create_database(std::string_view name);

  // Simulates a crash of the database host's processes: SIGKILL to every backend and the postmaster, then
  // starts the server again on the same port and data directory (crash recovery replays the WAL). Returns
  // once it accepts connections again.
  void kill_and_restart();

  // The last lines of server.log, for failure messages.
  std::string log_tail(std::size_t max_lines = 40) const;

 private:
  void init_cluster();
  void start(bool same_port);
  bool try_start_on(std::uint16_t port, std::string& failure);
  void stop() noexcept;
  void kill_group() noexcept;

  std::filesystem::path bin_dir_;
  std::filesystem::path dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  std::uint16_t port_ = 0;
  pid_t postmaster_ = -1;
  pid_t owner_ = -1;
  bool drop_to_postgres_ = false;
  uid_t run_uid_ = 0;
  gid_t run_gid_ = 0;
};

}  // namespace samokoder::testing
