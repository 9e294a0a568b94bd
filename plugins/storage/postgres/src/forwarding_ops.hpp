// ForwardingOps: implements every StorageOps method by handing the matching PgOps member to
// Derived::invoke(operation_name, member, args...). The plugin's Storage (one unit of work per call) and
// the transaction's StorageOps (one savepoint per call inside the caller's transaction) differ only in
// invoke, so the list of operations is written once.
//
// Thread-safety: whatever Derived::invoke provides.
#pragma once

#include <samokoder/sdk/storage.hpp>

#include "ops.hpp"

namespace samokoder::storage_postgres {

template <typename Derived, typename Base>
class ForwardingOps : public Base {
 public:
  sdk::Result<sdk::User> create_user(const sdk::NewUser& user) override {
    return self().invoke("create_user", &PgOps::create_user, user);
  }
  sdk::Result<sdk::User> get_user(std::string_view user_id) override {
    return self().invoke("get_user", &PgOps::get_user, user_id);
  }
  sdk::Result<sdk::User> find_user_by_email(std::string_view email) override {
    return self().invoke("find_user_by_email", &PgOps::find_user_by_email, email);
  }
  sdk::Result<sdk::User> update_user(std::string_view user_id, const sdk::UserUpdate& update) override {
    return self().invoke("update_user", &PgOps::update_user, user_id, update);
  }
  sdk::Status delete_user(std::string_view user_id) override {
    return self().invoke("delete_user", &PgOps::delete_user, user_id);
  }
  sdk::Result<sdk::Page<sdk::User>> list_users(const sdk::PageRequest& page) override {
    return self().invoke("list_users", &PgOps::list_users, page);
  }
  sdk::Result<sdk::Session> create_session(const sdk::NewSession& session) override {
    return self().invoke("create_session", &PgOps::create_session, session);
  }
  sdk::Result<sdk::Session> get_session(std::string_view session_id) override {
    return self().invoke("get_session", &PgOps::get_session, session_id);
  }
  sdk::Result<std::vector<sdk::Session>> list_active_sessions(std::string_view user_id) override {
    return self().invoke("list_active_sessions", &PgOps::list_active_sessions, user_id);
  }
  sdk::Status revoke_session(std::string_view session_id, std::string_view reason) override {
    return self().invoke("revoke_session", &PgOps::revoke_session, session_id, reason);
  }
  sdk::Result<std::int64_t> revoke_user_sessions(std::string_view user_id, std::string_view reason) override {
    return self().invoke("revoke_user_sessions", &PgOps::revoke_user_sessions, user_id, reason);
  }
  sdk::Result<sdk::RefreshToken> add_refresh_token(const sdk::NewRefreshToken& token) override {
    return self().invoke("add_refresh_token", &PgOps::add_refresh_token, token);
  }
  sdk::Result<sdk::RefreshToken> find_refresh_token(std::string_view token_hash) override {
    return self().invoke("find_refresh_token", &PgOps::find_refresh_token, token_hash);
  }
  sdk::Result<sdk::RefreshToken> rotate_refresh_token(std::string_view old_token_hash,
                                                      const sdk::NewRefreshToken& next) override {
    return self().invoke("rotate_refresh_token", &PgOps::rotate_refresh_token, old_token_hash, next);
  }
  sdk::Result<std::int64_t> purge_expired_sessions() override {
    return self().invoke("purge_expired_sessions", &PgOps::purge_expired_sessions);
  }
  sdk::Status revoke_token_id(std::string_view jti, sdk::Timestamp expires_at,
                              std::string_view reason) override {
    return self().invoke("revoke_token_id", &PgOps::revoke_token_id, jti, expires_at, reason);
  }
  sdk::Result<bool> is_token_id_revoked(std::string_view jti) override {
    return self().invoke("is_token_id_revoked", &PgOps::is_token_id_revoked, jti);
  }
  sdk::Result<std::int64_t> purge_expired_token_revocations() override {
    return self().invoke("purge_expired_token_revocations", &PgOps::purge_expired_token_revocations);
  }
  sdk::Status record_login_attempt(const sdk::LoginAttempt& attempt) override {
    return self().invoke("record_login_attempt", &PgOps::record_login_attempt, attempt);
  }
  sdk::Result<std::int64_t> count_failed_logins_for_subject(std::string_view subject,
                                                            sdk::Timestamp since) override {
    return self().invoke("count_failed_logins_for_subject", &PgOps::count_failed_logins_for_subject, subject,
                         since);
  }
  sdk::Result<std::int64_t> count_failed_logins_for_address(std::string_view source_address,
                                                            sdk::Timestamp since) override {
    return self().invoke("count_failed_logins_for_address", &PgOps::count_failed_logins_for_address,
                         source_address, since);
  }
  sdk::Result<std::int64_t> purge_login_attempts(sdk::Timestamp before) override {
    return self().invoke("purge_login_attempts", &PgOps::purge_login_attempts, before);
  }
  sdk::Result<sdk::AuditEvent> append_audit_event(const sdk::NewAuditEvent& event) override {
    return self().invoke("append_audit_event", &PgOps::append_audit_event, event);
  }
  sdk::Result<sdk::Page<sdk::AuditEvent>> list_audit_events(const sdk::AuditFilter& filter,
                                                            const sdk::PageRequest& page) override {
    return self().invoke("list_audit_events", &PgOps::list_audit_events, filter, page);
  }
  sdk::Result<sdk::ProviderKey> put_provider_key(const sdk::NewProviderKey& key) override {
    return self().invoke("put_provider_key", &PgOps::put_provider_key, key);
  }
  sdk::Result<sdk::ProviderKey> get_provider_key(std::string_view user_id,
                                                 std::string_view provider) override {
    return self().invoke("get_provider_key", &PgOps::get_provider_key, user_id, provider);
  }
  sdk::Result<std::vector<sdk::ProviderKey>> list_provider_keys(std::string_view user_id) override {
    return self().invoke("list_provider_keys", &PgOps::list_provider_keys, user_id);
  }
  sdk::Status delete_provider_key(std::string_view user_id, std::string_view provider) override {
    return self().invoke("delete_provider_key", &PgOps::delete_provider_key, user_id, provider);
  }
  sdk::Result<sdk::Page<sdk::ProviderKey>> list_provider_keys_by_key_id(
      std::string_view key_id, const sdk::PageRequest& page) override {
    return self().invoke("list_provider_keys_by_key_id", &PgOps::list_provider_keys_by_key_id, key_id, page);
  }
  sdk::Result<sdk::AccessToken> create_access_token(const sdk::NewAccessToken& token) override {
    return self().invoke("create_access_token", &PgOps::create_access_token, token);
  }
  sdk::Result<sdk::AccessToken> find_access_token(std::string_view token_hash) override {
    return self().invoke("find_access_token", &PgOps::find_access_token, token_hash);
  }
  sdk::Result<std::vector<sdk::AccessToken>> list_access_tokens(std::string_view user_id) override {
    return self().invoke("list_access_tokens", &PgOps::list_access_tokens, user_id);
  }
  sdk::Status revoke_access_token(std::string_view user_id, std::string_view token_id) override {
    return self().invoke("revoke_access_token", &PgOps::revoke_access_token, user_id, token_id);
  }
  sdk::Status touch_access_token(std::string_view token_id) override {
    return self().invoke("touch_access_token", &PgOps::touch_access_token, token_id);
  }
  sdk::Result<sdk::Project> create_project(const sdk::NewProject& project) override {
    return self().invoke("create_project", &PgOps::create_project, project);
  }
  sdk::Result<sdk::Project> get_project(std::string_view owner_id, std::string_view project_id) override {
    return self().invoke("get_project", &PgOps::get_project, owner_id, project_id);
  }
  sdk::Result<sdk::Page<sdk::Project>> list_projects(std::string_view owner_id,
                                                     const sdk::PageRequest& page) override {
    return self().invoke("list_projects", &PgOps::list_projects, owner_id, page);
  }
  sdk::Result<sdk::Project> update_project(std::string_view owner_id, std::string_view project_id,
                                           const sdk::ProjectUpdate& update) override {
    return self().invoke("update_project", &PgOps::update_project, owner_id, project_id, update);
  }
  sdk::Status delete_project(std::string_view owner_id, std::string_view project_id) override {
    return self().invoke("delete_project", &PgOps::delete_project, owner_id, project_id);
  }
  sdk::Result<sdk::FileVersion> put_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path, std::string_view content,
                                         std::string_view run_step_id) override {
    return self().invoke("put_file", &PgOps::put_file, owner_id, project_id, path, content, run_step_id);
  }
  sdk::Result<sdk::FileVersion> delete_file(std::string_view owner_id, std::string_view project_id,
                                            std::string_view path, std::string_view run_step_id) override {
    return self().invoke("delete_file", &PgOps::delete_file, owner_id, project_id, path, run_step_id);
  }
  sdk::Result<sdk::FileContent> get_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path,
                                         std::optional<std::int64_t> version) override {
    return self().invoke("get_file", &PgOps::get_file, owner_id, project_id, path, version);
  }
  sdk::Result<sdk::StorageUsage> usage_of_owner(std::string_view owner_id) override {
    return self().invoke("usage_of_owner", &PgOps::usage_of_owner, owner_id);
  }
  sdk::Result<sdk::Page<sdk::FileVersion>> list_files(std::string_view owner_id, std::string_view project_id,
                                                      std::string_view prefix,
                                                      const sdk::PageRequest& page) override {
    return self().invoke("list_files", &PgOps::list_files, owner_id, project_id, prefix, page);
  }
  sdk::Result<sdk::Page<sdk::FileVersion>> list_file_versions(std::string_view owner_id,
                                                              std::string_view project_id,
                                                              std::string_view path,
                                                              const sdk::PageRequest& page) override {
    return self().invoke("list_file_versions", &PgOps::list_file_versions, owner_id, project_id, path, page);
  }
  sdk::Result<std::int64_t> purge_unreferenced_blobs() override {
    return self().invoke("purge_unreferenced_blobs", &PgOps::purge_unreferenced_blobs);
  }
  sdk::Result<sdk::Run> create_run(std::string_view owner_id, const sdk::NewRun& run) override {
    return self().invoke("create_run", &PgOps::create_run, owner_id, run);
  }
  sdk::Result<sdk::Run> get_run(std::string_view owner_id, std::string_view run_id) override {
    return self().invoke("get_run", &PgOps::get_run, owner_id, run_id);
  }
  sdk::Result<sdk::Page<sdk::Run>> list_runs(std::string_view owner_id, std::string_view project_id,
                                             const sdk::PageRequest& page) override {
    return self().invoke("list_runs", &PgOps::list_runs, owner_id, project_id, page);
  }
  sdk::Result<sdk::Run> update_run(std::string_view owner_id, std::string_view run_id,
                                   const sdk::RunUpdate& update) override {
    return self().invoke("update_run", &PgOps::update_run, owner_id, run_id, update);
  }
  sdk::Result<std::optional<sdk::Run>> claim_run(const sdk::RunClaim& claim) override {
    return self().invoke("claim_run", &PgOps::claim_run, claim);
  }
  sdk::Result<sdk::Run> renew_run_lease(std::string_view run_id, std::string_view node_id,
                                        sdk::Timestamp lease_until) override {
    return self().invoke("renew_run_lease", &PgOps::renew_run_lease, run_id, node_id, lease_until);
  }
  sdk::Status release_run_lease(std::string_view run_id, std::string_view node_id) override {
    return self().invoke("release_run_lease", &PgOps::release_run_lease, run_id, node_id);
  }
  sdk::Result<bool> try_acquire_lease(std::string_view name, std::string_view holder,
                                      sdk::Timestamp until) override {
    return self().invoke("try_acquire_lease", &PgOps::try_acquire_lease, name, holder, until);
  }
  sdk::Status release_lease(std::string_view name, std::string_view holder) override {
    return self().invoke("release_lease", &PgOps::release_lease, name, holder);
  }
  sdk::Result<sdk::RunStep> append_run_step(std::string_view owner_id, std::string_view run_id,
                                            const sdk::NewRunStep& step) override {
    return self().invoke("append_run_step", &PgOps::append_run_step, owner_id, run_id, step);
  }
  sdk::Result<sdk::RunStep> get_run_step(std::string_view owner_id, std::string_view step_id) override {
    return self().invoke("get_run_step", &PgOps::get_run_step, owner_id, step_id);
  }
  sdk::Result<sdk::RunStep> latest_run_step(std::string_view owner_id, std::string_view run_id) override {
    return self().invoke("latest_run_step", &PgOps::latest_run_step, owner_id, run_id);
  }
  sdk::Result<sdk::Page<sdk::RunStep>> list_run_steps(std::string_view owner_id, std::string_view run_id,
                                                      const sdk::PageRequest& page) override {
    return self().invoke("list_run_steps", &PgOps::list_run_steps, owner_id, run_id, page);
  }
  sdk::Result<sdk::RunEvent> append_run_event(std::string_view owner_id, std::string_view run_id,
                                              std::string_view type, const nlohmann::json& payload) override {
    return self().invoke("append_run_event", &PgOps::append_run_event, owner_id, run_id, type, payload);
  }
  sdk::Result<std::vector<sdk::RunEvent>> list_run_events(std::string_view owner_id, std::string_view run_id,
                                                          std::int64_t after_seq,
                                                          std::uint32_t limit) override {
    return self().invoke("list_run_events", &PgOps::list_run_events, owner_id, run_id, after_seq, limit);
  }
  sdk::Result<sdk::LlmRequest> record_llm_request(const sdk::NewLlmRequest& request) override {
    return self().invoke("record_llm_request", &PgOps::record_llm_request, request);
  }
  sdk::Result<sdk::Page<sdk::LlmRequest>> list_llm_requests(std::string_view user_id,
                                                            const sdk::PageRequest& page) override {
    return self().invoke("list_llm_requests", &PgOps::list_llm_requests, user_id, page);
  }
  sdk::Result<std::vector<sdk::UsageTotal>> usage_by_model(std::string_view user_id,
                                                           std::optional<sdk::Timestamp> since,
                                                           std::optional<sdk::Timestamp> until) override {
    return self().invoke("usage_by_model", &PgOps::usage_by_model, user_id, since, until);
  }
  sdk::Result<sdk::Preview> upsert_preview(std::string_view owner_id,
                                           const sdk::PreviewUpsert& preview) override {
    return self().invoke("upsert_preview", &PgOps::upsert_preview, owner_id, preview);
  }
  sdk::Result<sdk::Preview> get_preview(std::string_view owner_id, std::string_view project_id) override {
    return self().invoke("get_preview", &PgOps::get_preview, owner_id, project_id);
  }
  sdk::Status delete_preview(std::string_view owner_id, std::string_view project_id) override {
    return self().invoke("delete_preview", &PgOps::delete_preview, owner_id, project_id);
  }
  sdk::Result<sdk::Page<sdk::Preview>> list_previews(const sdk::PageRequest& page) override {
    return self().invoke("list_previews", &PgOps::list_previews, page);
  }
  sdk::Result<sdk::Notification> create_notification(const sdk::NewNotification& notification) override {
    return self().invoke("create_notification", &PgOps::create_notification, notification);
  }
  sdk::Result<sdk::Page<sdk::Notification>> list_notifications(std::string_view user_id, bool unread_only,
                                                               const sdk::PageRequest& page) override {
    return self().invoke("list_notifications", &PgOps::list_notifications, user_id, unread_only, page);
  }
  sdk::Result<std::int64_t> count_unread_notifications(std::string_view user_id) override {
    return self().invoke("count_unread_notifications", &PgOps::count_unread_notifications, user_id);
  }
  sdk::Status mark_notification_read(std::string_view user_id, std::string_view notification_id) override {
    return self().invoke("mark_notification_read", &PgOps::mark_notification_read, user_id, notification_id);
  }
  sdk::Result<std::int64_t> mark_all_notifications_read(std::string_view user_id) override {
    return self().invoke("mark_all_notifications_read", &PgOps::mark_all_notifications_read, user_id);
  }
  sdk::Result<sdk::StorageStats> stats() override { return self().invoke("stats", &PgOps::stats); }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace samokoder::storage_postgres
