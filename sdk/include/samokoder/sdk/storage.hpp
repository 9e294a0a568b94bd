// Storage: the kernel's one persistence port (users, sessions, projects, files, runs, events, ...).
//
// Draft for SDK 1.0: the storage issue defines the full data model and its operations here. After
// release the interface is frozen (new capability comes as Storage2).
//
// Thread-safety: every method is called concurrently from the kernel's worker threads (never from
// an HTTP I/O thread); implementations serialise what their database needs serialised.
#pragma once

#include <cstdint>
#include <string>

#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

class Storage : public Plugin {
 public:
  // Cheap liveness probe of the database, used by /readyz.
  virtual Status ping() = 0;
  // The schema version the database is at.
  virtual Result<std::int64_t> schema_version() = 0;
};

}  // namespace samokoder::sdk
