#include "api/workspace.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "security/path_guard.hpp"

namespace samokoder::api {
namespace {

// Deeper trees than this are not removed (each level holds a descriptor while it is emptied).
constexpr int kMaxRemoveDepth = 256;

bool valid_project_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// Removes `name` under the directory `parent` and, for a directory, everything below it. Symlinks are
// unlinked, never followed; directories are opened with O_NOFOLLOW relative to their parent's
// descriptor, so a directory swapped for a link mid-walk is unlinked as a link.
sdk::Status remove_entry(int parent, const std::string& name, int depth) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return sdk::Status::unavailable("cannot inspect '" + name + "': " + errno_text(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) {
      return sdk::Status::unavailable("cannot remove '" + name + "': " + errno_text(errno));
    }
    return {};
  }
  if (depth > kMaxRemoveDepth) {
    return sdk::Status::failed_precondition("directory tree is deeper than " +
                                            std::to_string(kMaxRemoveDepth));
  }
  const int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    if (errno == ELOOP || errno == ENOTDIR) return remove_entry(parent, name, depth);  // replaced meanwhile
    return sdk::Status::unavailable("cannot open '" + name + "': " + errno_text(errno));
  }
  // A command may have left a directory without write or search permission; we own it, so restore.
  ::fchmod(fd, S_IRWXU);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(fd);
    return sdk::Status::unavailable("cannot read '" + name + "': " + errno_text(err));
  }
  std::vector<std::string> children;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view child = entry->d_name;
    if (child != "." && child != "..") children.emplace_back(child);
  }
  sdk::Status status;
  if (errno != 0) status = sdk::Status::unavailable("cannot list '" + name + "': " + errno_text(errno));
  for (const auto& child : children) {
    if (!status.ok()) break;
    status = remove_entry(::dirfd(dir), child, depth + 1);
  }
  ::closedir(dir);
  if (!status.ok()) return status;
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return sdk::Status::unavailable("cannot remove directory '" + name + "': " + errno_text(errno));
  }
  return {};
}

// OK when the project directory exists as a real directory, kNotFound when it is missing,
// kFailedPrecondition when something else holds its name.
sdk::Status check_project_directory(const std::filesystem::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return sdk::Status::not_found("workspace does not exist");
    return sdk::Status::unavailable("cannot inspect the workspace: " + errno_text(errno));
  }
  if (!S_ISDIR(st.st_mode)) return sdk::Status::failed_precondition("workspace is not a directory");
  return {};
}

}  // namespace

sdk::Result<std::filesystem::path> Workspaces::directory(std::string_view project_id) const {
  if (!valid_project_id(project_id))
    return sdk::Status::internal("project id is not usable as a directory name");
  return root_ / std::string(project_id);
}

sdk::Status Workspaces::create(std::string_view project_id) const {
  auto dir = directory(project_id);
  if (!dir.ok()) return dir.status();
  // One mkdir in the common case (it runs on every project created): the root is only looked at
  // when it is missing, and a directory mkdir just made needs no check that it is one.
  if (::mkdir(dir->c_str(), S_IRWXU) == 0) return {};
  if (errno == ENOENT) {
    std::error_code ec;
    std::filesystem::create_directories(root_, ec);
    if (ec) return sdk::Status::unavailable("cannot create the workspace root: " + ec.message());
    std::filesystem::permissions(root_, std::filesystem::perms::owner_all, ec);
    if (ec) return sdk::Status::unavailable("cannot restrict the workspace root: " + ec.message());
    if (::mkdir(dir->c_str(), S_IRWXU) == 0) return {};
  }
  if (errno != EEXIST) return sdk::Status::unavailable("cannot create the workspace: " + errno_text(errno));
  return check_project_directory(*dir);
}

sdk::Status Workspaces::remove(std::string_view project_id) const {
  auto dir = directory(project_id);
  if (!dir.ok()) return dir.status();
  const int root = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    if (errno == ENOENT) return {};
    return sdk::Status::unavailable("cannot open the workspace root: " + errno_text(errno));
  }
  sdk::Status status = remove_entry(root, std::string(project_id), 0);
  ::close(root);
  return status;
}

sdk::Status Workspaces::check_path(std::string_view project_id, std::string_view path, bool for_write) const {
  auto dir = directory(project_id);
  if (!dir.ok()) return dir.status();
  if (for_write) {
    SAMOKODER_RETURN_IF_ERROR(create(project_id));
  } else if (auto status = check_project_directory(*dir); !status.ok()) {
    return status.code() == sdk::StatusCode::kNotFound ? sdk::Status() : status;
  }
  auto resolved = security::resolve_in_workspace(*dir, path, for_write);
  if (resolved.ok()) return {};
  const sdk::StatusCode code = resolved.status().code();
  // A missing name, or for a read a file where a directory would be, only means nothing is there.
  if (code == sdk::StatusCode::kNotFound || (!for_write && code == sdk::StatusCode::kFailedPrecondition))
    return {};
  return resolved.status();
}

sdk::Status Workspaces::write_file(std::string_view project_id, std::string_view path,
                                   std::string_view content) const {
  SAMOKODER_RETURN_IF_ERROR(create(project_id));
  auto dir = directory(project_id);
  if (!dir.ok()) return dir.status();
  SAMOKODER_RETURN_IF_ERROR(security::write_workspace_file(*dir, path, content));
  changed(project_id, path);
  return {};
}

sdk::Status Workspaces::remove_file(std::string_view project_id, std::string_view path) const {
  auto dir = directory(project_id);
  if (!dir.ok()) return dir.status();
  if (auto status = check_project_directory(*dir); !status.ok()) {
    return status.code() == sdk::StatusCode::kNotFound ? sdk::Status() : status;
  }
  sdk::Status status = security::remove_workspace_file(*dir, path);
  if (!status.ok() && status.code() != sdk::StatusCode::kNotFound) return status;
  if (status.ok()) changed(project_id, path);
  return security::remove_empty_parents(*dir, path);
}

}  // namespace samokoder::api
