// Password hashing (Argon2id, PHC string format) and the registration password policy.
//
// Hashes are self-describing PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"), so the
// parameters can be raised later: verify_password reads them from the stored string, and
// needs_rehash tells the login path to re-hash with the current parameters after a successful login.
//
// No function here logs, and no error message contains a password or a hash.
//
// Ownership: free functions and a plain parameter struct.
// Thread-safety: all functions may be called concurrently. Hashing is deliberately slow and memory-hard
// (~19 MiB and tens of milliseconds with the defaults): call it off the I/O threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

// OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane): affordable on a 2-core server under a login
// burst, and the rate limiter plus lockout bound how many hashes an attacker can make us compute.
struct Argon2Params {
  std::uint32_t memory_kib = 19 * 1024;
  std::uint32_t iterations = 2;
  std::uint32_t parallelism = 1;

  friend bool operator==(const Argon2Params&, const Argon2Params&) = default;
};

// Bounds for parameters we hash with and for parameters we accept from a stored hash: a corrupt or
// planted hash must not make one login allocate gigabytes or spin for minutes.
inline constexpr std::uint32_t kMaxArgon2MemoryKib = 1024 * 1024;  // 1 GiB
inline constexpr std::uint32_t kMaxArgon2Iterations = 32;
inline constexpr std::uint32_t kMaxArgon2Parallelism = 16;
inline constexpr std::size_t kArgon2SaltBytes = 16;
inline constexpr std::size_t kArgon2HashBytes = 32;
// Longer inputs are refused before hashing (the policy already stops at 128 code points).
inline constexpr std::size_t kMaxPasswordBytes = 4096;

// Policy limits, in Unicode code points.
inline constexpr std::size_t kMinPasswordLength = 8;
inline constexpr std::size_t kMaxPasswordLength = 128;

// Checks `params` against the bounds above (memory at least 8 KiB per lane, as Argon2 requires).
sdk::Status validate_argon2_params(const Argon2Params& params);

// A PHC-encoded Argon2id hash of `password` with a fresh 16-byte salt. Fails with kInvalidArgument on
// bad params or a password over kMaxPasswordBytes, kInternal if hashing itself fails.
sdk::Result<std::string> hash_password(std::string_view password, const Argon2Params& params = {});

// true: `password` matches `encoded` (compared in constant time by libargon2).
// false: it does not, or the password is over kMaxPasswordBytes.
// Error kDataLoss: `encoded` is not an Argon2id PHC string within the bounds above (a corrupt record).
sdk::Result<bool> verify_password(std::string_view password, std::string_view encoded);

// True when `encoded` was not made with exactly `params` (or cannot be parsed): re-hash after the
// next successful login.
bool needs_rehash(std::string_view encoded, const Argon2Params& params = {});

// A valid hash of a random password nobody knows, made with `params`. When the account does not exist
// the login path verifies the submitted password against it, so "no such user" costs the same time as
// "wrong password" and the response cannot be used to enumerate accounts. The default-parameter hash
// is compiled in; others are computed once per parameter set and cached.
const std::string& dummy_hash(const Argon2Params& params = {});

// The registration policy: 8..128 code points of well-formed UTF-8, no NUL, not in the bundled list
// of common passwords. Fails with kInvalidArgument and a message meant for the user.
sdk::Status check_password_policy(std::string_view password);

// True when `password` (ASCII case-insensitively) is in the bundled common-password list.
bool is_common_password(std::string_view password);

// Size of the bundled list (a few hundred entries of 8+ characters).
std::size_t common_password_count() noexcept;

}  // namespace samokoder::security
