// TokenRevocationStore: revoked access-token ids (jti), kept until the token would have expired anyway.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::token_revocations(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

class TokenRevocationStore {
 public:
  TokenRevocationStore() = default;
  TokenRevocationStore(const TokenRevocationStore&) = delete;
  TokenRevocationStore& operator=(const TokenRevocationStore&) = delete;
  virtual ~TokenRevocationStore() = default;

  // Records a revoked access-token id until `expires_at` (the token's own expiry). Idempotent; a
  // second call keeps the later expiry.
  virtual Status revoke_token_id(std::string_view jti, Timestamp expires_at, std::string_view reason) = 0;
  // True while a revocation is stored for the id (also after expires_at until purged: an expired
  // token is refused on its expiry anyway).
  virtual Result<bool> is_token_id_revoked(std::string_view jti) = 0;
  // Deletes revocations whose expires_at is at or before now(); returns how many.
  virtual Result<std::int64_t> purge_expired_token_revocations() = 0;
};

}  // namespace samokoder::sdk
