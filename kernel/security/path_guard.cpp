#include "security/path_guard.hpp"

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "security/encoding.hpp"
#include "security/random.hpp"

namespace samokoder::security {
namespace {

sdk::Status invalid(std::string_view reason) {
  return sdk::Status::invalid_argument("path " + std::string(reason));
}

bool is_control(char32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

bool is_bidi_control(char32_t cp) {
  return cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::vector<std::string_view> components(std::string_view normalized) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = normalized.find('/', start);
    parts.push_back(normalized.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// Why `name` under `dir` could not be opened as asked: a symlink, a non-directory, or an I/O error.
sdk::Status classify_open_failure(int dir, std::string_view shown, const std::string& name, int err) {
  struct stat st {};
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return sdk::Status::permission_denied("'" + std::string(shown) + "' is a symbolic link");
    if (err == ENOTDIR && !S_ISDIR(st.st_mode)) {
      return sdk::Status::failed_precondition("'" + std::string(shown) + "' is not a directory");
    }
  }
  if (err == ENOENT) return sdk::Status::not_found("'" + std::string(shown) + "' does not exist");
  if (err == EACCES || err == EPERM)
    return sdk::Status::permission_denied("'" + std::string(shown) + "' is not accessible");
  return sdk::Status::unavailable("cannot open '" + std::string(shown) + "': " + errno_text(err));
}

// The validated path split into the directory holding the target (opened) and the target's name.
struct Parent {
  UniqueFd dir;
  std::string leaf;
  std::string normalized;
};

// Walks every component but the last from `root`, never following a symlink, creating missing
// directories when `create` is set.
sdk::Result<Parent> open_parent(const std::filesystem::path& root, std::string_view path, bool create) {
  auto normalized = normalize_relative_path(path);
  if (!normalized.ok()) return normalized.status();
  if (*normalized != path) return sdk::Status::invalid_argument("path is not in canonical form");
  UniqueFd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return sdk::Status::unavailable("workspace root is not an accessible directory");
  const auto parts = components(*normalized);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string name(parts[i]);
    const std::string_view shown =
        std::string_view(*normalized).substr(0, parts[i].data() + parts[i].size() - normalized->data());
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd next(::openat(dir.get(), name.c_str(), flags));
    if (!next.valid() && errno == ENOENT && create) {
      if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return sdk::Status::unavailable("cannot create directory '" + std::string(shown) +
                                        "': " + errno_text(errno));
      }
      // Whatever is there now (ours, or a racing creator's) is checked exactly like a found entry.
      next = UniqueFd(::openat(dir.get(), name.c_str(), flags));
    }
    if (!next.valid()) return classify_open_failure(dir.get(), shown, name, errno);
    dir = std::move(next);
  }
  return Parent{std::move(dir), std::string(parts.back()), std::move(normalized).value()};
}

// Refuses anything but a regular file with one link (or, when allowed, a directory).
sdk::Status check_target(const struct stat& st, std::string_view shown, bool allow_directory) {
  if (S_ISLNK(st.st_mode))
    return sdk::Status::permission_denied("'" + std::string(shown) + "' is a symbolic link");
  if (S_ISDIR(st.st_mode)) {
    if (allow_directory) return {};
    return sdk::Status::failed_precondition("'" + std::string(shown) + "' is a directory");
  }
  if (!S_ISREG(st.st_mode)) {
    return sdk::Status::permission_denied("'" + std::string(shown) + "' is not a regular file");
  }
  if (st.st_nlink > 1) {
    return sdk::Status::permission_denied("'" + std::string(shown) + "' has more than one hard link");
  }
  return {};
}

sdk::Status write_all(int fd, std::string_view content) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sdk::Status::unavailable("write failed: " + errno_text(errno));
    }
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

sdk::Result<std::string> normalize_relative_path(std::string_view raw) {
  if (raw.empty()) return invalid("is empty");
  if (raw.size() > kMaxPathBytes)
    return invalid("is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  if (raw.front() == '/') return invalid("must be relative (it starts with '/')");
  if (raw.back() == '/') return invalid("must not end with '/'");
  std::size_t pos = 0;
  while (pos < raw.size()) {
    const auto cp = utf8_next(raw, pos);
    if (!cp) return invalid("is not valid UTF-8");
    if (is_control(*cp)) return invalid("contains a control character");
    if (is_bidi_control(*cp)) return invalid("contains a bidirectional-text control character");
    if (*cp == '\\') return invalid("contains a backslash");
    if (*cp == ':') return invalid("contains ':' (drive letters and alternate streams are not allowed)");
  }
  const auto parts = components(raw);
  if (parts.size() > kMaxPathComponents) {
    return invalid("has more than " + std::to_string(kMaxPathComponents) + " components");
  }
  for (const std::string_view part : parts) {
    if (part.empty()) return invalid("has an empty component ('//')");
    if (part == ".") return invalid("has a '.' component");
    if (part == "..") return invalid("has a '..' component");
    if (part.size() > kMaxPathComponentBytes) {
      return invalid("has a component longer than " + std::to_string(kMaxPathComponentBytes) + " bytes");
    }
    if (part.front() == ' ' || part.back() == ' ')
      return invalid("has a component starting or ending with a space");
  }
  if (iequals_ascii(parts.front(), kReservedWorkspaceName)) {
    return invalid("uses the reserved name '" + std::string(kReservedWorkspaceName) + "'");
  }
  return std::string(raw);
}

sdk::Result<std::filesystem::path> resolve_in_workspace(const std::filesystem::path& root,
                                                        std::string_view normalized, bool for_write) {
  auto parent = open_parent(root, normalized, for_write);
  if (!parent.ok()) return parent.status();
  struct stat st {};
  if (::fstatat(parent->dir.get(), parent->leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    const int err = errno;
    if (err == ENOENT && for_write) return root / parent->normalized;
    return classify_open_failure(parent->dir.get(), parent->normalized, parent->leaf, err);
  }
  SAMOKODER_RETURN_IF_ERROR(check_target(st, parent->normalized, !for_write));
  return root / parent->normalized;
}

sdk::Result<UniqueFd> open_workspace_file(const std::filesystem::path& root, std::string_view normalized) {
  auto parent = open_parent(root, normalized, false);
  if (!parent.ok()) return parent.status();
  // O_NONBLOCK so that a FIFO planted under the name cannot block the opening thread; fstat refuses it.
  UniqueFd fd(::openat(parent->dir.get(), parent->leaf.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return classify_open_failure(parent->dir.get(), parent->normalized, parent->leaf, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return sdk::Status::unavailable("cannot stat an opened file: " + errno_text(errno));
  SAMOKODER_RETURN_IF_ERROR(check_target(st, parent->normalized, false));
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return sdk::Status::unavailable("cannot reset file flags: " + errno_text(errno));
  }
  return fd;
}

sdk::Result<std::string> read_workspace_file(const std::filesystem::path& root, std::string_view normalized,
                                             std::size_t max_bytes) {
  auto fd = open_workspace_file(root, normalized);
  if (!fd.ok()) return fd.status();
  std::string out;
  char buffer[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd->get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sdk::Status::unavailable("read failed: " + errno_text(errno));
    }
    if (n == 0) return out;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      return sdk::Status::resource_exhausted("file is larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

sdk::Status write_workspace_file(const std::filesystem::path& root, std::string_view normalized,
                                 std::string_view content) {
  auto parent = open_parent(root, normalized, true);
  if (!parent.ok()) return parent.status();
  const int dir = parent->dir.get();
  struct stat st {};
  if (::fstatat(dir, parent->leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    SAMOKODER_RETURN_IF_ERROR(check_target(st, parent->normalized, false));
  } else if (errno != ENOENT) {
    return classify_open_failure(dir, parent->normalized, parent->leaf, errno);
  }
  auto suffix = random_hex_id(8);
  if (!suffix.ok()) return suffix.status();
  const std::string temp = ".samokoder-tmp-" + *suffix;
  UniqueFd fd(::openat(dir, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd.valid()) return sdk::Status::unavailable("cannot create a temporary file: " + errno_text(errno));
  sdk::Status status = write_all(fd.get(), content);
  if (status.ok() && ::fsync(fd.get()) != 0)
    status = sdk::Status::unavailable("fsync failed: " + errno_text(errno));
  if (status.ok() && ::close(fd.release()) != 0)
    status = sdk::Status::unavailable("close failed: " + errno_text(errno));
  // renameat replaces the directory entry itself: if the name became a symlink meanwhile, the link is
  // replaced, never followed.
  if (status.ok() && ::renameat(dir, temp.c_str(), dir, parent->leaf.c_str()) != 0) {
    status = errno == EISDIR ? sdk::Status::failed_precondition("'" + parent->normalized + "' is a directory")
                             : sdk::Status::unavailable("rename failed: " + errno_text(errno));
  }
  if (!status.ok()) ::unlinkat(dir, temp.c_str(), 0);
  return status;
}

sdk::Status remove_workspace_file(const std::filesystem::path& root, std::string_view normalized) {
  auto parent = open_parent(root, normalized, false);
  if (!parent.ok()) return parent.status();
  const int dir = parent->dir.get();
  struct stat st {};
  if (::fstatat(dir, parent->leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return classify_open_failure(dir, parent->normalized, parent->leaf, errno);
  }
  if (S_ISLNK(st.st_mode))
    return sdk::Status::permission_denied("'" + parent->normalized + "' is a symbolic link");
  if (S_ISDIR(st.st_mode))
    return sdk::Status::failed_precondition("'" + parent->normalized + "' is a directory");
  // unlinkat removes the entry without following it, whatever it has become since the check.
  if (::unlinkat(dir, parent->leaf.c_str(), 0) != 0) {
    return classify_open_failure(dir, parent->normalized, parent->leaf, errno);
  }
  return {};
}

sdk::Status remove_empty_parents(const std::filesystem::path& root, std::string_view normalized) {
  auto checked = normalize_relative_path(normalized);
  if (!checked.ok()) return checked.status();
  if (*checked != normalized) return sdk::Status::invalid_argument("path is not in canonical form");
  const auto parts = components(*checked);
  std::vector<UniqueFd> dirs;  // dirs[i] holds parts[i]
  dirs.emplace_back(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirs.back().valid()) return sdk::Status::unavailable("workspace root is not an accessible directory");
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    UniqueFd next(::openat(dirs.back().get(), std::string(parts[i]).c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) break;
    dirs.push_back(std::move(next));
  }
  // dirs.size() - 1 directories were opened below the root; remove them deepest first. unlinkat with
  // AT_REMOVEDIR never follows a name and refuses a directory that is not empty.
  for (std::size_t i = dirs.size() - 1; i-- > 0;) {
    if (::unlinkat(dirs[i].get(), std::string(parts[i]).c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT)
      continue;
    if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR) return {};
    return sdk::Status::unavailable("cannot remove the empty directory '" + std::string(parts[i]) +
                                    "': " + errno_text(errno));
  }
  return {};
}

}  // namespace samokoder::security
