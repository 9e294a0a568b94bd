// PgOps: every StorageOps operation as SQL on one borrowed PostgreSQL connection.
//
// Outside a transaction (Storage's direct calls) an operation that needs several statements opens its
// own READ COMMITTED transaction with begin_unit(), and the caller commits or rolls it back by what the
// operation returned. Inside Storage::transaction the caller's SERIALIZABLE transaction (and the
// savepoint around each call) already makes the operation atomic, so begin_unit() does nothing.
// Concurrency guarantees come from row locks and conditional writes, so they hold under both levels.
//
// Ownership: borrows the connection and the host for its own lifetime (one call).
// Thread-safety: none; one object serves one call on one thread.
#pragma once

#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/storage.hpp>

#include "pg.hpp"

namespace samokoder::storage_postgres {

class PgOps final : public sdk::StorageOps {
 public:
  PgOps(Connection& conn, sdk::HostServices& host, bool in_transaction) noexcept
      : conn_(conn), host_(host), in_transaction_(in_transaction) {}

  // True when begin_unit() opened a transaction the caller must end.
  bool unit_open() const noexcept { return unit_open_; }

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
  sdk::Status begin_unit();
  // Locks (project, path) for the rest of the unit after checking the project belongs to the owner.
  sdk::Status lock_file_path(std::string_view owner_id, std::string_view project_id, std::string_view path);
  sdk::Status check_run_step(std::string_view project_id, std::string_view run_step_id);
  sdk::Status check_project(std::string_view owner_id, std::string_view project_id);
  sdk::Status check_run(std::string_view owner_id, std::string_view run_id);
  Rows exec(std::string_view sql, const Params& params = Params(), bool binary = false) {
    return conn_.exec(sql, params, binary);
  }
  sdk::Timestamp now() const { return host_.now(); }

  Connection& conn_;
  sdk::HostServices& host_;
  const bool in_transaction_;
  bool unit_open_ = false;
};

}  // namespace samokoder::storage_postgres
