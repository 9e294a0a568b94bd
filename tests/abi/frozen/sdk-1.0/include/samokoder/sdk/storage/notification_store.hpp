// NotificationStore: notifications for users (a run finished, a question waits).
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::notifications(), and a transaction hands out the same store bound to that transaction. The
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

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

struct Notification {
  std::string id;
  std::string user_id;
  std::string kind;  // e.g. "run.finished"
  nlohmann::json payload;
  bool read = false;
  Timestamp created_at;
};

struct NewNotification {
  std::string user_id;  // kNotFound if the user does not exist
  std::string kind;     // required
  nlohmann::json payload = nlohmann::json::object();
};

class NotificationStore {
 public:
  NotificationStore() = default;
  NotificationStore(const NotificationStore&) = delete;
  NotificationStore& operator=(const NotificationStore&) = delete;
  virtual ~NotificationStore() = default;

  virtual Result<Notification> create_notification(const NewNotification& notification) = 0;
  // Order: created_at descending, then id descending.
  virtual Result<Page<Notification>> list_notifications(std::string_view user_id, bool unread_only,
                                                        const PageRequest& page) = 0;
  virtual Result<std::int64_t> count_unread_notifications(std::string_view user_id) = 0;
  // Idempotent for an already read notification of the user.
  virtual Status mark_notification_read(std::string_view user_id, std::string_view notification_id) = 0;
  // Returns how many changed.
  virtual Result<std::int64_t> mark_all_notifications_read(std::string_view user_id) = 0;
};

}  // namespace samokoder::sdk
