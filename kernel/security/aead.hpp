// Secrets at rest (BYOK provider keys, OAuth tokens): AES-256-GCM with a key id in every sealed value,
// so keys can be rotated, and associated data that binds a ciphertext to the row it belongs to.
//
// Sealed text form: "v1.<key_id>.<base64url nonce>.<base64url ciphertext||tag>". A new seal uses the
// ring's current key; open uses whichever key the value names, so values sealed under a previous key
// keep opening until they are re-sealed. The associated data (e.g. make_associated_data({"user:42",
// "provider:openai"})) is authenticated but not stored: a value copied to another user's row, or to
// another provider, fails to open. The format version and key id are authenticated too.
//
// Keys from one master secret: derive_key(master, label) is HKDF-SHA256 (RFC 5869) with a fixed salt
// and the label as `info`. The kernel derives the JWT key with kJwtKeyLabel and the AEAD key with
// kAeadKeyLabel from the single SAMOKODER_SECRET_KEY, so the two keys are independent (knowing one
// says nothing about the other) while the operator manages one secret. Rotating that secret means
// adding the new derived key under a new id (key_id_for) and keeping the old one until re-sealed.
//
// Ownership: KeyRing owns copies of its keys; Sealed is a plain value.
// Thread-safety: build a KeyRing at startup (add, set_current are not synchronised), then share it as
// const: seal and open may run concurrently. Rotate at runtime by swapping a shared_ptr<const KeyRing>.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

inline constexpr std::size_t kAeadKeyBytes = 32;
inline constexpr std::size_t kAeadNonceBytes = 12;
inline constexpr std::size_t kAeadTagBytes = 16;
inline constexpr std::size_t kMaxSealedPlaintextBytes = 1024 * 1024;

inline constexpr std::string_view kJwtKeyLabel = "samokoder/jwt/v1";
inline constexpr std::string_view kAeadKeyLabel = "samokoder/aead/v1";
// Signs the grants that let a browser into one preview (kernel/previews/grant.hpp).
inline constexpr std::string_view kPreviewGrantKeyLabel = "samokoder/preview-grant/v1";

// HKDF-SHA256 (extract then expand). `length` is 1..8160 (255 * 32). kInternal if OpenSSL fails.
sdk::Result<std::string> hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info,
                                     std::size_t length);

// A `length`-byte key for one purpose (`label`) from the operator's master secret.
sdk::Result<std::string> derive_key(std::string_view master_secret, std::string_view label,
                                    std::size_t length = kAeadKeyBytes);

// A short, stable id for a key (12 hex characters of a domain-separated SHA-256), so a key derived from
// a new master secret gets a new id on its own. Revealing it reveals nothing usable about the key.
std::string key_id_for(std::string_view key);

// Associated data from several fields, each length-prefixed so that ("ab","c") and ("a","bc") differ.
std::string make_associated_data(std::initializer_list<std::string_view> fields);

struct Sealed {
  std::string key_id;
  std::string nonce;       // kAeadNonceBytes random bytes
  std::string ciphertext;  // same length as the plaintext
  std::string tag;         // kAeadTagBytes

  friend bool operator==(const Sealed&, const Sealed&) = default;
};

// "v1.<key_id>.<b64url nonce>.<b64url ciphertext||tag>".
std::string serialize_sealed(const Sealed& sealed);
// Inverse of serialize_sealed; kDataLoss on anything else (wrong version, bad base64url, short parts).
sdk::Result<Sealed> parse_sealed(std::string_view text);

class KeyRing {
 public:
  // key_id: 1..32 characters of [A-Za-z0-9_-]; key: exactly kAeadKeyBytes bytes. kInvalidArgument on
  // either, kAlreadyExists on a duplicate id. The first key becomes current.
  sdk::Status add(std::string key_id, std::string key);
  // kNotFound for an unknown id.
  sdk::Status set_current(std::string_view key_id);

  bool has_key(std::string_view key_id) const;
  // Empty while the ring has no key.
  const std::string& current_key_id() const noexcept { return current_; }

  // Encrypts under the current key with a fresh random nonce. kFailedPrecondition with no key,
  // kInvalidArgument over kMaxSealedPlaintextBytes.
  sdk::Result<Sealed> seal(std::string_view plaintext, std::string_view associated_data) const;
  // kFailedPrecondition when the key id is not in the ring (a key was retired too early); kDataLoss
  // when authentication fails: the ciphertext, tag, nonce or associated data differ from the seal.
  sdk::Result<std::string> open(const Sealed& sealed, std::string_view associated_data) const;

  // seal + serialize_sealed, and parse_sealed + open.
  sdk::Result<std::string> seal_to_string(std::string_view plaintext, std::string_view associated_data) const;
  sdk::Result<std::string> open_string(std::string_view text, std::string_view associated_data) const;

 private:
  std::map<std::string, std::string, std::less<>> keys_;  // key id -> 32-byte key
  std::string current_;
};

}  // namespace samokoder::security
