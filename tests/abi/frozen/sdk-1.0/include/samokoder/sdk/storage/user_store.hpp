// UserStore: accounts and their credentials (password hash, admin flag, tier, lockout).
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::users(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

struct User {
  std::string id;
  std::string email;          // as registered; unique ignoring ASCII case
  std::string password_hash;  // PHC string (Argon2id, bcrypt); empty for accounts without a password
  bool is_admin = false;
  std::string tier;  // "free", "starter", "pro", "team"; storage does not interpret it
  bool disabled = false;
  std::optional<Timestamp> locked_until;  // login refused before this time (lockout)
  Timestamp created_at;
  Timestamp updated_at;
};

struct NewUser {
  std::string email;  // required; kAlreadyExists if another user has it ignoring ASCII case
  std::string password_hash;
  bool is_admin = false;
  std::string tier = "free";  // required
};

// Fields left empty are not changed.
struct UserUpdate {
  std::optional<std::string> email;  // kAlreadyExists on collision
  std::optional<std::string> password_hash;
  std::optional<bool> is_admin;
  std::optional<std::string> tier;
  std::optional<bool> disabled;
  std::optional<std::optional<Timestamp>> locked_until;  // an empty inner value clears the lock
};

class UserStore {
 public:
  UserStore() = default;
  UserStore(const UserStore&) = delete;
  UserStore& operator=(const UserStore&) = delete;
  virtual ~UserStore() = default;

  virtual Result<User> create_user(const NewUser& user) = 0;
  virtual Result<User> get_user(std::string_view user_id) = 0;
  virtual Result<User> find_user_by_email(std::string_view email) = 0;  // ignoring ASCII case
  virtual Result<User> update_user(std::string_view user_id, const UserUpdate& update) = 0;
  // Deletes the user and everything it owns (see "Deletion cascades").
  virtual Status delete_user(std::string_view user_id) = 0;
  // Order: created_at ascending, then id.
  virtual Result<Page<User>> list_users(const PageRequest& page) = 0;
};

}  // namespace samokoder::sdk
