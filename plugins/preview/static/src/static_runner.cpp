// preview.static: previews of workspaces that are only files. No child process runs: start() finds the
// folder holding the site's index.html and answers kRunning at once with PreviewEndpoint::directory,
// and the kernel serves the files itself (fresh on every request, so files_changed has nothing to do).
//
// Thread-safety: one mutex guards the map of previews; nothing blocks under it (the filesystem is read
// before it is taken).
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/preview.hpp>

namespace samokoder::preview_static {
namespace {

namespace fs = std::filesystem;

struct Served {
  std::string directory;
  std::string log;  // one line per start
};

// The candidates in the order a build's output wins over its sources.
constexpr std::string_view kFolders[] = {"dist", "build", "public", ""};

// `dir` relative to the workspace, or kNotFound / kInvalidArgument. A symbolic link (the folder or its
// index.html) could point the kernel's file server anywhere on the machine, so it is refused rather
// than followed.
sdk::Result<fs::path> find_site(const fs::path& workspace) {
  for (const auto folder : kFolders) {
    const fs::path dir = folder.empty() ? workspace : workspace / folder;
    const std::string shown =
        folder.empty() ? std::string("index.html") : std::string(folder) + "/index.html";
    std::error_code ec;
    const auto dir_status = fs::symlink_status(dir, ec);
    if (ec || !fs::exists(dir_status)) continue;
    const auto index_status = fs::symlink_status(dir / "index.html", ec);
    if (ec || !fs::exists(index_status)) continue;
    if (fs::is_symlink(dir_status))
      return sdk::Status::invalid_argument(std::string(folder) +
                                           "/ is a symbolic link; the static runner serves only real folders "
                                           "inside the workspace");
    if (fs::is_symlink(index_status))
      return sdk::Status::invalid_argument(shown +
                                           " is a symbolic link; the static runner serves only real files");
    if (!fs::is_directory(dir_status) || !fs::is_regular_file(index_status)) continue;
    return dir;
  }
  return sdk::Status::not_found(
      "no static site in the workspace: looked for dist/index.html, build/index.html, public/index.html and "
      "index.html");
}

}  // namespace

class StaticRunner final : public sdk::PreviewRunner {
 public:
  sdk::Status init(sdk::HostServices& host) override {
    host_ = &host;
    const auto& config = host.config();
    if (!config.is_null() && (!config.is_object() || !config.empty()))
      return sdk::Status::invalid_argument("preview.static takes no config keys");
    return {};
  }

  sdk::Result<sdk::PreviewStatus> start(const sdk::PreviewSpec& spec) override {
    if (spec.project_id.empty()) return sdk::Status::invalid_argument("the preview spec has no project id");
    const fs::path workspace(spec.workspace_dir);
    std::error_code ec;
    if (!workspace.is_absolute() || !fs::is_directory(workspace, ec))
      return sdk::Status::invalid_argument("the workspace `" + spec.workspace_dir +
                                           "` is not an absolute path of a directory");
    auto site = find_site(workspace.lexically_normal());
    if (!site.ok()) return site.status();
    Served served;
    served.directory = site->string();
    const auto relative = site->lexically_relative(workspace.lexically_normal()).string();
    served.log = "serving " + (relative == "." ? std::string("the workspace root") : relative + "/") +
                 " (index.html) from " + served.directory + "\n";
    sdk::PreviewStatus status = running(served);
    {
      std::lock_guard lock(mutex_);
      served_[spec.project_id] = std::move(served);
      publish_locked();
    }
    return status;
  }

  sdk::Status stop(std::string_view project_id) override {
    std::lock_guard lock(mutex_);
    auto it = served_.find(project_id);
    if (it != served_.end()) served_.erase(it);
    publish_locked();
    return {};
  }

  sdk::Result<sdk::PreviewStatus> status(std::string_view project_id) override {
    std::lock_guard lock(mutex_);
    auto it = served_.find(project_id);
    if (it == served_.end()) return not_found(project_id);
    return running(it->second);
  }

  sdk::Result<sdk::PreviewLog> logs(std::string_view project_id, std::uint64_t after,
                                    std::size_t max_bytes) override {
    std::lock_guard lock(mutex_);
    auto it = served_.find(project_id);
    if (it == served_.end()) return not_found(project_id);
    const std::string& text = it->second.log;
    sdk::PreviewLog out;
    out.end_offset = text.size();
    if (after >= text.size()) return out;
    std::size_t from = static_cast<std::size_t>(after);
    if (text.size() - from > max_bytes) from = text.size() - max_bytes;
    out.truncated = from > after;
    out.text = text.substr(from);
    return out;
  }

  // The kernel serves the files from disk on every request: a change is visible without us.
  sdk::Status files_changed(std::string_view /*project_id*/,
                            const std::vector<std::string>& /*paths*/) override {
    return {};
  }

 private:
  static sdk::PreviewStatus running(const Served& served) {
    sdk::PreviewStatus status;
    status.state = sdk::PreviewState::kRunning;
    status.endpoint.directory = served.directory;
    status.detail = "serving files from " + served.directory;
    return status;
  }

  static sdk::Status not_found(std::string_view project_id) {
    return sdk::Status::not_found("no preview of project " + std::string(project_id) + " in this runner");
  }

  void publish_locked() {
    const sdk::MetricLabel labels[] = {{"state", "running"}};
    host_->gauge_set("previews", labels, static_cast<double>(served_.size()));
  }

  sdk::HostServices* host_ = nullptr;
  std::mutex mutex_;
  std::map<std::string, Served, std::less<>> served_;
};

}  // namespace samokoder::preview_static

SAMOKODER_PLUGIN(
    samokoder::preview_static::StaticRunner, "preview.static", "1.0.0",
    "Previews a workspace of static files (dist/, build/, public/ or index.html) without running code")
