#include "sqlite_storage.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>

#include "migrations.hpp"
#include "util.hpp"

namespace samokoder::storage_sqlite {

using sdk::Result;
using sdk::Status;

namespace {

namespace fs = std::filesystem;

const Status& status_of(const Status& status) {
  return status;
}

template <typename T>
Status status_of(const Result<T>& result) {
  return result.status();
}

Status closed() {
  return Status::failed_precondition("storage.sqlite is not open (init failed or shut down)");
}

Status reentrant() {
  return Status::failed_precondition(
      "storage.sqlite was called from inside its own transaction function; use the StorageOps passed to it");
}

// A database no migration ever touched has no schema_migrations table: init with auto_migrate off
// creates nothing, so its version is 0.
Result<bool> has_schema_migrations(Connection& db) {
  auto q = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
  if (!q.ok()) return q.status();
  return q->step();
}

Result<std::int64_t> current_schema_version(Connection& db) {
  auto exists = has_schema_migrations(db);
  if (!exists.ok()) return exists.status();
  if (!*exists) return std::int64_t{0};
  auto q = db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!q.ok()) return q.status();
  auto row = q->step();
  if (!row.ok()) return row.status();
  return q->column_int(0);
}

Status newer_schema(std::int64_t found) {
  return Status::failed_precondition("database schema version " + std::to_string(found) +
                                     " is newer than this " + std::string(kPluginId) + " supports (" +
                                     std::to_string(supported_schema_version()) +
                                     "); upgrade Samokoder or restore a backup");
}

// Sets the calling thread as the writer for the span of one write and clears it afterwards.
class WriterThreadMark {
 public:
  explicit WriterThreadMark(std::atomic<std::thread::id>& slot) : slot_(slot) {
    slot_.store(std::this_thread::get_id());
  }
  ~WriterThreadMark() { slot_.store(std::thread::id()); }
  WriterThreadMark(const WriterThreadMark&) = delete;
  WriterThreadMark& operator=(const WriterThreadMark&) = delete;

 private:
  std::atomic<std::thread::id>& slot_;
};

// One operation inside a transaction of several (Storage::transaction, a group commit) runs in a
// savepoint of its own, so a failed one is undone alone.
Status open_savepoint(Connection& db) {
  return db.run_statement("SAVEPOINT storage_op");
}

// Keeps the operation's effects, or undoes them. Not OK when SQLite already ended the whole
// transaction (an I/O error, a full disk): the savepoint is gone with it.
Status close_savepoint(Connection& db, bool keep) {
  if (keep) return db.run_statement("RELEASE storage_op");
  SAMOKODER_RETURN_IF_ERROR(db.run_statement("ROLLBACK TO storage_op"));
  return db.run_statement("RELEASE storage_op");
}

// What a transaction function receives: SqliteOps on the writer, with every write wrapped in a
// SAVEPOINT so that a failed call is undone on its own and the function may carry on.
class TransactionOps final : public sdk::StorageOps {
 public:
  TransactionOps(SqliteOps& inner, Connection& db) : inner_(inner), db_(db) {}

  sdk::Result<sdk::User> create_user(const sdk::NewUser& user) override {
    return atomically([&] { return inner_.create_user(user); });
  }
  sdk::Result<sdk::User> get_user(std::string_view user_id) override {
    return checked([&] { return inner_.get_user(user_id); });
  }
  sdk::Result<sdk::User> find_user_by_email(std::string_view email) override {
    return checked([&] { return inner_.find_user_by_email(email); });
  }
  sdk::Result<sdk::User> update_user(std::string_view user_id, const sdk::UserUpdate& update) override {
    return atomically([&] { return inner_.update_user(user_id, update); });
  }
  sdk::Status delete_user(std::string_view user_id) override {
    return atomically([&] { return inner_.delete_user(user_id); });
  }
  sdk::Result<sdk::Page<sdk::User>> list_users(const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_users(page); });
  }
  sdk::Result<sdk::Session> create_session(const sdk::NewSession& session) override {
    return atomically([&] { return inner_.create_session(session); });
  }
  sdk::Result<sdk::Session> get_session(std::string_view session_id) override {
    return checked([&] { return inner_.get_session(session_id); });
  }
  sdk::Result<std::vector<sdk::Session>> list_active_sessions(std::string_view user_id) override {
    return checked([&] { return inner_.list_active_sessions(user_id); });
  }
  sdk::Status revoke_session(std::string_view session_id, std::string_view reason) override {
    return atomically([&] { return inner_.revoke_session(session_id, reason); });
  }
  sdk::Result<std::int64_t> revoke_user_sessions(std::string_view user_id, std::string_view reason) override {
    return atomically([&] { return inner_.revoke_user_sessions(user_id, reason); });
  }
  sdk::Result<sdk::RefreshToken> add_refresh_token(const sdk::NewRefreshToken& token) override {
    return atomically([&] { return inner_.add_refresh_token(token); });
  }
  sdk::Result<sdk::RefreshToken> find_refresh_token(std::string_view token_hash) override {
    return checked([&] { return inner_.find_refresh_token(token_hash); });
  }
  sdk::Result<sdk::RefreshToken> rotate_refresh_token(std::string_view old_token_hash,
                                                      const sdk::NewRefreshToken& next) override {
    return atomically([&] { return inner_.rotate_refresh_token(old_token_hash, next); });
  }
  sdk::Result<std::int64_t> purge_expired_sessions() override {
    return atomically([&] { return inner_.purge_expired_sessions(); });
  }
  sdk::Status revoke_token_id(std::string_view jti, sdk::Timestamp expires_at,
                              std::string_view reason) override {
    return atomically([&] { return inner_.revoke_token_id(jti, expires_at, reason); });
  }
  sdk::Result<bool> is_token_id_revoked(std::string_view jti) override {
    return checked([&] { return inner_.is_token_id_revoked(jti); });
  }
  sdk::Result<std::int64_t> purge_expired_token_revocations() override {
    return atomically([&] { return inner_.purge_expired_token_revocations(); });
  }
  sdk::Status record_login_attempt(const sdk::LoginAttempt& attempt) override {
    return atomically([&] { return inner_.record_login_attempt(attempt); });
  }
  sdk::Result<std::int64_t> count_failed_logins_for_subject(std::string_view subject,
                                                            sdk::Timestamp since) override {
    return checked([&] { return inner_.count_failed_logins_for_subject(subject, since); });
  }
  sdk::Result<std::int64_t> count_failed_logins_for_address(std::string_view source_address,
                                                            sdk::Timestamp since) override {
    return checked([&] { return inner_.count_failed_logins_for_address(source_address, since); });
  }
  sdk::Result<std::int64_t> purge_login_attempts(sdk::Timestamp before) override {
    return atomically([&] { return inner_.purge_login_attempts(before); });
  }
  sdk::Result<sdk::AuditEvent> append_audit_event(const sdk::NewAuditEvent& event) override {
    return atomically([&] { return inner_.append_audit_event(event); });
  }
  sdk::Result<sdk::Page<sdk::AuditEvent>> list_audit_events(const sdk::AuditFilter& filter,
                                                            const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_audit_events(filter, page); });
  }
  sdk::Result<sdk::ProviderKey> put_provider_key(const sdk::NewProviderKey& key) override {
    return atomically([&] { return inner_.put_provider_key(key); });
  }
  sdk::Result<sdk::ProviderKey> get_provider_key(std::string_view user_id,
                                                 std::string_view provider) override {
    return checked([&] { return inner_.get_provider_key(user_id, provider); });
  }
  sdk::Result<std::vector<sdk::ProviderKey>> list_provider_keys(std::string_view user_id) override {
    return checked([&] { return inner_.list_provider_keys(user_id); });
  }
  sdk::Status delete_provider_key(std::string_view user_id, std::string_view provider) override {
    return atomically([&] { return inner_.delete_provider_key(user_id, provider); });
  }
  sdk::Result<sdk::Page<sdk::ProviderKey>> list_provider_keys_by_key_id(
      std::string_view key_id, const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_provider_keys_by_key_id(key_id, page); });
  }
  sdk::Result<sdk::AccessToken> create_access_token(const sdk::NewAccessToken& token) override {
    return atomically([&] { return inner_.create_access_token(token); });
  }
  sdk::Result<sdk::AccessToken> find_access_token(std::string_view token_hash) override {
    return checked([&] { return inner_.find_access_token(token_hash); });
  }
  sdk::Result<std::vector<sdk::AccessToken>> list_access_tokens(std::string_view user_id) override {
    return checked([&] { return inner_.list_access_tokens(user_id); });
  }
  sdk::Status revoke_access_token(std::string_view user_id, std::string_view token_id) override {
    return atomically([&] { return inner_.revoke_access_token(user_id, token_id); });
  }
  sdk::Status touch_access_token(std::string_view token_id) override {
    return atomically([&] { return inner_.touch_access_token(token_id); });
  }
  sdk::Result<sdk::Project> create_project(const sdk::NewProject& project) override {
    return atomically([&] { return inner_.create_project(project); });
  }
  sdk::Result<sdk::Project> get_project(std::string_view owner_id, std::string_view project_id) override {
    return checked([&] { return inner_.get_project(owner_id, project_id); });
  }
  sdk::Result<sdk::Page<sdk::Project>> list_projects(std::string_view owner_id,
                                                     const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_projects(owner_id, page); });
  }
  sdk::Result<sdk::Project> update_project(std::string_view owner_id, std::string_view project_id,
                                           const sdk::ProjectUpdate& update) override {
    return atomically([&] { return inner_.update_project(owner_id, project_id, update); });
  }
  sdk::Status delete_project(std::string_view owner_id, std::string_view project_id) override {
    return atomically([&] { return inner_.delete_project(owner_id, project_id); });
  }
  sdk::Result<sdk::FileVersion> put_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path, std::string_view content,
                                         std::string_view run_step_id) override {
    return atomically([&] { return inner_.put_file(owner_id, project_id, path, content, run_step_id); });
  }
  sdk::Result<sdk::FileVersion> delete_file(std::string_view owner_id, std::string_view project_id,
                                            std::string_view path, std::string_view run_step_id) override {
    return atomically([&] { return inner_.delete_file(owner_id, project_id, path, run_step_id); });
  }
  sdk::Result<sdk::FileContent> get_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path,
                                         std::optional<std::int64_t> version) override {
    return checked([&] { return inner_.get_file(owner_id, project_id, path, version); });
  }
  sdk::Result<sdk::Page<sdk::FileVersion>> list_files(std::string_view owner_id, std::string_view project_id,
                                                      std::string_view prefix,
                                                      const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_files(owner_id, project_id, prefix, page); });
  }
  sdk::Result<sdk::StorageUsage> usage_of_owner(std::string_view owner_id) override {
    return checked([&] { return inner_.usage_of_owner(owner_id); });
  }
  sdk::Result<sdk::Page<sdk::FileVersion>> list_file_versions(std::string_view owner_id,
                                                              std::string_view project_id,
                                                              std::string_view path,
                                                              const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_file_versions(owner_id, project_id, path, page); });
  }
  sdk::Result<std::int64_t> purge_unreferenced_blobs() override {
    return atomically([&] { return inner_.purge_unreferenced_blobs(); });
  }
  sdk::Result<sdk::Run> create_run(std::string_view owner_id, const sdk::NewRun& run) override {
    return atomically([&] { return inner_.create_run(owner_id, run); });
  }
  sdk::Result<sdk::Run> get_run(std::string_view owner_id, std::string_view run_id) override {
    return checked([&] { return inner_.get_run(owner_id, run_id); });
  }
  sdk::Result<sdk::Page<sdk::Run>> list_runs(std::string_view owner_id, std::string_view project_id,
                                             const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_runs(owner_id, project_id, page); });
  }
  sdk::Result<sdk::Run> update_run(std::string_view owner_id, std::string_view run_id,
                                   const sdk::RunUpdate& update) override {
    return atomically([&] { return inner_.update_run(owner_id, run_id, update); });
  }
  sdk::Result<std::optional<sdk::Run>> claim_run(const sdk::RunClaim& claim) override {
    return atomically([&] { return inner_.claim_run(claim); });
  }
  sdk::Result<sdk::Run> renew_run_lease(std::string_view run_id, std::string_view node_id,
                                        sdk::Timestamp lease_until) override {
    return atomically([&] { return inner_.renew_run_lease(run_id, node_id, lease_until); });
  }
  sdk::Status release_run_lease(std::string_view run_id, std::string_view node_id) override {
    return atomically([&] { return inner_.release_run_lease(run_id, node_id); });
  }
  sdk::Result<bool> try_acquire_lease(std::string_view name, std::string_view holder,
                                      sdk::Timestamp until) override {
    return atomically([&] { return inner_.try_acquire_lease(name, holder, until); });
  }
  sdk::Status release_lease(std::string_view name, std::string_view holder) override {
    return atomically([&] { return inner_.release_lease(name, holder); });
  }
  sdk::Result<sdk::RunStep> append_run_step(std::string_view owner_id, std::string_view run_id,
                                            const sdk::NewRunStep& step) override {
    return atomically([&] { return inner_.append_run_step(owner_id, run_id, step); });
  }
  sdk::Result<sdk::RunStep> get_run_step(std::string_view owner_id, std::string_view step_id) override {
    return checked([&] { return inner_.get_run_step(owner_id, step_id); });
  }
  sdk::Result<sdk::RunStep> latest_run_step(std::string_view owner_id, std::string_view run_id) override {
    return checked([&] { return inner_.latest_run_step(owner_id, run_id); });
  }
  sdk::Result<sdk::Page<sdk::RunStep>> list_run_steps(std::string_view owner_id, std::string_view run_id,
                                                      const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_run_steps(owner_id, run_id, page); });
  }
  sdk::Result<sdk::RunEvent> append_run_event(std::string_view owner_id, std::string_view run_id,
                                              std::string_view type, const nlohmann::json& payload) override {
    return atomically([&] { return inner_.append_run_event(owner_id, run_id, type, payload); });
  }
  sdk::Result<std::vector<sdk::RunEvent>> list_run_events(std::string_view owner_id, std::string_view run_id,
                                                          std::int64_t after_seq,
                                                          std::uint32_t limit) override {
    return checked([&] { return inner_.list_run_events(owner_id, run_id, after_seq, limit); });
  }
  sdk::Result<sdk::LlmRequest> record_llm_request(const sdk::NewLlmRequest& request) override {
    return atomically([&] { return inner_.record_llm_request(request); });
  }
  sdk::Result<sdk::Page<sdk::LlmRequest>> list_llm_requests(std::string_view user_id,
                                                            const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_llm_requests(user_id, page); });
  }
  sdk::Result<std::vector<sdk::UsageTotal>> usage_by_model(std::string_view user_id,
                                                           std::optional<sdk::Timestamp> since,
                                                           std::optional<sdk::Timestamp> until) override {
    return checked([&] { return inner_.usage_by_model(user_id, since, until); });
  }
  sdk::Result<sdk::Preview> upsert_preview(std::string_view owner_id,
                                           const sdk::PreviewUpsert& preview) override {
    return atomically([&] { return inner_.upsert_preview(owner_id, preview); });
  }
  sdk::Result<sdk::Preview> get_preview(std::string_view owner_id, std::string_view project_id) override {
    return checked([&] { return inner_.get_preview(owner_id, project_id); });
  }
  sdk::Status delete_preview(std::string_view owner_id, std::string_view project_id) override {
    return atomically([&] { return inner_.delete_preview(owner_id, project_id); });
  }
  sdk::Result<sdk::Page<sdk::Preview>> list_previews(const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_previews(page); });
  }
  sdk::Result<sdk::Notification> create_notification(const sdk::NewNotification& notification) override {
    return atomically([&] { return inner_.create_notification(notification); });
  }
  sdk::Result<sdk::Page<sdk::Notification>> list_notifications(std::string_view user_id, bool unread_only,
                                                               const sdk::PageRequest& page) override {
    return checked([&] { return inner_.list_notifications(user_id, unread_only, page); });
  }
  sdk::Result<std::int64_t> count_unread_notifications(std::string_view user_id) override {
    return checked([&] { return inner_.count_unread_notifications(user_id); });
  }
  sdk::Status mark_notification_read(std::string_view user_id, std::string_view notification_id) override {
    return atomically([&] { return inner_.mark_notification_read(user_id, notification_id); });
  }
  sdk::Result<std::int64_t> mark_all_notifications_read(std::string_view user_id) override {
    return atomically([&] { return inner_.mark_all_notifications_read(user_id); });
  }
  sdk::Result<sdk::StorageStats> stats() override {
    return checked([&] { return inner_.stats(); });
  }

 private:
  // SQLite rolls a whole transaction back by itself after some errors (I/O, disk full). From then
  // on, statements would silently run in autocommit mode, outside the transaction: refuse them.
  Status still_in_transaction() const {
    if (sqlite3_get_autocommit(db_.handle()) != 0) {
      return Status::aborted("the transaction was rolled back by SQLite after an earlier error");
    }
    return {};
  }

  template <typename F>
  auto checked(F&& f) -> decltype(f()) {
    SAMOKODER_RETURN_IF_ERROR(still_in_transaction());
    return f();
  }

  template <typename F>
  auto atomically(F&& f) -> decltype(f()) {
    SAMOKODER_RETURN_IF_ERROR(still_in_transaction());
    SAMOKODER_RETURN_IF_ERROR(open_savepoint(db_));
    auto result = f();
    if (status_of(result).ok()) {
      SAMOKODER_RETURN_IF_ERROR(close_savepoint(db_, true));
      return result;
    }
    if (still_in_transaction().ok()) (void)close_savepoint(db_, false);
    return result;
  }

  SqliteOps& inner_;
  Connection& db_;
};

}  // namespace

// ============================================================================================ config

Result<Config> parse_config(const nlohmann::json& section) {
  Config config;
  if (section.is_null()) return config;
  const auto bad = [](const std::string& key, const std::string& expected) {
    return Status::invalid_argument(std::string(kPluginId) + " config: /" + key + ": expected " + expected);
  };
  if (!section.is_object())
    return Status::invalid_argument(std::string(kPluginId) + " config must be an object");
  for (const auto& [key, value] : section.items()) {
    if (key == "path") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty())
        return bad(key, "a non-empty string");
      config.path = value.get<std::string>();
      // Several connections share the database, so it must be a real file, not a private memory db.
      if (config.path == ":memory:" || config.path.starts_with("file:")) return bad(key, "a file path");
    } else if (key == "busy_timeout_ms") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > 600000) {
        return bad(key, "an integer 0..600000");
      }
      config.busy_timeout_ms = value.get<int>();
    } else if (key == "synchronous") {
      if (!value.is_string() || (value != "normal" && value != "full"))
        return bad(key, "\"normal\" or \"full\"");
      config.synchronous_full = value == "full";
    } else if (key == "read_connections") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 || value.get<std::int64_t>() > 64) {
        return bad(key, "an integer 1..64");
      }
      config.read_connections = value.get<int>();
    } else if (key == "auto_migrate") {
      if (!value.is_boolean()) return bad(key, "true or false");
      config.auto_migrate = value.get<bool>();
    } else {
      return Status::invalid_argument(std::string(kPluginId) + " config: unknown key /" + key);
    }
  }
  return config;
}

// ======================================================================================= reader pool

void ReaderPool::add(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  idle_.push_back(connection.get());
  all_.push_back(std::move(connection));
}

Connection& ReaderPool::acquire() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty(); });
  Connection* connection = idle_.back();
  idle_.pop_back();
  return *connection;
}

void ReaderPool::release(Connection& connection) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(&connection);
  }
  available_.notify_one();
}

int ReaderPool::in_use() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(all_.size() - idle_.size());
}

void ReaderPool::clear() {
  std::lock_guard lock(mutex_);
  idle_.clear();
  all_.clear();
}

// ======================================================================================= lifecycle

SqliteStorage::~SqliteStorage() {
  shutdown();
}

Status SqliteStorage::init(sdk::HostServices& host) {
  host_ = &host;
  try {
    auto config = parse_config(host.config());
    if (!config.ok()) return config.status();
    config_ = std::move(*config);

    const fs::path path(config_.path);
    if (path.has_parent_path()) {
      std::error_code ec;
      fs::create_directories(path.parent_path(), ec);
      if (ec) {
        return Status::failed_precondition("cannot create directory " + path.parent_path().string() +
                                           " for the database: " + ec.message());
      }
    }
    ConnectionOptions options{config_.path, config_.busy_timeout_ms, config_.synchronous_full, false};
    auto writer = Connection::open(options);
    if (!writer.ok()) return writer.status();
    std::int64_t version = 0;
    {
      std::lock_guard lock(writer_mutex_);
      writer_ = std::move(*writer);
      if (config_.auto_migrate) SAMOKODER_RETURN_IF_ERROR(migrate_locked());
      auto current = current_schema_version(*writer_);
      if (!current.ok()) return current.status();
      version = *current;
    }
    if (version > supported_schema_version()) return newer_schema(version);
    if (version < supported_schema_version()) {
      // Only reachable with auto_migrate off: the caller (`samokoder db status`, `db migrate`) decides.
      host.log(sdk::LogLevel::kWarn,
               std::to_string(supported_schema_version() - version) +
                   " schema migration(s) pending: the database is at version " + std::to_string(version) +
                   ", this " + std::string(kPluginId) + " supports " +
                   std::to_string(supported_schema_version()) +
                   "; auto_migrate is off, so they are applied only by migrate() (`samokoder db migrate`)");
    }
    options.read_only = true;
    for (int i = 0; i < config_.read_connections; ++i) {
      auto reader = Connection::open(options);
      if (!reader.ok()) return reader.status();
      readers_.add(std::move(*reader));
    }
    open_.store(true);
    set_reader_gauge();
    host.log(sdk::LogLevel::kInfo,
             "opened " + config_.path + " (schema version " + std::to_string(version) +
                 ", WAL, synchronous=" + (config_.synchronous_full ? "full" : "normal") + ", " +
                 std::to_string(config_.read_connections) + " read connections)");
    return {};
  } catch (const std::exception& e) {
    return Status::internal(std::string("storage.sqlite init failed: ") + e.what());
  }
}

void SqliteStorage::shutdown() noexcept {
  open_.store(false);
  // Readers first: the writer is then the last connection, and closing it checkpoints the WAL into
  // the database file and removes the -wal file.
  readers_.clear();
  std::lock_guard lock(writer_mutex_);
  writer_.reset();
}

Status SqliteStorage::usable() const {
  if (!open_.load()) return closed();
  if (writer_thread_.load() == std::this_thread::get_id()) return reentrant();
  return {};
}

void SqliteStorage::rollback(Connection& connection) noexcept {
  if (sqlite3_get_autocommit(connection.handle()) == 0) (void)connection.run_statement("ROLLBACK");
}

void SqliteStorage::record(std::string_view operation, const Status& status,
                           std::chrono::steady_clock::time_point start) noexcept {
  if (host_ == nullptr) return;
  const std::chrono::duration<double> elapsed = host_->monotonic_now() - start;
  const sdk::MetricLabel counted[] = {{"operation", operation},
                                      {"outcome", sdk::status_code_name(status.code())}};
  host_->counter_add("storage_operations_total", counted, 1);
  const sdk::MetricLabel timed[] = {{"operation", operation}};
  host_->histogram_observe("storage_operation_seconds", timed, elapsed.count());
}

void SqliteStorage::set_reader_gauge() noexcept {
  if (host_ == nullptr) return;
  const sdk::MetricLabel labels[] = {{"pool", "read"}};
  host_->gauge_set("storage_connections_in_use", labels, readers_.in_use());
}

// ====================================================================================== routing

// One write waiting in, or running from, the writer queue. Its operation runs on whichever thread
// leads the batch; the caller's thread sleeps until `done` and then takes the outcome.
class WriteJob {
 public:
  explicit WriteJob(bool batchable) : batchable(batchable) {}
  virtual ~WriteJob() = default;
  WriteJob(const WriteJob&) = delete;
  WriteJob& operator=(const WriteJob&) = delete;

  // Runs the operation inside the open transaction; true if it succeeded. Never throws.
  virtual bool run(SqliteOps& ops) noexcept = 0;
  // The transaction that held the operation's effect is gone (its COMMIT, or a statement of the
  // batch around the operation, failed): that failure becomes the outcome.
  virtual void fail(const Status& status) noexcept = 0;

  const bool batchable;
  bool done = false;  // guarded by SqliteStorage::queue_mutex_
};

namespace {

constexpr std::size_t kMaxBatch = 64;

template <typename R, typename F>
class TypedWriteJob final : public WriteJob {
 public:
  TypedWriteJob(std::string_view operation, F& f, bool batchable)
      : WriteJob(batchable), operation_(operation), f_(f) {}

  bool run(SqliteOps& ops) noexcept override {
    try {
      outcome_.emplace(f_(ops));
    } catch (const nlohmann::json::exception& e) {
      outcome_.emplace(Status::data_loss(std::string(operation_) + ": stored JSON is corrupt: " + e.what()));
    } catch (const std::exception& e) {
      outcome_.emplace(Status::internal(std::string(operation_) + ": " + e.what()));
    } catch (...) {
      outcome_.emplace(Status::internal(std::string(operation_) + ": unknown exception"));
    }
    return status_of(*outcome_).ok();
  }
  void fail(const Status& status) noexcept override { outcome_.emplace(status); }
  R take() { return std::move(*outcome_); }

 private:
  std::string_view operation_;
  F& f_;
  std::optional<R> outcome_;
};

}  // namespace

template <typename F>
auto SqliteStorage::write(std::string_view operation, F&& f, Batching batching)
    -> decltype(f(std::declval<SqliteOps&>())) {
  using R = decltype(f(std::declval<SqliteOps&>()));
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  R result = [&]() -> R {
    SAMOKODER_RETURN_IF_ERROR(usable());
    TypedWriteJob<R, std::remove_reference_t<F>> job(operation, f, batching == Batching::kJoin);
    run_in_group(job);
    return job.take();
  }();
  record(operation, status_of(result), start);
  return result;
}

void SqliteStorage::run_in_group(WriteJob& job) {
  // Allocated before the job is queued: once it is, nothing may throw until it is taken off again,
  // or the queue would keep a dangling head that every later writer waits behind.
  std::vector<WriteJob*> batch;
  batch.reserve(kMaxBatch);
  std::unique_lock queue_lock(queue_mutex_);
  write_queue_.push_back(&job);
  set_queue_gauge();
  queue_changed_.wait(queue_lock, [&] { return job.done || write_queue_.front() == &job; });
  if (job.done) return;
  // This thread leads: it takes its own job and the batchable ones queued right behind it. A job
  // that may not join a batch is only ever taken by its own thread, alone.
  batch.push_back(&job);
  if (job.batchable) {
    for (auto it = std::next(write_queue_.begin()); it != write_queue_.end() && batch.size() < kMaxBatch;
         ++it) {
      if (!(*it)->batchable) break;
      batch.push_back(*it);
    }
  }
  queue_lock.unlock();
  run_batch(batch);
  queue_lock.lock();
  for (WriteJob* done : batch) {
    done->done = true;
    write_queue_.pop_front();
  }
  set_queue_gauge();
  queue_lock.unlock();
  queue_changed_.notify_all();
}

void SqliteStorage::run_batch(const std::vector<WriteJob*>& batch) noexcept {
  std::lock_guard lock(writer_mutex_);
  if (!writer_) {
    for (WriteJob* job : batch)
      job->fail(closed());
    return;
  }
  WriterThreadMark mark(writer_thread_);
  const sdk::MetricLabel pool[] = {{"pool", "write"}};
  host_->gauge_set("storage_connections_in_use", pool, 1);
  host_->counter_add("storage_write_batches_total", {}, 1);
  struct GaugeReset {
    sdk::HostServices& host;
    const sdk::MetricLabel (&labels)[1];
    ~GaugeReset() { host.gauge_set("storage_connections_in_use", labels, 0); }
  } gauge_reset{*host_, pool};

  // Everything the transaction did is gone, so every job of the batch fails with `why`: also one that
  // failed on its own, because it ran on top of the others' effects and its error (say, a name
  // already taken by an earlier job of the batch) may no longer be true.
  auto abandon = [&](const Status& why) noexcept {
    rollback(*writer_);
    for (WriteJob* job : batch)
      job->fail(why);
  };

  if (Status begun = writer_->run_statement("BEGIN IMMEDIATE"); !begun.ok()) {
    abandon(begun);
    return;
  }
  SqliteOps ops(*writer_, *host_);
  const bool alone = batch.size() == 1;
  bool any_succeeded = false;
  for (WriteJob* job : batch) {
    // A job alone needs no savepoint: on failure the whole transaction is rolled back.
    if (!alone) {
      if (Status saved = open_savepoint(*writer_); !saved.ok()) {
        abandon(saved);
        return;
      }
    }
    const bool succeeded = job->run(ops);
    any_succeeded = any_succeeded || succeeded;
    if (alone) continue;
    // Fails when SQLite already rolled the whole transaction back: the earlier jobs' effects are gone too.
    if (Status closed_savepoint = close_savepoint(*writer_, succeeded); !closed_savepoint.ok()) {
      abandon(closed_savepoint);
      return;
    }
  }
  if (!any_succeeded) {
    rollback(*writer_);
    return;
  }
  if (sqlite3_get_autocommit(writer_->handle()) != 0) {
    abandon(Status::unavailable("storage.sqlite: the write transaction ended before its COMMIT"));
    return;
  }
  if (Status committed = writer_->run_statement("COMMIT"); !committed.ok()) abandon(committed);
}

void SqliteStorage::set_queue_gauge() noexcept {
  if (host_ != nullptr)
    host_->gauge_set("storage_write_queue_depth", {}, static_cast<double>(write_queue_.size()));
}

template <typename F>
auto SqliteStorage::read(std::string_view operation, F&& f) -> decltype(f(std::declval<SqliteOps&>())) {
  using R = decltype(f(std::declval<SqliteOps&>()));
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  R result = [&]() -> R {
    SAMOKODER_RETURN_IF_ERROR(usable());
    Connection& reader = readers_.acquire();
    set_reader_gauge();
    struct Release {
      SqliteStorage& self;
      Connection& reader;
      ~Release() {
        self.readers_.release(reader);
        self.set_reader_gauge();
      }
    } release{*this, reader};
    try {
      SAMOKODER_RETURN_IF_ERROR(reader.run_statement("BEGIN"));
      SqliteOps ops(reader, *host_);
      R r = f(ops);
      rollback(reader);  // a read transaction has nothing to commit; ending it frees the snapshot
      return r;
    } catch (const nlohmann::json::exception& e) {
      rollback(reader);
      return Status::data_loss(std::string(operation) + ": stored JSON is corrupt: " + e.what());
    } catch (const std::exception& e) {
      rollback(reader);
      return Status::internal(std::string(operation) + ": " + e.what());
    } catch (...) {
      rollback(reader);
      return Status::internal(std::string(operation) + ": unknown exception");
    }
  }();
  record(operation, status_of(result), start);
  return result;
}

// =============================================================================== Storage methods

Status SqliteStorage::health() {
  Result<std::int64_t> version =
      read("health", [](SqliteOps& ops) { return current_schema_version(ops.connection()); });
  if (version.ok()) return {};
  const Status failure = version.status();
  if (failure.code() == sdk::StatusCode::kFailedPrecondition) return failure;
  return Status::unavailable("storage.sqlite health check failed: " + failure.message());
}

Status SqliteStorage::transaction(const std::function<Status(sdk::StorageOps& ops)>& fn) {
  if (!fn) return Status::invalid_argument("transaction function is empty");
  return write(
      "transaction",
      [&](SqliteOps& ops) -> Status {
        TransactionOps tx(ops, ops.connection());
        try {
          return fn(tx);
        } catch (const std::exception& e) {
          return Status::internal(std::string("transaction function threw: ") + e.what());
        } catch (...) {
          return Status::internal("transaction function threw a non-standard exception");
        }
      },
      Batching::kAlone);
}

Result<sdk::SchemaStatus> SqliteStorage::schema_status() {
  return read("schema_status", [](SqliteOps& ops) -> Result<sdk::SchemaStatus> {
    sdk::SchemaStatus status;
    status.supported_version = supported_schema_version();
    auto exists = has_schema_migrations(ops.connection());
    if (!exists.ok()) return exists.status();
    if (!*exists) return status;
    auto q = ops.connection().prepare(
        "SELECT version, description, applied_at FROM schema_migrations ORDER BY version");
    if (!q.ok()) return q.status();
    while (true) {
      auto row = q->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      status.applied.push_back(sdk::AppliedMigration{q->column_int(0), q->column_text(1), q->column_time(2)});
      status.current_version = q->column_int(0);
    }
    return status;
  });
}

Status SqliteStorage::migrate() {
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  Status status = [&]() -> Status {
    SAMOKODER_RETURN_IF_ERROR(usable());
    std::lock_guard lock(writer_mutex_);
    if (!writer_) return closed();
    try {
      return migrate_locked();
    } catch (const std::exception& e) {
      rollback(*writer_);
      return Status::internal(std::string("migrate: ") + e.what());
    }
  }();
  record("migrate", status, start);
  return status;
}

Status SqliteStorage::migrate_locked() {
  SAMOKODER_RETURN_IF_ERROR(writer_->exec(kSchemaMigrationsTable));
  auto current = current_schema_version(*writer_);
  if (!current.ok()) return current.status();
  if (*current > supported_schema_version()) return newer_schema(*current);
  for (const Migration& migration : migrations()) {
    if (migration.version <= *current) continue;
    SAMOKODER_RETURN_IF_ERROR(writer_->run_statement("BEGIN IMMEDIATE"));
    Status applied = [&]() -> Status {
      // Another process may have migrated between our check and BEGIN IMMEDIATE.
      auto now_at = current_schema_version(*writer_);
      if (!now_at.ok()) return now_at.status();
      if (*now_at > supported_schema_version()) return newer_schema(*now_at);
      if (*now_at >= migration.version) return {};
      SAMOKODER_RETURN_IF_ERROR(writer_->exec(migration.sql));
      auto insert = writer_->prepare(
          "INSERT INTO schema_migrations (version, applied_at, description) VALUES (?, ?, ?)");
      if (!insert.ok()) return insert.status();
      insert->integer(migration.version).time(host_->now()).text(migration.description);
      SAMOKODER_RETURN_IF_ERROR(insert->run());
      return writer_->run_statement("COMMIT");
    }();
    if (!applied.ok()) {
      rollback(*writer_);
      return Status(applied.code(), "schema migration " + std::to_string(migration.version) + " (" +
                                        std::string(migration.description) +
                                        ") failed: " + applied.message());
    }
    rollback(*writer_);  // only still open when the version had been applied meanwhile
    host_->log(sdk::LogLevel::kInfo, "applied schema migration " + std::to_string(migration.version) + ": " +
                                         std::string(migration.description));
    *current = migration.version;
  }
  return {};
}

Status SqliteStorage::backup(std::string_view destination) {
  const auto start = host_ != nullptr ? host_->monotonic_now() : std::chrono::steady_clock::time_point();
  const auto write_backup = [&]() -> Status {
    SAMOKODER_RETURN_IF_ERROR(usable());
    if (destination.empty()) return Status::invalid_argument("backup destination is required");
    const fs::path target{std::string(destination)};
    std::error_code ec;
    if (fs::exists(fs::symlink_status(target, ec))) {
      return Status::already_exists("backup destination " + target.string() + " already exists");
    }
    const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(parent, ec)) {
      return Status::not_found("backup directory " + parent.string() + " does not exist");
    }
    // Written beside the target and renamed into place, so a crash never leaves a half backup there.
    const std::string partial = target.string() + ".partial-" + new_id(host_->now());

    Connection& source = readers_.acquire();
    set_reader_gauge();
    sqlite3* out = nullptr;
    struct Cleanup {
      SqliteStorage& self;
      Connection& source;
      sqlite3*& out;
      const std::string& partial;
      ~Cleanup() {
        if (out != nullptr) sqlite3_close(out);
        std::error_code ignored;
        fs::remove(partial, ignored);
        self.readers_.release(source);
        self.set_reader_gauge();
      }
    } cleanup{*this, source, out, partial};

    int rc = sqlite3_open_v2(partial.c_str(), &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) return status_from_sqlite(rc, "backup: open " + partial, out);
    sqlite3_backup* copy = sqlite3_backup_init(out, "main", source.handle(), "main");
    if (copy == nullptr) return status_from_sqlite(sqlite3_extended_errcode(out), "backup", out);
    // One step copies everything under one read transaction: a consistent snapshot, and in WAL mode
    // the writer keeps committing meanwhile.
    rc = sqlite3_backup_step(copy, -1);
    const int finished = sqlite3_backup_finish(copy);
    if (rc != SQLITE_DONE) return status_from_sqlite(rc, "backup", out);
    if (finished != SQLITE_OK) return status_from_sqlite(finished, "backup", out);
    rc = sqlite3_close(out);
    out = nullptr;
    if (rc != SQLITE_OK) return status_from_sqlite(rc, "backup: close " + partial, nullptr);
    if (renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
      const int error = errno;
      if (error == EEXIST)
        return Status::already_exists("backup destination " + target.string() + " already exists");
      return Status::unavailable("backup: cannot move " + partial + " to " + target.string() + ": " +
                                 std::strerror(error));
    }
    host_->log(sdk::LogLevel::kInfo, "backup written to " + target.string());
    return {};
  };
  Status status;
  try {
    status = write_backup();
  } catch (const std::exception& e) {
    status = Status::internal(std::string("backup: ") + e.what());
  }
  record("backup", status, start);
  return status;
}

// ================================================================================ data operations

sdk::Result<sdk::User> SqliteStorage::create_user(const sdk::NewUser& user) {
  return write("create_user", [&](SqliteOps& ops) { return ops.create_user(user); });
}

sdk::Result<sdk::User> SqliteStorage::get_user(std::string_view user_id) {
  return read("get_user", [&](SqliteOps& ops) { return ops.get_user(user_id); });
}

sdk::Result<sdk::User> SqliteStorage::find_user_by_email(std::string_view email) {
  return read("find_user_by_email", [&](SqliteOps& ops) { return ops.find_user_by_email(email); });
}

sdk::Result<sdk::User> SqliteStorage::update_user(std::string_view user_id, const sdk::UserUpdate& update) {
  return write("update_user", [&](SqliteOps& ops) { return ops.update_user(user_id, update); });
}

sdk::Status SqliteStorage::delete_user(std::string_view user_id) {
  return write("delete_user", [&](SqliteOps& ops) { return ops.delete_user(user_id); });
}

sdk::Result<sdk::Page<sdk::User>> SqliteStorage::list_users(const sdk::PageRequest& page) {
  return read("list_users", [&](SqliteOps& ops) { return ops.list_users(page); });
}

sdk::Result<sdk::Session> SqliteStorage::create_session(const sdk::NewSession& session) {
  return write("create_session", [&](SqliteOps& ops) { return ops.create_session(session); });
}

sdk::Result<sdk::Session> SqliteStorage::get_session(std::string_view session_id) {
  return read("get_session", [&](SqliteOps& ops) { return ops.get_session(session_id); });
}

sdk::Result<std::vector<sdk::Session>> SqliteStorage::list_active_sessions(std::string_view user_id) {
  return read("list_active_sessions", [&](SqliteOps& ops) { return ops.list_active_sessions(user_id); });
}

sdk::Status SqliteStorage::revoke_session(std::string_view session_id, std::string_view reason) {
  return write("revoke_session", [&](SqliteOps& ops) { return ops.revoke_session(session_id, reason); });
}

sdk::Result<std::int64_t> SqliteStorage::revoke_user_sessions(std::string_view user_id,
                                                              std::string_view reason) {
  return write("revoke_user_sessions",
               [&](SqliteOps& ops) { return ops.revoke_user_sessions(user_id, reason); });
}

sdk::Result<sdk::RefreshToken> SqliteStorage::add_refresh_token(const sdk::NewRefreshToken& token) {
  return write("add_refresh_token", [&](SqliteOps& ops) { return ops.add_refresh_token(token); });
}

sdk::Result<sdk::RefreshToken> SqliteStorage::find_refresh_token(std::string_view token_hash) {
  return read("find_refresh_token", [&](SqliteOps& ops) { return ops.find_refresh_token(token_hash); });
}

sdk::Result<sdk::RefreshToken> SqliteStorage::rotate_refresh_token(std::string_view old_token_hash,
                                                                   const sdk::NewRefreshToken& next) {
  return write("rotate_refresh_token",
               [&](SqliteOps& ops) { return ops.rotate_refresh_token(old_token_hash, next); });
}

sdk::Result<std::int64_t> SqliteStorage::purge_expired_sessions() {
  return write("purge_expired_sessions", [&](SqliteOps& ops) { return ops.purge_expired_sessions(); });
}

sdk::Status SqliteStorage::revoke_token_id(std::string_view jti, sdk::Timestamp expires_at,
                                           std::string_view reason) {
  return write("revoke_token_id",
               [&](SqliteOps& ops) { return ops.revoke_token_id(jti, expires_at, reason); });
}

sdk::Result<bool> SqliteStorage::is_token_id_revoked(std::string_view jti) {
  return read("is_token_id_revoked", [&](SqliteOps& ops) { return ops.is_token_id_revoked(jti); });
}

sdk::Result<std::int64_t> SqliteStorage::purge_expired_token_revocations() {
  return write("purge_expired_token_revocations",
               [&](SqliteOps& ops) { return ops.purge_expired_token_revocations(); });
}

sdk::Status SqliteStorage::record_login_attempt(const sdk::LoginAttempt& attempt) {
  return write("record_login_attempt", [&](SqliteOps& ops) { return ops.record_login_attempt(attempt); });
}

sdk::Result<std::int64_t> SqliteStorage::count_failed_logins_for_subject(std::string_view subject,
                                                                         sdk::Timestamp since) {
  return read("count_failed_logins_for_subject",
              [&](SqliteOps& ops) { return ops.count_failed_logins_for_subject(subject, since); });
}

sdk::Result<std::int64_t> SqliteStorage::count_failed_logins_for_address(std::string_view source_address,
                                                                         sdk::Timestamp since) {
  return read("count_failed_logins_for_address",
              [&](SqliteOps& ops) { return ops.count_failed_logins_for_address(source_address, since); });
}

sdk::Result<std::int64_t> SqliteStorage::purge_login_attempts(sdk::Timestamp before) {
  return write("purge_login_attempts", [&](SqliteOps& ops) { return ops.purge_login_attempts(before); });
}

sdk::Result<sdk::AuditEvent> SqliteStorage::append_audit_event(const sdk::NewAuditEvent& event) {
  return write("append_audit_event", [&](SqliteOps& ops) { return ops.append_audit_event(event); });
}

sdk::Result<sdk::Page<sdk::AuditEvent>> SqliteStorage::list_audit_events(const sdk::AuditFilter& filter,
                                                                         const sdk::PageRequest& page) {
  return read("list_audit_events", [&](SqliteOps& ops) { return ops.list_audit_events(filter, page); });
}

sdk::Result<sdk::ProviderKey> SqliteStorage::put_provider_key(const sdk::NewProviderKey& key) {
  return write("put_provider_key", [&](SqliteOps& ops) { return ops.put_provider_key(key); });
}

sdk::Result<sdk::ProviderKey> SqliteStorage::get_provider_key(std::string_view user_id,
                                                              std::string_view provider) {
  return read("get_provider_key", [&](SqliteOps& ops) { return ops.get_provider_key(user_id, provider); });
}

sdk::Result<std::vector<sdk::ProviderKey>> SqliteStorage::list_provider_keys(std::string_view user_id) {
  return read("list_provider_keys", [&](SqliteOps& ops) { return ops.list_provider_keys(user_id); });
}

sdk::Status SqliteStorage::delete_provider_key(std::string_view user_id, std::string_view provider) {
  return write("delete_provider_key",
               [&](SqliteOps& ops) { return ops.delete_provider_key(user_id, provider); });
}

sdk::Result<sdk::Page<sdk::ProviderKey>> SqliteStorage::list_provider_keys_by_key_id(
    std::string_view key_id, const sdk::PageRequest& page) {
  return read("list_provider_keys_by_key_id",
              [&](SqliteOps& ops) { return ops.list_provider_keys_by_key_id(key_id, page); });
}

sdk::Result<sdk::AccessToken> SqliteStorage::create_access_token(const sdk::NewAccessToken& token) {
  return write("create_access_token", [&](SqliteOps& ops) { return ops.create_access_token(token); });
}

sdk::Result<sdk::AccessToken> SqliteStorage::find_access_token(std::string_view token_hash) {
  return read("find_access_token", [&](SqliteOps& ops) { return ops.find_access_token(token_hash); });
}

sdk::Result<std::vector<sdk::AccessToken>> SqliteStorage::list_access_tokens(std::string_view user_id) {
  return read("list_access_tokens", [&](SqliteOps& ops) { return ops.list_access_tokens(user_id); });
}

sdk::Status SqliteStorage::revoke_access_token(std::string_view user_id, std::string_view token_id) {
  return write("revoke_access_token",
               [&](SqliteOps& ops) { return ops.revoke_access_token(user_id, token_id); });
}

sdk::Status SqliteStorage::touch_access_token(std::string_view token_id) {
  return write("touch_access_token", [&](SqliteOps& ops) { return ops.touch_access_token(token_id); });
}

sdk::Result<sdk::Project> SqliteStorage::create_project(const sdk::NewProject& project) {
  return write("create_project", [&](SqliteOps& ops) { return ops.create_project(project); });
}

sdk::Result<sdk::Project> SqliteStorage::get_project(std::string_view owner_id, std::string_view project_id) {
  return read("get_project", [&](SqliteOps& ops) { return ops.get_project(owner_id, project_id); });
}

sdk::Result<sdk::Page<sdk::Project>> SqliteStorage::list_projects(std::string_view owner_id,
                                                                  const sdk::PageRequest& page) {
  return read("list_projects", [&](SqliteOps& ops) { return ops.list_projects(owner_id, page); });
}

sdk::Result<sdk::Project> SqliteStorage::update_project(std::string_view owner_id,
                                                        std::string_view project_id,
                                                        const sdk::ProjectUpdate& update) {
  return write("update_project",
               [&](SqliteOps& ops) { return ops.update_project(owner_id, project_id, update); });
}

sdk::Status SqliteStorage::delete_project(std::string_view owner_id, std::string_view project_id) {
  return write("delete_project", [&](SqliteOps& ops) { return ops.delete_project(owner_id, project_id); });
}

sdk::Result<sdk::FileVersion> SqliteStorage::put_file(std::string_view owner_id, std::string_view project_id,
                                                      std::string_view path, std::string_view content,
                                                      std::string_view run_step_id) {
  return write("put_file", [&](SqliteOps& ops) {
    return ops.put_file(owner_id, project_id, path, content, run_step_id);
  });
}

sdk::Result<sdk::FileVersion> SqliteStorage::delete_file(std::string_view owner_id,
                                                         std::string_view project_id, std::string_view path,
                                                         std::string_view run_step_id) {
  return write("delete_file",
               [&](SqliteOps& ops) { return ops.delete_file(owner_id, project_id, path, run_step_id); });
}

sdk::Result<sdk::FileContent> SqliteStorage::get_file(std::string_view owner_id, std::string_view project_id,
                                                      std::string_view path,
                                                      std::optional<std::int64_t> version) {
  return read("get_file", [&](SqliteOps& ops) { return ops.get_file(owner_id, project_id, path, version); });
}

sdk::Result<sdk::StorageUsage> SqliteStorage::usage_of_owner(std::string_view owner_id) {
  return read("usage_of_owner", [&](SqliteOps& ops) { return ops.usage_of_owner(owner_id); });
}

sdk::Result<sdk::Page<sdk::FileVersion>> SqliteStorage::list_files(std::string_view owner_id,
                                                                   std::string_view project_id,
                                                                   std::string_view prefix,
                                                                   const sdk::PageRequest& page) {
  return read("list_files",
              [&](SqliteOps& ops) { return ops.list_files(owner_id, project_id, prefix, page); });
}

sdk::Result<sdk::Page<sdk::FileVersion>> SqliteStorage::list_file_versions(std::string_view owner_id,
                                                                           std::string_view project_id,
                                                                           std::string_view path,
                                                                           const sdk::PageRequest& page) {
  return read("list_file_versions",
              [&](SqliteOps& ops) { return ops.list_file_versions(owner_id, project_id, path, page); });
}

sdk::Result<std::int64_t> SqliteStorage::purge_unreferenced_blobs() {
  return write("purge_unreferenced_blobs", [&](SqliteOps& ops) { return ops.purge_unreferenced_blobs(); });
}

sdk::Result<sdk::Run> SqliteStorage::create_run(std::string_view owner_id, const sdk::NewRun& run) {
  return write("create_run", [&](SqliteOps& ops) { return ops.create_run(owner_id, run); });
}

sdk::Result<sdk::Run> SqliteStorage::get_run(std::string_view owner_id, std::string_view run_id) {
  return read("get_run", [&](SqliteOps& ops) { return ops.get_run(owner_id, run_id); });
}

sdk::Result<sdk::Page<sdk::Run>> SqliteStorage::list_runs(std::string_view owner_id,
                                                          std::string_view project_id,
                                                          const sdk::PageRequest& page) {
  return read("list_runs", [&](SqliteOps& ops) { return ops.list_runs(owner_id, project_id, page); });
}

sdk::Result<sdk::Run> SqliteStorage::update_run(std::string_view owner_id, std::string_view run_id,
                                                const sdk::RunUpdate& update) {
  return write("update_run", [&](SqliteOps& ops) { return ops.update_run(owner_id, run_id, update); });
}

sdk::Result<std::optional<sdk::Run>> SqliteStorage::claim_run(const sdk::RunClaim& claim) {
  return write("claim_run", [&](SqliteOps& ops) { return ops.claim_run(claim); });
}

sdk::Result<sdk::Run> SqliteStorage::renew_run_lease(std::string_view run_id, std::string_view node_id,
                                                     sdk::Timestamp lease_until) {
  return write("renew_run_lease",
               [&](SqliteOps& ops) { return ops.renew_run_lease(run_id, node_id, lease_until); });
}

sdk::Status SqliteStorage::release_run_lease(std::string_view run_id, std::string_view node_id) {
  return write("release_run_lease", [&](SqliteOps& ops) { return ops.release_run_lease(run_id, node_id); });
}

sdk::Result<bool> SqliteStorage::try_acquire_lease(std::string_view name, std::string_view holder,
                                                   sdk::Timestamp until) {
  return write("try_acquire_lease",
               [&](SqliteOps& ops) { return ops.try_acquire_lease(name, holder, until); });
}

sdk::Status SqliteStorage::release_lease(std::string_view name, std::string_view holder) {
  return write("release_lease", [&](SqliteOps& ops) { return ops.release_lease(name, holder); });
}

sdk::Result<sdk::RunStep> SqliteStorage::append_run_step(std::string_view owner_id, std::string_view run_id,
                                                         const sdk::NewRunStep& step) {
  return write("append_run_step",
               [&](SqliteOps& ops) { return ops.append_run_step(owner_id, run_id, step); });
}

sdk::Result<sdk::RunStep> SqliteStorage::get_run_step(std::string_view owner_id, std::string_view step_id) {
  return read("get_run_step", [&](SqliteOps& ops) { return ops.get_run_step(owner_id, step_id); });
}

sdk::Result<sdk::RunStep> SqliteStorage::latest_run_step(std::string_view owner_id, std::string_view run_id) {
  return read("latest_run_step", [&](SqliteOps& ops) { return ops.latest_run_step(owner_id, run_id); });
}

sdk::Result<sdk::Page<sdk::RunStep>> SqliteStorage::list_run_steps(std::string_view owner_id,
                                                                   std::string_view run_id,
                                                                   const sdk::PageRequest& page) {
  return read("list_run_steps", [&](SqliteOps& ops) { return ops.list_run_steps(owner_id, run_id, page); });
}

sdk::Result<sdk::RunEvent> SqliteStorage::append_run_event(std::string_view owner_id, std::string_view run_id,
                                                           std::string_view type,
                                                           const nlohmann::json& payload) {
  return write("append_run_event",
               [&](SqliteOps& ops) { return ops.append_run_event(owner_id, run_id, type, payload); });
}

sdk::Result<std::vector<sdk::RunEvent>> SqliteStorage::list_run_events(std::string_view owner_id,
                                                                       std::string_view run_id,
                                                                       std::int64_t after_seq,
                                                                       std::uint32_t limit) {
  return read("list_run_events",
              [&](SqliteOps& ops) { return ops.list_run_events(owner_id, run_id, after_seq, limit); });
}

sdk::Result<sdk::LlmRequest> SqliteStorage::record_llm_request(const sdk::NewLlmRequest& request) {
  return write("record_llm_request", [&](SqliteOps& ops) { return ops.record_llm_request(request); });
}

sdk::Result<sdk::Page<sdk::LlmRequest>> SqliteStorage::list_llm_requests(std::string_view user_id,
                                                                         const sdk::PageRequest& page) {
  return read("list_llm_requests", [&](SqliteOps& ops) { return ops.list_llm_requests(user_id, page); });
}

sdk::Result<std::vector<sdk::UsageTotal>> SqliteStorage::usage_by_model(std::string_view user_id,
                                                                        std::optional<sdk::Timestamp> since,
                                                                        std::optional<sdk::Timestamp> until) {
  return read("usage_by_model", [&](SqliteOps& ops) { return ops.usage_by_model(user_id, since, until); });
}

sdk::Result<sdk::Preview> SqliteStorage::upsert_preview(std::string_view owner_id,
                                                        const sdk::PreviewUpsert& preview) {
  return write("upsert_preview", [&](SqliteOps& ops) { return ops.upsert_preview(owner_id, preview); });
}

sdk::Result<sdk::Preview> SqliteStorage::get_preview(std::string_view owner_id, std::string_view project_id) {
  return read("get_preview", [&](SqliteOps& ops) { return ops.get_preview(owner_id, project_id); });
}

sdk::Status SqliteStorage::delete_preview(std::string_view owner_id, std::string_view project_id) {
  return write("delete_preview", [&](SqliteOps& ops) { return ops.delete_preview(owner_id, project_id); });
}

sdk::Result<sdk::Page<sdk::Preview>> SqliteStorage::list_previews(const sdk::PageRequest& page) {
  return read("list_previews", [&](SqliteOps& ops) { return ops.list_previews(page); });
}

sdk::Result<sdk::Notification> SqliteStorage::create_notification(const sdk::NewNotification& notification) {
  return write("create_notification", [&](SqliteOps& ops) { return ops.create_notification(notification); });
}

sdk::Result<sdk::Page<sdk::Notification>> SqliteStorage::list_notifications(std::string_view user_id,
                                                                            bool unread_only,
                                                                            const sdk::PageRequest& page) {
  return read("list_notifications",
              [&](SqliteOps& ops) { return ops.list_notifications(user_id, unread_only, page); });
}

sdk::Result<std::int64_t> SqliteStorage::count_unread_notifications(std::string_view user_id) {
  return read("count_unread_notifications",
              [&](SqliteOps& ops) { return ops.count_unread_notifications(user_id); });
}

sdk::Status SqliteStorage::mark_notification_read(std::string_view user_id,
                                                  std::string_view notification_id) {
  return write("mark_notification_read",
               [&](SqliteOps& ops) { return ops.mark_notification_read(user_id, notification_id); });
}

sdk::Result<std::int64_t> SqliteStorage::mark_all_notifications_read(std::string_view user_id) {
  return write("mark_all_notifications_read",
               [&](SqliteOps& ops) { return ops.mark_all_notifications_read(user_id); });
}

sdk::Result<sdk::StorageStats> SqliteStorage::stats() {
  return read("stats", [&](SqliteOps& ops) { return ops.stats(); });
}

}  // namespace samokoder::storage_sqlite

SAMOKODER_PLUGIN(samokoder::storage_sqlite::SqliteStorage, "storage.sqlite", "1.0.0",
                 "Embedded SQLite storage (WAL, one writer, pooled readers)")
