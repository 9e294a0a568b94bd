#include "ops.hpp"

#include <limits>
#include <utility>

#include "util.hpp"

// Evaluates `expr` (a Result<T>); returns its Status from the enclosing function on failure, else
// moves the value into `lhs` (a declaration or an lvalue).
#define STORAGE_CONCAT_INNER(a, b) a##b
#define STORAGE_CONCAT(a, b) STORAGE_CONCAT_INNER(a, b)
#define STORAGE_ASSIGN_OR_RETURN(lhs, expr) \
  STORAGE_ASSIGN_OR_RETURN_IMPL(STORAGE_CONCAT(storage_result_, __LINE__), lhs, expr)
#define STORAGE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(*tmp)

namespace samokoder::storage_sqlite {

using sdk::Result;
using sdk::Status;
using sdk::StatusCode;
using sdk::Timestamp;

namespace {

constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMinInt = std::numeric_limits<std::int64_t>::min();

#define USER_COLUMNS \
  "id, email, password_hash, is_admin, tier, disabled, locked_until, created_at, updated_at"
#define SESSION_COLUMNS \
  "id, user_id, source_address, user_agent, created_at, expires_at, revoked_at, revoke_reason"
#define REFRESH_SELECT                                                                           \
  "SELECT rt.token_hash, rt.session_id, s.user_id, rt.created_at, rt.expires_at, rt.rotated_at," \
  " s.revoked_at IS NOT NULL, s.expires_at FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id"
#define AUDIT_COLUMNS "id, occurred_at, actor_id, action, target, source_address, detail"
#define PROVIDER_KEY_COLUMNS \
  "user_id, provider, key_id, ciphertext, nonce, masked_hint, created_at, updated_at"
#define ACCESS_TOKEN_COLUMNS \
  "id, user_id, name, token_hash, scopes, expires_at, revoked, last_used_at, created_at"
#define PROJECT_COLUMNS "id, owner_id, name, description, created_at, updated_at"
#define FILE_VERSION_COLUMNS "project_id, path, version, blob_hash, size, deleted, created_at, run_step_id"
#define RUN_SELECT                                                                                      \
  "SELECT r.id, r.project_id, p.owner_id, r.state, r.description, r.error, r.created_at, r.updated_at," \
  " r.started_at, r.finished_at, r.lease_owner, r.lease_expires_at, r.last_event_seq"                   \
  " FROM runs r JOIN projects p ON p.id = r.project_id"
#define STEP_SELECT                                                                               \
  "SELECT s.id, s.run_id, s.sequence, s.agent, s.state, s.summary, s.created_at FROM run_steps s" \
  " JOIN runs r ON r.id = s.run_id JOIN projects p ON p.id = r.project_id"
#define LLM_COLUMNS                                                                                        \
  "id, user_id, project_id, run_id, provider, model, agent, prompt_tokens, completion_tokens, latency_ms," \
  " status, error, created_at, step_id, cached_prompt_tokens, cache_write_tokens, usage_estimated,"        \
  " time_to_first_token_ms, cost_micro_usd, attempt"
// A UsageSum over the llm_requests the appended WHERE clause selects (read by query_usage_sum).
#define USAGE_SUM_SELECT \
  "SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_micro_usd) FROM llm_requests"
#define PREVIEW_SELECT                                                                              \
  "SELECT w.project_id, p.owner_id, w.state, w.node_id, w.port, w.pid, w.started_at, w.expires_at," \
  " w.updated_at FROM previews w JOIN projects p ON p.id = w.project_id"
#define NOTIFICATION_COLUMNS "id, user_id, kind, payload, read, created_at"

Status invalid(std::string message) {
  return Status::invalid_argument(std::move(message));
}

Status missing(std::string_view kind, std::string_view id) {
  return Status::not_found(std::string(kind) + " " + std::string(id) + " does not exist");
}

// A FOREIGN KEY failure arrives as kNotFound with SQLite's generic text; name what was referenced.
Status name_missing_parent(Status status, std::string_view kind, std::string_view id) {
  if (status.code() == StatusCode::kNotFound) return missing(kind, id);
  return status;
}

Status require_text(std::string_view value, std::string_view what) {
  if (value.empty()) return invalid(std::string(what) + " is required");
  return {};
}

// ---- row readers (column order = the *_COLUMNS / *_SELECT macros) ----

sdk::User read_user(const Stmt& q) {
  sdk::User u;
  u.id = q.column_text(0);
  u.email = q.column_text(1);
  u.password_hash = q.column_text(2);
  u.is_admin = q.column_bool(3);
  u.tier = q.column_text(4);
  u.disabled = q.column_bool(5);
  u.locked_until = q.column_optional_time(6);
  u.created_at = q.column_time(7);
  u.updated_at = q.column_time(8);
  return u;
}

sdk::Session read_session(const Stmt& q) {
  sdk::Session s;
  s.id = q.column_text(0);
  s.user_id = q.column_text(1);
  s.source_address = q.column_text(2);
  s.user_agent = q.column_text(3);
  s.created_at = q.column_time(4);
  s.expires_at = q.column_time(5);
  s.revoked_at = q.column_optional_time(6);
  s.revoke_reason = q.column_text(7);
  return s;
}

struct RefreshRow {
  sdk::RefreshToken token;
  Timestamp session_expires_at;
};

RefreshRow read_refresh(const Stmt& q) {
  RefreshRow row;
  row.token.token_hash = q.column_text(0);
  row.token.session_id = q.column_text(1);
  row.token.user_id = q.column_text(2);
  row.token.created_at = q.column_time(3);
  row.token.expires_at = q.column_time(4);
  row.token.rotated_at = q.column_optional_time(5);
  row.token.rotated = row.token.rotated_at.has_value();
  row.token.revoked = q.column_bool(6);
  row.session_expires_at = q.column_time(7);
  return row;
}

sdk::AuditEvent read_audit(const Stmt& q) {
  sdk::AuditEvent e;
  e.id = q.column_text(0);
  e.occurred_at = q.column_time(1);
  e.actor_id = q.column_text(2);
  e.action = q.column_text(3);
  e.target = q.column_text(4);
  e.source_address = q.column_text(5);
  e.detail = q.column_json(6);
  return e;
}

sdk::ProviderKey read_provider_key(const Stmt& q) {
  sdk::ProviderKey k;
  k.user_id = q.column_text(0);
  k.provider = q.column_text(1);
  k.key_id = q.column_text(2);
  k.ciphertext = q.column_blob(3);
  k.nonce = q.column_blob(4);
  k.masked_hint = q.column_text(5);
  k.created_at = q.column_time(6);
  k.updated_at = q.column_time(7);
  return k;
}

sdk::AccessToken read_access_token(const Stmt& q) {
  sdk::AccessToken t;
  t.id = q.column_text(0);
  t.user_id = q.column_text(1);
  t.name = q.column_text(2);
  t.token_hash = q.column_text(3);
  t.scopes = q.column_json(4).get<std::vector<std::string>>();
  t.expires_at = q.column_optional_time(5);
  t.revoked = q.column_bool(6);
  t.last_used_at = q.column_optional_time(7);
  t.created_at = q.column_time(8);
  return t;
}

sdk::Project read_project(const Stmt& q) {
  sdk::Project p;
  p.id = q.column_text(0);
  p.owner_id = q.column_text(1);
  p.name = q.column_text(2);
  p.description = q.column_text(3);
  p.created_at = q.column_time(4);
  p.updated_at = q.column_time(5);
  return p;
}

sdk::FileVersion read_file_version(const Stmt& q) {
  sdk::FileVersion v;
  v.project_id = q.column_text(0);
  v.path = q.column_text(1);
  v.version = q.column_int(2);
  v.content_hash = q.column_text(3);
  v.size = q.column_int(4);
  v.deleted = q.column_bool(5);
  v.created_at = q.column_time(6);
  v.run_step_id = q.column_text(7);
  return v;
}

sdk::Run read_run(const Stmt& q) {
  sdk::Run r;
  r.id = q.column_text(0);
  r.project_id = q.column_text(1);
  r.owner_id = q.column_text(2);
  r.state = q.column_text(3);
  r.description = q.column_text(4);
  r.error = q.column_text(5);
  r.created_at = q.column_time(6);
  r.updated_at = q.column_time(7);
  r.started_at = q.column_optional_time(8);
  r.finished_at = q.column_optional_time(9);
  r.lease_owner = q.column_text(10);
  r.lease_expires_at = q.column_optional_time(11);
  r.last_event_seq = q.column_int(12);
  return r;
}

sdk::RunStep read_step(const Stmt& q) {
  sdk::RunStep s;
  s.id = q.column_text(0);
  s.run_id = q.column_text(1);
  s.sequence = q.column_int(2);
  s.agent = q.column_text(3);
  s.state = q.column_json(4);
  s.summary = q.column_text(5);
  s.created_at = q.column_time(6);
  return s;
}

sdk::RunEvent read_event(const Stmt& q) {
  sdk::RunEvent e;
  e.run_id = q.column_text(0);
  e.seq = q.column_int(1);
  e.type = q.column_text(2);
  e.payload = q.column_json(3);
  e.created_at = q.column_time(4);
  return e;
}

sdk::LlmRequest read_llm(const Stmt& q) {
  sdk::LlmRequest r;
  r.id = q.column_text(0);
  r.user_id = q.column_text(1);
  r.project_id = q.column_text(2);
  r.run_id = q.column_text(3);
  r.provider = q.column_text(4);
  r.model = q.column_text(5);
  r.agent = q.column_text(6);
  r.prompt_tokens = q.column_int(7);
  r.completion_tokens = q.column_int(8);
  r.latency_ms = q.column_int(9);
  r.status = q.column_text(10);
  r.error = q.column_text(11);
  r.created_at = q.column_time(12);
  r.step_id = q.column_text(13);
  r.cached_prompt_tokens = q.column_int(14);
  r.cache_write_tokens = q.column_int(15);
  r.usage_estimated = q.column_bool(16);
  r.time_to_first_token_ms = q.column_int(17);
  r.cost_micro_usd = q.column_int(18);
  r.attempt = static_cast<std::int32_t>(q.column_int(19));
  return r;
}

sdk::Preview read_preview(const Stmt& q) {
  sdk::Preview p;
  p.project_id = q.column_text(0);
  p.owner_id = q.column_text(1);
  p.state = q.column_text(2);
  p.node_id = q.column_text(3);
  p.port = static_cast<std::int32_t>(q.column_int(4));
  p.pid = q.column_int(5);
  p.started_at = q.column_time(6);
  p.expires_at = q.column_time(7);
  p.updated_at = q.column_time(8);
  return p;
}

sdk::Notification read_notification(const Stmt& q) {
  sdk::Notification n;
  n.id = q.column_text(0);
  n.user_id = q.column_text(1);
  n.kind = q.column_text(2);
  n.payload = q.column_json(3);
  n.read = q.column_bool(4);
  n.created_at = q.column_time(5);
  return n;
}

// ---- query runners ----

template <typename Read>
auto query_one(Stmt& q, Read read) -> Result<std::optional<decltype(read(q))>> {
  using T = decltype(read(q));
  auto row = q.step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<T>();
  return std::optional<T>(read(q));
}

template <typename Read>
auto query_all(Stmt& q, Read read) -> Result<std::vector<decltype(read(q))>> {
  std::vector<decltype(read(q))> items;
  while (true) {
    auto row = q.step();
    if (!row.ok()) return row.status();
    if (!*row) return items;
    items.push_back(read(q));
  }
}

// The one row of a USAGE_SUM_SELECT; its sums are NULL (read as 0) when nothing matched.
Result<sdk::UsageSum> query_usage_sum(Stmt& q) {
  STORAGE_ASSIGN_OR_RETURN(auto row, query_one(q, [](const Stmt& r) {
                             sdk::UsageSum sum;
                             sum.requests = r.column_int(0);
                             sum.prompt_tokens = r.column_int(1);
                             sum.completion_tokens = r.column_int(2);
                             sum.cost_micro_usd = r.column_int(3);
                             return sum;
                           }));
  return row.value_or(sdk::UsageSum{});
}

// Reads up to limit+1 rows (the query binds LIMIT limit+1): the extra row only proves there is a next
// page, whose cursor is made from the last row kept.
template <typename Read, typename CursorOf>
auto query_page(Stmt& q, std::uint32_t limit, Read read, CursorOf cursor_of)
    -> Result<sdk::Page<decltype(read(q))>> {
  sdk::Page<decltype(read(q))> page;
  while (true) {
    auto row = q.step();
    if (!row.ok()) return row.status();
    if (!*row) return page;
    if (page.items.size() == limit) {
      page.next_cursor = cursor_of(page.items.back());
      return page;
    }
    page.items.push_back(read(q));
  }
}

Result<std::int64_t> query_int(Stmt& q) {
  auto row = q.step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::internal("aggregate query returned no row");
  return q.column_int(0);
}

Result<TimeIdKey> desc_time_cursor(std::string_view tag, const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(page));
  if (page.cursor.empty()) return TimeIdKey{kMaxInt, ""};
  return decode_time_id_cursor(tag, page.cursor);
}

Result<TimeIdKey> asc_time_cursor(std::string_view tag, const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(page));
  if (page.cursor.empty()) return TimeIdKey{kMinInt, ""};
  return decode_time_id_cursor(tag, page.cursor);
}

std::int64_t page_fetch_size(const sdk::PageRequest& page) {
  return static_cast<std::int64_t>(page.limit) + 1;
}

}  // namespace

// ================================================================================== private helpers

Status SqliteOps::check_project_owner(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return missing("project", project_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT 1 FROM projects WHERE id = ? AND owner_id = ?"));
  q.text(project_id).text(owner_id);
  STORAGE_ASSIGN_OR_RETURN(bool found, q.step());
  if (!found) return missing("project", project_id);
  return {};
}

// An empty owner_id loads the run whoever owns it (leases are node-level, not user-level).
Result<sdk::Run> SqliteOps::load_run(std::string_view run_id, std::string_view owner_id) {
  if (!is_id(run_id) || (!owner_id.empty() && !is_id(owner_id))) return missing("run", run_id);
  if (owner_id.empty()) {
    STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(RUN_SELECT " WHERE r.id = ?"));
    q.text(run_id);
    STORAGE_ASSIGN_OR_RETURN(auto run, query_one(q, read_run));
    if (!run) return missing("run", run_id);
    return std::move(*run);
  }
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(RUN_SELECT " WHERE r.id = ? AND p.owner_id = ?"));
  q.text(run_id).text(owner_id);
  STORAGE_ASSIGN_OR_RETURN(auto run, query_one(q, read_run));
  if (!run) return missing("run", run_id);
  return std::move(*run);
}

Result<sdk::FileVersion> SqliteOps::load_file_version(std::string_view project_id, std::string_view path,
                                                      std::int64_t version) {
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("SELECT " FILE_VERSION_COLUMNS
                          " FROM file_versions WHERE project_id = ? AND path = ? AND version = ?"));
  q.text(project_id).text(path).integer(version);
  STORAGE_ASSIGN_OR_RETURN(auto found, query_one(q, read_file_version));
  if (!found) {
    return Status::not_found("file " + std::string(path) + " has no version " + std::to_string(version));
  }
  return std::move(*found);
}

// ============================================================================================ users

Result<sdk::User> SqliteOps::create_user(const sdk::NewUser& user) {
  SAMOKODER_RETURN_IF_ERROR(require_text(user.email, "user email"));
  SAMOKODER_RETURN_IF_ERROR(require_text(user.tier, "user tier"));
  const Timestamp t = now();
  sdk::User u;
  u.id = new_id(t);
  u.email = user.email;
  u.password_hash = user.password_hash;
  u.is_admin = user.is_admin;
  u.tier = user.tier;
  u.created_at = t;
  u.updated_at = t;
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("INSERT INTO users (" USER_COLUMNS
                                               ", email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  q.text(u.id).text(u.email).text(u.password_hash).boolean(u.is_admin).text(u.tier).boolean(false).null();
  q.time(t).time(t).text(ascii_lower(u.email));
  Status s = q.run();
  if (s.code() == StatusCode::kAlreadyExists)
    return Status::already_exists("a user with email " + u.email + " already exists");
  SAMOKODER_RETURN_IF_ERROR(s);
  return u;
}

Result<sdk::User> SqliteOps::get_user(std::string_view user_id) {
  if (!is_id(user_id)) return missing("user", user_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " USER_COLUMNS " FROM users WHERE id = ?"));
  q.text(user_id);
  STORAGE_ASSIGN_OR_RETURN(auto user, query_one(q, read_user));
  if (!user) return missing("user", user_id);
  return std::move(*user);
}

Result<sdk::User> SqliteOps::find_user_by_email(std::string_view email) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " USER_COLUMNS " FROM users WHERE email_key = ?"));
  q.text(ascii_lower(email));
  STORAGE_ASSIGN_OR_RETURN(auto user, query_one(q, read_user));
  if (!user) return Status::not_found("no user has this email");
  return std::move(*user);
}

Result<sdk::User> SqliteOps::update_user(std::string_view user_id, const sdk::UserUpdate& update) {
  STORAGE_ASSIGN_OR_RETURN(sdk::User u, get_user(user_id));
  if (update.email) {
    SAMOKODER_RETURN_IF_ERROR(require_text(*update.email, "user email"));
    u.email = *update.email;
  }
  if (update.password_hash) u.password_hash = *update.password_hash;
  if (update.is_admin) u.is_admin = *update.is_admin;
  if (update.tier) {
    SAMOKODER_RETURN_IF_ERROR(require_text(*update.tier, "user tier"));
    u.tier = *update.tier;
  }
  if (update.disabled) u.disabled = *update.disabled;
  if (update.locked_until) {
    u.locked_until = *update.locked_until;
    if (u.locked_until) u.locked_until = sdk::to_storage_precision(*u.locked_until);
  }
  u.updated_at = now();
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare("UPDATE users SET email = ?, email_key = ?, password_hash = ?, is_admin = ?, tier = ?,"
                  " disabled = ?, locked_until = ?, updated_at = ? WHERE id = ?"));
  q.text(u.email).text(ascii_lower(u.email)).text(u.password_hash).boolean(u.is_admin).text(u.tier);
  q.boolean(u.disabled).optional_time(u.locked_until).time(u.updated_at).text(u.id);
  Status s = q.run();
  if (s.code() == StatusCode::kAlreadyExists)
    return Status::already_exists("a user with email " + u.email + " already exists");
  SAMOKODER_RETURN_IF_ERROR(s);
  return u;
}

Status SqliteOps::delete_user(std::string_view user_id) {
  if (!is_id(user_id)) return missing("user", user_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("DELETE FROM users WHERE id = ?"));
  q.text(user_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) return missing("user", user_id);
  return {};
}

Result<sdk::Page<sdk::User>> SqliteOps::list_users(const sdk::PageRequest& page) {
  STORAGE_ASSIGN_OR_RETURN(TimeIdKey after, asc_time_cursor("u", page));
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("SELECT " USER_COLUMNS " FROM users WHERE (created_at, id) > (?, ?)"
                                       " ORDER BY created_at, id LIMIT ?"));
  q.integer(after.micros).text(after.id).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_user, [](const sdk::User& u) {
    return encode_time_id_cursor("u", to_micros(u.created_at), u.id);
  });
}

// ========================================================================= sessions, refresh tokens

Result<sdk::Session> SqliteOps::create_session(const sdk::NewSession& session) {
  if (!is_id(session.user_id)) return missing("user", session.user_id);
  const Timestamp t = now();
  sdk::Session s;
  s.id = new_id(t);
  s.user_id = session.user_id;
  s.source_address = session.source_address;
  s.user_agent = session.user_agent;
  s.created_at = t;
  s.expires_at = sdk::to_storage_precision(session.expires_at);
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("INSERT INTO sessions (" SESSION_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  q.text(s.id)
      .text(s.user_id)
      .text(s.source_address)
      .text(s.user_agent)
      .time(s.created_at)
      .time(s.expires_at);
  q.null().text("");
  SAMOKODER_RETURN_IF_ERROR(name_missing_parent(q.run(), "user", s.user_id));
  return s;
}

Result<sdk::Session> SqliteOps::get_session(std::string_view session_id) {
  if (!is_id(session_id)) return missing("session", session_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ?"));
  q.text(session_id);
  STORAGE_ASSIGN_OR_RETURN(auto session, query_one(q, read_session));
  if (!session) return missing("session", session_id);
  return std::move(*session);
}

Result<std::vector<sdk::Session>> SqliteOps::list_active_sessions(std::string_view user_id) {
  if (!is_id(user_id)) return std::vector<sdk::Session>();
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " SESSION_COLUMNS " FROM sessions WHERE user_id = ?"
                                               " AND revoked_at IS NULL AND expires_at > ?"
                                               " ORDER BY created_at DESC, id DESC"));
  q.text(user_id).time(now());
  return query_all(q, read_session);
}

Status SqliteOps::revoke_session(std::string_view session_id, std::string_view reason) {
  if (!is_id(session_id)) return missing("session", session_id);
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare(
          "UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL"));
  q.time(now()).text(reason).text(session_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 1) return {};
  return get_session(session_id).status();
}

Result<std::int64_t> SqliteOps::revoke_user_sessions(std::string_view user_id, std::string_view reason) {
  if (!is_id(user_id)) return std::int64_t{0};
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("UPDATE sessions SET revoked_at = ?, revoke_reason = ?"
                                               " WHERE user_id = ? AND revoked_at IS NULL"));
  q.time(now()).text(reason).text(user_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return db_.changes();
}

Result<sdk::RefreshToken> SqliteOps::add_refresh_token(const sdk::NewRefreshToken& token) {
  SAMOKODER_RETURN_IF_ERROR(require_text(token.token_hash, "refresh token hash"));
  STORAGE_ASSIGN_OR_RETURN(sdk::Session session, get_session(token.session_id));
  sdk::RefreshToken t;
  t.token_hash = token.token_hash;
  t.session_id = session.id;
  t.user_id = session.user_id;
  t.created_at = now();
  t.expires_at = sdk::to_storage_precision(token.expires_at);
  t.revoked = session.revoked_at.has_value();
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("INSERT INTO refresh_tokens (token_hash, session_id, created_at,"
                                       " expires_at, rotated_at) VALUES (?, ?, ?, ?, NULL)"));
  q.text(t.token_hash).text(t.session_id).time(t.created_at).time(t.expires_at);
  Status s = q.run();
  if (s.code() == StatusCode::kAlreadyExists)
    return Status::already_exists("this refresh token hash is already stored");
  SAMOKODER_RETURN_IF_ERROR(s);
  return t;
}

Result<sdk::RefreshToken> SqliteOps::find_refresh_token(std::string_view token_hash) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(REFRESH_SELECT " WHERE rt.token_hash = ?"));
  q.text(token_hash);
  STORAGE_ASSIGN_OR_RETURN(auto row, query_one(q, read_refresh));
  if (!row) return Status::not_found("refresh token not found");
  return std::move(row->token);
}

Result<sdk::RefreshToken> SqliteOps::rotate_refresh_token(std::string_view old_token_hash,
                                                          const sdk::NewRefreshToken& next) {
  SAMOKODER_RETURN_IF_ERROR(require_text(next.token_hash, "refresh token hash"));
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(REFRESH_SELECT " WHERE rt.token_hash = ?"));
  q.text(old_token_hash);
  STORAGE_ASSIGN_OR_RETURN(auto old, query_one(q, read_refresh));
  if (!old) return Status::not_found("refresh token not found");
  const Timestamp t = now();
  if (old->token.rotated) return Status::failed_precondition("refresh token was already rotated");
  if (old->token.revoked) return Status::failed_precondition("refresh token's session is revoked");
  if (old->token.expires_at <= t || old->session_expires_at <= t) {
    return Status::failed_precondition("refresh token expired");
  }
  STORAGE_ASSIGN_OR_RETURN(
      Stmt mark,
      db_.prepare("UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND rotated_at IS NULL"));
  mark.time(t).text(old_token_hash);
  SAMOKODER_RETURN_IF_ERROR(mark.run());
  if (db_.changes() != 1) return Status::failed_precondition("refresh token was already rotated");
  sdk::NewRefreshToken successor = next;
  successor.session_id = old->token.session_id;
  return add_refresh_token(successor);
}

Result<std::int64_t> SqliteOps::purge_expired_sessions() {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("DELETE FROM sessions WHERE expires_at <= ?"));
  q.time(now());
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return db_.changes();
}

Status SqliteOps::revoke_token_id(std::string_view jti, Timestamp expires_at, std::string_view reason) {
  SAMOKODER_RETURN_IF_ERROR(require_text(jti, "token id"));
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare("INSERT INTO revoked_tokens (jti, expires_at, revoked_at, reason) VALUES (?, ?, ?, ?)"
                  " ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)"));
  q.text(jti).time(expires_at).time(now()).text(reason);
  return q.run();
}

Result<bool> SqliteOps::is_token_id_revoked(std::string_view jti) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT 1 FROM revoked_tokens WHERE jti = ?"));
  q.text(jti);
  return q.step();
}

Result<std::int64_t> SqliteOps::purge_expired_token_revocations() {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("DELETE FROM revoked_tokens WHERE expires_at <= ?"));
  q.time(now());
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return db_.changes();
}

// =================================================================================== login attempts

Status SqliteOps::record_login_attempt(const sdk::LoginAttempt& attempt) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("INSERT INTO login_attempts (subject_key, source_address, success,"
                                       " user_agent, occurred_at) VALUES (?, ?, ?, ?, ?)"));
  q.text(ascii_lower(attempt.subject)).text(attempt.source_address).boolean(attempt.success);
  q.text(attempt.user_agent).time(now());
  return q.run();
}

Result<std::int64_t> SqliteOps::count_failed_logins_for_subject(std::string_view subject, Timestamp since) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("SELECT COUNT(*) FROM login_attempts"
                                       " WHERE subject_key = ? AND success = 0 AND occurred_at >= ?"));
  q.text(ascii_lower(subject)).time(since);
  return query_int(q);
}

Result<std::int64_t> SqliteOps::count_failed_logins_for_address(std::string_view source_address,
                                                                Timestamp since) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("SELECT COUNT(*) FROM login_attempts"
                                       " WHERE source_address = ? AND success = 0 AND occurred_at >= ?"));
  q.text(source_address).time(since);
  return query_int(q);
}

Result<std::int64_t> SqliteOps::purge_login_attempts(Timestamp before) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("DELETE FROM login_attempts WHERE occurred_at < ?"));
  q.time(before);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return db_.changes();
}

// ============================================================================================ audit

Result<sdk::AuditEvent> SqliteOps::append_audit_event(const sdk::NewAuditEvent& event) {
  SAMOKODER_RETURN_IF_ERROR(require_text(event.action, "audit action"));
  const Timestamp t = now();
  sdk::AuditEvent e;
  e.id = new_id(t);
  e.occurred_at = t;
  e.actor_id = event.actor_id;
  e.action = event.action;
  e.target = event.target;
  e.source_address = event.source_address;
  e.detail = event.detail;
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("INSERT INTO audit_events (" AUDIT_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?)"));
  q.text(e.id).time(e.occurred_at).text(e.actor_id).text(e.action).text(e.target).text(e.source_address);
  q.json(e.detail);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return e;
}

Result<sdk::Page<sdk::AuditEvent>> SqliteOps::list_audit_events(const sdk::AuditFilter& filter,
                                                                const sdk::PageRequest& page) {
  STORAGE_ASSIGN_OR_RETURN(TimeIdKey before, desc_time_cursor("a", page));
  std::string sql = "SELECT " AUDIT_COLUMNS " FROM audit_events WHERE (occurred_at, id) < (?, ?)";
  if (filter.actor_id) sql += " AND actor_id = ?";
  if (filter.action) sql += " AND action = ?";
  if (filter.since) sql += " AND occurred_at >= ?";
  if (filter.until) sql += " AND occurred_at < ?";
  sql += " ORDER BY occurred_at DESC, id DESC LIMIT ?";
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(sql));
  q.integer(before.micros).text(before.id);
  if (filter.actor_id) q.text(*filter.actor_id);
  if (filter.action) q.text(*filter.action);
  if (filter.since) q.time(*filter.since);
  if (filter.until) q.time(*filter.until);
  q.integer(page_fetch_size(page));
  return query_page(q, page.limit, read_audit, [](const sdk::AuditEvent& e) {
    return encode_time_id_cursor("a", to_micros(e.occurred_at), e.id);
  });
}

// ==================================================================================== provider keys

Result<sdk::ProviderKey> SqliteOps::put_provider_key(const sdk::NewProviderKey& key) {
  if (!is_id(key.user_id)) return missing("user", key.user_id);
  SAMOKODER_RETURN_IF_ERROR(require_text(key.provider, "provider"));
  SAMOKODER_RETURN_IF_ERROR(require_text(key.key_id, "encryption key id"));
  const Timestamp t = now();
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare("INSERT INTO provider_keys (" PROVIDER_KEY_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                  " ON CONFLICT (user_id, provider) DO UPDATE SET key_id = excluded.key_id,"
                  " ciphertext = excluded.ciphertext, nonce = excluded.nonce,"
                  " masked_hint = excluded.masked_hint, updated_at = excluded.updated_at"));
  q.text(key.user_id).text(key.provider).text(key.key_id).blob(key.ciphertext).blob(key.nonce);
  q.text(key.masked_hint).time(t).time(t);
  SAMOKODER_RETURN_IF_ERROR(name_missing_parent(q.run(), "user", key.user_id));
  return get_provider_key(key.user_id, key.provider);
}

Result<sdk::ProviderKey> SqliteOps::get_provider_key(std::string_view user_id, std::string_view provider) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " PROVIDER_KEY_COLUMNS
                                               " FROM provider_keys WHERE user_id = ? AND provider = ?"));
  q.text(user_id).text(provider);
  STORAGE_ASSIGN_OR_RETURN(auto key, query_one(q, read_provider_key));
  if (!key) return Status::not_found("no key stored for provider " + std::string(provider));
  return std::move(*key);
}

Result<std::vector<sdk::ProviderKey>> SqliteOps::list_provider_keys(std::string_view user_id) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " PROVIDER_KEY_COLUMNS
                                               " FROM provider_keys WHERE user_id = ? ORDER BY provider"));
  q.text(user_id);
  return query_all(q, read_provider_key);
}

Status SqliteOps::delete_provider_key(std::string_view user_id, std::string_view provider) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("DELETE FROM provider_keys WHERE user_id = ? AND provider = ?"));
  q.text(user_id).text(provider);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) return Status::not_found("no key stored for provider " + std::string(provider));
  return {};
}

Result<sdk::Page<sdk::ProviderKey>> SqliteOps::list_provider_keys_by_key_id(std::string_view key_id,
                                                                            const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(page));
  std::pair<std::string, std::string> after;
  if (!page.cursor.empty()) {
    STORAGE_ASSIGN_OR_RETURN(after, decode_text_cursor("k", page.cursor));
  }
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("SELECT " PROVIDER_KEY_COLUMNS " FROM provider_keys WHERE key_id = ?"
                          " AND (user_id, provider) > (?, ?) ORDER BY user_id, provider LIMIT ?"));
  q.text(key_id).text(after.first).text(after.second).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_provider_key,
                    [](const sdk::ProviderKey& k) { return encode_text_cursor("k", k.user_id, k.provider); });
}

// ============================================================================ personal access tokens

Result<sdk::AccessToken> SqliteOps::create_access_token(const sdk::NewAccessToken& token) {
  if (!is_id(token.user_id)) return missing("user", token.user_id);
  SAMOKODER_RETURN_IF_ERROR(require_text(token.name, "access token name"));
  SAMOKODER_RETURN_IF_ERROR(require_text(token.token_hash, "access token hash"));
  const Timestamp t = now();
  sdk::AccessToken a;
  a.id = new_id(t);
  a.user_id = token.user_id;
  a.name = token.name;
  a.token_hash = token.token_hash;
  a.scopes = token.scopes;
  if (token.expires_at) a.expires_at = sdk::to_storage_precision(*token.expires_at);
  a.created_at = t;
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("INSERT INTO access_tokens (" ACCESS_TOKEN_COLUMNS
                                               ") VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?)"));
  q.text(a.id).text(a.user_id).text(a.name).text(a.token_hash).json(nlohmann::json(a.scopes));
  q.optional_time(a.expires_at).time(a.created_at);
  Status s = q.run();
  if (s.code() == StatusCode::kAlreadyExists)
    return Status::already_exists("this access token hash is already stored");
  SAMOKODER_RETURN_IF_ERROR(name_missing_parent(std::move(s), "user", a.user_id));
  return a;
}

Result<sdk::AccessToken> SqliteOps::find_access_token(std::string_view token_hash) {
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("SELECT " ACCESS_TOKEN_COLUMNS " FROM access_tokens WHERE token_hash = ?"));
  q.text(token_hash);
  STORAGE_ASSIGN_OR_RETURN(auto token, query_one(q, read_access_token));
  if (!token) return Status::not_found("access token not found");
  return std::move(*token);
}

Result<std::vector<sdk::AccessToken>> SqliteOps::list_access_tokens(std::string_view user_id) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("SELECT " ACCESS_TOKEN_COLUMNS " FROM access_tokens WHERE user_id = ?"
                                       " ORDER BY created_at DESC, id DESC"));
  q.text(user_id);
  return query_all(q, read_access_token);
}

Status SqliteOps::revoke_access_token(std::string_view user_id, std::string_view token_id) {
  if (!is_id(user_id) || !is_id(token_id)) return missing("access token", token_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("UPDATE access_tokens SET revoked = 1 WHERE id = ? AND user_id = ?"));
  q.text(token_id).text(user_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) return missing("access token", token_id);
  return {};
}

Status SqliteOps::touch_access_token(std::string_view token_id) {
  if (!is_id(token_id)) return missing("access token", token_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("UPDATE access_tokens SET last_used_at = ? WHERE id = ?"));
  q.time(now()).text(token_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) return missing("access token", token_id);
  return {};
}

// ========================================================================================= projects

Result<sdk::Project> SqliteOps::create_project(const sdk::NewProject& project) {
  if (!is_id(project.owner_id)) return missing("user", project.owner_id);
  SAMOKODER_RETURN_IF_ERROR(require_text(project.name, "project name"));
  const Timestamp t = now();
  sdk::Project p;
  p.id = new_id(t);
  p.owner_id = project.owner_id;
  p.name = project.name;
  p.description = project.description;
  p.created_at = t;
  p.updated_at = t;
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("INSERT INTO projects (" PROJECT_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?)"));
  q.text(p.id).text(p.owner_id).text(p.name).text(p.description).time(t).time(t);
  SAMOKODER_RETURN_IF_ERROR(name_missing_parent(q.run(), "user", p.owner_id));
  return p;
}

Result<sdk::Project> SqliteOps::get_project(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return missing("project", project_id);
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("SELECT " PROJECT_COLUMNS " FROM projects WHERE id = ? AND owner_id = ?"));
  q.text(project_id).text(owner_id);
  STORAGE_ASSIGN_OR_RETURN(auto project, query_one(q, read_project));
  if (!project) return missing("project", project_id);
  return std::move(*project);
}

Result<sdk::Page<sdk::Project>> SqliteOps::list_projects(std::string_view owner_id,
                                                         const sdk::PageRequest& page) {
  STORAGE_ASSIGN_OR_RETURN(TimeIdKey before, desc_time_cursor("p", page));
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " PROJECT_COLUMNS " FROM projects WHERE owner_id = ?"
                                               " AND (created_at, id) < (?, ?)"
                                               " ORDER BY created_at DESC, id DESC LIMIT ?"));
  q.text(owner_id).integer(before.micros).text(before.id).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_project, [](const sdk::Project& p) {
    return encode_time_id_cursor("p", to_micros(p.created_at), p.id);
  });
}

Result<sdk::Project> SqliteOps::update_project(std::string_view owner_id, std::string_view project_id,
                                               const sdk::ProjectUpdate& update) {
  STORAGE_ASSIGN_OR_RETURN(sdk::Project p, get_project(owner_id, project_id));
  if (update.name) {
    SAMOKODER_RETURN_IF_ERROR(require_text(*update.name, "project name"));
    p.name = *update.name;
  }
  if (update.description) p.description = *update.description;
  p.updated_at = now();
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("UPDATE projects SET name = ?, description = ?, updated_at = ?"
                                               " WHERE id = ? AND owner_id = ?"));
  q.text(p.name).text(p.description).time(p.updated_at).text(p.id).text(p.owner_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return p;
}

Status SqliteOps::delete_project(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return missing("project", project_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("DELETE FROM projects WHERE id = ? AND owner_id = ?"));
  q.text(project_id).text(owner_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) return missing("project", project_id);
  return {};
}

// ============================================================================================ files

namespace {

struct FileHead {
  std::int64_t version = 0;
  bool deleted = false;
};

}  // namespace

Result<sdk::FileVersion> SqliteOps::put_file(std::string_view owner_id, std::string_view project_id,
                                             std::string_view path, std::string_view content,
                                             std::string_view run_step_id) {
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, project_id));
  if (!run_step_id.empty()) {
    if (!is_id(run_step_id)) return missing("run step", run_step_id);
    STORAGE_ASSIGN_OR_RETURN(Stmt step, db_.prepare("SELECT 1 FROM run_steps s JOIN runs r ON r.id = s.run_id"
                                                    " WHERE s.id = ? AND r.project_id = ?"));
    step.text(run_step_id).text(project_id);
    STORAGE_ASSIGN_OR_RETURN(bool found, step.step());
    if (!found) return missing("run step", run_step_id);
  }
  const std::string hash = sha256_hex(content);
  STORAGE_ASSIGN_OR_RETURN(
      Stmt head_q, db_.prepare("SELECT version, deleted FROM file_heads WHERE project_id = ? AND path = ?"));
  head_q.text(project_id).text(path);
  STORAGE_ASSIGN_OR_RETURN(auto head, query_one(head_q, [](const Stmt& q) {
                             return FileHead{q.column_int(0), q.column_bool(1)};
                           }));
  if (head && !head->deleted) {
    STORAGE_ASSIGN_OR_RETURN(sdk::FileVersion current, load_file_version(project_id, path, head->version));
    if (current.content_hash == hash) return current;
  }
  const Timestamp t = now();
  STORAGE_ASSIGN_OR_RETURN(Stmt blob, db_.prepare("INSERT INTO file_blobs (hash, size, content, created_at)"
                                                  " VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING"));
  blob.text(hash).integer(static_cast<std::int64_t>(content.size())).blob(content).time(t);
  SAMOKODER_RETURN_IF_ERROR(blob.run());

  sdk::FileVersion v;
  v.project_id = project_id;
  v.path = path;
  v.version = head ? head->version + 1 : 1;
  v.content_hash = hash;
  v.size = static_cast<std::int64_t>(content.size());
  v.created_at = t;
  v.run_step_id = run_step_id;
  STORAGE_ASSIGN_OR_RETURN(Stmt insert, db_.prepare("INSERT INTO file_versions (" FILE_VERSION_COLUMNS
                                                    ") VALUES (?, ?, ?, ?, ?, 0, ?, ?)"));
  insert.text(v.project_id).text(v.path).integer(v.version).text(v.content_hash).integer(v.size).time(t);
  insert.optional_text(v.run_step_id);
  SAMOKODER_RETURN_IF_ERROR(insert.run());
  STORAGE_ASSIGN_OR_RETURN(
      Stmt set_head,
      db_.prepare("INSERT INTO file_heads (project_id, path, version, deleted) VALUES (?, ?, ?, 0)"
                  " ON CONFLICT (project_id, path) DO UPDATE SET version = excluded.version,"
                  " deleted = 0"));
  set_head.text(v.project_id).text(v.path).integer(v.version);
  SAMOKODER_RETURN_IF_ERROR(set_head.run());
  return v;
}

Result<sdk::FileVersion> SqliteOps::delete_file(std::string_view owner_id, std::string_view project_id,
                                                std::string_view path, std::string_view run_step_id) {
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, project_id));
  if (!run_step_id.empty()) {
    if (!is_id(run_step_id)) return missing("run step", run_step_id);
    STORAGE_ASSIGN_OR_RETURN(Stmt step, db_.prepare("SELECT 1 FROM run_steps s JOIN runs r ON r.id = s.run_id"
                                                    " WHERE s.id = ? AND r.project_id = ?"));
    step.text(run_step_id).text(project_id);
    STORAGE_ASSIGN_OR_RETURN(bool found, step.step());
    if (!found) return missing("run step", run_step_id);
  }
  STORAGE_ASSIGN_OR_RETURN(
      Stmt head_q, db_.prepare("SELECT version, deleted FROM file_heads WHERE project_id = ? AND path = ?"));
  head_q.text(project_id).text(path);
  STORAGE_ASSIGN_OR_RETURN(auto head, query_one(head_q, [](const Stmt& q) {
                             return FileHead{q.column_int(0), q.column_bool(1)};
                           }));
  if (!head || head->deleted) return missing("file", path);
  sdk::FileVersion v;
  v.project_id = project_id;
  v.path = path;
  v.version = head->version + 1;
  v.deleted = true;
  v.created_at = now();
  v.run_step_id = run_step_id;
  STORAGE_ASSIGN_OR_RETURN(Stmt insert, db_.prepare("INSERT INTO file_versions (" FILE_VERSION_COLUMNS
                                                    ") VALUES (?, ?, ?, NULL, 0, 1, ?, ?)"));
  insert.text(v.project_id).text(v.path).integer(v.version).time(v.created_at).optional_text(v.run_step_id);
  SAMOKODER_RETURN_IF_ERROR(insert.run());
  STORAGE_ASSIGN_OR_RETURN(
      Stmt set_head,
      db_.prepare("UPDATE file_heads SET version = ?, deleted = 1 WHERE project_id = ? AND path = ?"));
  set_head.integer(v.version).text(v.project_id).text(v.path);
  SAMOKODER_RETURN_IF_ERROR(set_head.run());
  return v;
}

Result<sdk::FileContent> SqliteOps::get_file(std::string_view owner_id, std::string_view project_id,
                                             std::string_view path, std::optional<std::int64_t> version) {
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, project_id));
  std::int64_t wanted = 0;
  if (version) {
    wanted = *version;
  } else {
    STORAGE_ASSIGN_OR_RETURN(Stmt head_q,
                             db_.prepare("SELECT version FROM file_heads WHERE project_id = ? AND path = ?"));
    head_q.text(project_id).text(path);
    STORAGE_ASSIGN_OR_RETURN(bool found, head_q.step());
    if (!found) return missing("file", path);
    wanted = head_q.column_int(0);
  }
  sdk::FileContent out;
  STORAGE_ASSIGN_OR_RETURN(out.version, load_file_version(project_id, path, wanted));
  if (out.version.deleted) {
    return Status::not_found("file " + std::string(path) + " was deleted in version " +
                             std::to_string(wanted));
  }
  STORAGE_ASSIGN_OR_RETURN(Stmt blob, db_.prepare("SELECT content FROM file_blobs WHERE hash = ?"));
  blob.text(out.version.content_hash);
  STORAGE_ASSIGN_OR_RETURN(bool found, blob.step());
  if (!found)
    return Status::data_loss("content " + out.version.content_hash + " of file " + std::string(path) +
                             " is missing");
  out.content = blob.column_blob(0);
  return out;
}

Result<sdk::Page<sdk::FileVersion>> SqliteOps::list_files(std::string_view owner_id,
                                                          std::string_view project_id,
                                                          std::string_view prefix,
                                                          const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(page));
  if (!is_valid_text(prefix)) return invalid("path prefix must be UTF-8 without NUL");
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, project_id));
  std::string after;
  if (!page.cursor.empty()) {
    STORAGE_ASSIGN_OR_RETURN(auto fields, decode_text_cursor("f", page.cursor));
    after = std::move(fields.first);
  }
  const std::optional<std::string> upper = prefix_upper_bound(prefix);
  std::string sql =
      "SELECT fv.project_id, fv.path, fv.version, fv.blob_hash, fv.size, fv.deleted, fv.created_at, "
      "fv.run_step_id"
      " FROM file_heads h JOIN file_versions fv"
      " ON fv.project_id = h.project_id AND fv.path = h.path AND fv.version = h.version"
      " WHERE h.project_id = ? AND h.deleted = 0 AND h.path > ? AND h.path >= ?";
  if (upper) sql += " AND h.path < ?";
  sql += " ORDER BY h.path LIMIT ?";
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(sql));
  q.text(project_id).text(after).text(prefix);
  // The bound may end inside a multi-byte character: it is only compared bytewise, never stored.
  if (upper) q.unchecked_text(*upper);
  q.integer(page_fetch_size(page));
  return query_page(q, page.limit, read_file_version,
                    [](const sdk::FileVersion& v) { return encode_text_cursor("f", v.path); });
}

Result<sdk::StorageUsage> SqliteOps::usage_of_owner(std::string_view owner_id) {
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("SELECT COUNT(*), COALESCE(SUM(fv.size), 0)"
                          " FROM projects p JOIN file_heads h ON h.project_id = p.id AND h.deleted = 0"
                          " JOIN file_versions fv"
                          " ON fv.project_id = h.project_id AND fv.path = h.path AND fv.version = h.version"
                          " WHERE p.owner_id = ?"));
  q.text(owner_id);
  STORAGE_ASSIGN_OR_RETURN(bool row, q.step());
  if (!row) return sdk::StorageUsage{};
  return sdk::StorageUsage{.files = q.column_int(0), .bytes = q.column_int(1)};
}

Result<sdk::Page<sdk::FileVersion>> SqliteOps::list_file_versions(std::string_view owner_id,
                                                                  std::string_view project_id,
                                                                  std::string_view path,
                                                                  const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(page));
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, project_id));
  std::int64_t before = kMaxInt;
  if (!page.cursor.empty()) {
    STORAGE_ASSIGN_OR_RETURN(before, decode_int_cursor("v", page.cursor));
  }
  STORAGE_ASSIGN_OR_RETURN(Stmt head_q,
                           db_.prepare("SELECT 1 FROM file_heads WHERE project_id = ? AND path = ?"));
  head_q.text(project_id).text(path);
  STORAGE_ASSIGN_OR_RETURN(bool exists, head_q.step());
  if (!exists) return missing("file", path);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " FILE_VERSION_COLUMNS " FROM file_versions"
                                               " WHERE project_id = ? AND path = ? AND version < ?"
                                               " ORDER BY version DESC LIMIT ?"));
  q.text(project_id).text(path).integer(before).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_file_version,
                    [](const sdk::FileVersion& v) { return encode_int_cursor("v", v.version); });
}

Result<std::int64_t> SqliteOps::purge_unreferenced_blobs() {
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("DELETE FROM file_blobs WHERE NOT EXISTS"
                          " (SELECT 1 FROM file_versions fv WHERE fv.blob_hash = file_blobs.hash)"));
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return db_.changes();
}

// ============================================================================================= runs

Result<sdk::Run> SqliteOps::create_run(std::string_view owner_id, const sdk::NewRun& run) {
  SAMOKODER_RETURN_IF_ERROR(require_text(run.state, "run state"));
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, run.project_id));
  const Timestamp t = now();
  sdk::Run r;
  r.id = new_id(t);
  r.project_id = run.project_id;
  r.owner_id = owner_id;
  r.state = run.state;
  r.description = run.description;
  r.created_at = t;
  r.updated_at = t;
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare("INSERT INTO runs (id, project_id, state, description, error, created_at, updated_at,"
                  " started_at, finished_at, lease_owner, lease_expires_at, last_event_seq)"
                  " VALUES (?, ?, ?, ?, '', ?, ?, NULL, NULL, '', NULL, 0)"));
  q.text(r.id).text(r.project_id).text(r.state).text(r.description).time(t).time(t);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return r;
}

Result<sdk::Run> SqliteOps::get_run(std::string_view owner_id, std::string_view run_id) {
  if (!is_id(owner_id)) return missing("run", run_id);
  return load_run(run_id, owner_id);
}

Result<sdk::Page<sdk::Run>> SqliteOps::list_runs(std::string_view owner_id, std::string_view project_id,
                                                 const sdk::PageRequest& page) {
  STORAGE_ASSIGN_OR_RETURN(TimeIdKey before, desc_time_cursor("r", page));
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, project_id));
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare(RUN_SELECT " WHERE r.project_id = ? AND (r.created_at, r.id) < (?, ?)"
                                                  " ORDER BY r.created_at DESC, r.id DESC LIMIT ?"));
  q.text(project_id).integer(before.micros).text(before.id).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_run, [](const sdk::Run& r) {
    return encode_time_id_cursor("r", to_micros(r.created_at), r.id);
  });
}

Result<sdk::Run> SqliteOps::update_run(std::string_view owner_id, std::string_view run_id,
                                       const sdk::RunUpdate& update) {
  STORAGE_ASSIGN_OR_RETURN(sdk::Run r, get_run(owner_id, run_id));
  if (update.expected_state && *update.expected_state != r.state) {
    return Status::failed_precondition("run " + r.id + " is in state \"" + r.state + "\", not \"" +
                                       *update.expected_state + "\"");
  }
  if (update.state) {
    SAMOKODER_RETURN_IF_ERROR(require_text(*update.state, "run state"));
    r.state = *update.state;
  }
  if (update.error) r.error = *update.error;
  if (update.started_at) r.started_at = sdk::to_storage_precision(*update.started_at);
  if (update.finished_at) r.finished_at = sdk::to_storage_precision(*update.finished_at);
  r.updated_at = now();
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("UPDATE runs SET state = ?, error = ?, started_at = ?,"
                                               " finished_at = ?, updated_at = ? WHERE id = ?"));
  q.text(r.state).text(r.error).optional_time(r.started_at).optional_time(r.finished_at).time(r.updated_at);
  q.text(r.id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return r;
}

Result<std::optional<sdk::Run>> SqliteOps::claim_run(const sdk::RunClaim& claim) {
  SAMOKODER_RETURN_IF_ERROR(require_text(claim.node_id, "node id"));
  if (claim.states.empty()) return invalid("at least one claimable run state is required");
  std::string sql = RUN_SELECT " WHERE r.state IN (";
  for (std::size_t i = 0; i < claim.states.size(); ++i)
    sql += i == 0 ? "?" : ", ?";
  sql += ") AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= ?) ORDER BY r.created_at, r.id LIMIT 1";
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(sql));
  for (const std::string& state : claim.states)
    q.text(state);
  const Timestamp t = now();
  q.time(t);
  STORAGE_ASSIGN_OR_RETURN(auto run, query_one(q, read_run));
  if (!run) return std::optional<sdk::Run>();
  run->lease_owner = claim.node_id;
  run->lease_expires_at = sdk::to_storage_precision(claim.lease_until);
  STORAGE_ASSIGN_OR_RETURN(Stmt lease,
                           db_.prepare("UPDATE runs SET lease_owner = ?, lease_expires_at = ? WHERE id = ?"));
  lease.text(run->lease_owner).optional_time(run->lease_expires_at).text(run->id);
  SAMOKODER_RETURN_IF_ERROR(lease.run());
  return run;
}

Result<sdk::Run> SqliteOps::renew_run_lease(std::string_view run_id, std::string_view node_id,
                                            Timestamp lease_until) {
  STORAGE_ASSIGN_OR_RETURN(sdk::Run r, load_run(run_id, ""));
  if (node_id.empty() || r.lease_owner != node_id || !r.lease_expires_at || *r.lease_expires_at <= now()) {
    return Status::failed_precondition("node \"" + std::string(node_id) + "\" holds no live lease on run " +
                                       r.id);
  }
  r.lease_expires_at = sdk::to_storage_precision(lease_until);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("UPDATE runs SET lease_expires_at = ? WHERE id = ?"));
  q.optional_time(r.lease_expires_at).text(r.id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return r;
}

Status SqliteOps::release_run_lease(std::string_view run_id, std::string_view node_id) {
  STORAGE_ASSIGN_OR_RETURN(sdk::Run r, load_run(run_id, ""));
  if (node_id.empty() || r.lease_owner != node_id) {
    return Status::failed_precondition("node \"" + std::string(node_id) +
                                       "\" does not hold the lease on run " + r.id);
  }
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("UPDATE runs SET lease_owner = '', lease_expires_at = NULL WHERE id = ?"));
  q.text(r.id);
  return q.run();
}

// =================================================================================== named leases

// One statement decides: the insert, or the update of an expired or own lease, changes a row; a live
// lease of another holder makes the conditional update change none.
Result<bool> SqliteOps::try_acquire_lease(std::string_view name, std::string_view holder, Timestamp until) {
  SAMOKODER_RETURN_IF_ERROR(require_text(name, "lease name"));
  SAMOKODER_RETURN_IF_ERROR(require_text(holder, "lease holder"));
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare(
          "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
          " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
          " WHERE leases.expires_at <= ? OR leases.holder = excluded.holder"));
  q.text(name).text(holder).time(sdk::to_storage_precision(until)).time(now());
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return db_.changes() > 0;
}

Status SqliteOps::release_lease(std::string_view name, std::string_view holder) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("DELETE FROM leases WHERE name = ? AND holder = ?"));
  q.text(name).text(holder);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) {
    return Status::failed_precondition("\"" + std::string(holder) + "\" does not hold the lease " +
                                       std::string(name));
  }
  return {};
}

// ======================================================================================== run steps

Result<sdk::RunStep> SqliteOps::append_run_step(std::string_view owner_id, std::string_view run_id,
                                                const sdk::NewRunStep& step) {
  SAMOKODER_RETURN_IF_ERROR(require_text(step.agent, "run step agent"));
  STORAGE_ASSIGN_OR_RETURN(sdk::Run run, get_run(owner_id, run_id));
  STORAGE_ASSIGN_OR_RETURN(Stmt last,
                           db_.prepare("SELECT COALESCE(MAX(sequence), 0) FROM run_steps WHERE run_id = ?"));
  last.text(run.id);
  STORAGE_ASSIGN_OR_RETURN(std::int64_t last_sequence, query_int(last));
  const Timestamp t = now();
  sdk::RunStep s;
  s.id = new_id(t);
  s.run_id = run.id;
  s.sequence = last_sequence + 1;
  s.agent = step.agent;
  s.state = step.state;
  s.summary = step.summary;
  s.created_at = t;
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("INSERT INTO run_steps (id, run_id, sequence, agent, state, summary,"
                                       " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  q.text(s.id).text(s.run_id).integer(s.sequence).text(s.agent).json(s.state).text(s.summary).time(t);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return s;
}

Result<sdk::RunStep> SqliteOps::get_run_step(std::string_view owner_id, std::string_view step_id) {
  if (!is_id(owner_id) || !is_id(step_id)) return missing("run step", step_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(STEP_SELECT " WHERE s.id = ? AND p.owner_id = ?"));
  q.text(step_id).text(owner_id);
  STORAGE_ASSIGN_OR_RETURN(auto step, query_one(q, read_step));
  if (!step) return missing("run step", step_id);
  return std::move(*step);
}

Result<sdk::RunStep> SqliteOps::latest_run_step(std::string_view owner_id, std::string_view run_id) {
  STORAGE_ASSIGN_OR_RETURN(sdk::Run run, get_run(owner_id, run_id));
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare(STEP_SELECT " WHERE s.run_id = ? ORDER BY s.sequence DESC LIMIT 1"));
  q.text(run.id);
  STORAGE_ASSIGN_OR_RETURN(auto step, query_one(q, read_step));
  if (!step) return Status::not_found("run " + run.id + " has no steps");
  return std::move(*step);
}

Result<sdk::Page<sdk::RunStep>> SqliteOps::list_run_steps(std::string_view owner_id, std::string_view run_id,
                                                          const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(page));
  std::int64_t after = kMinInt;
  if (!page.cursor.empty()) {
    STORAGE_ASSIGN_OR_RETURN(after, decode_int_cursor("s", page.cursor));
  }
  STORAGE_ASSIGN_OR_RETURN(sdk::Run run, get_run(owner_id, run_id));
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(STEP_SELECT " WHERE s.run_id = ? AND s.sequence > ?"
                                                           " ORDER BY s.sequence LIMIT ?"));
  q.text(run.id).integer(after).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_step,
                    [](const sdk::RunStep& s) { return encode_int_cursor("s", s.sequence); });
}

// ======================================================================================= run events

Result<sdk::RunEvent> SqliteOps::append_run_event(std::string_view owner_id, std::string_view run_id,
                                                  std::string_view type, const nlohmann::json& payload) {
  SAMOKODER_RETURN_IF_ERROR(require_text(type, "run event type"));
  STORAGE_ASSIGN_OR_RETURN(sdk::Run run, get_run(owner_id, run_id));
  sdk::RunEvent e;
  e.run_id = run.id;
  e.seq = run.last_event_seq + 1;
  e.type = type;
  e.payload = payload;
  e.created_at = now();
  // Insert first: if the payload is refused, the counter has not moved, so no gap can appear.
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare("INSERT INTO run_events (run_id, seq, type, payload, created_at) VALUES (?, ?, ?, ?, ?)"));
  q.text(e.run_id).integer(e.seq).text(e.type).json(e.payload).time(e.created_at);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  STORAGE_ASSIGN_OR_RETURN(Stmt bump, db_.prepare("UPDATE runs SET last_event_seq = ? WHERE id = ?"));
  bump.integer(e.seq).text(e.run_id);
  SAMOKODER_RETURN_IF_ERROR(bump.run());
  return e;
}

Result<std::vector<sdk::RunEvent>> SqliteOps::list_run_events(std::string_view owner_id,
                                                              std::string_view run_id, std::int64_t after_seq,
                                                              std::uint32_t limit) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(sdk::PageRequest{limit, {}}));
  if (after_seq < 0) return invalid("after_seq must not be negative");
  STORAGE_ASSIGN_OR_RETURN(sdk::Run run, get_run(owner_id, run_id));
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT run_id, seq, type, payload, created_at FROM run_events"
                                               " WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"));
  q.text(run.id).integer(after_seq).integer(limit);
  return query_all(q, read_event);
}

// ============================================================================ LLM requests and usage

Result<sdk::LlmRequest> SqliteOps::record_llm_request(const sdk::NewLlmRequest& request) {
  if (!is_id(request.user_id)) return missing("user", request.user_id);
  SAMOKODER_RETURN_IF_ERROR(validate_llm_request(request));
  if (!request.project_id.empty()) {
    SAMOKODER_RETURN_IF_ERROR(check_project_owner(request.user_id, request.project_id));
  }
  if (!request.run_id.empty()) {
    SAMOKODER_RETURN_IF_ERROR(get_run(request.user_id, request.run_id).status());
  }
  const Timestamp t = now();
  sdk::LlmRequest r;
  r.id = new_id(t);
  r.user_id = request.user_id;
  r.project_id = request.project_id;
  r.run_id = request.run_id;
  r.provider = request.provider;
  r.model = request.model;
  r.agent = request.agent;
  r.prompt_tokens = request.prompt_tokens;
  r.completion_tokens = request.completion_tokens;
  r.latency_ms = request.latency_ms;
  r.status = request.status;
  r.error = request.error;
  r.created_at = t;
  r.step_id = request.step_id;
  r.cached_prompt_tokens = request.cached_prompt_tokens;
  r.cache_write_tokens = request.cache_write_tokens;
  r.usage_estimated = request.usage_estimated;
  r.time_to_first_token_ms = request.time_to_first_token_ms;
  r.cost_micro_usd = request.cost_micro_usd;
  r.attempt = request.attempt;
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("INSERT INTO llm_requests (" LLM_COLUMNS
                          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  q.text(r.id)
      .text(r.user_id)
      .optional_text(r.project_id)
      .optional_text(r.run_id)
      .text(r.provider)
      .text(r.model);
  q.text(r.agent).integer(r.prompt_tokens).integer(r.completion_tokens).integer(r.latency_ms).text(r.status);
  q.text(r.error).time(t).text(r.step_id).integer(r.cached_prompt_tokens).integer(r.cache_write_tokens);
  q.boolean(r.usage_estimated).integer(r.time_to_first_token_ms).integer(r.cost_micro_usd).integer(r.attempt);
  SAMOKODER_RETURN_IF_ERROR(name_missing_parent(q.run(), "user", r.user_id));
  return r;
}

Result<sdk::Page<sdk::LlmRequest>> SqliteOps::list_llm_requests(std::string_view user_id,
                                                                const sdk::PageRequest& page) {
  STORAGE_ASSIGN_OR_RETURN(TimeIdKey before, desc_time_cursor("l", page));
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("SELECT " LLM_COLUMNS " FROM llm_requests WHERE user_id = ?"
                                               " AND (created_at, id) < (?, ?)"
                                               " ORDER BY created_at DESC, id DESC LIMIT ?"));
  q.text(user_id).integer(before.micros).text(before.id).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_llm, [](const sdk::LlmRequest& r) {
    return encode_time_id_cursor("l", to_micros(r.created_at), r.id);
  });
}

Result<std::vector<sdk::UsageTotal>> SqliteOps::usage_by_model(std::string_view user_id,
                                                               std::optional<Timestamp> since,
                                                               std::optional<Timestamp> until) {
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("SELECT provider, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens),"
                          " SUM(cached_prompt_tokens), SUM(cost_micro_usd)"
                          " FROM llm_requests WHERE user_id = ? AND created_at >= ? AND created_at < ?"
                          " GROUP BY provider, model ORDER BY provider, model"));
  q.text(user_id).integer(since ? to_micros(*since) : kMinInt).integer(until ? to_micros(*until) : kMaxInt);
  return query_all(q, [](const Stmt& row) {
    sdk::UsageTotal total;
    total.provider = row.column_text(0);
    total.model = row.column_text(1);
    total.requests = row.column_int(2);
    total.prompt_tokens = row.column_int(3);
    total.completion_tokens = row.column_int(4);
    total.cached_prompt_tokens = row.column_int(5);
    total.cost_micro_usd = row.column_int(6);
    return total;
  });
}

Result<std::vector<sdk::DailyUsage>> SqliteOps::usage_by_day(std::optional<std::string_view> user_id,
                                                             std::optional<Timestamp> since,
                                                             std::optional<Timestamp> until) {
  // Every user's rows (an admin's view) are one range over llm_requests_by_time; one user's are a
  // range over llm_requests_by_user. Two statements, because "user_id = ? OR ? IS NULL" would keep
  // SQLite from using either index.
  const std::string sql =
      std::string("SELECT ") + std::string(kCreatedAtUtcDaySql) +
      " AS utc_day, user_id, provider, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens),"
      " SUM(cached_prompt_tokens), SUM(cost_micro_usd) FROM llm_requests WHERE " +
      (user_id ? "user_id = ? AND " : "") +
      "created_at >= ? AND created_at < ? GROUP BY utc_day, user_id, provider, model"
      " ORDER BY utc_day, user_id, provider, model";
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(sql));
  if (user_id) q.text(*user_id);
  q.integer(since ? to_micros(*since) : kMinInt).integer(until ? to_micros(*until) : kMaxInt);
  return query_all(q, [](const Stmt& row) {
    sdk::DailyUsage usage;
    usage.day = utc_day(row.column_int(0));
    usage.user_id = row.column_text(1);
    usage.provider = row.column_text(2);
    usage.model = row.column_text(3);
    usage.requests = row.column_int(4);
    usage.prompt_tokens = row.column_int(5);
    usage.completion_tokens = row.column_int(6);
    usage.cached_prompt_tokens = row.column_int(7);
    usage.cost_micro_usd = row.column_int(8);
    return usage;
  });
}

Result<sdk::UsageSum> SqliteOps::usage_of_run(std::string_view run_id) {
  if (!is_id(run_id)) return sdk::UsageSum{};  // no run has that id: nothing was recorded for it
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(USAGE_SUM_SELECT " WHERE run_id = ?"));
  q.text(run_id);
  return query_usage_sum(q);
}

Result<sdk::UsageSum> SqliteOps::usage_of_user(std::string_view user_id, std::optional<Timestamp> since) {
  if (!is_id(user_id)) return sdk::UsageSum{};
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(USAGE_SUM_SELECT " WHERE user_id = ? AND created_at >= ?"));
  q.text(user_id).integer(since ? to_micros(*since) : kMinInt);
  return query_usage_sum(q);
}

// ========================================================================================= previews

Result<sdk::Preview> SqliteOps::upsert_preview(std::string_view owner_id, const sdk::PreviewUpsert& preview) {
  SAMOKODER_RETURN_IF_ERROR(require_text(preview.state, "preview state"));
  if (preview.port < 0 || preview.port > 65535) return invalid("preview port must be 0..65535");
  if (preview.pid < 0) return invalid("preview pid must not be negative");
  SAMOKODER_RETURN_IF_ERROR(check_project_owner(owner_id, preview.project_id));
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare("INSERT INTO previews (project_id, state, node_id, port, pid, started_at, expires_at,"
                  " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET"
                  " state = excluded.state, node_id = excluded.node_id, port = excluded.port,"
                  " pid = excluded.pid, started_at = excluded.started_at,"
                  " expires_at = excluded.expires_at, updated_at = excluded.updated_at"));
  q.text(preview.project_id)
      .text(preview.state)
      .text(preview.node_id)
      .integer(preview.port)
      .integer(preview.pid);
  q.time(preview.started_at).time(preview.expires_at).time(now());
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return get_preview(owner_id, preview.project_id);
}

Result<sdk::Preview> SqliteOps::get_preview(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return missing("preview of project", project_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare(PREVIEW_SELECT " WHERE w.project_id = ? AND p.owner_id = ?"));
  q.text(project_id).text(owner_id);
  STORAGE_ASSIGN_OR_RETURN(auto preview, query_one(q, read_preview));
  if (!preview) return missing("preview of project", project_id);
  return std::move(*preview);
}

Status SqliteOps::delete_preview(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return missing("preview of project", project_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q, db_.prepare("DELETE FROM previews WHERE project_id = ? AND EXISTS"
                                               " (SELECT 1 FROM projects p WHERE p.id = previews.project_id"
                                               " AND p.owner_id = ?)"));
  q.text(project_id).text(owner_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) return missing("preview of project", project_id);
  return {};
}

Result<sdk::Page<sdk::Preview>> SqliteOps::list_previews(const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page(page));
  std::string after;
  if (!page.cursor.empty()) {
    STORAGE_ASSIGN_OR_RETURN(auto fields, decode_text_cursor("w", page.cursor));
    after = std::move(fields.first);
  }
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare(PREVIEW_SELECT " WHERE w.project_id > ? ORDER BY w.project_id LIMIT ?"));
  q.text(after).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_preview,
                    [](const sdk::Preview& p) { return encode_text_cursor("w", p.project_id); });
}

// ==================================================================================== notifications

Result<sdk::Notification> SqliteOps::create_notification(const sdk::NewNotification& notification) {
  if (!is_id(notification.user_id)) return missing("user", notification.user_id);
  SAMOKODER_RETURN_IF_ERROR(require_text(notification.kind, "notification kind"));
  const Timestamp t = now();
  sdk::Notification n;
  n.id = new_id(t);
  n.user_id = notification.user_id;
  n.kind = notification.kind;
  n.payload = notification.payload;
  n.created_at = t;
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q, db_.prepare("INSERT INTO notifications (" NOTIFICATION_COLUMNS ") VALUES (?, ?, ?, ?, 0, ?)"));
  q.text(n.id).text(n.user_id).text(n.kind).json(n.payload).time(t);
  SAMOKODER_RETURN_IF_ERROR(name_missing_parent(q.run(), "user", n.user_id));
  return n;
}

Result<sdk::Page<sdk::Notification>> SqliteOps::list_notifications(std::string_view user_id, bool unread_only,
                                                                   const sdk::PageRequest& page) {
  STORAGE_ASSIGN_OR_RETURN(TimeIdKey before, desc_time_cursor("n", page));
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare(unread_only ? "SELECT " NOTIFICATION_COLUMNS " FROM notifications WHERE user_id = ?"
                                " AND read = 0 AND (created_at, id) < (?, ?)"
                                " ORDER BY created_at DESC, id DESC LIMIT ?"
                              : "SELECT " NOTIFICATION_COLUMNS " FROM notifications WHERE user_id = ?"
                                " AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"));
  q.text(user_id).integer(before.micros).text(before.id).integer(page_fetch_size(page));
  return query_page(q, page.limit, read_notification, [](const sdk::Notification& n) {
    return encode_time_id_cursor("n", to_micros(n.created_at), n.id);
  });
}

Result<std::int64_t> SqliteOps::count_unread_notifications(std::string_view user_id) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read = 0"));
  q.text(user_id);
  return query_int(q);
}

Status SqliteOps::mark_notification_read(std::string_view user_id, std::string_view notification_id) {
  if (!is_id(user_id) || !is_id(notification_id)) return missing("notification", notification_id);
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("UPDATE notifications SET read = 1 WHERE id = ? AND user_id = ?"));
  q.text(notification_id).text(user_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  if (db_.changes() == 0) return missing("notification", notification_id);
  return {};
}

Result<std::int64_t> SqliteOps::mark_all_notifications_read(std::string_view user_id) {
  STORAGE_ASSIGN_OR_RETURN(Stmt q,
                           db_.prepare("UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0"));
  q.text(user_id);
  SAMOKODER_RETURN_IF_ERROR(q.run());
  return db_.changes();
}

// ==================================================================================== whole database

Result<sdk::StorageStats> SqliteOps::stats() {
  STORAGE_ASSIGN_OR_RETURN(
      Stmt q,
      db_.prepare("SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM projects),"
                  " (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM file_versions),"
                  " (SELECT COUNT(*) FROM file_blobs), (SELECT COALESCE(SUM(size), 0) FROM file_blobs)"));
  STORAGE_ASSIGN_OR_RETURN(bool row, q.step());
  if (!row) return Status::internal("stats query returned no row");
  sdk::StorageStats s;
  s.users = q.column_int(0);
  s.projects = q.column_int(1);
  s.runs = q.column_int(2);
  s.file_versions = q.column_int(3);
  s.blobs = q.column_int(4);
  s.blob_bytes = q.column_int(5);
  return s;
}

}  // namespace samokoder::storage_sqlite
