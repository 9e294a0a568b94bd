// SqliteStorage: the storage.sqlite plugin. Storage on one SQLite file in WAL mode.
//
// Connections: one writer connection, serialised by writer_mutex_, on which every write runs inside
// BEGIN IMMEDIATE ... COMMIT (so two writers never race for SQLite's write lock inside this process
// and "database is locked" cannot happen between them); and a small pool of reader connections
// (query_only) on which every read runs inside one deferred read transaction, a consistent snapshot
// that WAL lets proceed while the writer commits. Transactions of Storage::transaction run on the
// writer; each operation inside one is wrapped in a SAVEPOINT so a failed call leaves no partial
// effect and the function may go on.
//
// Group commit: writes that arrive while another is running queue up, and the thread at the head of
// the queue runs the queued ones together in one transaction, each in its own SAVEPOINT, with one
// COMMIT for all (LevelDB's writer queue, applied to SQLite). A failed write is rolled back to its
// savepoint alone; a failed COMMIT fails every write of the batch. Each caller returns only after the
// COMMIT that made its write durable. Storage::transaction never joins a batch: its function is the
// caller's code and runs on the caller's own thread.
//
// Ownership: created and destroyed by the kernel through the plugin descriptor; owns its connections.
// Thread-safety: every Storage method may be called from any thread concurrently after init().
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <samokoder/sdk/storage.hpp>

#include "connection.hpp"
#include "ops.hpp"

namespace samokoder::storage_sqlite {

inline constexpr std::string_view kPluginId = "storage.sqlite";

struct Config {
  std::string path = "var/samokoder.db";
  int busy_timeout_ms = 5000;
  bool synchronous_full = false;
  int read_connections = 4;
  // false: init() opens the database without applying pending migrations (for `samokoder db status`
  // and `db migrate`); it still refuses a newer schema.
  bool auto_migrate = true;
};

// Parses the plugin's config section; unknown keys and wrong types are kInvalidArgument naming the key.
sdk::Result<Config> parse_config(const nlohmann::json& section);

// One write in the writer queue (defined in sqlite_storage.cpp).
class WriteJob;

// The read connections. acquire() blocks while all are in use.
class ReaderPool {
 public:
  void add(std::unique_ptr<Connection> connection);
  Connection& acquire();
  void release(Connection& connection);
  int in_use() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> all_;
  std::vector<Connection*> idle_;
};

class SqliteStorage final : public sdk::Storage {
 public:
  SqliteStorage() = default;
  ~SqliteStorage() override;

  sdk::Status init(sdk::HostServices& host) override;
  sdk::Status self_test() override { return health(); }
  void shutdown() noexcept override;

  sdk::Status health() override;
  sdk::Status transaction(const std::function<sdk::Status(sdk::StorageOps& ops)>& fn) override;
  sdk::Result<sdk::SchemaStatus> schema_status() override;
  sdk::Status migrate() override;
  sdk::Status backup(std::string_view destination) override;

  sdk::Result<sdk::User> create_user(const sdk::NewUser& user) override;
  sdk::Result<sdk::User> get_user(std::string_view user_id) override;
  sdk::Result<sdk::User> find_user_by_email(std::string_view email) override;
  sdk::Result<sdk::User> update_user(std::string_view user_id, const sdk::UserUpdate& update) override;
  sdk::Status delete_user(std::string_view user_id) override;
  sdk::Result<sdk::Page<sdk::User>> list_users(const sdk::PageRequest& page) override;
  sdk::Result<sdk::Session> create_session(const sdk::NewSession& session) override;
  sdk::Result<sdk::Session> get_session(std::string_view session_id) override;
  sdk::Result<std::vector<sdk::Session>> list_active_sessions(std::string_view user_id) override;
  sdk::Status revoke_session(std::string_view session_id, std::string_view reason) override;
  sdk::Result<std::int64_t> revoke_user_sessions(std::string_view user_id, std::string_view reason) override;
  sdk::Result<sdk::RefreshToken> add_refresh_token(const sdk::NewRefreshToken& token) override;
  sdk::Result<sdk::RefreshToken> find_refresh_token(std::string_view token_hash) override;
  sdk::Result<sdk::RefreshToken> rotate_refresh_token(std::string_view old_token_hash,
                                                      const sdk::NewRefreshToken& next) override;
  sdk::Result<std::int64_t> purge_expired_sessions() override;
  sdk::Status revoke_token_id(std::string_view jti, sdk::Timestamp expires_at,
                              std::string_view reason) override;
  sdk::Result<bool> is_token_id_revoked(std::string_view jti) override;
  sdk::Result<std::int64_t> purge_expired_token_revocations() override;
  sdk::Status record_login_attempt(const sdk::LoginAttempt& attempt) override;
  sdk::Result<std::int64_t> count_failed_logins_for_subject(std::string_view subject,
                                                            sdk::Timestamp since) override;
  sdk::Result<std::int64_t> count_failed_logins_for_address(std::string_view source_address,
                                                            sdk::Timestamp since) override;
  sdk::Result<std::int64_t> purge_login_attempts(sdk::Timestamp before) override;
  sdk::Result<sdk::AuditEvent> append_audit_event(const sdk::NewAuditEvent& event) override;
  sdk::Result<sdk::Page<sdk::AuditEvent>> list_audit_events(const sdk::AuditFilter& filter,
                                                            const sdk::PageRequest& page) override;
  sdk::Result<sdk::ProviderKey> put_provider_key(const sdk::NewProviderKey& key) override;
  sdk::Result<sdk::ProviderKey> get_provider_key(std::string_view user_id,
                                                 std::string_view provider) override;
  sdk::Result<std::vector<sdk::ProviderKey>> list_provider_keys(std::string_view user_id) override;
  sdk::Status delete_provider_key(std::string_view user_id, std::string_view provider) override;
  sdk::Result<sdk::Page<sdk::ProviderKey>> list_provider_keys_by_key_id(
      std::string_view key_id, const sdk::PageRequest& page) override;
  sdk::Result<sdk::AccessToken> create_access_token(const sdk::NewAccessToken& token) override;
  sdk::Result<sdk::AccessToken> find_access_token(std::string_view token_hash) override;
  sdk::Result<std::vector<sdk::AccessToken>> list_access_tokens(std::string_view user_id) override;
  sdk::Status revoke_access_token(std::string_view user_id, std::string_view token_id) override;
  sdk::Status touch_access_token(std::string_view token_id) override;
  sdk::Result<sdk::Project> create_project(const sdk::NewProject& project) override;
  sdk::Result<sdk::Project> get_project(std::string_view owner_id, std::string_view project_id) override;
  sdk::Result<sdk::Page<sdk::Project>> list_projects(std::string_view owner_id,
                                                     const sdk::PageRequest& page) override;
  sdk::Result<sdk::Project> update_project(std::string_view owner_id, std::string_view project_id,
                                           const sdk::ProjectUpdate& update) override;
  sdk::Status delete_project(std::string_view owner_id, std::string_view project_id) override;
  sdk::Result<sdk::FileVersion> put_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path, std::string_view content,
                                         std::string_view run_step_id) override;
  sdk::Result<sdk::FileVersion> delete_file(std::string_view owner_id, std::string_view project_id,
                                            std::string_view path, std::string_view run_step_id) override;
  sdk::Result<sdk::FileContent> get_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path, std::optional<std::int64_t> version) override;
  sdk::Result<sdk::StorageUsage> usage_of_owner(std::string_view owner_id) override;
  sdk::Result<sdk::Page<sdk::FileVersion>> list_files(std::string_view owner_id, std::string_view project_id,
                                                      std::string_view prefix,
                                                      const sdk::PageRequest& page) override;
  sdk::Result<sdk::Page<sdk::FileVersion>> list_file_versions(std::string_view owner_id,
                                                              std::string_view project_id,
                                                              std::string_view path,
                                                              const sdk::PageRequest& page) override;
  sdk::Result<std::int64_t> purge_unreferenced_blobs() override;
  sdk::Result<sdk::Run> create_run(std::string_view owner_id, const sdk::NewRun& run) override;
  sdk::Result<sdk::Run> get_run(std::string_view owner_id, std::string_view run_id) override;
  sdk::Result<sdk::Page<sdk::Run>> list_runs(std::string_view owner_id, std::string_view project_id,
                                             const sdk::PageRequest& page) override;
  sdk::Result<sdk::Run> update_run(std::string_view owner_id, std::string_view run_id,
                                   const sdk::RunUpdate& update) override;
  sdk::Result<std::optional<sdk::Run>> claim_run(const sdk::RunClaim& claim) override;
  sdk::Result<sdk::Run> renew_run_lease(std::string_view run_id, std::string_view node_id,
                                        sdk::Timestamp lease_until) override;
  sdk::Status release_run_lease(std::string_view run_id, std::string_view node_id) override;
  sdk::Result<bool> try_acquire_lease(std::string_view name, std::string_view holder,
                                      sdk::Timestamp until) override;
  sdk::Status release_lease(std::string_view name, std::string_view holder) override;
  sdk::Result<sdk::RunStep> append_run_step(std::string_view owner_id, std::string_view run_id,
                                            const sdk::NewRunStep& step) override;
  sdk::Result<sdk::RunStep> get_run_step(std::string_view owner_id, std::string_view step_id) override;
  sdk::Result<sdk::RunStep> latest_run_step(std::string_view owner_id, std::string_view run_id) override;
  sdk::Result<sdk::Page<sdk::RunStep>> list_run_steps(std::string_view owner_id, std::string_view run_id,
                                                      const sdk::PageRequest& page) override;
  sdk::Result<sdk::RunEvent> append_run_event(std::string_view owner_id, std::string_view run_id,
                                              std::string_view type, const nlohmann::json& payload) override;
  sdk::Result<std::vector<sdk::RunEvent>> list_run_events(std::string_view owner_id, std::string_view run_id,
                                                          std::int64_t after_seq,
                                                          std::uint32_t limit) override;
  sdk::Result<sdk::LlmRequest> record_llm_request(const sdk::NewLlmRequest& request) override;
  sdk::Result<sdk::Page<sdk::LlmRequest>> list_llm_requests(std::string_view user_id,
                                                            const sdk::PageRequest& page) override;
  sdk::Result<std::vector<sdk::UsageTotal>> usage_by_model(std::string_view user_id,
                                                           std::optional<sdk::Timestamp> since,
                                                           std::optional<sdk::Timestamp> until) override;
  sdk::Result<sdk::Preview> upsert_preview(std::string_view owner_id,
                                           const sdk::PreviewUpsert& preview) override;
  sdk::Result<sdk::Preview> get_preview(std::string_view owner_id, std::string_view project_id) override;
  sdk::Status delete_preview(std::string_view owner_id, std::string_view project_id) override;
  sdk::Result<sdk::Page<sdk::Preview>> list_previews(const sdk::PageRequest& page) override;
  sdk::Result<sdk::Notification> create_notification(const sdk::NewNotification& notification) override;
  sdk::Result<sdk::Page<sdk::Notification>> list_notifications(std::string_view user_id, bool unread_only,
                                                               const sdk::PageRequest& page) override;
  sdk::Result<std::int64_t> count_unread_notifications(std::string_view user_id) override;
  sdk::Status mark_notification_read(std::string_view user_id, std::string_view notification_id) override;
  sdk::Result<std::int64_t> mark_all_notifications_read(std::string_view user_id) override;
  sdk::Result<sdk::StorageStats> stats() override;

 private:
  // Runs f(SqliteOps&) in a write transaction on the writer (read: in a read transaction on a pooled
  // reader), commits if it succeeded, rolls back otherwise, catches every exception, and records
  // the operation's metrics. R is sdk::Status or an sdk::Result<T>.
  enum class Batching { kJoin, kAlone };
  template <typename F>
  auto write(std::string_view operation, F&& f, Batching batching = Batching::kJoin)
      -> decltype(f(std::declval<SqliteOps&>()));
  template <typename F>
  auto read(std::string_view operation, F&& f) -> decltype(f(std::declval<SqliteOps&>()));

  // Queues the job and returns once it has run and its batch committed (or failed).
  void run_in_group(WriteJob& job);
  void run_batch(const std::vector<WriteJob*>& batch) noexcept;
  void set_queue_gauge() noexcept;

  sdk::Status usable() const;
  sdk::Status migrate_locked();
  void rollback(Connection& connection) noexcept;
  void record(std::string_view operation, const sdk::Status& status,
              std::chrono::steady_clock::time_point start) noexcept;
  void set_reader_gauge() noexcept;

  sdk::HostServices* host_ = nullptr;
  Config config_;
  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::deque<WriteJob*> write_queue_;  // guarded by queue_mutex_; the front one's thread leads
  std::mutex writer_mutex_;
  std::unique_ptr<Connection> writer_;
  // The thread inside a write (or transaction) right now: a call from that same thread would deadlock
  // on writer_mutex_ or read around its own uncommitted writes, so it is refused instead.
  std::atomic<std::thread::id> writer_thread_{};
  ReaderPool readers_;
  std::atomic<bool> open_{false};
};

}  // namespace samokoder::storage_sqlite
