// ServeProcess: `samokoder serve` as a child process, as users run it, for tests that kill it with -9 and
// start it again (runs durability, preview reconciliation). Its stdout and stderr go to files (a pipe
// nobody drains could block its logging); it dies with the test process (PR_SET_PDEATHSIG) and with the
// object (SIGKILL). Plus the small helpers such tests share.
//
// Ownership: owns the child. Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace samokoder::testing {

std::string read_text(const std::filesystem::path& path);
std::string tail(const std::string& text, std::size_t bytes = 4000);
// 48 characters of base64's alphabet from the system's random source: a strong SAMOKODER_SECRET_KEY.
std::string random_secret();
// Whether a node id ("host/pid/suffix", Housekeeping::make_node_id) is the one of process `pid`.
bool is_node_of(const std::string& node_id, pid_t pid);

// `<executable> serve --config FILE --listen 127.0.0.1:0` with `environment` added to this process's
// environment minus every SAMOKODER_*, OPENAI_* and ANTHROPIC_* variable (which would override the
// config). The constructor waits (20 s) until it listens, and fails the test when it does not.
class ServeProcess {
 public:
  ServeProcess(const std::filesystem::path& executable, const std::filesystem::path& config,
               const std::filesystem::path& logs, const std::vector<std::string>& environment);
  ~ServeProcess() { kill_now(); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  // Whether a node id is this process's (while it runs).
  bool is(const std::string& node_id) const { return pid_ > 0 && is_node_of(node_id, pid_); }
  bool alive();
  // kill -9, and reap.
  void kill_now();
  std::string log_tail() const { return tail(read_text(err_)); }
  std::string output() const { return read_text(out_); }

 private:
  std::filesystem::path out_;
  std::filesystem::path err_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace samokoder::testing
