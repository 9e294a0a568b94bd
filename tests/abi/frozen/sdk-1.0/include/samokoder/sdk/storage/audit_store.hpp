// AuditStore: the audit trail: who did what to what, appended at now() and never changed.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::audit(), and a transaction hands out the same store bound to that transaction. The
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

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

struct AuditEvent {
  std::string id;
  Timestamp occurred_at;
  std::string actor_id;  // user id; empty for the system or an anonymous caller
  std::string action;    // e.g. "auth.login_failed", "admin.user_updated", "plugin.reloaded"
  std::string target;    // what the action was about, e.g. a user id or plugin id; may be empty
  std::string source_address;
  nlohmann::json detail;  // free-form; never secrets
};

struct NewAuditEvent {
  std::string actor_id;
  std::string action;  // required
  std::string target;
  std::string source_address;
  nlohmann::json detail = nlohmann::json::object();
};

// Every set field narrows the result; since is inclusive, until exclusive.
struct AuditFilter {
  std::optional<std::string> actor_id;
  std::optional<std::string> action;  // exact match
  std::optional<Timestamp> since;
  std::optional<Timestamp> until;
};

class AuditStore {
 public:
  AuditStore() = default;
  AuditStore(const AuditStore&) = delete;
  AuditStore& operator=(const AuditStore&) = delete;
  virtual ~AuditStore() = default;

  virtual Result<AuditEvent> append_audit_event(const NewAuditEvent& event) = 0;
  // Order: occurred_at descending (newest first), then id descending.
  virtual Result<Page<AuditEvent>> list_audit_events(const AuditFilter& filter, const PageRequest& page) = 0;
};

}  // namespace samokoder::sdk
