#include "preview_runner_harness.hpp"

#include <cstring>
#include <thread>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "processes/process_service.hpp"
#include "scheduling/task_scheduler.hpp"

namespace samokoder::testing {

using namespace std::chrono_literals;

namespace {

config::ProcessesConfig harness_processes(std::optional<config::ProcessesConfig> given) {
  if (given) return *given;
  config::ProcessesConfig processes;
  processes.kill_grace_ms = 1000;
  return processes;
}

}  // namespace

PreviewRunnerHarness::PreviewRunnerHarness(std::string plugin_id, std::filesystem::path plugin_file,
                                           std::optional<config::ProcessesConfig> processes)
    : plugin_id_(std::move(plugin_id)),
      plugin_file_(std::move(plugin_file)),
      dir_("samokoder-" + plugin_id_),
      processes_config_(harness_processes(std::move(processes))) {
  processes_config_.state_dir = dir_.path() / "processes";
  processes_ = std::make_unique<processes::ProcessService>(processes_config_, registry_);
  tasks_ = std::make_unique<scheduling::TaskScheduler>(
      config::WorkPoolConfig{.threads = 4, .queue_limit = 256, .call_timeout_ms = 60000}, 10s, registry_);
}

PreviewRunnerHarness::~PreviewRunnerHarness() {
  unload();
  tasks_->stop(std::chrono::steady_clock::now() + 5s);
  processes_->shutdown();
}

sdk::Status PreviewRunnerHarness::load(nlohmann::json config) {
  unload();
  config::PluginEntry entry;
  entry.id = plugin_id_;
  entry.file = plugin_file_.string();
  entry.config = std::move(config);
  config::PluginsConfig plugins;
  plugins.runtime_dir = dir_.path() / "run";
  plugins.plugins = {entry};
  manager_ = std::make_unique<plugins::PluginManager>(
      plugins, registry_, clock_,
      plugins::KernelServices{.tasks = tasks_.get(), .processes = processes_.get()});
  return manager_->start();
}

::testing::AssertionResult PreviewRunnerHarness::start_plugin(nlohmann::json config) {
  const sdk::Status loaded = load(std::move(config));
  if (!loaded.ok()) return ::testing::AssertionFailure() << "the manager failed: " << loaded.to_string();
  const auto plugin = info();
  if (!plugin) return ::testing::AssertionFailure() << plugin_id_ << " is unknown";
  if (plugin->state != plugins::PluginState::kActive)
    return ::testing::AssertionFailure() << plugin_id_ << " is not active: " << plugin->failure_message;
  return ::testing::AssertionSuccess();
}

void PreviewRunnerHarness::unload() {
  if (!manager_) return;
  manager_->stop();
  manager_.reset();
}

std::optional<plugins::PluginInfo> PreviewRunnerHarness::info() const {
  if (!manager_) return std::nullopt;
  return manager_->find(plugin_id_);
}

sdk::Result<sdk::PreviewStatus> PreviewRunnerHarness::start(const sdk::PreviewSpec& spec) {
  auto lease = manager_->acquire(plugin_id_);
  return lease.call<sdk::PreviewRunner>([&](sdk::PreviewRunner& runner) { return runner.start(spec); });
}

sdk::Status PreviewRunnerHarness::stop(std::string_view project_id) {
  auto lease = manager_->acquire(plugin_id_);
  return lease.call<sdk::PreviewRunner>([&](sdk::PreviewRunner& runner) { return runner.stop(project_id); });
}

sdk::Result<sdk::PreviewStatus> PreviewRunnerHarness::status(std::string_view project_id) {
  auto lease = manager_->acquire(plugin_id_);
  return lease.call<sdk::PreviewRunner>(
      [&](sdk::PreviewRunner& runner) { return runner.status(project_id); });
}

sdk::Result<sdk::PreviewLog> PreviewRunnerHarness::logs(std::string_view project_id, std::uint64_t after,
                                                        std::size_t max_bytes) {
  auto lease = manager_->acquire(plugin_id_);
  return lease.call<sdk::PreviewRunner>(
      [&](sdk::PreviewRunner& runner) { return runner.logs(project_id, after, max_bytes); });
}

sdk::Status PreviewRunnerHarness::files_changed(std::string_view project_id,
                                                const std::vector<std::string>& paths) {
  auto lease = manager_->acquire(plugin_id_);
  return lease.call<sdk::PreviewRunner>(
      [&](sdk::PreviewRunner& runner) { return runner.files_changed(project_id, paths); });
}

sdk::Result<sdk::ProcessResult> PreviewRunnerHarness::run_contained_command(
    const sdk::ProcessSpec& command, std::string_view project_id,
    const std::function<void(const sdk::ContainedCommand&)>& before_cleanup) {
  auto lease = manager_->acquire(plugin_id_);
  auto contained = lease.call<sdk::PreviewRunner>(
      [&](sdk::PreviewRunner& runner) { return runner.contain_command(command, project_id); });
  if (!contained.ok()) return contained.status();
  const processes::Owner kernel{"kernel.runs", 0};
  auto ran = processes_->run(kernel, contained->spec, sdk::never_cancelled());
  if (before_cleanup) before_cleanup(*contained);
  if (contained->cleanup) contained->cleanup();
  return ran;
}

::testing::AssertionResult PreviewRunnerHarness::wait_for_state(std::string_view project_id,
                                                                sdk::PreviewState state,
                                                                std::chrono::milliseconds timeout,
                                                                sdk::PreviewStatus* out) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sdk::Result<sdk::PreviewStatus> last = sdk::Status::not_found("never asked");
  for (;;) {
    last = status(project_id);
    if (last.ok() && last->state == state) {
      if (out != nullptr) *out = *last;
      return ::testing::AssertionSuccess();
    }
    const bool final =
        last.ok() && state != last->state &&
        (last->state == sdk::PreviewState::kFailed || last->state == sdk::PreviewState::kStopped);
    if (final || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  auto failure = ::testing::AssertionFailure() << "waited for " << sdk::preview_state_name(state) << ", got ";
  if (!last.ok()) return failure << last.status().to_string();
  failure << sdk::preview_state_name(last->state) << " (" << last->detail << ")";
  if (auto log = logs(project_id, 0, 4096); log.ok()) failure << "\nlog:\n" << log->text;
  return failure;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  std::uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

HttpAnswer http_get(const sdk::PreviewEndpoint& endpoint, std::string_view target,
                    std::chrono::milliseconds timeout) {
  HttpAnswer answer;
  int fd = -1;
  if (!endpoint.socket_path.empty()) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, endpoint.socket_path.c_str(), sizeof(address.sun_path) - 1);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      if (fd >= 0) ::close(fd);
      return answer;
    }
  } else {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(endpoint.port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      if (fd >= 0) ::close(fd);
      return answer;
    }
  }
  const std::string request = "GET " + std::string(target) + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return answer;
  }
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char chunk[4096];
    const auto n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    got.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto header_end = got.find("\r\n\r\n");
  if (got.rfind("HTTP/", 0) != 0 || header_end == std::string::npos) return answer;
  answer.status = std::atoi(got.c_str() + got.find(' ') + 1);
  answer.body = got.substr(header_end + 4);
  return answer;
}

}  // namespace samokoder::testing
