// Argon2id hashing for auth.local, on libargon2: PHC-encoded hashes with a fresh salt, verification
// with bounds on what a stored hash may ask for, and the password policy.
//
// Ownership: free functions and plain values. Thread-safety: all functions are reentrant; hashing is
// slow and memory-hard on purpose (call it on worker threads, which the kernel does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::auth_local {

// OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane.
struct Argon2Params {
  std::uint32_t memory_kib = 19 * 1024;
  std::uint32_t iterations = 2;
  std::uint32_t parallelism = 1;
  friend bool operator==(const Argon2Params&, const Argon2Params&) = default;
};

// Bounds for configured parameters and for parameters read from a stored hash, so a corrupt or planted
// hash cannot make one sign-in allocate gigabytes or run for minutes.
inline constexpr std::uint32_t kMaxMemoryKib = 1024 * 1024;
inline constexpr std::uint32_t kMaxIterations = 32;
inline constexpr std::uint32_t kMaxParallelism = 16;
inline constexpr std::size_t kSaltBytes = 16;
inline constexpr std::size_t kHashBytes = 32;
// Inputs longer than this are refused before hashing (the policy stops at 128 code points anyway).
inline constexpr std::size_t kMaxSecretBytes = 4096;
inline constexpr std::size_t kMinPasswordLength = 8;    // code points
inline constexpr std::size_t kMaxPasswordLength = 128;  // code points

// Reads the plugin config {"memory_kib", "iterations", "parallelism"} (each optional). kInvalidArgument
// naming the key for unknown keys, wrong types and values out of bounds.
sdk::Result<Argon2Params> parse_params(const nlohmann::json& config);

// A PHC string "$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>" for `secret` with a fresh random salt.
sdk::Result<std::string> hash(std::string_view secret, const Argon2Params& params);

// A PHC string with `params`, a random salt and a random digest: the hash of no password anyone knows.
// Verifying against it costs one Argon2id with `params`, like a real account, and always answers "no",
// without hashing anything to make it (the digest is 256 random bits, not the output of a hash).
sdk::Result<std::string> decoy_hash(const Argon2Params& params);

// Whether `secret` matches `encoded`. kDataLoss when `encoded` is not an Argon2id PHC string within
// the bounds above.
sdk::Result<bool> verify(std::string_view secret, std::string_view encoded);

// The parameters a PHC string was made with; nullopt when it is not one we could verify.
std::optional<Argon2Params> params_of(std::string_view encoded);

// 8..128 code points of well-formed UTF-8 without NUL, not a well-known common password.
sdk::Status check_policy(std::string_view secret);

// ASCII case-insensitive membership in the bundled list of common passwords.
bool is_common_password(std::string_view secret);

}  // namespace samokoder::auth_local
