// LeaseStore: named leases: one holder at a time for a cluster-wide chore (the kernel's housekeeping pass).
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::leases(), and a transaction hands out the same store bound to that transaction. The
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

class LeaseStore {
 public:
  LeaseStore() = default;
  LeaseStore(const LeaseStore&) = delete;
  LeaseStore& operator=(const LeaseStore&) = delete;
  virtual ~LeaseStore() = default;

  // Takes the lease `name` for `holder` until `until` when nobody holds it, the holder's lease expired
  // (expires_at <= now()), or `holder` holds it already (then it is extended); returns whether `holder`
  // holds it after the call. Safe across nodes: of concurrent callers, one holds an unexpired lease at a
  // time. kInvalidArgument for an empty name or holder.
  virtual Result<bool> try_acquire_lease(std::string_view name, std::string_view holder, Timestamp until) = 0;
  // Gives the lease up so that the next caller gets it at once; kFailedPrecondition if `holder` does not
  // hold it (never took it, or another holder took it over after it expired).
  virtual Status release_lease(std::string_view name, std::string_view holder) = 0;
};

}  // namespace samokoder::sdk
