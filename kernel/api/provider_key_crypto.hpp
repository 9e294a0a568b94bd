// Provider keys (BYOK) at rest: how a user's API key for an LLM provider becomes the opaque
// ProviderKey row storage keeps, and back.
//
// The key is sealed with AES-256-GCM under the ring's current key (security::KeyRing, key id stored in
// the row for rotation), with associated data binding it to its row: the user id and the provider
// name. A row copied to another user, or renamed to another provider, therefore fails to open
// (kDataLoss) instead of handing one user's key to another. Only the masked form
// (security::mask_secret) is stored in clear, for display.
//
// The plaintext leaves this module only through open_provider_key, which the LLM layer calls when it
// makes a request; the HTTP API never returns it.
//
// Ownership: free functions returning owned values. Thread-safety: reentrant (KeyRing is shared const).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage.hpp>

#include "security/aead.hpp"

namespace samokoder::api {

// Provider API keys are short; anything longer is a mistake or an attempt to store arbitrary data.
inline constexpr std::size_t kMaxProviderKeyBytes = 4096;

// Provider names in URLs and rows: 1..32 of [a-z0-9_-].
bool valid_provider_name(std::string_view provider) noexcept;

// The associated data of a provider key row: ("samokoder/provider-key/v1", user id, provider).
std::string provider_key_associated_data(std::string_view user_id, std::string_view provider);

// Seals `secret` for (user_id, provider). kInvalidArgument for a bad provider name or an empty,
// over-long or non-printable secret (keys are printable ASCII without spaces); errors of the ring.
sdk::Result<sdk::NewProviderKey> seal_provider_key(const security::KeyRing& ring, std::string_view user_id,
                                                   std::string_view provider, std::string_view secret);

// Opens a stored row with the associated data of the row's own user and provider: kDataLoss when it
// was tampered with or moved to another row, kFailedPrecondition when its key id left the ring.
sdk::Result<std::string> open_provider_key(const security::KeyRing& ring, const sdk::ProviderKey& row);

}  // namespace samokoder::api
