// LoginAttemptStore: login attempts, counted for lockout and address throttling (occurred_at = now()).
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::login_attempts(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

struct LoginAttempt {
  std::string subject;  // the account key tried, e.g. the email; compared ignoring ASCII case
  std::string source_address;
  bool success = false;
  std::string user_agent;
};

class LoginAttemptStore {
 public:
  LoginAttemptStore() = default;
  LoginAttemptStore(const LoginAttemptStore&) = delete;
  LoginAttemptStore& operator=(const LoginAttemptStore&) = delete;
  virtual ~LoginAttemptStore() = default;

  virtual Status record_login_attempt(const LoginAttempt& attempt) = 0;
  // Failed attempts at or after `since`, for the subject (ignoring ASCII case) or the address.
  virtual Result<std::int64_t> count_failed_logins_for_subject(std::string_view subject, Timestamp since) = 0;
  virtual Result<std::int64_t> count_failed_logins_for_address(std::string_view source_address,
                                                               Timestamp since) = 0;
  // Deletes attempts older than `before`; returns how many.
  virtual Result<std::int64_t> purge_login_attempts(Timestamp before) = 0;
};

}  // namespace samokoder::sdk
