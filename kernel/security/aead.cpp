#include "security/aead.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "security/encoding.hpp"
#include "security/random.hpp"

namespace samokoder::security {
namespace {

constexpr std::size_t kMaxKeyIdLength = 32;
constexpr std::size_t kMaxHkdfLength = 255 * 32;
constexpr std::string_view kSealedVersion = "v1";
// Fixed HKDF salt: the master secret is already high-entropy, so the salt only separates this use of
// HKDF from any other; RFC 5869 section 3.1 allows a constant.
constexpr std::string_view kHkdfSalt = "samokoder-hkdf-salt-v1";
constexpr std::string_view kKeyIdDomain = "samokoder/key-id/v1";
constexpr std::string_view kAeadDomain = "samokoder.aead.v1";

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
struct KdfFree {
  void operator()(EVP_KDF* kdf) const { EVP_KDF_free(kdf); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

bool valid_key_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxKeyIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// What GCM authenticates besides the ciphertext: the format version and key id as well as the caller's
// associated data, so a value cannot be relabelled with another key id or version.
std::string effective_associated_data(std::string_view key_id, std::string_view associated_data) {
  return make_associated_data({kAeadDomain, key_id, associated_data});
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = text.find(sep, start);
    if (at == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, at - start));
    start = at + 1;
  }
}

}  // namespace

sdk::Result<std::string> hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info,
                                     std::size_t length) {
  if (length == 0 || length > kMaxHkdfLength) {
    return sdk::Status::invalid_argument("HKDF-SHA256 output length must be 1.." +
                                         std::to_string(kMaxHkdfLength));
  }
  const std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return sdk::Status::internal("OpenSSL has no HKDF implementation");
  const std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return sdk::Status::internal("HKDF context allocation failed");
  // OpenSSL reads these parameters without modifying them; the API simply is not const-correct.
  std::array<char, 7> digest{"SHA256"};
  std::string ikm_copy(ikm), salt_copy(salt), info_copy(info);
  std::vector<OSSL_PARAM> params;
  params.push_back(OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0));
  params.push_back(OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm_copy.data(), ikm_copy.size()));
  // An absent salt means HashLen zero bytes (RFC 5869 section 2.2); OpenSSL does that when none is set.
  if (!salt_copy.empty()) {
    params.push_back(
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt_copy.data(), salt_copy.size()));
  }
  if (!info_copy.empty()) {
    params.push_back(
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_copy.data(), info_copy.size()));
  }
  params.push_back(OSSL_PARAM_construct_end());
  std::string out(length, '\0');
  const int rc = EVP_KDF_derive(ctx.get(), bytes(out), out.size(), params.data());
  OPENSSL_cleanse(ikm_copy.data(), ikm_copy.size());
  if (rc != 1) return sdk::Status::internal("HKDF-SHA256 derivation failed in OpenSSL");
  return out;
}

sdk::Result<std::string> derive_key(std::string_view master_secret, std::string_view label,
                                    std::size_t length) {
  if (master_secret.empty()) return sdk::Status::invalid_argument("cannot derive a key from an empty secret");
  if (label.empty()) return sdk::Status::invalid_argument("key derivation needs a purpose label");
  return hkdf_sha256(master_secret, kHkdfSalt, label, length);
}

std::string key_id_for(std::string_view key) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  const std::string input = make_associated_data({kKeyIdDomain, key});
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_sha256(), nullptr) != 1) {
    // SHA-256 cannot fail short of memory exhaustion; a fixed id still lets the ring reject duplicates.
    return "unhashable-key";
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), 6));
}

std::string make_associated_data(std::initializer_list<std::string_view> fields) {
  std::string out;
  for (const std::string_view field : fields) {
    out += std::to_string(field.size());
    out += ':';
    out += field;
  }
  return out;
}

std::string serialize_sealed(const Sealed& sealed) {
  std::string out(kSealedVersion);
  out += '.';
  out += sealed.key_id;
  out += '.';
  out += base64url_encode(sealed.nonce);
  out += '.';
  out += base64url_encode(sealed.ciphertext + sealed.tag);
  return out;
}

sdk::Result<Sealed> parse_sealed(std::string_view text) {
  const auto parts = split(text, '.');
  if (parts.size() != 4 || parts[0] != kSealedVersion) {
    return sdk::Status::data_loss("sealed value is not in the v1.<key>.<nonce>.<ciphertext> form");
  }
  if (!valid_key_id(parts[1])) return sdk::Status::data_loss("sealed value has a malformed key id");
  auto nonce = base64url_decode(parts[2]);
  if (!nonce.ok() || nonce->size() != kAeadNonceBytes) {
    return sdk::Status::data_loss("sealed value has a malformed nonce");
  }
  auto body = base64url_decode(parts[3]);
  if (!body.ok() || body->size() < kAeadTagBytes) {
    return sdk::Status::data_loss("sealed value has a malformed ciphertext");
  }
  Sealed sealed;
  sealed.key_id = std::string(parts[1]);
  sealed.nonce = std::move(nonce).value();
  sealed.tag = body->substr(body->size() - kAeadTagBytes);
  body->resize(body->size() - kAeadTagBytes);
  sealed.ciphertext = std::move(body).value();
  return sealed;
}

sdk::Status KeyRing::add(std::string key_id, std::string key) {
  if (!valid_key_id(key_id))
    return sdk::Status::invalid_argument("AEAD key id must be 1..32 characters of [A-Za-z0-9_-]");
  if (key.size() != kAeadKeyBytes) {
    return sdk::Status::invalid_argument("AEAD key '" + key_id + "' must be exactly " +
                                         std::to_string(kAeadKeyBytes) + " bytes");
  }
  if (keys_.contains(key_id))
    return sdk::Status::already_exists("AEAD key '" + key_id + "' is already in the ring");
  if (current_.empty()) current_ = key_id;
  keys_.emplace(std::move(key_id), std::move(key));
  return {};
}

sdk::Status KeyRing::set_current(std::string_view key_id) {
  if (!keys_.contains(key_id))
    return sdk::Status::not_found("AEAD key '" + std::string(key_id) + "' is not in the ring");
  current_ = std::string(key_id);
  return {};
}

bool KeyRing::has_key(std::string_view key_id) const {
  return keys_.contains(key_id);
}

sdk::Result<Sealed> KeyRing::seal(std::string_view plaintext, std::string_view associated_data) const {
  if (current_.empty()) return sdk::Status::failed_precondition("AEAD key ring has no key to seal with");
  if (plaintext.size() > kMaxSealedPlaintextBytes) {
    return sdk::Status::invalid_argument("cannot seal more than " + std::to_string(kMaxSealedPlaintextBytes) +
                                         " bytes");
  }
  auto nonce = random_bytes(kAeadNonceBytes);
  if (!nonce.ok()) return nonce.status();
  const std::string& key = keys_.find(current_)->second;
  const std::string aad = effective_associated_data(current_, associated_data);

  const CipherCtx ctx(EVP_CIPHER_CTX_new());
  Sealed sealed{current_, std::move(nonce).value(), std::string(plaintext.size(), '\0'),
                std::string(kAeadTagBytes, '\0')};
  int len = 0;
  bool ok =
      ctx &&
      EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), bytes(key), bytes(sealed.nonce), nullptr) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1;
  if (ok && !plaintext.empty()) {
    ok = EVP_EncryptUpdate(ctx.get(), bytes(sealed.ciphertext), &len, bytes(plaintext),
                           static_cast<int>(plaintext.size())) == 1;
  }
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), bytes(sealed.ciphertext) + plaintext.size(), &len) == 1 &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagBytes),
                           bytes(sealed.tag)) == 1;
  if (!ok) return sdk::Status::internal("AES-256-GCM encryption failed in OpenSSL");
  return sealed;
}

sdk::Result<std::string> KeyRing::open(const Sealed& sealed, std::string_view associated_data) const {
  const auto key = keys_.find(sealed.key_id);
  if (key == keys_.end()) {
    return sdk::Status::failed_precondition("sealed value names AEAD key '" + sealed.key_id +
                                            "', which is not in the ring");
  }
  if (sealed.nonce.size() != kAeadNonceBytes || sealed.tag.size() != kAeadTagBytes ||
      sealed.ciphertext.size() > kMaxSealedPlaintextBytes) {
    return sdk::Status::data_loss("sealed value has a malformed nonce, tag or length");
  }
  const std::string aad = effective_associated_data(sealed.key_id, associated_data);
  std::string plaintext(sealed.ciphertext.size(), '\0');
  std::string tag = sealed.tag;  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer
  const CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx &&
            EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), bytes(key->second), bytes(sealed.nonce),
                                nullptr) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1;
  if (ok && !sealed.ciphertext.empty()) {
    ok = EVP_DecryptUpdate(ctx.get(), bytes(plaintext), &len, bytes(sealed.ciphertext),
                           static_cast<int>(sealed.ciphertext.size())) == 1;
  }
  ok = ok &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagBytes), bytes(tag)) == 1;
  const bool authentic =
      ok && EVP_DecryptFinal_ex(ctx.get(), bytes(plaintext) + sealed.ciphertext.size(), &len) == 1;
  if (!authentic) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return sdk::Status::data_loss(
        "sealed value failed authentication (tampered, or opened with the wrong associated data)");
  }
  return plaintext;
}

sdk::Result<std::string> KeyRing::seal_to_string(std::string_view plaintext,
                                                 std::string_view associated_data) const {
  auto sealed = seal(plaintext, associated_data);
  if (!sealed.ok()) return sealed.status();
  return serialize_sealed(*sealed);
}

sdk::Result<std::string> KeyRing::open_string(std::string_view text, std::string_view associated_data) const {
  auto sealed = parse_sealed(text);
  if (!sealed.ok()) return sealed.status();
  return open(*sealed, associated_data);
}

}  // namespace samokoder::security
