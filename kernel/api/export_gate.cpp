#include "api/export_gate.hpp"

namespace samokoder::api {

ExportGate::Slot::~Slot() {
  if (gate_ != nullptr) gate_->leave(user_);
}

std::variant<ExportGate::Slot, ExportGate::Refusal> ExportGate::try_enter(const std::string& user_id) {
  std::lock_guard lock(mutex_);
  if (running_ >= total_) return Refusal::kServerBusy;
  std::uint32_t& mine = by_user_[user_id];
  if (mine >= per_user_) return Refusal::kUserBusy;
  ++mine;
  ++running_;
  return Slot(*this, user_id);
}

void ExportGate::leave(const std::string& user_id) noexcept {
  std::lock_guard lock(mutex_);
  --running_;
  const auto it = by_user_.find(user_id);
  if (it != by_user_.end() && --it->second == 0) by_user_.erase(it);
}

}  // namespace samokoder::api
