// SqliteOps: every StorageOps operation as SQL against one SQLite connection.
//
// It knows nothing about transactions or connection routing: SqliteStorage (sqlite_storage.cpp)
// opens the right transaction on the right connection (BEGIN IMMEDIATE on the writer for writes,
// a deferred read transaction on a pooled reader for reads) and calls one of these inside it, or
// hands this object to a transaction function. Every write here therefore runs inside a write
// transaction, so read-then-write sequences (version numbers, event seq, compare-and-set) are
// serialised by SQLite's single writer.
//
// Ownership: borrows the connection and the host, both of which outlive it.
// Thread-safety: none; one instance is used by one thread for the span of one transaction.
#pragma once

#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/storage.hpp>

#include "connection.hpp"

namespace samokoder::storage_sqlite {

class SqliteOps final : public sdk::StorageOps {
 public:
  SqliteOps(Connection& connection, sdk::HostServices& host) : db_(connection), host_(host) {}

  Connection& connection() noexcept { return db_; }

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
  sdk::Timestamp now() const { return sdk::to_storage_precision(host_.now()); }
  // kNotFound unless the project exists and belongs to the owner.
  sdk::Status check_project_owner(std::string_view owner_id, std::string_view project_id);
  sdk::Result<sdk::Run> load_run(std::string_view run_id, std::string_view owner_id);
  sdk::Result<sdk::FileVersion> load_file_version(std::string_view project_id, std::string_view path,
                                                  std::int64_t version);

  Connection& db_;
  sdk::HostServices& host_;
};

}  // namespace samokoder::storage_sqlite
