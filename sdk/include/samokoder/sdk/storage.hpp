// Storage: the kernel's one persistence port. Users and credentials, sessions and refresh-token
// families, revoked token ids, login attempts, audit events, provider keys, personal access tokens,
// projects, content-addressed versioned files, runs with their steps and events, LLM requests and
// token usage, previews and notifications.
//
// Backends (storage.sqlite, storage.postgres) implement Storage and must behave identically: the
// conformance suite in tests/storage/ runs every test against every backend. The contract below is
// the whole contract; where a backend cannot meet it, that is a bug in the backend.
//
// The port is split into stores, one per aggregate, each in its own header under storage/ (users,
// sessions, token revocations, login attempts, audit, provider keys, access tokens, projects,
// files, runs, leases, LLM requests, previews, notifications), so a new query changes one small
// interface and kernel code asks only for the store it works on. Stores hands them out; Storage is
// the plugin kind: Stores plus health, transactions, schema and backup.
//
// Ownership: every record is a plain value owned by the caller. Arguments (string_views, spans,
// structs) only need to live for the duration of the call. The stores Storage hands out belong to
// the backend and live as long as the plugin instance; the Stores handed to a transaction function
// belong to the backend and are valid only inside that function, on that thread.
//
// Thread-safety: every method of Storage and of every store may be called from any thread, concurrently
// (never from an HTTP I/O thread: calls may block on disk or network). Inside Storage::transaction,
// use only the Stores passed to the function; calling the Storage object itself from inside the
// function is a programming error that backends report as kFailedPrecondition where they can detect
// it (and may otherwise deadlock).
//
// Exceptions: no method throws. A throw out of a transaction function is caught by the backend,
// rolls the transaction back and is returned as kInternal.
//
//
// Conventions shared by every store (ids, time, bytes, JSON, errors, lists, owner scoping, deletion
// cascades): storage/common.hpp.
//
// Compatibility: frozen since SDK 1.0 (new capability comes as new stores).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <samokoder/sdk/plugin.hpp>
#include <samokoder/sdk/storage/access_token_store.hpp>
#include <samokoder/sdk/storage/audit_store.hpp>
#include <samokoder/sdk/storage/common.hpp>
#include <samokoder/sdk/storage/file_store.hpp>
#include <samokoder/sdk/storage/lease_store.hpp>
#include <samokoder/sdk/storage/llm_request_store.hpp>
#include <samokoder/sdk/storage/login_attempt_store.hpp>
#include <samokoder/sdk/storage/notification_store.hpp>
#include <samokoder/sdk/storage/preview_store.hpp>
#include <samokoder/sdk/storage/project_store.hpp>
#include <samokoder/sdk/storage/provider_key_store.hpp>
#include <samokoder/sdk/storage/run_store.hpp>
#include <samokoder/sdk/storage/session_store.hpp>
#include <samokoder/sdk/storage/token_revocation_store.hpp>
#include <samokoder/sdk/storage/user_store.hpp>

namespace samokoder::sdk {

// ---- Schema ------------------------------------------------------------------------------------------

struct AppliedMigration {
  std::int64_t version = 0;
  std::string description;
  Timestamp applied_at;
};

struct SchemaStatus {
  std::int64_t current_version = 0;       // highest applied version; 0 for an empty database
  std::int64_t supported_version = 0;     // highest version this backend build knows
  std::vector<AppliedMigration> applied;  // ascending by version
};

struct StorageStats {
  std::int64_t users = 0;
  std::int64_t projects = 0;
  std::int64_t runs = 0;
  std::int64_t file_versions = 0;
  std::int64_t blobs = 0;
  std::int64_t blob_bytes = 0;
};

// ======================================================================================================
// The stores of one database. Storage is one (each call is its own atomic unit); a transaction
// function gets another, whose stores all share that transaction.
class Stores {
 public:
  Stores() = default;
  Stores(const Stores&) = delete;
  Stores& operator=(const Stores&) = delete;
  virtual ~Stores() = default;

  virtual UserStore& users() = 0;
  virtual SessionStore& sessions() = 0;
  virtual TokenRevocationStore& token_revocations() = 0;
  virtual LoginAttemptStore& login_attempts() = 0;
  virtual AuditStore& audit() = 0;
  virtual ProviderKeyStore& provider_keys() = 0;
  virtual AccessTokenStore& access_tokens() = 0;
  virtual ProjectStore& projects() = 0;
  virtual FileStore& files() = 0;
  virtual RunStore& runs() = 0;
  virtual LeaseStore& leases() = 0;
  virtual LlmRequestStore& llm_requests() = 0;
  virtual PreviewStore& previews() = 0;
  virtual NotificationStore& notifications() = 0;

  // The store of type S, for generic code that is handed a store type (the kernel's
  // context.store<ProjectStore>(...)).
  template <typename S>
  S& store() {
    if constexpr (std::is_same_v<S, UserStore>)
      return users();
    else if constexpr (std::is_same_v<S, SessionStore>)
      return sessions();
    else if constexpr (std::is_same_v<S, TokenRevocationStore>)
      return token_revocations();
    else if constexpr (std::is_same_v<S, LoginAttemptStore>)
      return login_attempts();
    else if constexpr (std::is_same_v<S, AuditStore>)
      return audit();
    else if constexpr (std::is_same_v<S, ProviderKeyStore>)
      return provider_keys();
    else if constexpr (std::is_same_v<S, AccessTokenStore>)
      return access_tokens();
    else if constexpr (std::is_same_v<S, ProjectStore>)
      return projects();
    else if constexpr (std::is_same_v<S, FileStore>)
      return files();
    else if constexpr (std::is_same_v<S, RunStore>)
      return runs();
    else if constexpr (std::is_same_v<S, LeaseStore>)
      return leases();
    else if constexpr (std::is_same_v<S, LlmRequestStore>)
      return llm_requests();
    else if constexpr (std::is_same_v<S, PreviewStore>)
      return previews();
    else {
      static_assert(std::is_same_v<S, NotificationStore>, "not a store of the storage port");
      return notifications();
    }
  }
};

// ======================================================================================================
// The storage plugin kind.
//
// Lifecycle: init(host) reads the plugin's config section, opens the database, and applies pending
// migrations (see migrate()), unless the config says "auto_migrate": false (every backend has that
// key; `samokoder db status` and `db migrate` use it): then the schema is left as it is and
// schema_status() shows what is pending. Either way it fails with kFailedPrecondition if the database
// was written by a newer schema than this backend supports, naming both versions. shutdown() closes
// every connection; calls still in flight at that point are the kernel's bug (it drains first).
class Storage : public Plugin, public Stores {
 public:
  // Cheap round trip to the database for /readyz: OK, or kUnavailable with the reason.
  virtual Status health() = 0;

  // Runs `fn` inside one transaction: all of its writes land together or none do. fn's non-OK Status
  // rolls back and is returned unchanged; a throw rolls back and returns kInternal; an OK return
  // commits (a failed commit is returned). Reads inside fn see fn's own writes; other callers see
  // none of them before the commit. Transactions are serializable: their outcome equals running them
  // one after another (a read-modify-write inside one never loses a concurrent update); a backend
  // that detects a conflict it cannot order fails the transaction with kAborted, and the caller may
  // run it again; fn is never re-run by the backend. Every guarantee a single operation documents
  // (unique keys, gapless event seq, one claimant per run, compare-and-set updates) holds inside.
  // Each call on a store of `stores` is atomic on its own: a failed call leaves no partial effect and fn may
  // go on (e.g. create, and on kAlreadyExists read instead). Use only `stores` inside fn (see "Thread-safety"
  // above); there are no nested transactions.
  virtual Status transaction(const std::function<Status(Stores& stores)>& fn) = 0;

  // Migrations: numbered 1..N, embedded in the backend, each applied in its own transaction together
  // with its row in schema_migrations(version, applied_at, description). Already applied versions are
  // skipped, so migrate() is idempotent; init() calls it. A database whose highest version is above
  // N is refused with kFailedPrecondition: "database schema version 7 is newer than this
  // storage.sqlite supports (5); upgrade Samokoder or restore a backup".
  virtual Result<SchemaStatus> schema_status() = 0;
  virtual Status migrate() = 0;

  // Writes a consistent copy of the whole database to `destination` (a file path) while the database
  // stays in use. kAlreadyExists if the destination exists, kNotFound if its parent directory does
  // not. Backends whose backups belong
  // to external tools (storage.postgres: pg_dump) return kUnimplemented and document the procedure.
  virtual Status backup(std::string_view destination) = 0;

  // Row counts of the whole database, for `samokoder db status` and metrics.
  virtual Result<StorageStats> stats() = 0;
};

}  // namespace samokoder::sdk
