// ProviderKeyStore: users' LLM provider keys (BYOK), sealed by the kernel; storage keeps the pieces opaque.
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::provider_keys(), and a transaction hands out the same store bound to that transaction. The
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
#include <vector>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

// One per (user, provider). The kernel encrypts; storage keeps the pieces opaque.
struct ProviderKey {
  std::string user_id;
  std::string provider;     // e.g. "openai", "anthropic"
  std::string key_id;       // id of the encryption key used, for rotation
  std::string ciphertext;   // bytes
  std::string nonce;        // bytes
  std::string masked_hint;  // e.g. "sk-...3f9a", safe to show
  Timestamp created_at;     // first stored
  Timestamp updated_at;     // last replaced
};

struct NewProviderKey {
  std::string user_id;   // kNotFound if the user does not exist
  std::string provider;  // required
  std::string key_id;    // required
  std::string ciphertext;
  std::string nonce;
  std::string masked_hint;
};

class ProviderKeyStore {
 public:
  ProviderKeyStore() = default;
  ProviderKeyStore(const ProviderKeyStore&) = delete;
  ProviderKeyStore& operator=(const ProviderKeyStore&) = delete;
  virtual ~ProviderKeyStore() = default;

  // Inserts or replaces the user's key for the provider (created_at survives a replacement).
  virtual Result<ProviderKey> put_provider_key(const NewProviderKey& key) = 0;
  virtual Result<ProviderKey> get_provider_key(std::string_view user_id, std::string_view provider) = 0;
  // Order: provider ascending.
  virtual Result<std::vector<ProviderKey>> list_provider_keys(std::string_view user_id) = 0;
  virtual Status delete_provider_key(std::string_view user_id, std::string_view provider) = 0;
  // Every user's keys encrypted with `key_id`, for re-encryption on key rotation.
  // Order: user_id ascending, then provider.
  virtual Result<Page<ProviderKey>> list_provider_keys_by_key_id(std::string_view key_id,
                                                                 const PageRequest& page) = 0;
};

}  // namespace samokoder::sdk
