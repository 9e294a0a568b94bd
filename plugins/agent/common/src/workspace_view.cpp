#include <algorithm>
#include <array>

#include <samokoder/agent_common/workspace_view.hpp>

namespace samokoder::agent_common {
namespace {

// Folders whose content is installed or generated, anywhere in a path.
constexpr std::array<std::string_view, 10> kSkippedFolders = {
    "node_modules", ".venv", "venv", "__pycache__", ".git", "dist", "build", ".next", ".cache", ".samokoder"};
// Files that are generated, or binary and useless to a model.
constexpr std::array<std::string_view, 14> kSkippedSuffixes = {"package-lock.json",
                                                               "yarn.lock",
                                                               "pnpm-lock.yaml",
                                                               ".min.js",
                                                               ".min.css",
                                                               ".map",
                                                               ".png",
                                                               ".jpg",
                                                               ".jpeg",
                                                               ".gif",
                                                               ".ico",
                                                               ".woff",
                                                               ".woff2",
                                                               ".pyc"};

// Less room than this left in the budget (a quarter of it for a small one): no further file is read.
constexpr std::size_t kSmallestShown = 256;

bool binary(std::string_view content) {
  return content.find('\0') != std::string_view::npos;
}

}  // namespace

std::string workspace_path(std::string path) {
  while (path.starts_with("./"))
    path.erase(0, 2);
  if (path.empty() || path.front() == '/' || path.back() == '/' || path.find('\\') != std::string::npos ||
      path.find('\0') != std::string::npos)
    return {};
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto segment = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (segment.empty() || segment == "." || segment == "..") return {};
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return path;
}

bool is_source_path(std::string_view path) {
  std::size_t start = 0;
  while (start < path.size()) {
    const auto slash = path.find('/', start);
    const auto segment =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (slash == std::string_view::npos) break;  // the last segment is the file's name
    for (const auto folder : kSkippedFolders)
      if (segment == folder) return false;
    start = slash + 1;
  }
  for (const auto suffix : kSkippedSuffixes)
    if (path.ends_with(suffix)) return false;
  return true;
}

sdk::Result<std::vector<std::string>> source_files(sdk::AgentContext& context) {
  auto all = context.list_files();
  if (!all.ok()) return all.status();
  std::vector<std::string> sources;
  for (auto& path : *all)
    if (is_source_path(path)) sources.push_back(std::move(path));
  return sources;
}

sdk::Result<std::string> describe_workspace(sdk::AgentContext& context, std::size_t max_bytes) {
  auto paths = source_files(context);
  if (!paths.ok()) return paths.status();
  if (paths->empty()) return std::string("(the workspace is empty)");
  std::string shown;
  std::vector<std::string> left_out;
  for (const auto& path : *paths) {
    // Once the budget is all but spent, the rest are only named: reading them would cost a storage
    // read each for nothing, and prompts are rebuilt at every step.
    if (shown.size() + std::min(kSmallestShown, max_bytes / 4) > max_bytes) {
      left_out.push_back(path);
      continue;
    }
    auto content = context.read_file(path);
    if (!content.ok()) {
      if (content.status().code() == sdk::StatusCode::kNotFound) continue;
      return content.status();
    }
    if (binary(*content) || shown.size() + content->size() + path.size() + 16 > max_bytes) {
      left_out.push_back(path);
      continue;
    }
    shown += "--- " + path + " ---\n" + *content;
    if (!content->empty() && content->back() != '\n') shown += '\n';
  }
  if (!left_out.empty()) {
    shown += "--- not shown (too large or binary) ---\n";
    for (const auto& path : left_out)
      shown += path + "\n";
  }
  return shown;
}

}  // namespace samokoder::agent_common
