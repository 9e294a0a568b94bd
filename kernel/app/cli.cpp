#include "app/cli.hpp"

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <signal.h>
#include <stdlib.h>

#include <samokoder/abi.h>
#include <samokoder/sdk/plugin.hpp>

#include "app/application.hpp"
#include "core/logging.hpp"
#include "core/version.hpp"
#include "plugins/plugin_check.hpp"

namespace samokoder::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage =
    "usage:\n"
    "  samokoder serve [--config FILE] [--listen HOST:PORT]   run the server (port 0 picks a free port)\n"
    "  samokoder config check FILE                            validate a config file\n"
    "  samokoder plugin check FILE.so [--config FILE] [--json]\n"
    "                                                         would this kernel load the plugin?\n"
    "  samokoder version                                      kernel version and SDK ABI\n";

// Options of the form --name VALUE after the positional arguments.
struct Options {
  std::vector<std::string_view> positional;
  std::optional<std::string> config;
  std::optional<std::string> listen;
  bool json = false;
};

std::optional<Options> parse_options(std::span<const std::string_view> args, std::ostream& err) {
  Options options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        err << "samokoder: " << arg << " needs a value\n";
        return std::nullopt;
      }
      return std::string(args[++i]);
    };
    if (arg == "--config") {
      if (!(options.config = value())) return std::nullopt;
    } else if (arg == "--listen") {
      if (!(options.listen = value())) return std::nullopt;
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg.starts_with("--")) {
      err << "samokoder: unknown option " << arg << "\n" << kUsage;
      return std::nullopt;
    } else {
      options.positional.push_back(arg);
    }
  }
  return options;
}

// The config file (or the embedded defaults without one), with SAMOKODER_* overrides applied.
sdk::Result<config::Config> load_config(const std::optional<std::string>& path) {
  const auto environment = config::process_environment();
  if (!path) return config::parse_config(nlohmann::json::object(), environment);
  return config::load_config_file(*path, environment);
}

int serve(const Options& options, std::ostream& out, std::ostream& err) {
  auto loaded = load_config(options.config);
  if (!loaded.ok()) {
    err << "samokoder: invalid config:\n" << loaded.status().message() << "\n";
    return kExitFailed;
  }
  config::Config config = std::move(loaded).value();
  if (options.listen) {
    auto listen = config::parse_listen_address(*options.listen);
    if (!listen.ok()) {
      err << "samokoder: --listen: " << listen.status().message() << "\n";
      return kExitFailed;
    }
    config.server.listen = *listen;
  }
  // Block the stop signals before any thread exists (the logger starts one), so every thread inherits
  // the mask, and take them synchronously below: no async-signal-safety puzzles, and shutdown runs on
  // this thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  core::init_logging(config.log);

  core::SystemClock clock;
  Application application(std::move(config), clock);
  if (auto status = application.start(); !status.ok()) {
    err << "samokoder: cannot start: " << status.message() << "\n";
    core::flush_logging();
    return kExitFailed;
  }
  out << "samokoder listening on " << application.url() << std::endl;

  int received = 0;
  sigwait(&stop_signals, &received);
  core::logger("kernel")->info("received {}, shutting down", received == SIGINT ? "SIGINT" : "SIGTERM");
  application.stop();
  core::flush_logging();
  return kExitOk;
}

int config_check(const Options& options, std::ostream& out, std::ostream& err) {
  if (options.positional.size() != 3) {
    err << kUsage;
    return kExitUsage;
  }
  const std::string path(options.positional[2]);
  auto loaded = config::load_config_file(path, config::process_environment());
  if (!loaded.ok()) {
    err << path << ": invalid\n" << loaded.status().message() << "\n";
    return kExitFailed;
  }
  out << path << ": OK (" << loaded->plugins.plugins.size() << " plugin(s), listen "
      << loaded->server.listen.to_string() << ")\n";
  return kExitOk;
}

int plugin_check(const Options& options, std::ostream& out, std::ostream& err) {
  if (options.positional.size() != 3) {
    err << kUsage;
    return kExitUsage;
  }
  const std::filesystem::path file(options.positional[2]);
  nlohmann::json plugin_config = nlohmann::json::object();
  if (options.config) {
    auto loaded = load_config(options.config);
    if (!loaded.ok()) {
      err << "samokoder: invalid config:\n" << loaded.status().message() << "\n";
      return kExitFailed;
    }
    // The section of the entry that names this file, so init sees what the server would give it.
    for (const auto& entry : loaded->plugins.plugins) {
      std::error_code ec;
      const std::filesystem::path configured = std::filesystem::path(entry.file).is_absolute()
                                                   ? std::filesystem::path(entry.file)
                                                   : loaded->plugins.plugin_dir / entry.file;
      if (std::filesystem::equivalent(configured, file, ec)) plugin_config = entry.config;
    }
  }
  config::LogConfig quiet;
  quiet.level = "error";
  core::init_logging(quiet);

  char runtime_template[] = "/tmp/samokoder-plugin-check-XXXXXX";
  if (::mkdtemp(runtime_template) == nullptr) {
    err << "samokoder: cannot create a temporary directory\n";
    return kExitFailed;
  }
  const auto report = plugins::check_plugin_file(file, plugin_config, runtime_template);
  std::error_code ec;
  std::filesystem::remove_all(runtime_template, ec);
  if (options.json) {
    out << plugins::check_report_to_json(report).dump(2) << "\n";
  } else {
    out << plugins::format_check_report(report);
  }
  return report.accepted ? kExitOk : kExitFailed;
}

int version(std::ostream& out) {
  out << "samokoder " << core::kKernelVersion << "\n"
      << "sdk " << core::kSdkVersion << " (plugin ABI " << SAMOKODER_ABI_MAJOR << "." << SAMOKODER_ABI_MINOR
      << ")\n"
      << "toolchain " << SAMOKODER_TOOLCHAIN_FINGERPRINT << "\n";
  return kExitOk;
}

}  // namespace

int run_cli(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  const auto options = parse_options(args, err);
  if (!options) return kExitUsage;
  const auto& words = options->positional;
  if (words.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  const std::string_view command = words[0];
  const std::string_view subcommand = words.size() > 1 ? words[1] : std::string_view();
  if (command == "serve" && words.size() == 1) return serve(*options, out, err);
  if (command == "config" && subcommand == "check") return config_check(*options, out, err);
  if (command == "plugin" && subcommand == "check") return plugin_check(*options, out, err);
  if (command == "version" && words.size() == 1) return version(out);
  if (command == "help" || command == "--help" || command == "-h") {
    out << kUsage;
    return kExitOk;
  }
  err << "samokoder: unknown command \"" << command << "\"\n" << kUsage;
  return kExitUsage;
}

}  // namespace samokoder::app
