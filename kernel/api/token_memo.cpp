#include "api/token_memo.hpp"

#include <atomic>

namespace samokoder::api {

std::uint64_t next_token_memo_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace samokoder::api
