// Confinement of user-supplied file paths to a project workspace (files API, exports).
//
// Two steps. normalize_relative_path() validates the text of an already percent-decoded path and
// returns its canonical form, refusing rather than repairing anything unusual:
//   - empty, longer than 4096 bytes, more than 64 components, a component over 255 bytes;
//   - absolute ("/etc"), a trailing '/', empty components ("a//b");
//   - '.' and '..' components (refused, not collapsed: "a/./b" and "a/../b" are errors, so one file
//     has exactly one accepted name and no path ever climbs);
//   - '\\' and ':' anywhere (Windows separators, drive letters "C:", NTFS streams "a:b");
//   - invalid UTF-8, C0/C1 control characters (NUL included) and DEL, bidirectional-text controls
//     (U+200E/F, U+202A..E, U+2066..9) that make a name display as something else;
//   - a space at the start or end of a component ("a /b", " a"), which looks like another name;
//   - a top-level name reserved for the kernel (".samokoder", compared case-insensitively because
//     exports may be unpacked on case-insensitive file systems).
//
// The file-system functions then walk the canonical path from the workspace root one component at a
// time with openat(O_NOFOLLOW | O_DIRECTORY), so every step is resolved relative to the directory the
// previous step actually opened, never by re-reading a path string. Symbolic links are refused
// wherever they are, pointing in or out (generated code and `npm install` create them; telling a safe
// one from an unsafe one is where escapes come from), and so are non-regular files and regular files
// with more than one hard link (a hard link made inside the workspace can name a file outside it).
//
// TOCTOU: open_workspace_file, write_workspace_file, read_workspace_file and remove_workspace_file
// act on the descriptors obtained during the walk, so swapping a component for a symlink after it was
// checked cannot redirect them; use them for all I/O. resolve_in_workspace only checks and returns a
// path string: anything that later opens that string walks it again and may see a different tree if
// something inside the workspace (a running preview, the executor) changes it meanwhile. It is meant
// for handing a location to code that runs with the workspace's own privileges (a child process),
// not for the kernel's own reads and writes.
//
// The workspace root itself is trusted (it comes from config), so symlinks in the root path are fine.
//
// Ownership: UniqueFd owns a file descriptor and closes it. Thread-safety: all functions are reentrant.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

inline constexpr std::size_t kMaxPathBytes = 4096;
inline constexpr std::size_t kMaxPathComponentBytes = 255;
inline constexpr std::size_t kMaxPathComponents = 64;
inline constexpr std::string_view kReservedWorkspaceName = ".samokoder";
inline constexpr std::size_t kDefaultMaxWorkspaceFileBytes = 16 * 1024 * 1024;

// The canonical relative path ("src/app.tsx"), or kInvalidArgument naming the rule broken.
sdk::Result<std::string> normalize_relative_path(std::string_view raw);

// Checks `normalized` (re-validated) under `root` and returns root / normalized.
// for_write=false: the target must exist and be a regular file (one link) or a directory.
// for_write=true: missing parent directories are created (0755); the target may be missing or a
// regular file with one link. Errors: kInvalidArgument (bad path), kNotFound, kPermissionDenied (a
// symlink, a special file, a multiply-linked file), kFailedPrecondition (a parent is not a directory,
// the target is a directory when writing), kUnavailable (an I/O error, with errno text).
sdk::Result<std::filesystem::path> resolve_in_workspace(const std::filesystem::path& root,
                                                        std::string_view normalized, bool for_write);

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// A read-only descriptor of the existing regular file at `normalized` (for streaming downloads and
// exports). Errors as resolve_in_workspace; a directory is kFailedPrecondition.
sdk::Result<UniqueFd> open_workspace_file(const std::filesystem::path& root, std::string_view normalized);

// The whole file, refusing files over `max_bytes` with kResourceExhausted.
sdk::Result<std::string> read_workspace_file(const std::filesystem::path& root, std::string_view normalized,
                                             std::size_t max_bytes = kDefaultMaxWorkspaceFileBytes);

// Replaces (or creates) the file atomically: writes a temporary file in the target's directory, fsyncs
// it and renames it over the target, so readers see the old or the new content, never a mix. Creates
// missing parents. Refuses when the target exists and is not a single-link regular file.
sdk::Status write_workspace_file(const std::filesystem::path& root, std::string_view normalized,
                                 std::string_view content);

// Removes the regular file at `normalized` (directories and symlinks are refused).
sdk::Status remove_workspace_file(const std::filesystem::path& root, std::string_view normalized);

// Removes the directories on the way to `normalized` that are empty, deepest first, up to (never
// including) `root`; stops at the first one that still holds something. Run after removing a file, so
// a folder whose last file went does not linger (and later clash with a file of its name). A component
// that is missing or not a real directory (a symlink is never followed) ends the walk there.
sdk::Status remove_empty_parents(const std::filesystem::path& root, std::string_view normalized);

}  // namespace samokoder::security
