// Personal access tokens: "skp_" followed by 43 base64url characters (32 random bytes), stored as
// the lowercase hex SHA-256 of the whole token.
//
// The prefix makes a leaked token recognisable to secret scanners (GitHub push protection, gitleaks,
// trufflehog custom rules: `skp_[A-Za-z0-9_-]{43}`) and lets the kernel tell tokens from JWTs. 256
// random bits make brute force pointless, so a fast unsalted hash is the right storage form: it is
// deterministic (the kernel finds a token by its hash) and a database leak does not reveal tokens.
//
// Ownership: free functions returning owned strings. Thread-safety: reentrant.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::auth_apitoken {

inline constexpr std::string_view kPrefix = "skp_";
inline constexpr std::size_t kRandomBytes = 32;
inline constexpr std::size_t kBodyChars = 43;  // base64url of 32 bytes, unpadded
inline constexpr std::size_t kTokenChars = kPrefix.size() + kBodyChars;

// A new token from the system's CSPRNG.
sdk::Result<std::string> make_token();

// True for a string of exactly the token shape.
bool well_formed(std::string_view token) noexcept;

// Lowercase hex SHA-256 (64 characters).
sdk::Result<std::string> sha256_hex(std::string_view data);

// Equal length and bytes, in time that depends on the length only.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace samokoder::auth_apitoken
