#include "app/cli.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <samokoder/abi.h>
#include <samokoder/sdk/auth.hpp>
#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/storage.hpp>

#include "api/context.hpp"
#include "app/application.hpp"
#include "core/logging.hpp"
#include "core/version.hpp"
#include "llm/gateway.hpp"
#include "plugins/plugin_check.hpp"
#include "plugins/plugin_manager.hpp"

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
    "  samokoder plugin reload|enable|disable ID [--url URL]  change a running server's plugin (admin\n"
    "                                                         token in SAMOKODER_ADMIN_TOKEN)\n"
    "  samokoder db status|migrate [--config FILE]            schema version; apply pending migrations\n"
    "  samokoder db backup FILE [--config FILE]               consistent copy of the database (SQLite)\n"
    "  samokoder admin create-user --email E [--admin] [--config FILE]\n"
    "                                                         create a user; the password is read from "
    "stdin\n"
    "  samokoder llm ping --provider P --model M [--base-url URL] [--email E] [--config FILE]\n"
    "                                                         one short prompt through the LLM gateway;\n"
    "                                                         prints the answer, latency and tokens\n"
    "  samokoder version                                      kernel version and SDK ABI\n"
    "  samokoder help                                         this text (also --help, -h)\n";

// Options of the form --name VALUE after the positional arguments.
struct Options {
  std::vector<std::string_view> positional;
  std::optional<std::string> config;
  std::optional<std::string> listen;
  std::optional<std::string> url;
  std::optional<std::string> email;
  std::optional<std::string> provider;
  std::optional<std::string> model;
  std::optional<std::string> base_url;
  bool json = false;
  bool admin = false;
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
    } else if (arg == "--url") {
      if (!(options.url = value())) return std::nullopt;
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--email") {
      if (!(options.email = value())) return std::nullopt;
    } else if (arg == "--provider") {
      if (!(options.provider = value())) return std::nullopt;
    } else if (arg == "--model") {
      if (!(options.model = value())) return std::nullopt;
    } else if (arg == "--base-url") {
      if (!(options.base_url = value())) return std::nullopt;
    } else if (arg == "--admin") {
      options.admin = true;
    } else if (arg.starts_with("--")) {
      err << "samokoder: unknown option " << arg << "\n" << kUsage;
      return std::nullopt;
    } else {
      options.positional.push_back(arg);
    }
  }
  return options;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

// The config file (or the embedded defaults without one), with SAMOKODER_* overrides applied.
sdk::Result<config::Config> load_config(const std::optional<std::string>& path) {
  const auto environment = config::process_environment();
  if (!path) return config::parse_config(nlohmann::json::object(), environment);
  return config::load_config_file(*path, environment);
}

// load_config, reporting a failure on `err`.
std::optional<config::Config> load_config_or_report(const Options& options, std::ostream& err) {
  auto loaded = load_config(options.config);
  if (!loaded.ok()) {
    err << "samokoder: invalid config:\n" << loaded.status().message() << "\n";
    return std::nullopt;
  }
  return std::move(loaded).value();
}

// The first enabled plugin entry whose id is `id`, or starts with `id` when it ends in '.'.
const config::PluginEntry* find_enabled(const config::PluginsConfig& plugins, std::string_view id) {
  for (const auto& entry : plugins.plugins) {
    if (entry.enabled && (id.ends_with('.') ? entry.id.starts_with(id) : entry.id == id)) return &entry;
  }
  return nullptr;
}

int serve(const Options& options, std::ostream& out, std::ostream& err) {
  auto loaded = load_config_or_report(options, err);
  if (!loaded) return kExitFailed;
  config::Config config = std::move(*loaded);
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
  sigaddset(&stop_signals, SIGHUP);
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
  while (sigwait(&stop_signals, &received) == 0 && received == SIGHUP) {
    // SIGHUP: read the config file again and apply its plugin changes; an invalid file changes nothing.
    auto log = core::logger("kernel");
    log->info("received SIGHUP, reloading the config");
    auto report = application.reload_config_file({"", "sighup", "sighup"});
    if (!report.ok()) {
      log->error("{}", report.status().message());
    } else {
      log->info("config reloaded: {}",
                report->changes.empty() ? std::string("no changes") : join(report->changes, "; "));
    }
  }
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
    auto loaded = load_config_or_report(options, err);
    if (!loaded) return kExitFailed;
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

// Loads only the storage backend the config selects, with automatic migration off, so `db status`
// reports the schema as it is and `db migrate` is the one that changes it.
int database(const Options& options, std::ostream& out, std::ostream& err) {
  const auto& words = options.positional;
  const std::string_view action = words[1];
  if (!((action == "status" || action == "migrate") && words.size() == 2) &&
      !(action == "backup" && words.size() == 3)) {
    err << kUsage;
    return kExitUsage;
  }
  auto loaded = load_config_or_report(options, err);
  if (!loaded) return kExitFailed;
  config::PluginsConfig plugins = loaded->plugins;
  const config::PluginEntry* storage = find_enabled(plugins, "storage.");
  if (storage == nullptr) {
    err << "samokoder: the config enables no storage plugin\n";
    return kExitFailed;
  }
  config::PluginEntry entry = *storage;
  entry.required = true;
  entry.config["auto_migrate"] = false;
  plugins.plugins = {entry};
  core::init_logging(loaded->log);

  metrics::Registry registry;
  core::SystemClock clock;
  plugins::PluginManager manager(plugins, registry, clock);
  if (auto status = manager.start(); !status.ok()) {
    err << "samokoder: " << status.message() << "\n";
    return kExitFailed;
  }
  const auto lease = manager.acquire(entry.id);
  sdk::Status status;
  if (action == "migrate") status = lease.call<sdk::Storage>([](sdk::Storage& s) { return s.migrate(); });
  if (action == "backup") {
    const std::string destination(words[2]);
    status = lease.call<sdk::Storage>([&](sdk::Storage& s) { return s.backup(destination); });
    if (status.ok()) out << entry.id << ": backed up to " << destination << "\n";
  }
  if (!status.ok()) {
    err << "samokoder: " << entry.id << ": " << status.message() << "\n";
    return kExitFailed;
  }
  if (action == "backup") return kExitOk;
  auto schema = lease.call<sdk::Storage>([](sdk::Storage& s) { return s.schema_status(); });
  if (!schema.ok()) {
    err << "samokoder: " << entry.id << ": " << schema.status().message() << "\n";
    return kExitFailed;
  }
  out << entry.id << ": schema version " << schema->current_version << " of " << schema->supported_version;
  if (schema->current_version < schema->supported_version) {
    out << " (" << (schema->supported_version - schema->current_version)
        << " migration(s) pending; run `samokoder db migrate`)";
  } else {
    out << " (up to date)";
  }
  out << "\n";
  for (const auto& migration : schema->applied) {
    out << "  " << migration.version << "  " << migration.description << "\n";
  }
  return kExitOk;
}

// The first admin, without default credentials: loads only the storage backend and auth.local
// (hashing and the password policy are the plugin's), reads the password from one line of stdin, and
// creates the user. The password never appears on the command line (where `ps` shows it) or in any
// output.
int create_user(const Options& options, std::ostream& out, std::ostream& err) {
  if (options.positional.size() != 2 || !options.email) {
    err << kUsage;
    return kExitUsage;
  }
  const std::string email = *options.email;
  if (!api::plausible_email(email) || email.size() > 254) {
    err << "samokoder: --email: not an email address\n";
    return kExitFailed;
  }
  auto loaded = load_config_or_report(options, err);
  if (!loaded) return kExitFailed;
  config::PluginsConfig plugins = loaded->plugins;
  const config::PluginEntry* storage = find_enabled(plugins, "storage.");
  const config::PluginEntry* local = find_enabled(plugins, "auth.local");
  if (storage == nullptr || local == nullptr) {
    err << "samokoder: the config must enable a storage plugin and auth.local\n";
    return kExitFailed;
  }
  config::PluginEntry storage_entry = *storage;
  config::PluginEntry local_entry = *local;
  storage_entry.required = true;
  local_entry.required = true;
  plugins.plugins = {storage_entry, local_entry};

  if (::isatty(STDIN_FILENO)) err << "password for " << email << ": " << std::flush;
  std::string password;
  if (!std::getline(std::cin, password)) {
    err << "samokoder: no password on stdin\n";
    return kExitFailed;
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();

  config::LogConfig quiet = loaded->log;
  quiet.level = "warn";
  core::init_logging(quiet);
  metrics::Registry registry;
  core::SystemClock clock;
  plugins::PluginManager manager(plugins, registry, clock);
  if (auto status = manager.start(); !status.ok()) {
    err << "samokoder: " << status.message() << "\n";
    return kExitFailed;
  }
  const auto provider = manager.acquire(local_entry.id);
  const auto database = manager.acquire(storage_entry.id);
  if (auto policy =
          provider.call<sdk::AuthProvider>([&](sdk::AuthProvider& p) { return p.check_policy(password); });
      !policy.ok()) {
    err << "samokoder: password refused: " << policy.message() << "\n";
    return kExitFailed;
  }
  auto hash = provider.call<sdk::AuthProvider>([&](sdk::AuthProvider& p) { return p.hash_secret(password); });
  if (!hash.ok()) {
    err << "samokoder: " << hash.status().message() << "\n";
    return kExitFailed;
  }
  sdk::NewUser user;
  user.email = email;
  user.password_hash = std::move(hash).value();
  user.is_admin = options.admin;
  auto created = database.call<sdk::Storage>([&](sdk::Storage& s) { return s.users().create_user(user); });
  if (!created.ok()) {
    if (created.status().code() == sdk::StatusCode::kAlreadyExists) {
      err << "samokoder: a user with this email already exists\n";
    } else {
      err << "samokoder: " << storage_entry.id << ": " << created.status().message() << "\n";
    }
    return kExitFailed;
  }
  sdk::NewAuditEvent event;
  event.action = "admin.user_created";
  event.target = created->id;
  event.source_address = "cli";
  event.detail = {{"is_admin", options.admin}, {"via", "samokoder admin create-user"}};
  static_cast<void>(
      database.call<sdk::Storage>([&](sdk::Storage& s) { return s.audit().append_audit_event(event); }));
  out << "created user " << created->id << " <" << created->email << ">" << (options.admin ? " (admin)" : "")
      << "\n";
  return kExitOk;
}

// Asks a running server to reload, enable or disable a plugin through the admin API, so operators
// and deploy scripts need no HTTP client of their own.
int plugin_admin(const Options& options, std::ostream& out, std::ostream& err) {
  if (options.positional.size() != 3) {
    err << kUsage;
    return kExitUsage;
  }
  const char* token = std::getenv("SAMOKODER_ADMIN_TOKEN");
  if (token == nullptr || *token == '\0') {
    err << "samokoder: set SAMOKODER_ADMIN_TOKEN to a personal access token with the admin scope\n";
    return kExitUsage;
  }
  const std::string base = options.url.value_or("http://127.0.0.1:8080");
  if (!base.starts_with("http://")) {
    err << "samokoder: --url must be http://HOST:PORT (put TLS in front of the server, not in this "
           "command)\n";
    return kExitUsage;
  }
  auto address = config::parse_listen_address(base.substr(7, base.find('/', 7) - 7));
  if (!address.ok()) {
    err << "samokoder: --url: " << address.status().message() << "\n";
    return kExitUsage;
  }
  const std::string target = "/api/v1/admin/plugins/" + std::string(options.positional[2]) + "/" +
                             std::string(options.positional[1]);
  namespace beast = boost::beast;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::minutes(2));  // a reload waits for the old generation to drain
    stream.connect(boost::asio::ip::tcp::resolver(io).resolve(address->host, std::to_string(address->port)));
    beast::http::request<beast::http::string_body> request(beast::http::verb::post, target, 11);
    request.set(beast::http::field::host, address->to_string());
    request.set(beast::http::field::authorization, std::string("Bearer ") + token);
    request.prepare_payload();
    beast::http::write(stream, request);
    beast::flat_buffer buffer;
    beast::http::response<beast::http::string_body> response;
    beast::http::read(stream, buffer, response);
    const auto document = nlohmann::json::parse(response.body(), nullptr, false);
    if (response.result_int() != 200) {
      err << "samokoder: " << response.result_int() << " "
          << (document.is_object() ? document.value("detail", response.body()) : response.body()) << "\n";
      return kExitFailed;
    }
    out << (document.is_discarded() ? response.body() : document.dump(2)) << "\n";
    return kExitOk;
  } catch (const std::exception& e) {
    err << "samokoder: cannot reach " << base << ": " << e.what() << "\n";
    return kExitFailed;
  }
}

// The account an operator's pings are recorded under when no --email names a user: usage shows every
// request, and a request belongs to a user. Disabled and without a usable password: nobody logs in.
constexpr std::string_view kOperatorEmail = "operator@samokoder.invalid";

sdk::Result<std::string> operator_account(const plugins::Lease& storage) {
  return storage.call<sdk::Storage>([](sdk::Storage& s) -> sdk::Result<std::string> {
    auto& users = s.store<sdk::UserStore>();
    if (auto found = users.find_user_by_email(kOperatorEmail); found.ok()) return found->id;
    auto created = users.create_user(
        {.email = std::string(kOperatorEmail), .password_hash = "!", .is_admin = false, .tier = "operator"});
    if (!created.ok()) return created.status();
    sdk::UserUpdate disable;
    disable.disabled = true;
    if (auto updated = users.update_user(created->id, disable); !updated.ok()) return updated.status();
    return created->id;
  });
}

// Prints the answer's text as it streams, so a slow model shows life at once.
class PrintDeltas final : public sdk::CompletionObserver {
 public:
  explicit PrintDeltas(std::ostream& out) : out_(out) {}
  bool on_delta(std::string_view text) override {
    out_ << text << std::flush;
    return true;
  }

 private:
  std::ostream& out_;
};

// One short prompt through the same gateway the server uses (keys, retries, accounting), with the
// server's config: the kernel starts on a loopback port of its own for the length of the call.
int llm_ping(const Options& options, std::ostream& out, std::ostream& err) {
  if (options.positional.size() != 2 || !options.provider || !options.model) {
    err << kUsage;
    return kExitUsage;
  }
  auto loaded = load_config_or_report(options, err);
  if (!loaded) return kExitFailed;
  config::Config config = std::move(*loaded);
  const auto provider = config.llm.providers.find(*options.provider);
  if (provider == config.llm.providers.end()) {
    std::vector<std::string> names;
    for (const auto& [name, settings] : config.llm.providers)
      names.push_back(name);
    err << "samokoder: provider \"" << *options.provider << "\" is not configured (llm.providers has "
        << join(names, ", ") << ")\n";
    return kExitFailed;
  }
  if (options.base_url) provider->second.base_url = *options.base_url;
  config.server.listen = {.host = "127.0.0.1", .port = 0};
  config.plugins.watch = false;
  config.log.level = "warn";
  config.log.access_log = false;
  core::init_logging(config.log);

  core::SystemClock clock;
  Application app(std::move(config), clock);
  if (auto started = app.start(); !started.ok()) {
    err << "samokoder: " << started.message() << "\n";
    return kExitFailed;
  }
  // The lease ends here: a lease held across stop() would keep the storage generation draining.
  auto user_id = [&]() -> sdk::Result<std::string> {
    const auto storage = app.storage();
    if (!options.email) return operator_account(storage);
    return storage.call<sdk::Storage>([&](sdk::Storage& s) -> sdk::Result<std::string> {
      auto user = s.store<sdk::UserStore>().find_user_by_email(*options.email);
      if (!user.ok()) return user.status();
      return user->id;
    });
  }();
  if (!user_id.ok()) {
    err << "samokoder: " << (options.email ? "--email: " : "") << user_id.status().message() << "\n";
    return kExitFailed;
  }
  llm::LlmCall call;
  call.user_id = *user_id;
  call.role = "ping";
  call.model = *options.provider + "/" + *options.model;
  call.system = "You are a health check. Answer in at most five words.";
  call.messages = {{"user", "Say hello.", false}};
  call.max_tokens = 32;
  PrintDeltas printer(out);
  const auto started = std::chrono::steady_clock::now();
  auto answer = app.llm()->complete(call, &printer, sdk::never_cancelled());
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  app.stop();
  if (!answer.ok()) {
    err << "samokoder: " << *call.model << ": " << sdk::status_code_name(answer.status().code()) << ": "
        << answer.status().message() << "\n";
    return kExitFailed;
  }
  const sdk::TokenUsage& usage = answer->completion.usage;
  out << "\n"
      << answer->provider << "/" << answer->model << " (answered as " << answer->completion.model << ")\n"
      << "latency " << elapsed.count() << " ms, attempts " << answer->attempts << "\n"
      << "tokens: prompt " << usage.prompt_tokens << " (cached " << usage.cached_prompt_tokens
      << "), completion " << usage.completion_tokens << (usage.estimated ? " (estimated)" : "") << "\n"
      << "recorded as request " << answer->request_id << "\n";
  return kExitOk;
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
  // Before option parsing, which refuses options it does not know.
  if (!args.empty() && (args[0] == "help" || args[0] == "--help" || args[0] == "-h")) {
    out << kUsage;
    return kExitOk;
  }
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
  if (command == "plugin" && (subcommand == "reload" || subcommand == "enable" || subcommand == "disable")) {
    return plugin_admin(*options, out, err);
  }
  if (command == "db" && words.size() >= 2) return database(*options, out, err);
  if (command == "admin" && subcommand == "create-user") return create_user(*options, out, err);
  if (command == "llm" && subcommand == "ping") return llm_ping(*options, out, err);
  if (command == "version" && words.size() == 1) return version(out);
  err << "samokoder: unknown command \"" << command << "\"\n" << kUsage;
  return kExitUsage;
}

}  // namespace samokoder::app
