// Cryptographically secure random bytes and the identifiers built from them (session tokens, CSRF
// tokens, JWT ids, salts, nonces). Everything draws from OpenSSL's RAND_bytes, which is seeded from the
// kernel's getrandom(); when it cannot deliver, these calls fail instead of returning weaker bytes.
//
// Ownership: free functions returning owned strings.
// Thread-safety: all functions may be called concurrently (OpenSSL 3's DRBG is thread-safe).
#pragma once

#include <cstddef>
#include <string>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

// Upper bound on one request, so a caller bug cannot ask for gigabytes.
inline constexpr std::size_t kMaxRandomBytes = 64 * 1024;

// `n` random bytes. Fails with kInvalidArgument above kMaxRandomBytes and kInternal when the DRBG fails.
sdk::Result<std::string> random_bytes(std::size_t n);

// `bytes` random bytes as base64url without padding (32 bytes -> 43 characters): for opaque tokens
// that travel in URLs, headers and cookies. `bytes` must be 16..kMaxRandomBytes.
sdk::Result<std::string> random_token(std::size_t bytes = 32);

// `bytes` random bytes as lowercase hex (16 bytes -> 32 characters): for ids such as a JWT `jti`.
// `bytes` must be 8..kMaxRandomBytes.
sdk::Result<std::string> random_hex_id(std::size_t bytes = 16);

}  // namespace samokoder::security
