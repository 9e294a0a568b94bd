#include "ops.hpp"

#include <algorithm>
#include <charconv>
#include <system_error>
#include <utility>

#include "codec.hpp"

namespace samokoder::storage_postgres {
namespace {

using sdk::Result;
using sdk::Status;

constexpr std::string_view kUserCols =
    "id, email, password_hash, is_admin, tier, disabled, locked_until, created_at, updated_at";
constexpr std::string_view kSessionCols =
    "id, user_id, source_address, user_agent, created_at, expires_at, revoked_at, revoke_reason";
// Refresh tokens are always read joined with their session (alias s) as t.
constexpr std::string_view kRefreshCols =
    "t.token_hash, t.session_id, s.user_id, t.created_at, t.expires_at, t.rotated_at IS NOT NULL, "
    "t.rotated_at, "
    "s.revoked_at IS NOT NULL";
constexpr std::string_view kAuditCols = "id, occurred_at, actor_id, action, target, source_address, detail";
constexpr std::string_view kProviderKeyCols =
    "user_id, provider, key_id, ciphertext, nonce, masked_hint, created_at, updated_at";
constexpr std::string_view kAccessTokenCols =
    "id, user_id, name, token_hash, scopes, expires_at, revoked, last_used_at, created_at";
constexpr std::string_view kProjectCols = "id, owner_id, name, description, created_at, updated_at";
constexpr std::string_view kFileCols =
    "project_id, path, version, blob_hash, size, deleted, created_at, run_step_id";
constexpr std::string_view kRunCols =
    "id, project_id, owner_id, state, description, error, created_at, updated_at, started_at, finished_at, "
    "lease_owner, lease_expires_at, last_event_seq";
constexpr std::string_view kStepCols = "id, run_id, sequence, agent, state, summary, created_at";
constexpr std::string_view kEventCols = "run_id, seq, type, payload, created_at";
constexpr std::string_view kLlmCols =
    "id, user_id, project_id, run_id, provider, model, agent, prompt_tokens, completion_tokens, latency_ms, "
    "status, error, created_at, step_id, cached_prompt_tokens, cache_write_tokens, usage_estimated, "
    "time_to_first_token_ms, cost_micro_usd, attempt";
constexpr std::string_view kPreviewCols =
    "project_id, owner_id, state, node_id, port, pid, started_at, expires_at, updated_at";
constexpr std::string_view kNotificationCols = "id, user_id, kind, payload, read, created_at";

std::string sql(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const auto part : parts)
    out += part;
  return out;
}

Status required(std::string_view value, std::string_view field) {
  if (value.empty()) return Status::invalid_argument(std::string(field) + " is required");
  return {};
}

// Outside a transaction the path lock makes version numbers unique. Inside a SERIALIZABLE transaction
// the snapshot predates a concurrent writer's commit, so the same version can be computed twice: that
// is a serialization conflict, not a duplicate the caller made.
Status version_conflict(const Rows& rows, std::string_view path) {
  if (rows.sqlstate() == sqlstate::kUniqueViolation) {
    return Status::aborted("concurrent write to file " + std::string(path) + "; retry the transaction");
  }
  return rows.status();
}

Status not_found(std::string_view what, std::string_view id) {
  return Status::not_found(std::string(what) + " " + std::string(id) + " does not exist");
}

std::string text_or_empty(const Rows& rows, int r, int c) {
  return rows.is_null(r, c) ? std::string() : rows.text(r, c);
}

// PostgreSQL array literal for a text[] parameter.
std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (const char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string dump_json(const nlohmann::json& value) {
  return value.dump();
}

sdk::User read_user(const Rows& rows, int r) {
  sdk::User u;
  u.id = rows.text(r, 0);
  u.email = rows.text(r, 1);
  u.password_hash = rows.text(r, 2);
  u.is_admin = rows.boolean(r, 3);
  u.tier = rows.text(r, 4);
  u.disabled = rows.boolean(r, 5);
  u.locked_until = rows.opt_time(r, 6);
  u.created_at = rows.time(r, 7);
  u.updated_at = rows.time(r, 8);
  return u;
}

sdk::Session read_session(const Rows& rows, int r) {
  sdk::Session s;
  s.id = rows.text(r, 0);
  s.user_id = rows.text(r, 1);
  s.source_address = rows.text(r, 2);
  s.user_agent = rows.text(r, 3);
  s.created_at = rows.time(r, 4);
  s.expires_at = rows.time(r, 5);
  s.revoked_at = rows.opt_time(r, 6);
  s.revoke_reason = rows.text(r, 7);
  return s;
}

sdk::RefreshToken read_refresh(const Rows& rows, int r) {
  sdk::RefreshToken t;
  t.token_hash = rows.text(r, 0);
  t.session_id = rows.text(r, 1);
  t.user_id = rows.text(r, 2);
  t.created_at = rows.time(r, 3);
  t.expires_at = rows.time(r, 4);
  t.rotated = rows.boolean(r, 5);
  t.rotated_at = rows.opt_time(r, 6);
  t.revoked = rows.boolean(r, 7);
  return t;
}

sdk::AuditEvent read_audit(const Rows& rows, int r) {
  sdk::AuditEvent e;
  e.id = rows.text(r, 0);
  e.occurred_at = rows.time(r, 1);
  e.actor_id = rows.text(r, 2);
  e.action = rows.text(r, 3);
  e.target = rows.text(r, 4);
  e.source_address = rows.text(r, 5);
  e.detail = rows.json(r, 6);
  return e;
}

sdk::ProviderKey read_provider_key(const Rows& rows, int r) {
  sdk::ProviderKey k;
  k.user_id = rows.text(r, 0);
  k.provider = rows.text(r, 1);
  k.key_id = rows.text(r, 2);
  k.ciphertext = rows.bytes(r, 3);
  k.nonce = rows.bytes(r, 4);
  k.masked_hint = rows.text(r, 5);
  k.created_at = rows.time(r, 6);
  k.updated_at = rows.time(r, 7);
  return k;
}

sdk::AccessToken read_access_token(const Rows& rows, int r) {
  sdk::AccessToken t;
  t.id = rows.text(r, 0);
  t.user_id = rows.text(r, 1);
  t.name = rows.text(r, 2);
  t.token_hash = rows.text(r, 3);
  t.scopes = rows.json(r, 4).get<std::vector<std::string>>();
  t.expires_at = rows.opt_time(r, 5);
  t.revoked = rows.boolean(r, 6);
  t.last_used_at = rows.opt_time(r, 7);
  t.created_at = rows.time(r, 8);
  return t;
}

sdk::Project read_project(const Rows& rows, int r) {
  sdk::Project p;
  p.id = rows.text(r, 0);
  p.owner_id = rows.text(r, 1);
  p.name = rows.text(r, 2);
  p.description = rows.text(r, 3);
  p.created_at = rows.time(r, 4);
  p.updated_at = rows.time(r, 5);
  return p;
}

sdk::FileVersion read_file(const Rows& rows, int r) {
  sdk::FileVersion f;
  f.project_id = rows.text(r, 0);
  f.path = rows.text(r, 1);
  f.version = rows.i64(r, 2);
  f.content_hash = text_or_empty(rows, r, 3);
  f.size = rows.i64(r, 4);
  f.deleted = rows.boolean(r, 5);
  f.created_at = rows.time(r, 6);
  f.run_step_id = text_or_empty(rows, r, 7);
  return f;
}

sdk::Run read_run(const Rows& rows, int r) {
  sdk::Run run;
  run.id = rows.text(r, 0);
  run.project_id = rows.text(r, 1);
  run.owner_id = rows.text(r, 2);
  run.state = rows.text(r, 3);
  run.description = rows.text(r, 4);
  run.error = rows.text(r, 5);
  run.created_at = rows.time(r, 6);
  run.updated_at = rows.time(r, 7);
  run.started_at = rows.opt_time(r, 8);
  run.finished_at = rows.opt_time(r, 9);
  run.lease_owner = rows.text(r, 10);
  run.lease_expires_at = rows.opt_time(r, 11);
  run.last_event_seq = rows.i64(r, 12);
  return run;
}

sdk::RunStep read_step(const Rows& rows, int r) {
  sdk::RunStep s;
  s.id = rows.text(r, 0);
  s.run_id = rows.text(r, 1);
  s.sequence = rows.i64(r, 2);
  s.agent = rows.text(r, 3);
  s.state = rows.json(r, 4);
  s.summary = rows.text(r, 5);
  s.created_at = rows.time(r, 6);
  return s;
}

sdk::RunEvent read_event(const Rows& rows, int r) {
  sdk::RunEvent e;
  e.run_id = rows.text(r, 0);
  e.seq = rows.i64(r, 1);
  e.type = rows.text(r, 2);
  e.payload = rows.json(r, 3);
  e.created_at = rows.time(r, 4);
  return e;
}

sdk::LlmRequest read_llm(const Rows& rows, int r) {
  sdk::LlmRequest q;
  q.id = rows.text(r, 0);
  q.user_id = rows.text(r, 1);
  q.project_id = text_or_empty(rows, r, 2);
  q.run_id = text_or_empty(rows, r, 3);
  q.provider = rows.text(r, 4);
  q.model = rows.text(r, 5);
  q.agent = rows.text(r, 6);
  q.prompt_tokens = rows.i64(r, 7);
  q.completion_tokens = rows.i64(r, 8);
  q.latency_ms = rows.i64(r, 9);
  q.status = rows.text(r, 10);
  q.error = rows.text(r, 11);
  q.created_at = rows.time(r, 12);
  q.step_id = rows.text(r, 13);
  q.cached_prompt_tokens = rows.i64(r, 14);
  q.cache_write_tokens = rows.i64(r, 15);
  q.usage_estimated = rows.boolean(r, 16);
  q.time_to_first_token_ms = rows.i64(r, 17);
  q.cost_micro_usd = rows.i64(r, 18);
  q.attempt = static_cast<std::int32_t>(rows.i64(r, 19));
  return q;
}

// A UsageSum over the llm_requests the appended WHERE clause selects: always one row, zeros when none.
constexpr std::string_view kUsageSumSelect =
    "SELECT count(*), COALESCE(sum(prompt_tokens), 0)::bigint, COALESCE(sum(completion_tokens), 0)::bigint, "
    "COALESCE(sum(cost_micro_usd), 0)::bigint FROM llm_requests";

sdk::UsageSum read_usage_sum(const Rows& rows, int r) {
  sdk::UsageSum sum;
  sum.requests = rows.i64(r, 0);
  sum.prompt_tokens = rows.i64(r, 1);
  sum.completion_tokens = rows.i64(r, 2);
  sum.cost_micro_usd = rows.i64(r, 3);
  return sum;
}

sdk::Preview read_preview(const Rows& rows, int r) {
  sdk::Preview p;
  p.project_id = rows.text(r, 0);
  p.owner_id = rows.text(r, 1);
  p.state = rows.text(r, 2);
  p.node_id = rows.text(r, 3);
  p.port = static_cast<std::int32_t>(rows.i64(r, 4));
  p.pid = rows.i64(r, 5);
  p.started_at = rows.time(r, 6);
  p.expires_at = rows.time(r, 7);
  p.updated_at = rows.time(r, 8);
  return p;
}

sdk::Notification read_notification(const Rows& rows, int r) {
  sdk::Notification n;
  n.id = rows.text(r, 0);
  n.user_id = rows.text(r, 1);
  n.kind = rows.text(r, 2);
  n.payload = rows.json(r, 3);
  n.read = rows.boolean(r, 4);
  n.created_at = rows.time(r, 5);
  return n;
}

template <typename Read>
auto read_all(const Rows& rows, Read read) {
  std::vector<decltype(read(rows, 0))> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r)
    out.push_back(read(rows, r));
  return out;
}

// Rows were fetched with LIMIT limit+1: the extra row only says that another page exists.
template <typename Read, typename CursorOf>
auto make_page(const Rows& rows, std::uint32_t limit, Read read, CursorOf cursor_of) {
  sdk::Page<decltype(read(rows, 0))> page;
  const int take = std::min(rows.size(), static_cast<int>(limit));
  for (int r = 0; r < take; ++r)
    page.items.push_back(read(rows, r));
  if (rows.size() > take) page.next_cursor = cursor_of(rows, take - 1);
  return page;
}

// Every cursor starts with the name of the list that issued it, so a cursor handed to another list is
// refused instead of silently paging through the wrong keys.
std::string tagged(std::string_view list, std::string_view payload) {
  return std::string(list) + ":" + std::string(payload);
}

Result<std::string_view> untagged(std::string_view list, std::string_view cursor) {
  if (cursor.size() <= list.size() || cursor.substr(0, list.size()) != list || cursor[list.size()] != ':') {
    return Status::invalid_argument("page cursor was not issued by this list");
  }
  return cursor.substr(list.size() + 1);
}

// Lists ordered by (time, id): the cursor is the last row's (time, id) at columns (tc, ic).
auto time_id_cursor_at(std::string_view list, int tc, int ic) {
  return [list, tc, ic](const Rows& rows, int r) {
    return tagged(list, time_id_cursor(rows.i64(r, tc), rows.text(r, ic)));
  };
}

// Parses a (time, id) cursor into two parameters (both NULL for the first page).
Status add_time_id_cursor(Params& params, std::string_view list, std::string_view cursor) {
  if (cursor.empty()) {
    params.null().null();
    return {};
  }
  auto payload = untagged(list, cursor);
  if (!payload.ok()) return payload.status();
  const auto parsed = parse_time_id_cursor(*payload);
  if (!parsed) return Status::invalid_argument("malformed page cursor");
  params.i64(parsed->micros).text(parsed->id);
  return {};
}

Result<std::int64_t> parse_int_cursor(std::string_view list, std::string_view cursor) {
  auto payload = untagged(list, cursor);
  if (!payload.ok()) return payload.status();
  std::int64_t value = 0;
  const char* end = payload->data() + payload->size();
  const auto [ptr, ec] = std::from_chars(payload->data(), end, value);
  if (ec != std::errc() || ptr != end || value < 0) return Status::invalid_argument("malformed page cursor");
  return value;
}

}  // namespace

Status PgOps::begin_unit() {
  if (in_transaction_ || unit_open_) return {};
  auto rows = conn_.command("BEGIN");
  if (!rows.ok()) return rows.status();
  unit_open_ = true;
  return {};
}

Status PgOps::check_project(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(project_id) || !is_id(owner_id)) return not_found("project", project_id);
  auto rows = exec("SELECT 1 FROM projects WHERE id = $1 AND owner_id = $2",
                   Params().text(project_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("project", project_id);
  return {};
}

Status PgOps::check_run(std::string_view owner_id, std::string_view run_id) {
  if (!is_id(run_id) || !is_id(owner_id)) return not_found("run", run_id);
  auto rows =
      exec("SELECT 1 FROM runs WHERE id = $1 AND owner_id = $2", Params().text(run_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("run", run_id);
  return {};
}

Status PgOps::lock_file_path(std::string_view owner_id, std::string_view project_id, std::string_view path) {
  if (!is_id(project_id) || !is_id(owner_id)) return not_found("project", project_id);
  // A transaction-scoped advisory lock per (project, path) orders concurrent writers of one path, so each
  // computes its version from the previous writer's committed one. FOR KEY SHARE locks the project row
  // until commit, ordering the write against delete_project on any node: a deletion that came first
  // leaves no row (not_found), one that comes later waits and then removes this version with the rest.
  // The version insert's foreign key check takes the same lock; taking it first decides the outcome
  // before any work, instead of in a foreign-key violation after the blob was written.
  auto rows = exec(
      "SELECT pg_advisory_xact_lock(hashtextextended(p.id || '/' || $3::text, 0)) "
      "FROM projects p WHERE p.id = $1 AND p.owner_id = $2 FOR KEY SHARE OF p",
      Params().text(project_id).text(owner_id).text(path));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("project", project_id);
  return {};
}

Status PgOps::check_run_step(std::string_view project_id, std::string_view run_step_id) {
  if (run_step_id.empty()) return {};
  if (!is_id(run_step_id)) return not_found("run step", run_step_id);
  auto rows =
      exec("SELECT 1 FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE s.id = $1 AND r.project_id = $2",
           Params().text(run_step_id).text(project_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("run step", run_step_id);
  return {};
}

// ---- users

Result<sdk::User> PgOps::create_user(const sdk::NewUser& user) {
  SAMOKODER_RETURN_IF_ERROR(required(user.email, "email"));
  SAMOKODER_RETURN_IF_ERROR(required(user.tier, "tier"));
  const auto t = now();
  auto rows =
      exec(sql({"INSERT INTO users (id, email, email_key, password_hash, is_admin, tier, disabled, "
                "locked_until, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, false, NULL, $7, $7) "
                "ON CONFLICT (email_key) DO NOTHING RETURNING ",
                kUserCols}),
           Params()
               .text(new_id(t))
               .text(user.email)
               .text(ascii_lower(user.email))
               .text(user.password_hash)
               .boolean(user.is_admin)
               .text(user.tier)
               .time(t));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::already_exists("a user with email " + user.email + " already exists");
  return read_user(rows, 0);
}

Result<sdk::User> PgOps::get_user(std::string_view user_id) {
  if (!is_id(user_id)) return not_found("user", user_id);
  auto rows = exec(sql({"SELECT ", kUserCols, " FROM users WHERE id = $1"}), Params().text(user_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("user", user_id);
  return read_user(rows, 0);
}

Result<sdk::User> PgOps::find_user_by_email(std::string_view email) {
  auto rows = exec(sql({"SELECT ", kUserCols, " FROM users WHERE email_key = $1"}),
                   Params().text(ascii_lower(email)));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::not_found("no user with email " + std::string(email));
  return read_user(rows, 0);
}

Result<sdk::User> PgOps::update_user(std::string_view user_id, const sdk::UserUpdate& update) {
  if (update.email) SAMOKODER_RETURN_IF_ERROR(required(*update.email, "email"));
  if (update.tier) SAMOKODER_RETURN_IF_ERROR(required(*update.tier, "tier"));
  if (!is_id(user_id)) return not_found("user", user_id);
  Params params;
  params.text(user_id).time(now());
  std::string set = "updated_at = $2";
  auto assign = [&](std::string_view column) {
    set += ", " + std::string(column) + " = $" + std::to_string(params.size());
  };
  if (update.email) {
    params.text(*update.email);
    assign("email");
    params.text(ascii_lower(*update.email));
    assign("email_key");
  }
  if (update.password_hash) {
    params.text(*update.password_hash);
    assign("password_hash");
  }
  if (update.is_admin) {
    params.boolean(*update.is_admin);
    assign("is_admin");
  }
  if (update.tier) {
    params.text(*update.tier);
    assign("tier");
  }
  if (update.disabled) {
    params.boolean(*update.disabled);
    assign("disabled");
  }
  if (update.locked_until) {
    params.opt_time(*update.locked_until);
    set += ", locked_until = $" + std::to_string(params.size()) + "::bigint";
  }
  auto rows = exec(sql({"UPDATE users SET ", set, " WHERE id = $1 RETURNING ", kUserCols}), params);
  if (!rows.ok()) {
    if (rows.sqlstate() == sqlstate::kUniqueViolation) {
      return Status::already_exists("a user with email " + update.email.value_or("") + " already exists");
    }
    return rows.status();
  }
  if (rows.empty()) return not_found("user", user_id);
  return read_user(rows, 0);
}

Status PgOps::delete_user(std::string_view user_id) {
  if (!is_id(user_id)) return not_found("user", user_id);
  // Everything the user owns, LLM request records included, goes by ON DELETE CASCADE; audit events keep
  // their actor id (they are the record of what the user did).
  auto deleted = exec("DELETE FROM users WHERE id = $1", Params().text(user_id));
  if (!deleted.ok()) return deleted.status();
  if (deleted.affected() == 0) return not_found("user", user_id);
  return {};
}

Result<sdk::Page<sdk::User>> PgOps::list_users(const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  Params params;
  SAMOKODER_RETURN_IF_ERROR(add_time_id_cursor(params, "users", page.cursor));
  params.i64(page.limit + 1);
  auto rows = exec(sql({"SELECT ", kUserCols,
                        " FROM users WHERE $1::bigint IS NULL OR (created_at, id) > ($1::bigint, $2::text) "
                        "ORDER BY created_at, id LIMIT $3"}),
                   params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_user, time_id_cursor_at("users", 7, 0));
}

// ---- sessions and refresh tokens

Result<sdk::Session> PgOps::create_session(const sdk::NewSession& session) {
  if (!is_id(session.user_id)) return not_found("user", session.user_id);
  const auto t = now();
  auto rows =
      exec(sql({"INSERT INTO sessions (id, user_id, source_address, user_agent, created_at, expires_at) "
                "SELECT $1, u.id, $3, $4, $5, $6 FROM users u WHERE u.id = $2 RETURNING ",
                kSessionCols}),
           Params()
               .text(new_id(t))
               .text(session.user_id)
               .text(session.source_address)
               .text(session.user_agent)
               .time(t)
               .time(session.expires_at));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("user", session.user_id);
  return read_session(rows, 0);
}

Result<sdk::Session> PgOps::get_session(std::string_view session_id) {
  if (!is_id(session_id)) return not_found("session", session_id);
  auto rows = exec(sql({"SELECT ", kSessionCols, " FROM sessions WHERE id = $1"}), Params().text(session_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("session", session_id);
  return read_session(rows, 0);
}

Result<std::vector<sdk::Session>> PgOps::list_active_sessions(std::string_view user_id) {
  if (!is_id(user_id)) return std::vector<sdk::Session>{};
  auto rows = exec(sql({"SELECT ", kSessionCols,
                        " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 "
                        "ORDER BY created_at DESC, id DESC"}),
                   Params().text(user_id).time(now()));
  if (!rows.ok()) return rows.status();
  return read_all(rows, read_session);
}

Status PgOps::revoke_session(std::string_view session_id, std::string_view reason) {
  if (!is_id(session_id)) return not_found("session", session_id);
  auto rows = exec(
      "UPDATE sessions SET revoke_reason = CASE WHEN revoked_at IS NULL THEN $3 ELSE revoke_reason END, "
      "revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
      Params().text(session_id).time(now()).text(reason));
  if (!rows.ok()) return rows.status();
  if (rows.affected() == 0) return not_found("session", session_id);
  return {};
}

Result<std::int64_t> PgOps::revoke_user_sessions(std::string_view user_id, std::string_view reason) {
  if (!is_id(user_id)) return std::int64_t{0};
  auto rows = exec(
      "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL",
      Params().text(user_id).time(now()).text(reason));
  if (!rows.ok()) return rows.status();
  return rows.affected();
}

Result<sdk::RefreshToken> PgOps::add_refresh_token(const sdk::NewRefreshToken& token) {
  SAMOKODER_RETURN_IF_ERROR(required(token.token_hash, "token_hash"));
  if (!is_id(token.session_id)) return not_found("session", token.session_id);
  auto rows = exec(sql({"WITH s AS (SELECT id, user_id, revoked_at FROM sessions WHERE id = $2), "
                        "t AS (INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) "
                        "SELECT $1, s.id, $3, $4 FROM s ON CONFLICT (token_hash) DO NOTHING RETURNING *) "
                        "SELECT ",
                        kRefreshCols, " FROM t, s"}),
                   Params().text(token.token_hash).text(token.session_id).time(now()).time(token.expires_at));
  if (!rows.ok()) return rows.status();
  if (!rows.empty()) return read_refresh(rows, 0);
  auto session = exec("SELECT 1 FROM sessions WHERE id = $1", Params().text(token.session_id));
  if (!session.ok()) return session.status();
  if (session.empty()) return not_found("session", token.session_id);
  return Status::already_exists("refresh token already stored");
}

Result<sdk::RefreshToken> PgOps::find_refresh_token(std::string_view token_hash) {
  auto rows =
      exec(sql({"SELECT ", kRefreshCols,
                " FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1"}),
           Params().text(token_hash));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::not_found("unknown refresh token");
  return read_refresh(rows, 0);
}

Result<sdk::RefreshToken> PgOps::rotate_refresh_token(std::string_view old_token_hash,
                                                      const sdk::NewRefreshToken& next) {
  SAMOKODER_RETURN_IF_ERROR(required(next.token_hash, "token_hash"));
  SAMOKODER_RETURN_IF_ERROR(begin_unit());
  const auto t = now();
  // The row lock makes concurrent rotations of one token take turns; the loser then sees rotated = true.
  auto old = exec(
      "SELECT t.session_id, s.user_id, t.expires_at, t.rotated_at IS NOT NULL, s.revoked_at IS NOT NULL, "
      "s.expires_at "
      "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1 "
      "FOR UPDATE OF t FOR SHARE OF s",
      Params().text(old_token_hash));
  if (!old.ok()) return old.status();
  if (old.empty()) return Status::not_found("unknown refresh token");
  if (old.boolean(0, 3)) return Status::failed_precondition("refresh token was already rotated");
  if (old.boolean(0, 4)) return Status::failed_precondition("refresh token's session is revoked");
  if (old.time(0, 2) <= t || old.time(0, 5) <= t) return Status::failed_precondition("refresh token expired");
  auto mark = exec("UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1",
                   Params().text(old_token_hash).time(t));
  if (!mark.ok()) return mark.status();
  auto rows = exec(
      "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) "
      "VALUES ($1, $2, $4, $5) ON CONFLICT (token_hash) DO NOTHING "
      "RETURNING token_hash, session_id, $3::text, created_at, expires_at, false, rotated_at, false",
      Params().text(next.token_hash).text(old.text(0, 0)).text(old.text(0, 1)).time(t).time(next.expires_at));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::already_exists("refresh token already stored");
  return read_refresh(rows, 0);
}

Result<std::int64_t> PgOps::purge_expired_sessions() {
  auto rows = exec("DELETE FROM sessions WHERE expires_at <= $1", Params().time(now()));
  if (!rows.ok()) return rows.status();
  return rows.affected();
}

Status PgOps::revoke_token_id(std::string_view jti, sdk::Timestamp expires_at, std::string_view reason) {
  SAMOKODER_RETURN_IF_ERROR(required(jti, "jti"));
  auto rows = exec(
      "INSERT INTO revoked_tokens (jti, expires_at, reason, revoked_at) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, EXCLUDED.expires_at)",
      Params().text(jti).time(expires_at).text(reason).time(now()));
  return rows.status();
}

Result<bool> PgOps::is_token_id_revoked(std::string_view jti) {
  auto rows = exec("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)", Params().text(jti));
  if (!rows.ok()) return rows.status();
  return rows.boolean(0, 0);
}

Result<std::int64_t> PgOps::purge_expired_token_revocations() {
  auto rows = exec("DELETE FROM revoked_tokens WHERE expires_at <= $1", Params().time(now()));
  if (!rows.ok()) return rows.status();
  return rows.affected();
}

// ---- login attempts

Status PgOps::record_login_attempt(const sdk::LoginAttempt& attempt) {
  auto rows = exec(
      "INSERT INTO login_attempts (subject_key, source_address, success, user_agent, occurred_at) "
      "VALUES ($1, $2, $3, $4, $5)",
      Params()
          .text(ascii_lower(attempt.subject))
          .text(attempt.source_address)
          .boolean(attempt.success)
          .text(attempt.user_agent)
          .time(now()));
  return rows.status();
}

Result<std::int64_t> PgOps::count_failed_logins_for_subject(std::string_view subject, sdk::Timestamp since) {
  auto rows =
      exec("SELECT count(*) FROM login_attempts WHERE subject_key = $1 AND NOT success AND occurred_at >= $2",
           Params().text(ascii_lower(subject)).time(since));
  if (!rows.ok()) return rows.status();
  return rows.i64(0, 0);
}

Result<std::int64_t> PgOps::count_failed_logins_for_address(std::string_view source_address,
                                                            sdk::Timestamp since) {
  auto rows = exec(
      "SELECT count(*) FROM login_attempts WHERE source_address = $1 AND NOT success AND occurred_at >= $2",
      Params().text(source_address).time(since));
  if (!rows.ok()) return rows.status();
  return rows.i64(0, 0);
}

Result<std::int64_t> PgOps::purge_login_attempts(sdk::Timestamp before) {
  auto rows = exec("DELETE FROM login_attempts WHERE occurred_at < $1", Params().time(before));
  if (!rows.ok()) return rows.status();
  return rows.affected();
}

// ---- audit

Result<sdk::AuditEvent> PgOps::append_audit_event(const sdk::NewAuditEvent& event) {
  SAMOKODER_RETURN_IF_ERROR(required(event.action, "action"));
  const auto t = now();
  auto rows = exec(
      sql({"INSERT INTO audit_events (id, occurred_at, actor_id, action, target, source_address, detail) "
           "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
           kAuditCols}),
      Params()
          .text(new_id(t))
          .time(t)
          .text(event.actor_id)
          .text(event.action)
          .text(event.target)
          .text(event.source_address)
          .text(dump_json(event.detail)));
  if (!rows.ok()) return rows.status();
  return read_audit(rows, 0);
}

Result<sdk::Page<sdk::AuditEvent>> PgOps::list_audit_events(const sdk::AuditFilter& filter,
                                                            const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  Params params;
  SAMOKODER_RETURN_IF_ERROR(add_time_id_cursor(params, "audit", page.cursor));
  params.opt_text(filter.actor_id).opt_text(filter.action).opt_time(filter.since).opt_time(filter.until);
  params.i64(page.limit + 1);
  auto rows =
      exec(sql({"SELECT ", kAuditCols,
                " FROM audit_events WHERE ($1::bigint IS NULL OR (occurred_at, id) < ($1::bigint, $2::text)) "
                "AND ($3::text IS NULL OR actor_id = $3) AND ($4::text IS NULL OR action = $4) "
                "AND ($5::bigint IS NULL OR occurred_at >= $5) AND ($6::bigint IS NULL OR occurred_at < $6) "
                "ORDER BY occurred_at DESC, id DESC LIMIT $7"}),
           params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_audit, time_id_cursor_at("audit", 1, 0));
}

// ---- provider keys

Result<sdk::ProviderKey> PgOps::put_provider_key(const sdk::NewProviderKey& key) {
  SAMOKODER_RETURN_IF_ERROR(required(key.provider, "provider"));
  SAMOKODER_RETURN_IF_ERROR(required(key.key_id, "key_id"));
  if (!is_id(key.user_id)) return not_found("user", key.user_id);
  auto rows = exec(
      sql({"INSERT INTO provider_keys (user_id, provider, key_id, ciphertext, nonce, masked_hint, "
           "created_at, updated_at) SELECT u.id, $2, $3, $4, $5, $6, $7, $7 FROM users u WHERE u.id = $1 "
           "ON CONFLICT (user_id, provider) DO UPDATE SET key_id = EXCLUDED.key_id, "
           "ciphertext = EXCLUDED.ciphertext, nonce = EXCLUDED.nonce, "
           "masked_hint = EXCLUDED.masked_hint, updated_at = EXCLUDED.updated_at RETURNING ",
           kProviderKeyCols}),
      Params()
          .text(key.user_id)
          .text(key.provider)
          .text(key.key_id)
          .bytes(key.ciphertext)
          .bytes(key.nonce)
          .text(key.masked_hint)
          .time(now()));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("user", key.user_id);
  return read_provider_key(rows, 0);
}

Result<sdk::ProviderKey> PgOps::get_provider_key(std::string_view user_id, std::string_view provider) {
  if (!is_id(user_id)) return Status::not_found("no " + std::string(provider) + " key");
  auto rows =
      exec(sql({"SELECT ", kProviderKeyCols, " FROM provider_keys WHERE user_id = $1 AND provider = $2"}),
           Params().text(user_id).text(provider));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::not_found("no " + std::string(provider) + " key");
  return read_provider_key(rows, 0);
}

Result<std::vector<sdk::ProviderKey>> PgOps::list_provider_keys(std::string_view user_id) {
  if (!is_id(user_id)) return std::vector<sdk::ProviderKey>{};
  auto rows =
      exec(sql({"SELECT ", kProviderKeyCols, " FROM provider_keys WHERE user_id = $1 ORDER BY provider"}),
           Params().text(user_id));
  if (!rows.ok()) return rows.status();
  return read_all(rows, read_provider_key);
}

Status PgOps::delete_provider_key(std::string_view user_id, std::string_view provider) {
  if (!is_id(user_id)) return Status::not_found("no " + std::string(provider) + " key");
  auto rows = exec("DELETE FROM provider_keys WHERE user_id = $1 AND provider = $2",
                   Params().text(user_id).text(provider));
  if (!rows.ok()) return rows.status();
  if (rows.affected() == 0) return Status::not_found("no " + std::string(provider) + " key");
  return {};
}

Result<sdk::Page<sdk::ProviderKey>> PgOps::list_provider_keys_by_key_id(std::string_view key_id,
                                                                        const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  // Cursor: "<user_id>:<hex(provider)>" of the last key returned.
  Params params;
  params.text(key_id);
  if (page.cursor.empty()) {
    params.null().null();
  } else {
    auto payload = untagged("provider_keys", page.cursor);
    if (!payload.ok()) return payload.status();
    const auto colon = payload->find(':');
    const auto user = payload->substr(0, colon);
    const auto provider =
        colon == std::string_view::npos ? std::nullopt : hex_decode(payload->substr(colon + 1));
    if (!is_id(user) || !provider) return Status::invalid_argument("malformed page cursor");
    params.text(user).text(*provider);
  }
  params.i64(page.limit + 1);
  auto rows =
      exec(sql({"SELECT ", kProviderKeyCols,
                " FROM provider_keys WHERE key_id = $1 AND ($2::text IS NULL OR (user_id, provider) > "
                "($2::text, $3::text)) ORDER BY user_id, provider LIMIT $4"}),
           params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_provider_key, [](const Rows& r, int i) {
    return tagged("provider_keys", r.text(i, 0) + ":" + hex_encode(r.text(i, 1)));
  });
}

// ---- personal access tokens

Result<sdk::AccessToken> PgOps::create_access_token(const sdk::NewAccessToken& token) {
  SAMOKODER_RETURN_IF_ERROR(required(token.name, "name"));
  SAMOKODER_RETURN_IF_ERROR(required(token.token_hash, "token_hash"));
  if (!is_id(token.user_id)) return not_found("user", token.user_id);
  const auto t = now();
  auto rows =
      exec(sql({"INSERT INTO access_tokens (id, user_id, name, token_hash, scopes, expires_at, created_at) "
                "SELECT $1, u.id, $3, $4, $5, $6::bigint, $7 FROM users u WHERE u.id = $2 "
                "ON CONFLICT (token_hash) DO NOTHING RETURNING ",
                kAccessTokenCols}),
           Params()
               .text(new_id(t))
               .text(token.user_id)
               .text(token.name)
               .text(token.token_hash)
               .text(dump_json(token.scopes))
               .opt_time(token.expires_at)
               .time(t));
  if (!rows.ok()) return rows.status();
  if (!rows.empty()) return read_access_token(rows, 0);
  auto user = exec("SELECT 1 FROM users WHERE id = $1", Params().text(token.user_id));
  if (!user.ok()) return user.status();
  if (user.empty()) return not_found("user", token.user_id);
  return Status::already_exists("access token already stored");
}

Result<sdk::AccessToken> PgOps::find_access_token(std::string_view token_hash) {
  auto rows = exec(sql({"SELECT ", kAccessTokenCols, " FROM access_tokens WHERE token_hash = $1"}),
                   Params().text(token_hash));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::not_found("unknown access token");
  return read_access_token(rows, 0);
}

Result<std::vector<sdk::AccessToken>> PgOps::list_access_tokens(std::string_view user_id) {
  if (!is_id(user_id)) return std::vector<sdk::AccessToken>{};
  auto rows = exec(sql({"SELECT ", kAccessTokenCols,
                        " FROM access_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC"}),
                   Params().text(user_id));
  if (!rows.ok()) return rows.status();
  return read_all(rows, read_access_token);
}

Status PgOps::revoke_access_token(std::string_view user_id, std::string_view token_id) {
  if (!is_id(user_id) || !is_id(token_id)) return not_found("access token", token_id);
  auto rows = exec("UPDATE access_tokens SET revoked = true WHERE id = $2 AND user_id = $1",
                   Params().text(user_id).text(token_id));
  if (!rows.ok()) return rows.status();
  if (rows.affected() == 0) return not_found("access token", token_id);
  return {};
}

Status PgOps::touch_access_token(std::string_view token_id) {
  if (!is_id(token_id)) return not_found("access token", token_id);
  auto rows =
      exec("UPDATE access_tokens SET last_used_at = $2 WHERE id = $1", Params().text(token_id).time(now()));
  if (!rows.ok()) return rows.status();
  if (rows.affected() == 0) return not_found("access token", token_id);
  return {};
}

// ---- projects

Result<sdk::Project> PgOps::create_project(const sdk::NewProject& project) {
  SAMOKODER_RETURN_IF_ERROR(required(project.name, "name"));
  if (!is_id(project.owner_id)) return not_found("user", project.owner_id);
  const auto t = now();
  auto rows = exec(
      sql({"INSERT INTO projects (id, owner_id, name, description, created_at, updated_at) "
           "SELECT $1, u.id, $3, $4, $5, $5 FROM users u WHERE u.id = $2 RETURNING ",
           kProjectCols}),
      Params().text(new_id(t)).text(project.owner_id).text(project.name).text(project.description).time(t));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("user", project.owner_id);
  return read_project(rows, 0);
}

Result<sdk::Project> PgOps::get_project(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return not_found("project", project_id);
  auto rows = exec(sql({"SELECT ", kProjectCols, " FROM projects WHERE id = $1 AND owner_id = $2"}),
                   Params().text(project_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("project", project_id);
  return read_project(rows, 0);
}

Result<sdk::Page<sdk::Project>> PgOps::list_projects(std::string_view owner_id,
                                                     const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  Params params;
  SAMOKODER_RETURN_IF_ERROR(add_time_id_cursor(params, "projects", page.cursor));
  params.text(owner_id).i64(page.limit + 1);
  auto rows = exec(sql({"SELECT ", kProjectCols,
                        " FROM projects WHERE owner_id = $3 AND ($1::bigint IS NULL OR (created_at, id) < "
                        "($1::bigint, $2::text)) ORDER BY created_at DESC, id DESC LIMIT $4"}),
                   params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_project, time_id_cursor_at("projects", 4, 0));
}

Result<sdk::Project> PgOps::update_project(std::string_view owner_id, std::string_view project_id,
                                           const sdk::ProjectUpdate& update) {
  if (update.name) SAMOKODER_RETURN_IF_ERROR(required(*update.name, "name"));
  if (!is_id(owner_id) || !is_id(project_id)) return not_found("project", project_id);
  auto rows = exec(sql({"UPDATE projects SET name = COALESCE($3::text, name), "
                        "description = COALESCE($4::text, description), updated_at = $5 "
                        "WHERE id = $1 AND owner_id = $2 RETURNING ",
                        kProjectCols}),
                   Params()
                       .text(project_id)
                       .text(owner_id)
                       .opt_text(update.name)
                       .opt_text(update.description)
                       .time(now()));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("project", project_id);
  return read_project(rows, 0);
}

Status PgOps::delete_project(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return not_found("project", project_id);
  auto rows =
      exec("DELETE FROM projects WHERE id = $1 AND owner_id = $2", Params().text(project_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.affected() == 0) return not_found("project", project_id);
  return {};
}

// ---- files

Result<sdk::FileVersion> PgOps::put_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path, std::string_view content,
                                         std::string_view run_step_id) {
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  SAMOKODER_RETURN_IF_ERROR(begin_unit());
  SAMOKODER_RETURN_IF_ERROR(lock_file_path(owner_id, project_id, path));
  SAMOKODER_RETURN_IF_ERROR(check_run_step(project_id, run_step_id));
  auto newest =
      exec(sql({"SELECT ", kFileCols,
                " FROM file_versions WHERE project_id = $1 AND path = $2 ORDER BY version DESC LIMIT 1"}),
           Params().text(project_id).text(path));
  if (!newest.ok()) return newest.status();
  const std::string hash = sha256_hex(content);
  std::int64_t version = 1;
  if (!newest.empty()) {
    auto current = read_file(newest, 0);
    if (!current.deleted && current.content_hash == hash) return current;
    version = current.version + 1;
  }
  // DO UPDATE (not DO NOTHING) locks an existing blob row until commit, so purge_unreferenced_blobs,
  // which skips locked blobs, cannot delete it between this statement and the version insert.
  auto blob = exec(
      "INSERT INTO file_blobs (hash, size, content, created_at) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (hash) DO UPDATE SET size = EXCLUDED.size",
      Params().text(hash).i64(static_cast<std::int64_t>(content.size())).bytes(content).time(now()));
  if (!blob.ok()) return blob.status();
  auto rows = exec(sql({"INSERT INTO file_versions (project_id, path, version, blob_hash, size, deleted, "
                        "created_at, run_step_id) VALUES ($1, $2, $3, $4, $5, false, $6, $7) RETURNING ",
                        kFileCols}),
                   Params()
                       .text(project_id)
                       .text(path)
                       .i64(version)
                       .text(hash)
                       .i64(static_cast<std::int64_t>(content.size()))
                       .time(now())
                       .text_or_null(run_step_id));
  if (!rows.ok()) return version_conflict(rows, path);
  return read_file(rows, 0);
}

Result<sdk::FileVersion> PgOps::delete_file(std::string_view owner_id, std::string_view project_id,
                                            std::string_view path, std::string_view run_step_id) {
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  SAMOKODER_RETURN_IF_ERROR(begin_unit());
  SAMOKODER_RETURN_IF_ERROR(lock_file_path(owner_id, project_id, path));
  SAMOKODER_RETURN_IF_ERROR(check_run_step(project_id, run_step_id));
  auto newest = exec(
      "SELECT version, deleted FROM file_versions WHERE project_id = $1 AND path = $2 ORDER BY version DESC "
      "LIMIT 1",
      Params().text(project_id).text(path));
  if (!newest.ok()) return newest.status();
  if (newest.empty() || newest.boolean(0, 1))
    return Status::not_found("file " + std::string(path) + " does not exist");
  auto rows = exec(
      sql({"INSERT INTO file_versions (project_id, path, version, blob_hash, size, deleted, "
           "created_at, run_step_id) VALUES ($1, $2, $3, NULL, 0, true, $4, $5) RETURNING ",
           kFileCols}),
      Params().text(project_id).text(path).i64(newest.i64(0, 0) + 1).time(now()).text_or_null(run_step_id));
  if (!rows.ok()) return version_conflict(rows, path);
  return read_file(rows, 0);
}

Result<sdk::FileContent> PgOps::get_file(std::string_view owner_id, std::string_view project_id,
                                         std::string_view path, std::optional<std::int64_t> version) {
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  if (!is_id(owner_id) || !is_id(project_id)) return not_found("project", project_id);
  Params params;
  params.text(project_id).text(owner_id).text(path);
  if (version) {
    params.i64(*version);
  } else {
    params.null();
  }
  auto rows =
      exec(sql({"SELECT v.project_id, v.path, v.version, v.blob_hash, v.size, v.deleted, v.created_at, "
                "v.run_step_id FROM file_versions v JOIN projects p ON p.id = v.project_id "
                "WHERE v.project_id = $1 AND p.owner_id = $2 AND v.path = $3 "
                "AND ($4::bigint IS NULL OR v.version = $4::bigint) ORDER BY v.version DESC LIMIT 1"}),
           params);
  if (!rows.ok()) return rows.status();
  if (rows.empty() || rows.boolean(0, 5))
    return Status::not_found("file " + std::string(path) + " does not exist");
  sdk::FileContent out;
  out.version = read_file(rows, 0);
  auto blob =
      exec("SELECT content FROM file_blobs WHERE hash = $1", Params().text(out.version.content_hash), true);
  if (!blob.ok()) return blob.status();
  // Only a concurrent project deletion and blob purge can remove the content after the version was read.
  if (blob.empty()) return Status::not_found("file " + std::string(path) + " does not exist");
  out.content = blob.bytes(0, 0);
  return out;
}

Result<sdk::Page<sdk::FileVersion>> PgOps::list_files(std::string_view owner_id, std::string_view project_id,
                                                      std::string_view prefix, const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  if (!is_valid_text(prefix)) return Status::invalid_argument("path prefix must be UTF-8 without NUL bytes");
  Params params;
  params.text(project_id).text(prefix);
  if (page.cursor.empty()) {
    params.null();
  } else {
    auto payload = untagged("files", page.cursor);
    if (!payload.ok()) return payload.status();
    auto after = hex_decode(*payload);
    if (!after || after->empty()) return Status::invalid_argument("malformed page cursor");
    params.text(*after);
  }
  params.i64(page.limit + 1);
  SAMOKODER_RETURN_IF_ERROR(check_project(owner_id, project_id));
  auto rows = exec(sql({"SELECT ", kFileCols, " FROM (SELECT DISTINCT ON (path) ", kFileCols,
                        " FROM file_versions WHERE project_id = $1 AND starts_with(path, $2::text) "
                        "AND ($3::text IS NULL OR path > $3::text) ORDER BY path, version DESC) newest "
                        "WHERE NOT deleted ORDER BY path LIMIT $4"}),
                   params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_file,
                   [](const Rows& r, int i) { return tagged("files", hex_encode(r.text(i, 1))); });
}

Result<sdk::StorageUsage> PgOps::usage_of_owner(std::string_view owner_id) {
  auto rows = exec(
      "SELECT count(*), COALESCE(sum(size), 0)::bigint FROM (SELECT DISTINCT ON (fv.project_id, fv.path) "
      "fv.size, fv.deleted FROM projects p JOIN file_versions fv ON fv.project_id = p.id "
      "WHERE p.owner_id = $1 ORDER BY fv.project_id, fv.path, fv.version DESC) newest WHERE NOT deleted",
      Params().text(owner_id));
  if (!rows.ok()) return rows.status();
  return sdk::StorageUsage{.files = rows.i64(0, 0), .bytes = rows.i64(0, 1)};
}

Result<sdk::Page<sdk::FileVersion>> PgOps::list_file_versions(std::string_view owner_id,
                                                              std::string_view project_id,
                                                              std::string_view path,
                                                              const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  SAMOKODER_RETURN_IF_ERROR(validate_path(path));
  Params params;
  params.text(project_id).text(path);
  if (page.cursor.empty()) {
    params.null();
  } else {
    auto before = parse_int_cursor("file_versions", page.cursor);
    if (!before.ok()) return before.status();
    params.i64(*before);
  }
  params.i64(page.limit + 1);
  SAMOKODER_RETURN_IF_ERROR(check_project(owner_id, project_id));
  auto rows = exec(sql({"SELECT ", kFileCols,
                        " FROM file_versions WHERE project_id = $1 AND path = $2 "
                        "AND ($3::bigint IS NULL OR version < $3::bigint) ORDER BY version DESC LIMIT $4"}),
                   params);
  if (!rows.ok()) return rows.status();
  if (rows.empty()) {
    auto any = exec("SELECT 1 FROM file_versions WHERE project_id = $1 AND path = $2 LIMIT 1",
                    Params().text(project_id).text(path));
    if (!any.ok()) return any.status();
    if (any.empty()) return Status::not_found("file " + std::string(path) + " never existed");
  }
  return make_page(rows, page.limit, read_file,
                   [](const Rows& r, int i) { return tagged("file_versions", std::to_string(r.i64(i, 2))); });
}

Result<std::int64_t> PgOps::purge_unreferenced_blobs() {
  // SKIP LOCKED leaves alone blobs a concurrent put_file is about to reference (it holds their row lock).
  auto rows = exec(
      "DELETE FROM file_blobs WHERE hash IN (SELECT b.hash FROM file_blobs b WHERE NOT EXISTS "
      "(SELECT 1 FROM file_versions v WHERE v.blob_hash = b.hash) FOR UPDATE SKIP LOCKED)");
  if (!rows.ok()) return rows.status();
  return rows.affected();
}

// ---- runs

Result<sdk::Run> PgOps::create_run(std::string_view owner_id, const sdk::NewRun& run) {
  SAMOKODER_RETURN_IF_ERROR(required(run.state, "state"));
  if (!is_id(owner_id) || !is_id(run.project_id)) return not_found("project", run.project_id);
  const auto t = now();
  auto rows =
      exec(sql({"INSERT INTO runs (id, project_id, owner_id, state, description, created_at, updated_at) "
                "SELECT $1, p.id, p.owner_id, $4, $5, $6, $6 FROM projects p "
                "WHERE p.id = $2 AND p.owner_id = $3 RETURNING ",
                kRunCols}),
           Params()
               .text(new_id(t))
               .text(run.project_id)
               .text(owner_id)
               .text(run.state)
               .text(run.description)
               .time(t));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("project", run.project_id);
  return read_run(rows, 0);
}

Result<sdk::Run> PgOps::get_run(std::string_view owner_id, std::string_view run_id) {
  if (!is_id(owner_id) || !is_id(run_id)) return not_found("run", run_id);
  auto rows = exec(sql({"SELECT ", kRunCols, " FROM runs WHERE id = $1 AND owner_id = $2"}),
                   Params().text(run_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("run", run_id);
  return read_run(rows, 0);
}

Result<sdk::Page<sdk::Run>> PgOps::list_runs(std::string_view owner_id, std::string_view project_id,
                                             const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  Params params;
  SAMOKODER_RETURN_IF_ERROR(add_time_id_cursor(params, "runs", page.cursor));
  params.text(project_id).i64(page.limit + 1);
  SAMOKODER_RETURN_IF_ERROR(check_project(owner_id, project_id));
  auto rows = exec(sql({"SELECT ", kRunCols,
                        " FROM runs WHERE project_id = $3 AND ($1::bigint IS NULL OR (created_at, id) < "
                        "($1::bigint, $2::text)) ORDER BY created_at DESC, id DESC LIMIT $4"}),
                   params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_run, time_id_cursor_at("runs", 6, 0));
}

Result<sdk::Run> PgOps::update_run(std::string_view owner_id, std::string_view run_id,
                                   const sdk::RunUpdate& update) {
  if (update.state) SAMOKODER_RETURN_IF_ERROR(required(*update.state, "state"));
  if (!is_id(owner_id) || !is_id(run_id)) return not_found("run", run_id);
  auto rows = exec(
      sql({"UPDATE runs SET state = COALESCE($3::text, state), error = COALESCE($4::text, error), "
           "started_at = COALESCE($5::bigint, started_at), finished_at = COALESCE($6::bigint, finished_at), "
           "updated_at = $7 WHERE id = $1 AND owner_id = $2 AND ($8::text IS NULL OR state = $8::text) "
           "RETURNING ",
           kRunCols}),
      Params()
          .text(run_id)
          .text(owner_id)
          .opt_text(update.state)
          .opt_text(update.error)
          .opt_time(update.started_at)
          .opt_time(update.finished_at)
          .time(now())
          .opt_text(update.expected_state));
  if (!rows.ok()) return rows.status();
  if (!rows.empty()) return read_run(rows, 0);
  auto current =
      exec("SELECT state FROM runs WHERE id = $1 AND owner_id = $2", Params().text(run_id).text(owner_id));
  if (!current.ok()) return current.status();
  if (current.empty()) return not_found("run", run_id);
  return Status::failed_precondition("run " + std::string(run_id) + " is " + current.text(0, 0) +
                                     ", expected " + update.expected_state.value_or(""));
}

Result<std::optional<sdk::Run>> PgOps::claim_run(const sdk::RunClaim& claim) {
  SAMOKODER_RETURN_IF_ERROR(required(claim.node_id, "node_id"));
  if (claim.states.empty()) return Status::invalid_argument("states is required");
  // SKIP LOCKED lets concurrent claimants pass over a run another node is taking right now; the lease
  // condition is re-checked on the locked row, so one run goes to one claimant.
  auto rows =
      exec(sql({"UPDATE runs SET lease_owner = $1, lease_expires_at = $2 WHERE id = ("
                "SELECT id FROM runs WHERE state = ANY($4::text[]) "
                "AND (lease_expires_at IS NULL OR lease_expires_at <= $3) "
                "ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ",
                kRunCols}),
           Params().text(claim.node_id).time(claim.lease_until).time(now()).text(text_array(claim.states)));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return std::optional<sdk::Run>();
  return std::optional<sdk::Run>(read_run(rows, 0));
}

Result<sdk::Run> PgOps::renew_run_lease(std::string_view run_id, std::string_view node_id,
                                        sdk::Timestamp lease_until) {
  if (!is_id(run_id)) return not_found("run", run_id);
  auto rows = exec(sql({"UPDATE runs SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2 "
                        "AND lease_owner <> '' AND lease_expires_at > $4 RETURNING ",
                        kRunCols}),
                   Params().text(run_id).text(node_id).time(lease_until).time(now()));
  if (!rows.ok()) return rows.status();
  if (!rows.empty()) return read_run(rows, 0);
  auto exists = exec("SELECT 1 FROM runs WHERE id = $1", Params().text(run_id));
  if (!exists.ok()) return exists.status();
  if (exists.empty()) return not_found("run", run_id);
  return Status::failed_precondition("node " + std::string(node_id) + " holds no unexpired lease on run " +
                                     std::string(run_id));
}

Status PgOps::release_run_lease(std::string_view run_id, std::string_view node_id) {
  if (!is_id(run_id)) return not_found("run", run_id);
  auto rows = exec(
      "UPDATE runs SET lease_owner = '', lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2 "
      "AND lease_owner <> ''",
      Params().text(run_id).text(node_id));
  if (!rows.ok()) return rows.status();
  if (rows.affected() > 0) return {};
  auto exists = exec("SELECT 1 FROM runs WHERE id = $1", Params().text(run_id));
  if (!exists.ok()) return exists.status();
  if (exists.empty()) return not_found("run", run_id);
  return Status::failed_precondition("node " + std::string(node_id) + " does not hold the lease on run " +
                                     std::string(run_id));
}

// ---- named leases

// One statement decides: ON CONFLICT locks the existing row and re-checks the condition on its newest
// version, so of concurrent callers exactly one changes a row while the lease is live.
Result<bool> PgOps::try_acquire_lease(std::string_view name, std::string_view holder, sdk::Timestamp until) {
  SAMOKODER_RETURN_IF_ERROR(required(name, "name"));
  SAMOKODER_RETURN_IF_ERROR(required(holder, "holder"));
  auto rows = exec(
      "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) "
      "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at "
      "WHERE leases.expires_at <= $4 OR leases.holder = EXCLUDED.holder",
      Params().text(name).text(holder).time(until).time(now()));
  if (!rows.ok()) return rows.status();
  return rows.affected() > 0;
}

Status PgOps::release_lease(std::string_view name, std::string_view holder) {
  auto rows = exec("DELETE FROM leases WHERE name = $1 AND holder = $2", Params().text(name).text(holder));
  if (!rows.ok()) return rows.status();
  if (rows.affected() > 0) return {};
  return Status::failed_precondition(std::string(holder) + " does not hold the lease " + std::string(name));
}

// ---- run steps

Result<sdk::RunStep> PgOps::append_run_step(std::string_view owner_id, std::string_view run_id,
                                            const sdk::NewRunStep& step) {
  SAMOKODER_RETURN_IF_ERROR(required(step.agent, "agent"));
  if (!is_id(owner_id) || !is_id(run_id)) return not_found("run", run_id);
  SAMOKODER_RETURN_IF_ERROR(begin_unit());
  // The run row lock orders concurrent appends, so sequences stay 1, 2, 3, ...
  auto run = exec("SELECT 1 FROM runs WHERE id = $1 AND owner_id = $2 FOR NO KEY UPDATE",
                  Params().text(run_id).text(owner_id));
  if (!run.ok()) return run.status();
  if (run.empty()) return not_found("run", run_id);
  const auto t = now();
  auto rows = exec(sql({"INSERT INTO run_steps (id, run_id, sequence, agent, state, summary, created_at) "
                        "SELECT $1, $2, COALESCE(MAX(sequence), 0) + 1, $3, $4, $5, $6 FROM run_steps "
                        "WHERE run_id = $2 RETURNING ",
                        kStepCols}),
                   Params()
                       .text(new_id(t))
                       .text(run_id)
                       .text(step.agent)
                       .text(dump_json(step.state))
                       .text(step.summary)
                       .time(t));
  if (!rows.ok()) return rows.status();
  return read_step(rows, 0);
}

Result<sdk::RunStep> PgOps::get_run_step(std::string_view owner_id, std::string_view step_id) {
  if (!is_id(owner_id) || !is_id(step_id)) return not_found("run step", step_id);
  auto rows = exec(
      "SELECT s.id, s.run_id, s.sequence, s.agent, s.state, s.summary, s.created_at FROM run_steps s "
      "JOIN runs r ON r.id = s.run_id WHERE s.id = $1 AND r.owner_id = $2",
      Params().text(step_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("run step", step_id);
  return read_step(rows, 0);
}

Result<sdk::RunStep> PgOps::latest_run_step(std::string_view owner_id, std::string_view run_id) {
  if (!is_id(owner_id) || !is_id(run_id)) return not_found("run", run_id);
  auto rows = exec(
      "SELECT s.id, s.run_id, s.sequence, s.agent, s.state, s.summary, s.created_at FROM run_steps s "
      "JOIN runs r ON r.id = s.run_id WHERE s.run_id = $1 AND r.owner_id = $2 "
      "ORDER BY s.sequence DESC LIMIT 1",
      Params().text(run_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::not_found("run " + std::string(run_id) + " has no steps");
  return read_step(rows, 0);
}

Result<sdk::Page<sdk::RunStep>> PgOps::list_run_steps(std::string_view owner_id, std::string_view run_id,
                                                      const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  Params params;
  params.text(run_id);
  if (page.cursor.empty()) {
    params.null();
  } else {
    auto after = parse_int_cursor("run_steps", page.cursor);
    if (!after.ok()) return after.status();
    params.i64(*after);
  }
  params.i64(page.limit + 1);
  SAMOKODER_RETURN_IF_ERROR(check_run(owner_id, run_id));
  auto rows = exec(sql({"SELECT ", kStepCols,
                        " FROM run_steps WHERE run_id = $1 AND ($2::bigint IS NULL OR sequence > $2::bigint) "
                        "ORDER BY sequence LIMIT $3"}),
                   params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_step,
                   [](const Rows& r, int i) { return tagged("run_steps", std::to_string(r.i64(i, 2))); });
}

// ---- run events

Result<sdk::RunEvent> PgOps::append_run_event(std::string_view owner_id, std::string_view run_id,
                                              std::string_view type, const nlohmann::json& payload) {
  SAMOKODER_RETURN_IF_ERROR(required(type, "type"));
  if (!is_id(owner_id) || !is_id(run_id)) return not_found("run", run_id);
  // One statement, so one round trip and atomic on its own: the counter update holds the run's row lock
  // until commit (appends take turns, seq stays gapless), and a payload the server refuses fails the
  // whole statement, so no seq is consumed.
  auto rows = exec(sql({"WITH next AS (UPDATE runs SET last_event_seq = last_event_seq + 1 "
                        "WHERE id = $1 AND owner_id = $2 RETURNING id, last_event_seq) "
                        "INSERT INTO run_events (run_id, seq, type, payload, created_at) "
                        "SELECT id, last_event_seq, $3, $4, $5 FROM next RETURNING ",
                        kEventCols}),
                   Params().text(run_id).text(owner_id).text(type).text(dump_json(payload)).time(now()));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("run", run_id);
  return read_event(rows, 0);
}

Result<std::vector<sdk::RunEvent>> PgOps::list_run_events(std::string_view owner_id, std::string_view run_id,
                                                          std::int64_t after_seq, std::uint32_t limit) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(limit));
  if (after_seq < 0) return Status::invalid_argument("after_seq must not be negative");
  if (!is_id(owner_id) || !is_id(run_id)) return not_found("run", run_id);
  // One round trip: the run row always comes back (with NULL event columns when there is no event), so
  // an empty result means the run is not the owner's.
  auto rows = exec(
      "SELECT r.id, e.seq, e.type, e.payload, e.created_at FROM runs r "
      "LEFT JOIN LATERAL (SELECT seq, type, payload, created_at FROM run_events "
      "WHERE run_id = r.id AND seq > $3 ORDER BY seq LIMIT $4) e ON true "
      "WHERE r.id = $1 AND r.owner_id = $2 ORDER BY e.seq",
      Params().text(run_id).text(owner_id).i64(after_seq).i64(limit));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("run", run_id);
  std::vector<sdk::RunEvent> events;
  for (int r = 0; r < rows.size(); ++r) {
    if (rows.is_null(r, 1)) continue;
    events.push_back(read_event(rows, r));
  }
  return events;
}

// ---- LLM requests and usage

Result<sdk::LlmRequest> PgOps::record_llm_request(const sdk::NewLlmRequest& request) {
  SAMOKODER_RETURN_IF_ERROR(validate_llm_request(request));
  if (!is_id(request.user_id)) return not_found("user", request.user_id);
  if (!request.project_id.empty() && !is_id(request.project_id))
    return not_found("project", request.project_id);
  if (!request.run_id.empty() && !is_id(request.run_id)) return not_found("run", request.run_id);
  const auto t = now();
  auto rows = exec(
      sql({"INSERT INTO llm_requests (", kLlmCols,
           ") SELECT $1, u.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
           "$20 FROM users u WHERE u.id = $2 "
           "AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = $3 AND p.owner_id = "
           "u.id)) "
           "AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM runs r WHERE r.id = $4 AND r.owner_id = u.id)) "
           "RETURNING ",
           kLlmCols}),
      Params()
          .text(new_id(t))
          .text(request.user_id)
          .text_or_null(request.project_id)
          .text_or_null(request.run_id)
          .text(request.provider)
          .text(request.model)
          .text(request.agent)
          .i64(request.prompt_tokens)
          .i64(request.completion_tokens)
          .i64(request.latency_ms)
          .text(request.status)
          .text(request.error)
          .time(t)
          .text(request.step_id)
          .i64(request.cached_prompt_tokens)
          .i64(request.cache_write_tokens)
          .boolean(request.usage_estimated)
          .i64(request.time_to_first_token_ms)
          .i64(request.cost_micro_usd)
          .i64(request.attempt));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return Status::not_found("user, project or run of the LLM request does not exist");
  return read_llm(rows, 0);
}

Result<sdk::Page<sdk::LlmRequest>> PgOps::list_llm_requests(std::string_view user_id,
                                                            const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  Params params;
  SAMOKODER_RETURN_IF_ERROR(add_time_id_cursor(params, "llm_requests", page.cursor));
  params.text(user_id).i64(page.limit + 1);
  auto rows = exec(sql({"SELECT ", kLlmCols,
                        " FROM llm_requests WHERE user_id = $3 AND ($1::bigint IS NULL OR (created_at, id) < "
                        "($1::bigint, $2::text)) ORDER BY created_at DESC, id DESC LIMIT $4"}),
                   params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_llm, time_id_cursor_at("llm_requests", 12, 0));
}

Result<std::vector<sdk::UsageTotal>> PgOps::usage_by_model(std::string_view user_id,
                                                           std::optional<sdk::Timestamp> since,
                                                           std::optional<sdk::Timestamp> until) {
  auto rows = exec(
      "SELECT provider, model, count(*), COALESCE(sum(prompt_tokens), 0)::bigint, "
      "COALESCE(sum(completion_tokens), 0)::bigint, COALESCE(sum(cached_prompt_tokens), 0)::bigint, "
      "COALESCE(sum(cost_micro_usd), 0)::bigint FROM llm_requests WHERE user_id = $1 "
      "AND ($2::bigint IS NULL OR created_at >= $2::bigint) AND ($3::bigint IS NULL OR created_at < "
      "$3::bigint) "
      "GROUP BY provider, model ORDER BY provider, model",
      Params().text(user_id).opt_time(since).opt_time(until));
  if (!rows.ok()) return rows.status();
  return read_all(rows, [](const Rows& r, int i) {
    sdk::UsageTotal total;
    total.provider = r.text(i, 0);
    total.model = r.text(i, 1);
    total.requests = r.i64(i, 2);
    total.prompt_tokens = r.i64(i, 3);
    total.completion_tokens = r.i64(i, 4);
    total.cached_prompt_tokens = r.i64(i, 5);
    total.cost_micro_usd = r.i64(i, 6);
    return total;
  });
}

Result<std::vector<sdk::DailyUsage>> PgOps::usage_by_day(std::optional<std::string_view> user_id,
                                                         std::optional<sdk::Timestamp> since,
                                                         std::optional<sdk::Timestamp> until) {
  // $1 NULL reads every user's rows (the admins' view). libpq's unnamed statements are planned with
  // their parameter values, so the NULL tests fold away and an index range remains.
  Params params;
  if (user_id) {
    params.text(*user_id);
  } else {
    params.null();
  }
  auto rows =
      exec(sql({"SELECT ", kCreatedAtUtcDaySql,
                " AS utc_day, user_id, provider, model, count(*), "
                "COALESCE(sum(prompt_tokens), 0)::bigint, COALESCE(sum(completion_tokens), 0)::bigint, "
                "COALESCE(sum(cached_prompt_tokens), 0)::bigint, COALESCE(sum(cost_micro_usd), 0)::bigint "
                "FROM llm_requests WHERE ($1::text IS NULL OR user_id = $1::text) "
                "AND ($2::bigint IS NULL OR created_at >= $2::bigint) "
                "AND ($3::bigint IS NULL OR created_at < $3::bigint) "
                "GROUP BY utc_day, user_id, provider, model ORDER BY utc_day, user_id, provider, model"}),
           params.opt_time(since).opt_time(until));
  if (!rows.ok()) return rows.status();
  return read_all(rows, [](const Rows& r, int i) {
    sdk::DailyUsage usage;
    usage.day = utc_day(r.i64(i, 0));
    usage.user_id = r.text(i, 1);
    usage.provider = r.text(i, 2);
    usage.model = r.text(i, 3);
    usage.requests = r.i64(i, 4);
    usage.prompt_tokens = r.i64(i, 5);
    usage.completion_tokens = r.i64(i, 6);
    usage.cached_prompt_tokens = r.i64(i, 7);
    usage.cost_micro_usd = r.i64(i, 8);
    return usage;
  });
}

Result<sdk::UsageSum> PgOps::usage_of_run(std::string_view run_id) {
  if (!is_id(run_id)) return sdk::UsageSum{};  // no run has that id: nothing was recorded for it
  auto rows = exec(sql({kUsageSumSelect, " WHERE run_id = $1"}), Params().text(run_id));
  if (!rows.ok()) return rows.status();
  return read_usage_sum(rows, 0);
}

Result<sdk::UsageSum> PgOps::usage_of_user(std::string_view user_id, std::optional<sdk::Timestamp> since) {
  if (!is_id(user_id)) return sdk::UsageSum{};
  auto rows =
      exec(sql({kUsageSumSelect, " WHERE user_id = $1 AND ($2::bigint IS NULL OR created_at >= $2::bigint)"}),
           Params().text(user_id).opt_time(since));
  if (!rows.ok()) return rows.status();
  return read_usage_sum(rows, 0);
}

// ---- previews

Result<sdk::Preview> PgOps::upsert_preview(std::string_view owner_id, const sdk::PreviewUpsert& preview) {
  SAMOKODER_RETURN_IF_ERROR(required(preview.state, "state"));
  if (preview.port < 0 || preview.port > 65535)
    return Status::invalid_argument("preview port must be 0..65535");
  if (preview.pid < 0) return Status::invalid_argument("preview pid must not be negative");
  if (!is_id(owner_id) || !is_id(preview.project_id)) return not_found("project", preview.project_id);
  auto rows = exec(
      sql({"INSERT INTO previews (project_id, owner_id, state, node_id, port, pid, started_at, "
           "expires_at, updated_at) SELECT p.id, p.owner_id, $3, $4, $5, $6, $7, $8, $9 FROM projects p "
           "WHERE p.id = $1 AND p.owner_id = $2 ON CONFLICT (project_id) DO UPDATE SET "
           "state = EXCLUDED.state, node_id = EXCLUDED.node_id, port = EXCLUDED.port, pid = EXCLUDED.pid, "
           "started_at = EXCLUDED.started_at, expires_at = EXCLUDED.expires_at, "
           "updated_at = EXCLUDED.updated_at RETURNING ",
           kPreviewCols}),
      Params()
          .text(preview.project_id)
          .text(owner_id)
          .text(preview.state)
          .text(preview.node_id)
          .i64(preview.port)
          .i64(preview.pid)
          .time(preview.started_at)
          .time(preview.expires_at)
          .time(now()));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("project", preview.project_id);
  return read_preview(rows, 0);
}

Result<sdk::Preview> PgOps::get_preview(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return not_found("preview of project", project_id);
  auto rows = exec(sql({"SELECT ", kPreviewCols, " FROM previews WHERE project_id = $1 AND owner_id = $2"}),
                   Params().text(project_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("preview of project", project_id);
  return read_preview(rows, 0);
}

Status PgOps::delete_preview(std::string_view owner_id, std::string_view project_id) {
  if (!is_id(owner_id) || !is_id(project_id)) return not_found("preview of project", project_id);
  auto rows = exec("DELETE FROM previews WHERE project_id = $1 AND owner_id = $2",
                   Params().text(project_id).text(owner_id));
  if (!rows.ok()) return rows.status();
  if (rows.affected() == 0) return not_found("preview of project", project_id);
  return {};
}

Result<sdk::Page<sdk::Preview>> PgOps::list_previews(const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  std::string_view after;
  if (!page.cursor.empty()) {
    auto payload = untagged("previews", page.cursor);
    if (!payload.ok()) return payload.status();
    if (!is_id(*payload)) return Status::invalid_argument("malformed page cursor");
    after = *payload;
  }
  auto rows = exec(
      sql({"SELECT ", kPreviewCols,
           " FROM previews WHERE $1::text IS NULL OR project_id > $1::text ORDER BY project_id LIMIT $2"}),
      Params().text_or_null(after).i64(page.limit + 1));
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_preview,
                   [](const Rows& r, int i) { return tagged("previews", r.text(i, 0)); });
}

// ---- notifications

Result<sdk::Notification> PgOps::create_notification(const sdk::NewNotification& notification) {
  SAMOKODER_RETURN_IF_ERROR(required(notification.kind, "kind"));
  if (!is_id(notification.user_id)) return not_found("user", notification.user_id);
  const auto t = now();
  auto rows = exec(sql({"INSERT INTO notifications (id, user_id, kind, payload, created_at) "
                        "SELECT $1, u.id, $3, $4, $5 FROM users u WHERE u.id = $2 RETURNING ",
                        kNotificationCols}),
                   Params()
                       .text(new_id(t))
                       .text(notification.user_id)
                       .text(notification.kind)
                       .text(dump_json(notification.payload))
                       .time(t));
  if (!rows.ok()) return rows.status();
  if (rows.empty()) return not_found("user", notification.user_id);
  return read_notification(rows, 0);
}

Result<sdk::Page<sdk::Notification>> PgOps::list_notifications(std::string_view user_id, bool unread_only,
                                                               const sdk::PageRequest& page) {
  SAMOKODER_RETURN_IF_ERROR(validate_page_limit(page.limit));
  Params params;
  SAMOKODER_RETURN_IF_ERROR(add_time_id_cursor(params, "notifications", page.cursor));
  params.text(user_id).boolean(unread_only).i64(page.limit + 1);
  auto rows = exec(sql({"SELECT ", kNotificationCols,
                        " FROM notifications WHERE user_id = $3 AND (NOT $4::boolean OR NOT read) "
                        "AND ($1::bigint IS NULL OR (created_at, id) < ($1::bigint, $2::text)) "
                        "ORDER BY created_at DESC, id DESC LIMIT $5"}),
                   params);
  if (!rows.ok()) return rows.status();
  return make_page(rows, page.limit, read_notification, time_id_cursor_at("notifications", 5, 0));
}

Result<std::int64_t> PgOps::count_unread_notifications(std::string_view user_id) {
  auto rows =
      exec("SELECT count(*) FROM notifications WHERE user_id = $1 AND NOT read", Params().text(user_id));
  if (!rows.ok()) return rows.status();
  return rows.i64(0, 0);
}

Status PgOps::mark_notification_read(std::string_view user_id, std::string_view notification_id) {
  if (!is_id(user_id) || !is_id(notification_id)) return not_found("notification", notification_id);
  auto rows = exec("UPDATE notifications SET read = true WHERE id = $2 AND user_id = $1",
                   Params().text(user_id).text(notification_id));
  if (!rows.ok()) return rows.status();
  if (rows.affected() == 0) return not_found("notification", notification_id);
  return {};
}

Result<std::int64_t> PgOps::mark_all_notifications_read(std::string_view user_id) {
  auto rows =
      exec("UPDATE notifications SET read = true WHERE user_id = $1 AND NOT read", Params().text(user_id));
  if (!rows.ok()) return rows.status();
  return rows.affected();
}

// ---- whole database

Result<sdk::StorageStats> PgOps::stats() {
  auto rows = exec(
      "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM projects), (SELECT count(*) FROM runs), "
      "(SELECT count(*) FROM file_versions), (SELECT count(*) FROM file_blobs), "
      "(SELECT COALESCE(sum(size), 0)::bigint FROM file_blobs)");
  if (!rows.ok()) return rows.status();
  sdk::StorageStats out;
  out.users = rows.i64(0, 0);
  out.projects = rows.i64(0, 1);
  out.runs = rows.i64(0, 2);
  out.file_versions = rows.i64(0, 3);
  out.blobs = rows.i64(0, 4);
  out.blob_bytes = rows.i64(0, 5);
  return out;
}

}  // namespace samokoder::storage_postgres
