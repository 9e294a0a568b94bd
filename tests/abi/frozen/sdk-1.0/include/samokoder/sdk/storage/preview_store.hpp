// PreviewStore: live previews: at most one per project, with the node, port and process that serve it.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::previews(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

// At most one per project.
struct Preview {
  std::string project_id;
  std::string owner_id;
  std::string state;    // "starting", "running", "stopped", "failed"; not interpreted
  std::string node_id;  // the kernel node that runs it
  std::int32_t port = 0;
  std::int64_t pid = 0;
  Timestamp started_at;
  Timestamp expires_at;
  Timestamp updated_at;
};

struct PreviewUpsert {
  std::string project_id;  // kNotFound if not a project of the owner
  std::string state;       // required
  std::string node_id;
  std::int32_t port = 0;
  std::int64_t pid = 0;
  Timestamp started_at;
  Timestamp expires_at;
};

class PreviewStore {
 public:
  PreviewStore() = default;
  PreviewStore(const PreviewStore&) = delete;
  PreviewStore& operator=(const PreviewStore&) = delete;
  virtual ~PreviewStore() = default;

  // Inserts or replaces the project's preview.
  virtual Result<Preview> upsert_preview(std::string_view owner_id, const PreviewUpsert& preview) = 0;
  virtual Result<Preview> get_preview(std::string_view owner_id, std::string_view project_id) = 0;
  virtual Status delete_preview(std::string_view owner_id, std::string_view project_id) = 0;
  // Every preview of every user, for the kernel's reaper and restart cleanup. Order: project_id.
  virtual Result<Page<Preview>> list_previews(const PageRequest& page) = 0;
};

}  // namespace samokoder::sdk
