// AuthProvider: verifies credentials and yields a principal.
//
// Sessions, JWTs, revocation, lockout and rate limits belong to the kernel, so reloading an auth
// plugin never logs anybody out; a provider only answers "who is this?" for one credential scheme.
//
// Draft for SDK 1.0: the identity issue completes it. After release the interface is frozen.
//
// Ownership: Credentials views are valid only during the call.
// Thread-safety: authenticate() is called concurrently; instances must be thread-safe. It may be
// slow (password hashing): the kernel never calls it on an I/O thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/plugin.hpp>

namespace samokoder::sdk {

struct Credentials {
  std::string_view identifier;      // email, token id, ...
  std::string_view secret;          // password or token; never logged, never stored in clear
  std::string_view remote_address;  // for the provider's own logging; lockout is the kernel's job
};

struct Principal {
  std::string user_id;
  std::string email;
  std::vector<std::string> scopes;  // e.g. "read", "write", "admin"
  bool is_admin = false;
};

class AuthProvider : public Plugin {
 public:
  // The credential scheme this provider handles, e.g. "password" or "api_token".
  virtual std::string_view scheme() const noexcept = 0;
  // kUnauthenticated for wrong credentials; never says whether the identifier exists.
  virtual Result<Principal> authenticate(const Credentials& credentials) = 0;
};

}  // namespace samokoder::sdk
