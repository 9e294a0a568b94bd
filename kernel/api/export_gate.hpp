// ExportGate: how many project exports run at once, per user and in all. An export builds its archive in
// memory (up to limits.export_max_bytes), so the gate bounds the memory exports can take to about
// concurrent_exports times that limit.
//
// Ownership: plain state; a Slot returns its place when destroyed and must not outlive the gate.
// Thread-safety: all members are safe from any thread. The lock is taken twice per export, never on
// another route.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <variant>

namespace samokoder::api {

class ExportGate {
 public:
  ExportGate(std::uint32_t per_user, std::uint32_t total) : per_user_(per_user), total_(total) {}
  ExportGate(const ExportGate&) = delete;
  ExportGate& operator=(const ExportGate&) = delete;

  class Slot {
   public:
    Slot(Slot&& other) noexcept : gate_(other.gate_), user_(std::move(other.user_)) { other.gate_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class ExportGate;
    Slot(ExportGate& gate, std::string user) : gate_(&gate), user_(std::move(user)) {}
    ExportGate* gate_;
    std::string user_;
  };

  enum class Refusal { kUserBusy, kServerBusy };

  // A place for one export of `user_id`, or why there is none: the user runs per_user exports already
  // (kUserBusy), or the node runs `total` (kServerBusy).
  std::variant<Slot, Refusal> try_enter(const std::string& user_id);

  std::uint32_t per_user() const noexcept { return per_user_; }
  std::uint32_t total() const noexcept { return total_; }

 private:
  void leave(const std::string& user_id) noexcept;

  const std::uint32_t per_user_;
  const std::uint32_t total_;
  std::mutex mutex_;
  std::uint32_t running_ = 0;
  std::map<std::string, std::uint32_t> by_user_;
};

}  // namespace samokoder::api
