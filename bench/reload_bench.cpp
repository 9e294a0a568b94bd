// Hot reload under load, measured in-process (the mechanism without the admin route around it): a
// PluginManager with the bench agent, an http::Server whose GET /echo calls the agent through its lease, and
// reloads alternating versions 1.0.0 and 2.0.0 of the agent while an external load generator (wrk,
// started by bench/run_bench.py) hammers /echo. Prints each ReloadOutcome's swap latency and drain
// time; the harness checks on its side that no request failed.
//
// Protocol on stdin/stdout, one JSON object a line:
//   out {"event":"listening","port":P}   the server is up; start the load
//   in  start                            begin the reloads
//   out {"event":"result",...}           every reload done (see print_result)
//   in  stop (or EOF)                    shut down and exit 0
//
//   reload_bench [--reloads N] [--interval-ms MS] [--io-threads N] [--worker-threads N]
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <samokoder/sdk/agent.hpp>

#include "core/clock.hpp"
#include "core/logging.hpp"
#include "fixed_agent_context.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"

namespace {

namespace bhttp = boost::beast::http;
using namespace samokoder;

constexpr const char* kPluginId = "agent.bench";

struct Options {
  int reloads = 100;
  int interval_ms = 20;
  unsigned io_threads = 2;
  unsigned worker_threads = 2;
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + arg);
    const int value = std::stoi(argv[++i]);
    if (value < 0) throw std::invalid_argument(arg + " must not be negative");
    if (arg == "--reloads") {
      options.reloads = value;
    } else if (arg == "--interval-ms") {
      options.interval_ms = value;
    } else if (arg == "--io-threads") {
      options.io_threads = static_cast<unsigned>(value);
    } else if (arg == "--worker-threads") {
      options.worker_threads = static_cast<unsigned>(value);
    } else {
      throw std::invalid_argument("unknown option " + arg);
    }
  }
  return options;
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double micros(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

void emit(const nlohmann::json& line) {
  std::cout << line.dump() << std::endl;
}

int run(const Options& options) {
  core::init_logging(config::LogConfig{.level = "warn", .format = "text", .access_log = false});
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("samokoder-reload-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path installed = dir / "agent_bench.so";
  const std::filesystem::path versions[] = {SAMOKODER_BENCH_AGENT_V1, SAMOKODER_BENCH_AGENT_V2};
  std::filesystem::copy_file(versions[0], installed, std::filesystem::copy_options::overwrite_existing);

  config::PluginsConfig plugins;
  plugins.runtime_dir = dir / "run";
  plugins.drain_timeout_ms = 10000;
  config::PluginEntry entry;
  entry.id = kPluginId;
  entry.file = installed.string();
  entry.required = true;
  plugins.plugins = {entry};
  metrics::Registry registry;
  core::SystemClock clock;
  plugins::PluginManager manager(plugins, registry, clock);
  if (const sdk::Status started = manager.start(); !started.ok()) {
    std::cerr << "reload_bench: " << started.to_string() << "\n";
    return 1;
  }
  plugins::PluginSlot* slot = manager.slot(kPluginId);

  auto router = std::make_shared<http::Router>();
  router->add(bhttp::verb::get, "/echo", [slot](http::Request&) {
    testing::FixedAgentContext context;
    auto step = slot->acquire().call<sdk::Agent>([&](sdk::Agent& agent) { return agent.run_step(context); });
    if (!step.ok()) {
      return http::Response::problem(503, "plugin_failed", "Plugin Failed", step.status().message());
    }
    return http::Response::json(200, {{"version", step->next_state["version"]}});
  });
  config::ServerConfig server_config;
  server_config.listen = {"127.0.0.1", 0};
  server_config.io_threads = options.io_threads;
  server_config.request_pool.threads = options.worker_threads;
  http::Server server(server_config, config::Environment::kDevelopment, router, registry,
                      http::ServerOptions{.access_log = false});
  if (const sdk::Status started = server.start(); !started.ok()) {
    std::cerr << "reload_bench: " << started.to_string() << "\n";
    return 1;
  }
  emit({{"event", "listening"}, {"port", server.port()}});

  int exit_code = 0;
  std::string command;
  if (std::getline(std::cin, command) && command == "start") {
    const long rss_before = rss_kib();
    nlohmann::json swap = nlohmann::json::array();
    nlohmann::json drain = nlohmann::json::array();
    nlohmann::json errors = nlohmann::json::array();
    int pinned = 0;
    for (int round = 1; round <= options.reloads; ++round) {
      std::filesystem::copy_file(versions[round % 2], installed,
                                 std::filesystem::copy_options::overwrite_existing);
      auto outcome = manager.reload(kPluginId);
      if (!outcome.ok()) {
        errors.push_back(outcome.status().to_string());
        continue;
      }
      swap.push_back(micros(outcome->swap_latency));
      drain.push_back(micros(outcome->drain_time));
      if (!outcome->previous_unmapped) ++pinned;
      std::this_thread::sleep_for(std::chrono::milliseconds(options.interval_ms));
    }
    const auto info = manager.find(kPluginId);
    emit({{"event", "result"},
          {"reloads", options.reloads},
          {"failed_reloads", errors},
          {"pinned_generations", pinned},
          {"swap_latency_us", swap},
          {"drain_time_us", drain},
          {"generation", info ? info->generation : 0},
          {"version", info ? info->version : ""},
          {"rss_kib_before", rss_before},
          {"rss_kib_after", rss_kib()}});
    if (!errors.empty() || pinned != 0) exit_code = 1;
    std::getline(std::cin, command);
  }
  server.stop();
  manager.stop();
  core::flush_logging();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "reload_bench: " << e.what() << "\n";
    return 2;
  }
}
