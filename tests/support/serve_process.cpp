#include "serve_process.hpp"

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string_view>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wait_until.hpp"

extern char** environ;

namespace samokoder::testing {

using namespace std::chrono_literals;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string tail(const std::string& text, std::size_t bytes) {
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

// 48 characters of base64's alphabet from the system's random source: a strong SAMOKODER_SECRET_KEY.
std::string random_secret() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::random_device device;
  std::uniform_int_distribution<int> pick(0, 63);
  std::string secret;
  for (int i = 0; i < 48; ++i)
    secret += kAlphabet[pick(device)];
  return secret;
}

// Whether a node id ("host/pid/suffix", Housekeeping::make_node_id) is the one of process `pid`.
bool is_node_of(const std::string& node_id, pid_t pid) {
  std::string marker = "/";
  marker += std::to_string(pid);
  marker += '/';
  return node_id.find(marker) != std::string::npos;
}

ServeProcess::ServeProcess(const std::filesystem::path& executable, const std::filesystem::path& config,
                           const std::filesystem::path& logs, const std::vector<std::string>& environment)
    : out_(logs.string() + ".out"), err_(logs.string() + ".err") {
  std::vector<std::string> args = {executable.string(), "serve",    "--config",
                                   config.string(),     "--listen", "127.0.0.1:0"};
  // The child's environment: this one's without anything that would override its config.
  std::vector<std::string> variables = environment;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    const std::string_view text(*variable);
    if (text.starts_with("SAMOKODER_") || text.starts_with("OPENAI_") || text.starts_with("ANTHROPIC_"))
      continue;
    variables.emplace_back(text);
  }
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& variable : variables)
    envp.push_back(variable.data());
  envp.push_back(nullptr);
  const std::string out = out_.string();
  const std::string err = err_.string();
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int in_fd = ::open("/dev/null", O_RDONLY);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(126);
    ::dup2(in_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  if (pid_ < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    return;
  }
  const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+)\n)");
  std::smatch match;
  std::string text;
  const bool up = testing::wait_until(
      [&] {
        text = read_text(out_);
        return std::regex_search(text, match, listening) || !alive();
      },
      20s, 20ms);
  if (!up || !std::regex_search(text, match, listening)) {
    ADD_FAILURE() << "samokoder serve did not start; stdout: " << text << "\nstderr: " << log_tail();
    return;
  }
  port_ = static_cast<std::uint16_t>(std::stoi(match[1]));
}

bool ServeProcess::alive() {
  if (pid_ <= 0) return false;
  if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}
void ServeProcess::kill_now() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace samokoder::testing
