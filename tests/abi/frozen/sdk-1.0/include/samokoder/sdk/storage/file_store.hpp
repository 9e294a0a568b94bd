// FileStore: project files: content-addressed blobs and an append-only version history per path.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::files(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

// A user's current files, across their projects (Storage::usage_of_owner).
struct StorageUsage {
  std::int64_t files = 0;
  std::int64_t bytes = 0;
};

// File paths: relative, '/'-separated, 1..4096 bytes, no NUL, no leading '/', no empty, "." or ".."
// segment (so no trailing '/'). Anything else is kInvalidArgument. The kernel normalises user input
// before it gets here; storage only refuses what is not normal.
//
// Contents are stored once per distinct SHA-256 (content addressing) and shared by every version,
// path and project that has the same bytes. Each change to a path appends a version: 1, 2, 3, ...
// per (project, path); a delete appends a tombstone version.
struct FileVersion {
  std::string project_id;
  std::string path;
  std::int64_t version = 0;
  std::string content_hash;  // lowercase hex SHA-256 of the content; empty for a tombstone
  std::int64_t size = 0;     // bytes; 0 for a tombstone
  bool deleted = false;      // a tombstone
  Timestamp created_at;
  std::string run_step_id;  // the run step that wrote it; empty for a user's edit
};

struct FileContent {
  FileVersion version;
  std::string content;  // bytes
};

class FileStore {
 public:
  FileStore() = default;
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;
  virtual ~FileStore() = default;

  // Writes a new version of `path`. If the newest version is live and has the same content, nothing
  // is written and that version is returned. run_step_id is empty for a user's edit, else a step of
  // a run of this project (kNotFound otherwise).
  virtual Result<FileVersion> put_file(std::string_view owner_id, std::string_view project_id,
                                       std::string_view path, std::string_view content,
                                       std::string_view run_step_id) = 0;
  // Appends a tombstone; kNotFound if the path has no live version.
  virtual Result<FileVersion> delete_file(std::string_view owner_id, std::string_view project_id,
                                          std::string_view path, std::string_view run_step_id) = 0;
  // The newest version when `version` is empty, else that version. kNotFound if the path or version
  // does not exist or the version read is a tombstone.
  virtual Result<FileContent> get_file(std::string_view owner_id, std::string_view project_id,
                                       std::string_view path, std::optional<std::int64_t> version) = 0;
  // The current tree: the newest version of every live path that starts with `prefix` (bytewise;
  // empty for all). Order: path ascending, bytewise.
  virtual Result<Page<FileVersion>> list_files(std::string_view owner_id, std::string_view project_id,
                                               std::string_view prefix, const PageRequest& page) = 0;
  // What one user's projects hold now, for quotas: live files (the newest version of each path, not a
  // tombstone) and the sum of their sizes, across every project the user owns. Versions kept in history
  // are not counted. An unknown user holds nothing.
  virtual Result<StorageUsage> usage_of_owner(std::string_view owner_id) = 0;
  // Every version of one path, tombstones included. Order: version descending (newest first).
  // kNotFound if the path never existed in the project.
  virtual Result<Page<FileVersion>> list_file_versions(std::string_view owner_id, std::string_view project_id,
                                                       std::string_view path, const PageRequest& page) = 0;
  // Deletes blobs no file version references any more; returns how many.
  virtual Result<std::int64_t> purge_unreferenced_blobs() = 0;
};

}  // namespace samokoder::sdk
