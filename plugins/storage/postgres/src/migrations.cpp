#include "migrations.hpp"

#include <array>

namespace samokoder::storage_postgres {
namespace {

// The tables and columns are storage.sqlite's (docs/storage.md), in PostgreSQL types.
// Conventions: ids and other keys compared or ordered bytewise are text COLLATE "C" (the same order as
// storage.sqlite, whatever the database's default collation); timestamps are bigint microseconds since
// the Unix epoch (UTC), exactly the precision of the contract; JSON is json, not jsonb, so every value
// the contract allows (including "\u0000" in strings) round-trips.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE users (
  id            text COLLATE "C" PRIMARY KEY,
  email         text NOT NULL,
  email_key     text COLLATE "C" NOT NULL UNIQUE,
  password_hash text NOT NULL,
  is_admin      boolean NOT NULL,
  tier          text NOT NULL,
  disabled      boolean NOT NULL DEFAULT false,
  locked_until  bigint,
  created_at    bigint NOT NULL,
  updated_at    bigint NOT NULL
);
CREATE INDEX users_by_created ON users (created_at, id);

CREATE TABLE sessions (
  id             text COLLATE "C" PRIMARY KEY,
  user_id        text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  source_address text NOT NULL,
  user_agent     text NOT NULL,
  created_at     bigint NOT NULL,
  expires_at     bigint NOT NULL,
  revoked_at     bigint,
  revoke_reason  text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE refresh_tokens (
  token_hash text COLLATE "C" PRIMARY KEY,
  session_id text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  rotated_at bigint
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE revoked_tokens (
  jti        text COLLATE "C" PRIMARY KEY,
  expires_at bigint NOT NULL,
  revoked_at bigint NOT NULL,
  reason     text NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

CREATE TABLE login_attempts (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subject_key    text COLLATE "C" NOT NULL,
  source_address text COLLATE "C" NOT NULL,
  success        boolean NOT NULL,
  user_agent     text NOT NULL,
  occurred_at    bigint NOT NULL
);
CREATE INDEX login_attempts_by_subject ON login_attempts (subject_key, occurred_at) WHERE NOT success;
CREATE INDEX login_attempts_by_address ON login_attempts (source_address, occurred_at) WHERE NOT success;
CREATE INDEX login_attempts_by_time ON login_attempts (occurred_at);

-- Audit events outlive their actor and keep its id: no foreign key.
CREATE TABLE audit_events (
  id             text COLLATE "C" PRIMARY KEY,
  occurred_at    bigint NOT NULL,
  actor_id       text COLLATE "C" NOT NULL,
  action         text COLLATE "C" NOT NULL,
  target         text NOT NULL,
  source_address text NOT NULL,
  detail         json NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_by_actor ON audit_events (actor_id, occurred_at DESC, id DESC);

CREATE TABLE provider_keys (
  user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider    text COLLATE "C" NOT NULL,
  key_id      text COLLATE "C" NOT NULL,
  ciphertext  bytea NOT NULL,
  nonce       bytea NOT NULL,
  masked_hint text NOT NULL,
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL,
  PRIMARY KEY (user_id, provider)
);
CREATE INDEX provider_keys_by_key_id ON provider_keys (key_id, user_id, provider);

CREATE TABLE access_tokens (
  id           text COLLATE "C" PRIMARY KEY,
  user_id      text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text NOT NULL,
  token_hash   text COLLATE "C" NOT NULL UNIQUE,
  scopes       json NOT NULL,
  expires_at   bigint,
  revoked      boolean NOT NULL DEFAULT false,
  last_used_at bigint,
  created_at   bigint NOT NULL
);
CREATE INDEX access_tokens_by_user ON access_tokens (user_id, created_at DESC, id DESC);

CREATE TABLE projects (
  id          text COLLATE "C" PRIMARY KEY,
  owner_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name        text NOT NULL,
  description text NOT NULL,
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL
);
CREATE INDEX projects_by_owner ON projects (owner_id, created_at DESC, id DESC);

-- Content-addressed file bodies, shared by every version, path and project with the same bytes.
CREATE TABLE file_blobs (
  hash       text COLLATE "C" PRIMARY KEY,
  size       bigint NOT NULL,
  content    bytea NOT NULL,
  created_at bigint NOT NULL
);

CREATE TABLE runs (
  id               text COLLATE "C" PRIMARY KEY,
  project_id       text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  owner_id         text COLLATE "C" NOT NULL,
  state            text COLLATE "C" NOT NULL,
  description      text NOT NULL,
  error            text NOT NULL DEFAULT '',
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  started_at       bigint,
  finished_at      bigint,
  lease_owner      text NOT NULL DEFAULT '',
  lease_expires_at bigint,
  last_event_seq   bigint NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_project ON runs (project_id, created_at DESC, id DESC);
CREATE INDEX runs_claimable ON runs (state, created_at, id);

CREATE TABLE run_steps (
  id         text COLLATE "C" PRIMARY KEY,
  run_id     text COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  sequence   bigint NOT NULL,
  agent      text NOT NULL,
  state      json NOT NULL,
  summary    text NOT NULL,
  created_at bigint NOT NULL,
  UNIQUE (run_id, sequence)
);

-- A file version's run_step_id is validated on write and not a foreign key: steps and versions are only
-- ever deleted together, with their project.
CREATE TABLE file_versions (
  project_id   text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  path         text COLLATE "C" NOT NULL,
  version      bigint NOT NULL,
  blob_hash    text COLLATE "C" REFERENCES file_blobs (hash),
  size         bigint NOT NULL,
  deleted      boolean NOT NULL,
  created_at   bigint NOT NULL,
  run_step_id  text COLLATE "C",
  PRIMARY KEY (project_id, path, version)
);
CREATE INDEX file_versions_by_blob ON file_versions (blob_hash);

CREATE TABLE run_events (
  run_id     text COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq        bigint NOT NULL,
  type       text NOT NULL,
  payload    json NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (run_id, seq)
);

-- LLM request records outlive their user, project and run: the references are set to NULL.
CREATE TABLE llm_requests (
  id                text COLLATE "C" PRIMARY KEY,
  user_id           text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
  project_id        text COLLATE "C" REFERENCES projects (id) ON DELETE SET NULL,
  run_id            text COLLATE "C" REFERENCES runs (id) ON DELETE SET NULL,
  provider          text COLLATE "C" NOT NULL,
  model             text COLLATE "C" NOT NULL,
  agent             text NOT NULL,
  prompt_tokens     bigint NOT NULL,
  completion_tokens bigint NOT NULL,
  latency_ms        bigint NOT NULL,
  status            text NOT NULL,
  error             text NOT NULL,
  created_at        bigint NOT NULL
);
CREATE INDEX llm_requests_by_user ON llm_requests (user_id, created_at DESC, id DESC);
CREATE INDEX llm_requests_by_project ON llm_requests (project_id);
CREATE INDEX llm_requests_by_run ON llm_requests (run_id);

CREATE TABLE previews (
  project_id text COLLATE "C" PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  owner_id   text COLLATE "C" NOT NULL,
  state      text NOT NULL,
  node_id    text NOT NULL,
  port       integer NOT NULL,
  pid        bigint NOT NULL,
  started_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE notifications (
  id         text COLLATE "C" PRIMARY KEY,
  user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind       text NOT NULL,
  payload    json NOT NULL,
  read       boolean NOT NULL DEFAULT false,
  created_at bigint NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE NOT read;
)sql";

// The contract (storage.hpp, "Deletion cascades") deletes a user's LLM request records with the user;
// the initial schema kept them with user_id set to NULL, unreachable by any call. Rows orphaned that way
// are removed here, as deleting their user would have done.
constexpr std::string_view kLlmRequestsDeletedWithUser = R"sql(
DELETE FROM llm_requests WHERE user_id IS NULL;
ALTER TABLE llm_requests ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE llm_requests DROP CONSTRAINT llm_requests_user_id_fkey;
ALTER TABLE llm_requests ADD CONSTRAINT llm_requests_user_id_fkey
  FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
)sql";

// Named leases (try_acquire_lease): one node at a time for a chore every node would otherwise run, such
// as the housekeeping pass.
constexpr std::string_view kLeases = R"sql(
CREATE TABLE leases (
  name       text COLLATE "C" PRIMARY KEY,
  holder     text NOT NULL,
  expires_at bigint NOT NULL
);
)sql";

// What the LLM gateway accounts per request (LlmRequest's fields after created_at). Rows recorded
// before take the defaults the SDK documents for "not known": no step, no cache use, counted by the
// endpoint, no first token, no cost, first attempt. A column added with a constant default rewrites no
// rows (PostgreSQL 11+). usage_of_run reads llm_requests_by_run and usage_of_user and one user's
// usage_by_day llm_requests_by_user (both from migration 1); the index on created_at alone serves
// usage_by_day over every user (the admins' view), which would scan otherwise.
constexpr std::string_view kLlmRequestAccounting = R"sql(
ALTER TABLE llm_requests
  ADD COLUMN step_id                text NOT NULL DEFAULT '',
  ADD COLUMN cached_prompt_tokens   bigint NOT NULL DEFAULT 0,
  ADD COLUMN cache_write_tokens     bigint NOT NULL DEFAULT 0,
  ADD COLUMN usage_estimated        boolean NOT NULL DEFAULT false,
  ADD COLUMN time_to_first_token_ms bigint NOT NULL DEFAULT -1,
  ADD COLUMN cost_micro_usd         bigint NOT NULL DEFAULT 0,
  ADD COLUMN attempt                integer NOT NULL DEFAULT 1;
CREATE INDEX llm_requests_by_time ON llm_requests (created_at);
)sql";

constexpr std::array kMigrations = {
    Migration{1, "initial schema", kInitialSchema},
    Migration{2, "llm_requests are deleted with their user", kLlmRequestsDeletedWithUser},
    Migration{3, "named leases", kLeases},
    Migration{4, "LLM request accounting", kLlmRequestAccounting},
};

}  // namespace

std::span<const Migration> migrations() noexcept {
  return kMigrations;
}

}  // namespace samokoder::storage_postgres
