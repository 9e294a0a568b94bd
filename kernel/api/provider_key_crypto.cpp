#include "api/provider_key_crypto.hpp"

#include "security/masking.hpp"

namespace samokoder::api {
namespace {

constexpr std::string_view kProviderKeyDomain = "samokoder/provider-key/v1";

}  // namespace

bool valid_provider_name(std::string_view provider) noexcept {
  if (provider.empty() || provider.size() > 32) return false;
  for (const char c : provider) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string provider_key_associated_data(std::string_view user_id, std::string_view provider) {
  return security::make_associated_data({kProviderKeyDomain, user_id, provider});
}

sdk::Result<sdk::NewProviderKey> seal_provider_key(const security::KeyRing& ring, std::string_view user_id,
                                                   std::string_view provider, std::string_view secret) {
  if (!valid_provider_name(provider)) {
    return sdk::Status::invalid_argument("provider must be 1 to 32 characters of a-z, 0-9, '_' and '-'");
  }
  if (secret.empty()) return sdk::Status::invalid_argument("api_key must not be empty");
  if (secret.size() > kMaxProviderKeyBytes) {
    return sdk::Status::invalid_argument("api_key must be at most " + std::to_string(kMaxProviderKeyBytes) +
                                         " bytes");
  }
  for (const char c : secret) {
    if (c <= ' ' || c > '~') {
      return sdk::Status::invalid_argument("api_key must be printable ASCII without spaces");
    }
  }
  auto sealed = ring.seal(secret, provider_key_associated_data(user_id, provider));
  if (!sealed.ok()) return sealed.status();
  sdk::NewProviderKey row;
  row.user_id = std::string(user_id);
  row.provider = std::string(provider);
  row.key_id = sealed->key_id;
  row.nonce = std::move(sealed->nonce);
  row.ciphertext = std::move(sealed->ciphertext) + sealed->tag;
  row.masked_hint = security::mask_secret(secret);
  return row;
}

sdk::Result<std::string> open_provider_key(const security::KeyRing& ring, const sdk::ProviderKey& row) {
  if (row.ciphertext.size() < security::kAeadTagBytes || row.nonce.size() != security::kAeadNonceBytes) {
    return sdk::Status::data_loss("stored provider key is truncated");
  }
  security::Sealed sealed;
  sealed.key_id = row.key_id;
  sealed.nonce = row.nonce;
  sealed.ciphertext = row.ciphertext.substr(0, row.ciphertext.size() - security::kAeadTagBytes);
  sealed.tag = row.ciphertext.substr(row.ciphertext.size() - security::kAeadTagBytes);
  return ring.open(sealed, provider_key_associated_data(row.user_id, row.provider));
}

}  // namespace samokoder::api
