// AuthProvider: one credential scheme's secret handling: policy, hashing, verification, issuing.
//
// The kernel owns everything stateful about identity: users and their stored hashes (in storage),
// sessions, JWTs, revocation, lockout, rate limits and audit. A provider keeps no sessions and never
// touches storage; it only answers questions about secrets, so reloading an auth plugin logs nobody
// out and a provider cannot leak or corrupt identity data.
//
// Two schemes ship with Samokoder, and each method's contract below says what it means for each:
//
//   "password"   (auth.local)     user-chosen passwords. hash_secret is salted and slow (Argon2id with
//                                 the plugin's configured parameters), so the same password hashes
//                                 differently each time and only verify_secret can compare.
//                                 issue_secret is kUnimplemented: users choose passwords.
//   "api_token"  (auth.apitoken)  personal access tokens. issue_secret makes a high-entropy random
//                                 token with a recognisable prefix (so secret scanners find leaks);
//                                 hash_secret is deterministic (SHA-256), so the kernel stores the
//                                 hash and finds a presented token by hashing it and looking it up.
//
// A provider never logs a secret or a hash and never puts one in a Status message.
//
// Ownership: string_views are valid only during the call; returned strings are owned by the caller.
// Thread-safety: every method is called concurrently from many threads; instances must be
// thread-safe. hash_secret and verify_secret may be slow (password hashing): the kernel never calls
// them on an HTTP I/O thread.
//
// Compatibility: frozen since SDK 1.0 (new capability as AuthProvider2).
#pragma once

#include <string>
#include <string_view>

#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

// A freshly issued secret: the secret is shown to its owner once and never stored; the hash is what
// the kernel stores.
struct IssuedSecret {
  std::string secret;
  std::string stored_hash;
};

class AuthProvider : public Plugin {
 public:
  // The credential scheme this provider handles: "password", "api_token", or a scheme of its own.
  // Constant for the life of the instance.
  virtual std::string_view scheme() const noexcept = 0;

  // Whether `secret` is acceptable to this scheme. password: the registration policy (length, UTF-8,
  // not a common password), kInvalidArgument with a message meant for the user. api_token: whether
  // it has the shape of a token this provider issues (prefix, length, alphabet), so the kernel can
  // refuse garbage before touching storage.
  virtual Status check_policy(std::string_view secret) = 0;

  // The string to store for `secret` (a PHC string, a hex digest, ...). password: salted, so two
  // calls differ. api_token: deterministic, so it doubles as the lookup key.
  virtual Result<std::string> hash_secret(std::string_view secret) = 0;

  // true when `secret` matches `stored_hash`, false when it does not (compared in constant time).
  // An empty `stored_hash` (an account that does not exist or has no password) costs the same time
  // as a real verification and returns false, so the kernel can answer "no such account" and "wrong
  // password" alike, in message and in timing. kDataLoss when `stored_hash` is not a hash this
  // provider can read (a corrupt record).
  virtual Result<bool> verify_secret(std::string_view secret, std::string_view stored_hash) = 0;

  // True when `stored_hash` was made with other parameters than the provider now uses; the kernel
  // then stores hash_secret(secret) after the next successful verification.
  virtual bool needs_rehash(std::string_view stored_hash) const noexcept = 0;

  // A new random secret and its hash. kUnimplemented for schemes whose secrets users choose.
  virtual Result<IssuedSecret> issue_secret() = 0;
};

}  // namespace samokoder::sdk
