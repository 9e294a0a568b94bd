// ProjectStore: the projects users own; their files, runs and previews hang below them.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::projects(), and a transaction hands out the same store bound to that transaction. The
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

struct Project {
  std::string id;
  std::string owner_id;
  std::string name;
  std::string description;
  Timestamp created_at;
  Timestamp updated_at;  // any change to the project row (not to its files or runs)
};

struct NewProject {
  std::string owner_id;  // kNotFound if the user does not exist
  std::string name;      // required; not unique
  std::string description;
};

struct ProjectUpdate {
  std::optional<std::string> name;  // must not be empty when set
  std::optional<std::string> description;
};

class ProjectStore {
 public:
  ProjectStore() = default;
  ProjectStore(const ProjectStore&) = delete;
  ProjectStore& operator=(const ProjectStore&) = delete;
  virtual ~ProjectStore() = default;

  virtual Result<Project> create_project(const NewProject& project) = 0;
  virtual Result<Project> get_project(std::string_view owner_id, std::string_view project_id) = 0;
  // Order: created_at descending (newest first), then id descending.
  virtual Result<Page<Project>> list_projects(std::string_view owner_id, const PageRequest& page) = 0;
  virtual Result<Project> update_project(std::string_view owner_id, std::string_view project_id,
                                         const ProjectUpdate& update) = 0;
  // Deletes the project and everything below it (see "Deletion cascades").
  virtual Status delete_project(std::string_view owner_id, std::string_view project_id) = 0;
};

}  // namespace samokoder::sdk
