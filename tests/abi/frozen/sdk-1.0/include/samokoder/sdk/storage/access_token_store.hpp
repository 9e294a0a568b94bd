// AccessTokenStore: personal access tokens, stored by hash with their scopes.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::access_tokens(), and a transaction hands out the same store bound to that transaction. The
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

struct AccessToken {
  std::string id;
  std::string user_id;
  std::string name;
  std::string token_hash;
  std::vector<std::string> scopes;      // order kept
  std::optional<Timestamp> expires_at;  // none: does not expire
  bool revoked = false;
  std::optional<Timestamp> last_used_at;
  Timestamp created_at;
};

struct NewAccessToken {
  std::string user_id;     // kNotFound if the user does not exist
  std::string name;        // required; not unique
  std::string token_hash;  // required; kAlreadyExists if already stored
  std::vector<std::string> scopes;
  std::optional<Timestamp> expires_at;
};

class AccessTokenStore {
 public:
  AccessTokenStore() = default;
  AccessTokenStore(const AccessTokenStore&) = delete;
  AccessTokenStore& operator=(const AccessTokenStore&) = delete;
  virtual ~AccessTokenStore() = default;

  virtual Result<AccessToken> create_access_token(const NewAccessToken& token) = 0;
  // Also returns revoked and expired tokens: the caller decides.
  virtual Result<AccessToken> find_access_token(std::string_view token_hash) = 0;
  // Order: created_at descending, then id descending; includes revoked ones.
  virtual Result<std::vector<AccessToken>> list_access_tokens(std::string_view user_id) = 0;
  // Idempotent for an already revoked token of the user.
  virtual Status revoke_access_token(std::string_view user_id, std::string_view token_id) = 0;
  // Sets last_used_at to now().
  virtual Status touch_access_token(std::string_view token_id) = 0;
};

}  // namespace samokoder::sdk
