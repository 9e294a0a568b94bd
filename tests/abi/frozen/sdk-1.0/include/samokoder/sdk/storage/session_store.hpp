// SessionStore: sessions (one per login) and the refresh-token families that belong to them.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::sessions(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

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

class SessionStore {
 public:
  SessionStore() = default;
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;
  virtual ~SessionStore() = default;

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
};

}  // namespace samokoder::sdk
