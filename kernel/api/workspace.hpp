// Workspaces: each project's working copy, one directory per project under the configured
// workspace_root, where commands and previews run. Storage holds the versioned truth (every file
// version, content-addressed); the workspace mirrors the current tree so tools can work on plain files.
//
// Directory names come from project ids only (ids storage issued, re-checked here to be 1..64 of
// [A-Za-z0-9_-]), never from user input, and are created 0700 under a root that is created 0700 too.
// File operations take a path already accepted by security::normalize_relative_path and go through
// the fd-based functions of security/path_guard.hpp, so a symlink, a special file or a hard link planted
// inside a workspace (by a command, a dependency install, a preview) can neither be followed nor
// redirect a write.
//
// Removing a workspace walks it with openat/unlinkat and never follows a symlink, so a link pointing
// outside is removed as a link and whatever it points at survives.
//
// A workspace may have an observer (Observer): it hears of every file write_file and remove_file
// changed, after the change, so a running preview can pick it up (previews::PreviewManager).
//
// Ownership: a plain value holding the root path and the observer. Thread-safety: all methods are safe to
// call concurrently; concurrent writes to one file leave one of the contents in place (each write is an
// atomic rename), and the caller (the files API) orders them against storage.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::api {

class Workspaces {
 public:
  // Told (project id, normalized path) after a file changed; must not block.
  using Observer = std::function<void(std::string_view project_id, std::string_view path)>;

  explicit Workspaces(std::filesystem::path root, Observer observer = {})
      : root_(std::move(root)), observer_(std::move(observer)) {}

  const std::filesystem::path& root() const noexcept { return root_; }

  // The project's directory (it may not exist yet). kInternal when `project_id` is not an id shape,
  // since ids reach here from storage, never from a request.
  sdk::Result<std::filesystem::path> directory(std::string_view project_id) const;

  // Creates the root (and missing parents) and the project's directory, both 0700; idempotent. A
  // project directory that exists as anything but a real directory is kFailedPrecondition.
  sdk::Status create(std::string_view project_id) const;

  // Deletes the project's directory and everything in it without following symlinks; OK when it does
  // not exist.
  sdk::Status remove(std::string_view project_id) const;

  // Checks that `path` names a place a file can be written (for_write) or read in the workspace:
  // kPermissionDenied for a symlink, special or multiply-linked file on the way; for writes
  // kFailedPrecondition for a directory where the file would go or a file where a directory is
  // needed. A missing target (and, for reads, a path through a file) is OK: nothing is there. For
  // writes this creates missing parent directories, which the write would do anyway.
  sdk::Status check_path(std::string_view project_id, std::string_view path, bool for_write) const;

  // Atomically replaces (or creates) the file; creates the project directory when missing.
  sdk::Status write_file(std::string_view project_id, std::string_view path, std::string_view content) const;

  // Removes the file, then the folders on its path that this leaves empty (a later file may take a
  // folder's name); OK when the file is already gone.
  sdk::Status remove_file(std::string_view project_id, std::string_view path) const;

 private:
  void changed(std::string_view project_id, std::string_view path) const {
    if (observer_) observer_(project_id, path);
  }

  std::filesystem::path root_;
  Observer observer_;
};

}  // namespace samokoder::api
