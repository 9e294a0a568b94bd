#include "detect.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>

namespace samokoder::preview_common::internal {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// FNV-1a: stable across builds and runs (std::hash is not), and a stamp only has to notice a change.
std::string fingerprint(const std::vector<std::optional<std::string>>& parts) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (const auto& part : parts) {
    const std::string text = part ? "+" + *part : std::string("-");
    for (const char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ULL;
    }
    hash ^= 0xff;
    hash *= 1099511628211ULL;
  }
  std::ostringstream out;
  out << std::hex << hash;
  return out.str();
}

std::string stamp_of(const std::vector<std::string>& files) {
  std::vector<std::optional<std::string>> parts;
  for (const auto& file : files)
    parts.push_back(read_file(file));
  return fingerprint(parts);
}

bool stamp_matches(const fs::path& path, const std::string& stamp) {
  const auto kept = read_file(path);
  return kept && *kept == stamp;
}

std::string directory_of(const std::string& program) {
  const auto slash = program.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return program.substr(0, slash);
}

std::vector<std::pair<std::string, std::string>> environment(const sdk::PreviewSpec& spec,
                                                             std::vector<std::string> path_first) {
  std::string path;
  static constexpr std::string_view kSystem[] = {"/usr/local/bin", "/usr/bin", "/bin"};
  // A configured node or npm outside the system directories goes first; inside them, the system
  // order stays as it is.
  path_first.erase(std::remove_if(path_first.begin(), path_first.end(),
                                  [](const std::string& dir) {
                                    return std::find(std::begin(kSystem), std::end(kSystem), dir) !=
                                           std::end(kSystem);
                                  }),
                   path_first.end());
  for (const auto dir : kSystem)
    path_first.emplace_back(dir);
  std::vector<std::string> seen;
  for (const auto& dir : path_first) {
    if (std::find(seen.begin(), seen.end(), dir) != seen.end()) continue;
    seen.push_back(dir);
    if (!path.empty()) path += ':';
    path += dir;
  }
  std::map<std::string, std::string> env = {
      {"PATH", path},
      {"HOME", spec.workspace_dir},
      {"PORT", std::to_string(spec.port)},
      {"HOST", "127.0.0.1"},
      {"NODE_ENV", "development"},
      // Output reaches the log line by line only when Python does not buffer it.
      {"PYTHONUNBUFFERED", "1"},
      // npm asks the registry about its own version and about funding unless told not to.
      {"NO_UPDATE_NOTIFIER", "1"},
      {"npm_config_update_notifier", "false"},
      {"npm_config_fund", "false"},
      {"npm_config_audit", "false"},
  };
  for (const auto& [name, value] : spec.environment)
    env[name] = value;
  return {env.begin(), env.end()};
}

bool has_entries(const nlohmann::json& manifest, const char* key) {
  const auto it = manifest.find(key);
  return it != manifest.end() && it->is_object() && !it->empty();
}

// Requirement lines that are neither blank nor comments.
bool lists_something(const std::string& requirements) {
  std::istringstream in(requirements);
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos && line[first] != '#') return true;
  }
  return false;
}

sdk::Result<Plan> npm_plan(const sdk::PreviewSpec& spec, const RunnerOptions& options, const fs::path& ws,
                           const std::string& text, bool force_install, bool& usable) {
  usable = false;
  const auto manifest = nlohmann::json::parse(text, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object())
    return sdk::Status::invalid_argument("package.json of the workspace is not a JSON object");
  const auto scripts = manifest.find("scripts");
  std::string script;
  std::string command;
  if (scripts != manifest.end() && scripts->is_object()) {
    for (const char* name : {"dev", "start"}) {
      const auto it = scripts->find(name);
      if (it != scripts->end() && it->is_string() && !it->get<std::string>().empty()) {
        script = name;
        command = it->get<std::string>();
        break;
      }
    }
  }
  if (script.empty()) return Plan{};
  usable = true;
  Plan plan;
  plan.description = "npm run " + script + " (package.json)";
  plan.app = {options.npm, "run", script};
  plan.reloads_itself = mentions_watcher(command);
  plan.environment = environment(
      spec, {(ws / "node_modules" / ".bin").string(), directory_of(options.node), directory_of(options.npm)});
  if (has_entries(manifest, "dependencies") || has_entries(manifest, "devDependencies")) {
    plan.stamp_path = (ws / "node_modules" / ".samokoder-install").string();
    plan.stamp_inputs = {(ws / "package.json").string(), (ws / "package-lock.json").string()};
    plan.stamp = stamp_of(plan.stamp_inputs);
    std::error_code ec;
    if (force_install || !fs::is_directory(ws / "node_modules", ec) ||
        !stamp_matches(plan.stamp_path, plan.stamp))
      plan.install.push_back({options.npm, "install", "--no-audit", "--no-fund"});
  }
  return plan;
}

std::optional<Plan> python_plan(const sdk::PreviewSpec& spec, const RunnerOptions& options,
                                const fs::path& ws, bool force_install) {
  std::string entry;
  std::string source;
  for (const char* name : {"main.py", "app.py", "server.py"}) {
    if (auto text = read_file(ws / name)) {
      entry = name;
      source = std::move(*text);
      break;
    }
  }
  if (entry.empty()) return std::nullopt;
  Plan plan;
  std::string python = options.python;
  std::vector<std::string> path_first;
  const auto requirements = read_file(ws / "requirements.txt");
  if (requirements && lists_something(*requirements)) {
    const fs::path venv = ws / ".venv";
    const std::string venv_python = (venv / "bin" / "python3").string();
    plan.stamp_path = (venv / ".samokoder-install").string();
    plan.stamp_inputs = {(ws / "requirements.txt").string()};
    plan.stamp = stamp_of(plan.stamp_inputs);
    std::error_code ec;
    const bool have_venv = fs::exists(venv_python, ec);
    if (!have_venv) plan.install.push_back({options.python, "-m", "venv", "--system-site-packages", ".venv"});
    if (force_install || !have_venv || !stamp_matches(plan.stamp_path, plan.stamp)) {
      // The venv sees the system's packages, so requirements already installed there are satisfied
      // without asking the package index (which this machine may not reach).
      plan.install.push_back({venv_python, "-m", "pip", "install", "--disable-pip-version-check",
                              "--no-input", "-r", "requirements.txt"});
    }
    python = venv_python;
    path_first.push_back((venv / "bin").string());
  }
  plan.environment = environment(spec, path_first);
  if (source.find("FastAPI(") != std::string::npos) {
    const std::string module = entry.substr(0, entry.size() - 3);
    plan.description = "uvicorn " + module + ":app (" + entry + " creates a FastAPI app)";
    plan.app = {python,   "-m",        "uvicorn", module + ":app",
                "--host", "127.0.0.1", "--port",  std::to_string(spec.port)};
  } else {
    plan.description = "python3 " + entry;
    plan.app = {python, entry};
    // Flask's debug mode runs its own reloader.
    plan.reloads_itself = source.find("debug=True") != std::string::npos;
  }
  return plan;
}

}  // namespace

bool mentions_watcher(std::string_view command) {
  static constexpr std::string_view kWords[] = {"vite",   "nodemon", "next",  "webpack",    "react-scripts",
                                                "parcel", "nuxt",    "astro", "ts-node-dev"};
  static constexpr std::string_view kFlags[] = {"--watch", "--reload", "--debug", "--hot", "watch"};
  std::size_t pos = 0;
  while (pos < command.size()) {
    const auto start = command.find_first_not_of(" \t;&|()'\"", pos);
    if (start == std::string_view::npos) break;
    auto end = command.find_first_of(" \t;&|()'\"", start);
    if (end == std::string_view::npos) end = command.size();
    std::string_view token = command.substr(start, end - start);
    pos = end;
    for (const auto flag : kFlags)
      if (token == flag ||
          (token.size() > flag.size() && token.substr(0, flag.size() + 1) == std::string(flag) + "="))
        return true;
    const auto slash = token.rfind('/');
    if (slash != std::string_view::npos) token = token.substr(slash + 1);
    for (const auto word : kWords)
      if (token == word) return true;
    if (token == "FLASK_DEBUG=1" || token == "--debugger") return true;
  }
  return false;
}

sdk::Result<Plan> detect(const sdk::PreviewSpec& spec, const RunnerOptions& options, bool force_install) {
  const fs::path ws(spec.workspace_dir);
  if (!spec.command.empty()) {
    if (spec.command.front().empty())
      return sdk::Status::invalid_argument("the preview command has an empty program");
    Plan plan;
    std::string joined;
    for (const auto& arg : spec.command)
      joined += (joined.empty() ? "" : " ") + arg;
    plan.description = "the project's command: " + joined;
    plan.app = spec.command;
    plan.reloads_itself = mentions_watcher(joined);
    std::vector<std::string> path_first;
    std::error_code ec;
    if (fs::is_directory(ws / "node_modules" / ".bin", ec))
      path_first.push_back((ws / "node_modules" / ".bin").string());
    if (fs::is_directory(ws / ".venv" / "bin", ec)) path_first.push_back((ws / ".venv" / "bin").string());
    plan.environment = environment(spec, path_first);
    return plan;
  }
  if (const auto manifest = read_file(ws / "package.json")) {
    bool usable = false;
    auto plan = npm_plan(spec, options, ws, *manifest, force_install, usable);
    if (!plan.ok() || usable) return plan;
  }
  if (auto plan = python_plan(spec, options, ws, force_install)) return std::move(*plan);
  return sdk::Status::not_found(
      "nothing to run in the workspace: looked for package.json with a `dev` or `start` script, and for "
      "main.py, app.py or server.py (a static index.html is the static runner's)");
}

bool write_stamp(const Plan& plan) {
  if (plan.stamp_path.empty()) return true;
  // Read again now: the install itself writes package-lock.json.
  std::ofstream out(plan.stamp_path, std::ios::binary | std::ios::trunc);
  out << stamp_of(plan.stamp_inputs);
  return static_cast<bool>(out);
}

}  // namespace samokoder::preview_common::internal
