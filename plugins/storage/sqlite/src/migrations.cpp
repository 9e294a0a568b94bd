#include "migrations.hpp"

#include <array>

namespace samokoder::storage_sqlite {

namespace {

// Conventions: STRICT tables; ids are 32-hex TEXT; timestamps are INTEGER microseconds since the Unix
// epoch; booleans are INTEGER 0/1; JSON is TEXT; every foreign key has an index on the child side so
// cascades never scan.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  email_key TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  is_admin INTEGER NOT NULL,
  tier TEXT NOT NULL,
  disabled INTEGER NOT NULL,
  locked_until INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX users_by_created ON users (created_at, id);

CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  source_address TEXT NOT NULL,
  user_agent TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  revoke_reason TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  rotated_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE revoked_tokens (
  jti TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL,
  reason TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

CREATE TABLE login_attempts (
  id INTEGER PRIMARY KEY,
  subject_key TEXT NOT NULL,
  source_address TEXT NOT NULL,
  success INTEGER NOT NULL,
  user_agent TEXT NOT NULL,
  occurred_at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_by_subject ON login_attempts (subject_key, occurred_at) WHERE success = 0;
CREATE INDEX login_failures_by_address ON login_attempts (source_address, occurred_at) WHERE success = 0;
CREATE INDEX login_attempts_by_time ON login_attempts (occurred_at);

CREATE TABLE audit_events (
  id TEXT PRIMARY KEY,
  occurred_at INTEGER NOT NULL,
  actor_id TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  source_address TEXT NOT NULL,
  detail TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_time ON audit_events (occurred_at, id);
CREATE INDEX audit_by_actor ON audit_events (actor_id, occurred_at, id);
CREATE INDEX audit_by_action ON audit_events (action, occurred_at, id);

CREATE TABLE provider_keys (
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider TEXT NOT NULL,
  key_id TEXT NOT NULL,
  ciphertext BLOB NOT NULL,
  nonce BLOB NOT NULL,
  masked_hint TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, provider)
) STRICT, WITHOUT ROWID;
CREATE INDEX provider_keys_by_key_id ON provider_keys (key_id, user_id, provider);

CREATE TABLE access_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  expires_at INTEGER,
  revoked INTEGER NOT NULL,
  last_used_at INTEGER,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX access_tokens_by_user ON access_tokens (user_id, created_at, id);

CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX projects_by_owner ON projects (owner_id, created_at, id);

CREATE TABLE file_blobs (
  hash TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  content BLOB NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  state TEXT NOT NULL,
  description TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  lease_owner TEXT NOT NULL,
  lease_expires_at INTEGER,
  last_event_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX runs_by_project ON runs (project_id, created_at, id);
CREATE INDEX runs_by_state ON runs (state, created_at, id);

CREATE TABLE run_steps (
  id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  sequence INTEGER NOT NULL,
  agent TEXT NOT NULL,
  state TEXT NOT NULL,
  summary TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (run_id, sequence)
) STRICT;

CREATE TABLE run_events (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (run_id, seq)
) STRICT;

CREATE TABLE file_versions (
  project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  version INTEGER NOT NULL,
  blob_hash TEXT REFERENCES file_blobs (hash),
  size INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  run_step_id TEXT REFERENCES run_steps (id) ON DELETE SET NULL,
  PRIMARY KEY (project_id, path, version)
) STRICT, WITHOUT ROWID;
CREATE INDEX file_versions_by_blob ON file_versions (blob_hash);
CREATE INDEX file_versions_by_step ON file_versions (run_step_id);

-- The newest version of every path that ever existed in a project: the current tree without a
-- MAX(version) scan per path.
CREATE TABLE file_heads (
  project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  version INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  PRIMARY KEY (project_id, path)
) STRICT, WITHOUT ROWID;

CREATE TABLE llm_requests (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  project_id TEXT REFERENCES projects (id) ON DELETE SET NULL,
  run_id TEXT REFERENCES runs (id) ON DELETE SET NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  agent TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX llm_requests_by_user ON llm_requests (user_id, created_at, id);
CREATE INDEX llm_requests_by_project ON llm_requests (project_id);
CREATE INDEX llm_requests_by_run ON llm_requests (run_id);

CREATE TABLE previews (
  project_id TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  state TEXT NOT NULL,
  node_id TEXT NOT NULL,
  port INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  read INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX notifications_by_user ON notifications (user_id, created_at, id);
CREATE INDEX notifications_unread ON notifications (user_id, created_at, id) WHERE read = 0;
)sql";

// Named leases (try_acquire_lease): one holder at a time for a chore every node would otherwise run.
constexpr std::string_view kLeases = R"sql(
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

// What the LLM gateway accounts per request (LlmRequest's fields after created_at). Rows recorded
// before take the defaults the SDK documents for "not known": no step, no cache use, counted by the
// endpoint, no first token, no cost, first attempt. usage_of_run reads llm_requests_by_run and
// usage_of_user and one user's usage_by_day llm_requests_by_user (both from migration 1); the index on
// created_at alone serves usage_by_day over every user (the admins' view), which would scan otherwise.
constexpr std::string_view kLlmRequestAccounting = R"sql(
ALTER TABLE llm_requests ADD COLUMN step_id TEXT NOT NULL DEFAULT '';
ALTER TABLE llm_requests ADD COLUMN cached_prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_requests ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_requests ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_requests ADD COLUMN time_to_first_token_ms INTEGER NOT NULL DEFAULT -1;
ALTER TABLE llm_requests ADD COLUMN cost_micro_usd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_requests ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
CREATE INDEX llm_requests_by_time ON llm_requests (created_at);
)sql";

constexpr std::array kMigrations = {
    Migration{1, "initial schema", kInitialSchema},
    Migration{2, "named leases", kLeases},
    Migration{3, "LLM request accounting", kLlmRequestAccounting},
};

}  // namespace

std::span<const Migration> migrations() noexcept {
  return kMigrations;
}

std::int64_t supported_schema_version() noexcept {
  return kMigrations.back().version;
}

}  // namespace samokoder::storage_sqlite
