// Storage: the kernel's one persistence port. Users and credentials, sessions and refresh-token
// families, revoked token ids, login attempts, audit events, provider keys, personal access tokens,
// projects, content-addressed versioned files, runs with their steps and events, LLM requests and
// token usage, previews and notifications.
//
// Backends (storage.sqlite, storage.postgres) implement Storage and must behave identically: the
// conformance suite in tests/storage/ runs every test against every backend. The contract below is
// the whole contract; where a backend cannot meet it, that is a bug in the backend.
//
// Ownership: every record is a plain value owned by the caller. Arguments (string_views, spans,
// structs) only need to live for the duration of the call. The StorageOps handed to a transaction
// function belongs to the backend and is valid only inside that function, on that thread.
//
// Thread-safety: every method of Storage and StorageOps may be called from any thread, concurrently
// (never from an HTTP I/O thread: calls may block on disk or network). Inside Storage::transaction,
// use only the StorageOps passed to the function; calling the Storage object itself from inside the
// function is a programming error that backends report as kFailedPrecondition where they can detect
// it (and may otherwise deadlock).
//
// Exceptions: no method throws. A throw out of a transaction function is caught by the backend,
// rolls the transaction back and is returned as kInternal.
//
// ---------------------------------------------------------------------------------------------------
// Conventions shared by every method
//
// Ids: every record id the backend creates is an opaque string of 32 lowercase hex digits (128 bits,
//   UUIDv7 layout without dashes: 48-bit Unix milliseconds, then random bits), so ids are not
//   enumerable and look the same on every backend. Callers never parse them. A string that is not an
//   id issued by this database (wrong length, not hex, unknown) yields kNotFound, never
//   kInvalidArgument, so a URL segment can be passed straight through.
//
// Time: Timestamp is std::chrono::system_clock::time_point. Backends store microseconds: every
//   timestamp read back equals the written one floored to microseconds (see to_storage_precision).
//   Timestamps the backend sets itself (created_at, updated_at, occurred_at, "now" in expiry checks)
//   come from HostServices::now(), so the kernel's (and the tests') clock governs them.
//
// Bytes: std::string is used for binary data (file content, ciphertext, nonce); it may hold NULs.
//   Every other string (text) must be UTF-8 without NUL, else kInvalidArgument.
//
// JSON: any nlohmann::json value round-trips by value (operator==); object key order is not kept.
//
// Errors (StatusCode):
//   kNotFound           the record does not exist, or belongs to another owner (the two are
//                       indistinguishable on purpose), or a referenced parent does not exist
//   kAlreadyExists      a unique key collided (user email, refresh/access token hash, ...)
//   kInvalidArgument    malformed input: empty required field, text that is not UTF-8 without NUL
//                       (also inside JSON), page limit outside 1..kMaxPageLimit,
//                       a cursor this backend did not issue for this list, a malformed file path
//   kFailedPrecondition the record is not in a state that allows the call (rotating an already
//                       rotated refresh token, an expected run state that does not match, a run lease
//                       held by another node, re-entrant use inside a transaction, a schema newer
//                       than the backend)
//   kAborted            a concurrency conflict the backend could not resolve (e.g. a PostgreSQL
//                       serialization failure inside a transaction); the caller may retry the whole
//                       operation. Single calls outside transactions are retried by the backend.
//   kUnavailable        the database cannot be reached or is busy beyond its configured timeout;
//                       backends never surface SQLite's "database is locked" as anything else
//   kUnimplemented      only from backup() on backends that delegate backups to external tools
//   kDataLoss           the database is corrupt
//   kInternal           anything else; the message says what, the backend logs the details
//
// Lists: paginated lists take a PageRequest and return a Page. Pagination is keyset-based: pages
//   never overlap and never skip a record that existed when the first page was read and still exists,
//   even while records are inserted concurrently. next_cursor is empty exactly when no further
//   record existed at the time of the query. Each list documents its order. Cursors are opaque,
//   backend-specific, and only valid for the list (and arguments) that issued them.
//
// Owner scoping: every call about a project or something inside it (files, runs, steps, events,
//   previews) takes the owner's user id and matches it in the query itself, so one user can never
//   read, change, delete or list another user's data: a mismatch is kNotFound.
//
// Deletion cascades: deleting a user deletes everything the user owns (sessions and refresh tokens,
//   provider keys, access tokens, projects and all below them, LLM request records, notifications);
//   login attempts and audit events outlive it (audit events keep the actor id as written). Deleting
//   a project deletes its file versions, runs, steps, events and preview, and empties project_id and
//   run_id of its LLM request records (usage totals survive); deleting a run step empties the
//   run_step_id of file versions it wrote. Blobs no version references any more are reclaimed by
//   purge_unreferenced_blobs().
//
// Compatibility: a draft until SDK 1.0 is released; then frozen (new capability comes as Storage2).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

using Timestamp = std::chrono::system_clock::time_point;

// The precision every backend stores timestamps with.
constexpr Timestamp to_storage_precision(Timestamp t) noexcept {
  return Timestamp(std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()));
}

// ---- Pagination ------------------------------------------------------------------------------------

inline constexpr std::uint32_t kMaxPageLimit = 500;

struct PageRequest {
  std::uint32_t limit = 50;  // 1..kMaxPageLimit, else kInvalidArgument
  std::string cursor;        // empty: the first page; else a next_cursor from the same list
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;  // empty when there is nothing after this page
};

// ---- Users and credentials -----------------------------------------------------------------------

struct User {
  std::string id;
  std::string email;          // as registered; unique ignoring ASCII case
  std::string password_hash;  // PHC string (Argon2id, bcrypt); empty for accounts without a password
  bool is_admin = false;
  std::string tier;  // "free", "starter", "pro", "team"; storage does not interpret it
  bool disabled = false;
  std::optional<Timestamp> locked_until;  // login refused before this time (lockout)
  Timestamp created_at;
  Timestamp updated_at;
};

struct NewUser {
  std::string email;  // required; kAlreadyExists if another user has it ignoring ASCII case
  std::string password_hash;
  bool is_admin = false;
  std::string tier = "free";  // required
};

// Fields left empty are not changed.
struct UserUpdate {
  std::optional<std::string> email;  // kAlreadyExists on collision
  std::optional<std::string> password_hash;
  std::optional<bool> is_admin;
  std::optional<std::string> tier;
  std::optional<bool> disabled;
  std::optional<std::optional<Timestamp>> locked_until;  // an empty inner value clears the lock
};

// ---- Sessions, refresh-token families, revocation --------------------------------------------------

// A session is one login. It is also the refresh-token family: every refresh token issued for the
// login, rotated one into the next, belongs to it, and revoking the session revokes them all.
struct Session {
  std::string id;  // the family id
  std::string user_id;
  std::string source_address;
  std::string user_agent;
  Timestamp created_at;
  Timestamp expires_at;  // absolute end of the family: no token of it is valid after this
  std::optional<Timestamp> revoked_at;
  std::string revoke_reason;  // e.g. "logout", "refresh_token_reuse", "password_changed"
};

struct NewSession {
  std::string user_id;  // kNotFound if the user does not exist
  std::string source_address;
  std::string user_agent;
  Timestamp expires_at;
};

struct RefreshToken {
  std::string token_hash;  // the key; the token itself is never stored
  std::string session_id;
  std::string user_id;
  Timestamp created_at;
  Timestamp expires_at;
  bool rotated = false;  // exchanged for its successor; presenting it again is reuse
  std::optional<Timestamp> rotated_at;
  bool revoked = false;  // its session is revoked
};

struct NewRefreshToken {
  std::string session_id;  // kNotFound if the session does not exist
  std::string token_hash;  // required; kAlreadyExists if already stored
  Timestamp expires_at;
};

// ---- Login attempts ----------------------------------------------------------------------------------

struct LoginAttempt {
  std::string subject;  // the account key tried, e.g. the email; compared ignoring ASCII case
  std::string source_address;
  bool success = false;
  std::string user_agent;
};

// ---- Audit -------------------------------------------------------------------------------------------

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

// ---- Provider keys (BYOK) ----------------------------------------------------------------------------

// One per (user, provider). The kernel encrypts; storage keeps the pieces opaque.
struct ProviderKey {
  std::string user_id;
  std::string provider;     // e.g. "openai", "anthropic"
  std::string key_id;       // id of the encryption key used, for rotation
  std::string ciphertext;   // bytes
  std::string nonce;        // bytes
  std::string masked_hint;  // e.g. "sk-...3f9a", safe to show
  Timestamp created_at;     // first stored
  Timestamp updated_at;     // last replaced
};

struct NewProviderKey {
  std::string user_id;   // kNotFound if the user does not exist
  std::string provider;  // required
  std::string key_id;    // required
  std::string ciphertext;
  std::string nonce;
  std::string masked_hint;
};

// ---- Personal access tokens ----------------------------------------------------------------------------

struct AccessToken {
  std::string id;
  std::string user_id;
  std::string name;
  std::string token_hash;
  std::vector<std::string> scopes;      // order kept
  std::optional<Timestamp> expires_at;  // none: does not expire
  bool revoked = false;
  std::optional<Timestamp> last_used_at;
  Timestamp created_at;
};

struct NewAccessToken {
  std::string user_id;     // kNotFound if the user does not exist
  std::string name;        // required; not unique
  std::string token_hash;  // required; kAlreadyExists if already stored
  std::vector<std::string> scopes;
  std::optional<Timestamp> expires_at;
};

// ---- Projects ----------------------------------------------------------------------------------------

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

// ---- Files -------------------------------------------------------------------------------------------

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

// ---- Runs, steps, events -----------------------------------------------------------------------------

// State names are the orchestrator's ("queued", "running", "waiting_input", "succeeded", "failed",
// "cancelled"); storage stores and compares them, never interprets them.
struct Run {
  std::string id;
  std::string project_id;
  std::string owner_id;  // the project's owner, for scoped follow-up calls
  std::string state;
  std::string description;
  std::string error;  // why it failed; empty otherwise
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  std::string lease_owner;  // node id holding the run; empty when unclaimed
  std::optional<Timestamp> lease_expires_at;
  std::int64_t last_event_seq = 0;  // seq of the newest event; 0 before the first
};

struct NewRun {
  std::string project_id;  // kNotFound if not a project of the owner
  std::string description;
  std::string state = "queued";  // required
};

struct RunUpdate {
  // When set, the update applies only if the run is in this state; else kFailedPrecondition and
  // nothing changes (compare-and-set, e.g. "cancel only if still running").
  std::optional<std::string> expected_state;
  std::optional<std::string> state;  // must not be empty when set
  std::optional<std::string> error;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
};

// Claiming is how a node takes a run to work on (several kernel nodes may share a database).
struct RunClaim {
  std::string node_id;              // required
  std::vector<std::string> states;  // claimable states, e.g. {"queued", "running"}; required
  Timestamp lease_until;            // the lease ends then unless renewed
};

// One committed step of a run: the state the agent proposed, as the orchestrator committed it.
struct RunStep {
  std::string id;
  std::string run_id;
  std::int64_t sequence = 0;  // 1, 2, 3, ... per run
  std::string agent;          // the agent role or plugin id that produced it
  nlohmann::json state;       // the state snapshot
  std::string summary;
  Timestamp created_at;
};

struct NewRunStep {
  std::string agent;  // required
  nlohmann::json state = nlohmann::json::object();
  std::string summary;
};

struct RunEvent {
  std::string run_id;
  std::int64_t seq = 0;  // 1, 2, 3, ... per run: strictly increasing and gapless among committed events
  std::string type;      // e.g. "step.started", "log", "question"
  nlohmann::json payload;
  Timestamp created_at;
};

// ---- LLM requests and usage --------------------------------------------------------------------------

struct LlmRequest {
  std::string id;
  std::string user_id;
  std::string project_id;  // empty when not made for a project (or the project was deleted)
  std::string run_id;      // empty when not made for a run (or the run was deleted)
  std::string provider;
  std::string model;
  std::string agent;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t latency_ms = 0;
  std::string status;  // "ok", "error", "timeout", "cancelled"
  std::string error;
  Timestamp created_at;
};

struct NewLlmRequest {
  std::string user_id;     // kNotFound if the user does not exist
  std::string project_id;  // optional; kNotFound if set and not a project of the user
  std::string run_id;      // optional; kNotFound if set and not a run of the user
  std::string provider;    // required
  std::string model;       // required
  std::string agent;
  std::int64_t prompt_tokens = 0;      // >= 0
  std::int64_t completion_tokens = 0;  // >= 0
  std::int64_t latency_ms = 0;         // >= 0
  std::string status = "ok";           // required
  std::string error;
};

// Totals for one (provider, model) of one user.
struct UsageTotal {
  std::string provider;
  std::string model;
  std::int64_t requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

// ---- Previews ----------------------------------------------------------------------------------------

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

// ---- Notifications -----------------------------------------------------------------------------------

struct Notification {
  std::string id;
  std::string user_id;
  std::string kind;  // e.g. "run.finished"
  nlohmann::json payload;
  bool read = false;
  Timestamp created_at;
};

struct NewNotification {
  std::string user_id;  // kNotFound if the user does not exist
  std::string kind;     // required
  nlohmann::json payload = nlohmann::json::object();
};

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
// The data operations. Storage implements them directly (each call is its own atomic unit) and hands
// the same interface to transaction functions (all calls share one transaction).
class StorageOps {
 public:
  StorageOps() = default;
  StorageOps(const StorageOps&) = delete;
  StorageOps& operator=(const StorageOps&) = delete;
  virtual ~StorageOps() = default;

  // ---- users
  virtual Result<User> create_user(const NewUser& user) = 0;
  virtual Result<User> get_user(std::string_view user_id) = 0;
  virtual Result<User> find_user_by_email(std::string_view email) = 0;  // ignoring ASCII case
  virtual Result<User> update_user(std::string_view user_id, const UserUpdate& update) = 0;
  // Deletes the user and everything it owns (see "Deletion cascades").
  virtual Status delete_user(std::string_view user_id) = 0;
  // Order: created_at ascending, then id.
  virtual Result<Page<User>> list_users(const PageRequest& page) = 0;

  // ---- sessions and refresh tokens
  virtual Result<Session> create_session(const NewSession& session) = 0;
  virtual Result<Session> get_session(std::string_view session_id) = 0;
  // Sessions of the user that are neither revoked nor expired at now(); newest first.
  virtual Result<std::vector<Session>> list_active_sessions(std::string_view user_id) = 0;
  // Revokes the session and with it every refresh token of its family. Revoking a revoked session
  // succeeds and keeps the first revocation time and reason.
  virtual Status revoke_session(std::string_view session_id, std::string_view reason) = 0;
  // Revokes every unrevoked session of the user; returns how many it revoked.
  virtual Result<std::int64_t> revoke_user_sessions(std::string_view user_id, std::string_view reason) = 0;
  virtual Result<RefreshToken> add_refresh_token(const NewRefreshToken& token) = 0;
  virtual Result<RefreshToken> find_refresh_token(std::string_view token_hash) = 0;
  // Atomically marks `old_token_hash` rotated and stores `next` in the same family (next.session_id
  // is ignored and taken from the old token). Exactly one of several concurrent rotations of the same
  // token succeeds. kNotFound for an unknown hash; kFailedPrecondition if the old token is already
  // rotated, its session revoked, or it or its session expired at now() — the caller then reads it
  // with find_refresh_token to tell reuse (rotated) from expiry, and on reuse revokes the session.
  virtual Result<RefreshToken> rotate_refresh_token(std::string_view old_token_hash,
                                                    const NewRefreshToken& next) = 0;
  // Deletes sessions (and their refresh tokens) that expired before now(); returns how many.
  virtual Result<std::int64_t> purge_expired_sessions() = 0;

  // Records a revoked access-token id until `expires_at` (the token's own expiry). Idempotent; a
  // second call keeps the later expiry.
  virtual Status revoke_token_id(std::string_view jti, Timestamp expires_at, std::string_view reason) = 0;
  // True while a revocation is stored for the id (also after expires_at until purged: an expired
  // token is refused on its expiry anyway).
  virtual Result<bool> is_token_id_revoked(std::string_view jti) = 0;
  // Deletes revocations whose expires_at is at or before now(); returns how many.
  virtual Result<std::int64_t> purge_expired_token_revocations() = 0;

  // ---- login attempts (occurred at now())
  virtual Status record_login_attempt(const LoginAttempt& attempt) = 0;
  // Failed attempts at or after `since`, for the subject (ignoring ASCII case) or the address.
  virtual Result<std::int64_t> count_failed_logins_for_subject(std::string_view subject, Timestamp since) = 0;
  virtual Result<std::int64_t> count_failed_logins_for_address(std::string_view source_address,
                                                               Timestamp since) = 0;
  // Deletes attempts older than `before`; returns how many.
  virtual Result<std::int64_t> purge_login_attempts(Timestamp before) = 0;

  // ---- audit (occurred_at = now())
  virtual Result<AuditEvent> append_audit_event(const NewAuditEvent& event) = 0;
  // Order: occurred_at descending (newest first), then id descending.
  virtual Result<Page<AuditEvent>> list_audit_events(const AuditFilter& filter, const PageRequest& page) = 0;

  // ---- provider keys
  // Inserts or replaces the user's key for the provider (created_at survives a replacement).
  virtual Result<ProviderKey> put_provider_key(const NewProviderKey& key) = 0;
  virtual Result<ProviderKey> get_provider_key(std::string_view user_id, std::string_view provider) = 0;
  // Order: provider ascending.
  virtual Result<std::vector<ProviderKey>> list_provider_keys(std::string_view user_id) = 0;
  virtual Status delete_provider_key(std::string_view user_id, std::string_view provider) = 0;
  // Every user's keys encrypted with `key_id`, for re-encryption on key rotation.
  // Order: user_id ascending, then provider.
  virtual Result<Page<ProviderKey>> list_provider_keys_by_key_id(std::string_view key_id,
                                                                 const PageRequest& page) = 0;

  // ---- personal access tokens
  virtual Result<AccessToken> create_access_token(const NewAccessToken& token) = 0;
  // Also returns revoked and expired tokens: the caller decides.
  virtual Result<AccessToken> find_access_token(std::string_view token_hash) = 0;
  // Order: created_at descending, then id descending; includes revoked ones.
  virtual Result<std::vector<AccessToken>> list_access_tokens(std::string_view user_id) = 0;
  // Idempotent for an already revoked token of the user.
  virtual Status revoke_access_token(std::string_view user_id, std::string_view token_id) = 0;
  // Sets last_used_at to now().
  virtual Status touch_access_token(std::string_view token_id) = 0;

  // ---- projects
  virtual Result<Project> create_project(const NewProject& project) = 0;
  virtual Result<Project> get_project(std::string_view owner_id, std::string_view project_id) = 0;
  // Order: created_at descending (newest first), then id descending.
  virtual Result<Page<Project>> list_projects(std::string_view owner_id, const PageRequest& page) = 0;
  virtual Result<Project> update_project(std::string_view owner_id, std::string_view project_id,
                                         const ProjectUpdate& update) = 0;
  // Deletes the project and everything below it (see "Deletion cascades").
  virtual Status delete_project(std::string_view owner_id, std::string_view project_id) = 0;

  // ---- files
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

  // ---- runs
  virtual Result<Run> create_run(std::string_view owner_id, const NewRun& run) = 0;
  virtual Result<Run> get_run(std::string_view owner_id, std::string_view run_id) = 0;
  // Order: created_at descending, then id descending.
  virtual Result<Page<Run>> list_runs(std::string_view owner_id, std::string_view project_id,
                                      const PageRequest& page) = 0;
  virtual Result<Run> update_run(std::string_view owner_id, std::string_view run_id,
                                 const RunUpdate& update) = 0;
  // Takes the oldest run (created_at, then id) whose state is one of claim.states and that has no
  // lease or an expired one (lease_expires_at <= now()); sets lease_owner and lease_expires_at and
  // returns it, or returns an empty optional if there is none. Safe across nodes: one run is given
  // to one claimant at a time.
  virtual Result<std::optional<Run>> claim_run(const RunClaim& claim) = 0;
  // Extends the lease; kFailedPrecondition if `node_id` does not hold an unexpired lease on the run.
  virtual Result<Run> renew_run_lease(std::string_view run_id, std::string_view node_id,
                                      Timestamp lease_until) = 0;
  // Gives the run up; kFailedPrecondition if `node_id` does not hold the lease.
  virtual Status release_run_lease(std::string_view run_id, std::string_view node_id) = 0;

  // ---- named leases: one holder at a time for a cluster-wide chore (the kernel's housekeeping pass)
  // Takes the lease `name` for `holder` until `until` when nobody holds it, the holder's lease expired
  // (expires_at <= now()), or `holder` holds it already (then it is extended); returns whether `holder`
  // holds it after the call. Safe across nodes: of concurrent callers, one holds an unexpired lease at a
  // time. kInvalidArgument for an empty name or holder.
  virtual Result<bool> try_acquire_lease(std::string_view name, std::string_view holder, Timestamp until) = 0;
  // Gives the lease up so that the next caller gets it at once; kFailedPrecondition if `holder` does not
  // hold it (never took it, or another holder took it over after it expired).
  virtual Status release_lease(std::string_view name, std::string_view holder) = 0;

  // ---- run steps
  virtual Result<RunStep> append_run_step(std::string_view owner_id, std::string_view run_id,
                                          const NewRunStep& step) = 0;
  virtual Result<RunStep> get_run_step(std::string_view owner_id, std::string_view step_id) = 0;
  // The step with the highest sequence; kNotFound if the run has none.
  virtual Result<RunStep> latest_run_step(std::string_view owner_id, std::string_view run_id) = 0;
  // Order: sequence ascending.
  virtual Result<Page<RunStep>> list_run_steps(std::string_view owner_id, std::string_view run_id,
                                               const PageRequest& page) = 0;

  // ---- run events
  // Appends with seq = last_event_seq + 1. Concurrent appends to one run are serialised: each gets
  // its own seq and, once committed, no event with a lower seq can appear later.
  virtual Result<RunEvent> append_run_event(std::string_view owner_id, std::string_view run_id,
                                            std::string_view type, const nlohmann::json& payload) = 0;
  // Events with seq > after_seq, ascending, at most `limit` (1..kMaxPageLimit). The seq is the cursor.
  virtual Result<std::vector<RunEvent>> list_run_events(std::string_view owner_id, std::string_view run_id,
                                                        std::int64_t after_seq, std::uint32_t limit) = 0;

  // ---- LLM requests and usage (created_at = now())
  virtual Result<LlmRequest> record_llm_request(const NewLlmRequest& request) = 0;
  // Order: created_at descending, then id descending.
  virtual Result<Page<LlmRequest>> list_llm_requests(std::string_view user_id, const PageRequest& page) = 0;
  // Totals per (provider, model) over requests with since <= created_at < until (each bound
  // optional). Order: provider, then model, ascending.
  virtual Result<std::vector<UsageTotal>> usage_by_model(std::string_view user_id,
                                                         std::optional<Timestamp> since,
                                                         std::optional<Timestamp> until) = 0;

  // ---- previews
  // Inserts or replaces the project's preview.
  virtual Result<Preview> upsert_preview(std::string_view owner_id, const PreviewUpsert& preview) = 0;
  virtual Result<Preview> get_preview(std::string_view owner_id, std::string_view project_id) = 0;
  virtual Status delete_preview(std::string_view owner_id, std::string_view project_id) = 0;
  // Every preview of every user, for the kernel's reaper and restart cleanup. Order: project_id.
  virtual Result<Page<Preview>> list_previews(const PageRequest& page) = 0;

  // ---- notifications
  virtual Result<Notification> create_notification(const NewNotification& notification) = 0;
  // Order: created_at descending, then id descending.
  virtual Result<Page<Notification>> list_notifications(std::string_view user_id, bool unread_only,
                                                        const PageRequest& page) = 0;
  virtual Result<std::int64_t> count_unread_notifications(std::string_view user_id) = 0;
  // Idempotent for an already read notification of the user.
  virtual Status mark_notification_read(std::string_view user_id, std::string_view notification_id) = 0;
  // Returns how many changed.
  virtual Result<std::int64_t> mark_all_notifications_read(std::string_view user_id) = 0;

  // ---- whole database
  virtual Result<StorageStats> stats() = 0;
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
class Storage : public Plugin, public StorageOps {
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
  // Each call on `ops` is atomic on its own: a failed call leaves no partial effect and fn may go on
  // (e.g. create, and on kAlreadyExists read instead). Use only `ops` inside fn (see
  // "Thread-safety" above); there are no nested transactions.
  virtual Status transaction(const std::function<Status(StorageOps& ops)>& fn) = 0;

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
};

}  // namespace samokoder::sdk
