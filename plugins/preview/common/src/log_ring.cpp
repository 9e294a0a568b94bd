#include "log_ring.hpp"

#include <algorithm>
#include <cstring>

namespace samokoder::preview_common::internal {

LogRing::LogRing(std::size_t capacity) : buffer_(std::max<std::size_t>(capacity, 1)) {}

void LogRing::put(std::string_view bytes) {
  const std::size_t cap = buffer_.size();
  total_ += bytes.size();
  if (bytes.size() >= cap) {
    std::memcpy(buffer_.data(), bytes.data() + (bytes.size() - cap), cap);
    head_ = 0;
    size_ = cap;
    return;
  }
  std::size_t write = (head_ + size_) % cap;
  const std::size_t first = std::min(bytes.size(), cap - write);
  std::memcpy(buffer_.data() + write, bytes.data(), first);
  std::memcpy(buffer_.data(), bytes.data() + first, bytes.size() - first);
  size_ += bytes.size();
  if (size_ > cap) {
    head_ = (head_ + (size_ - cap)) % cap;
    size_ = cap;
  }
}

void LogRing::append_line(std::string_view line) {
  std::lock_guard lock(mutex_);
  put(line);
  put("\n");
}

sdk::PreviewLog LogRing::read(std::uint64_t after, std::size_t max_bytes) const {
  std::lock_guard lock(mutex_);
  sdk::PreviewLog out;
  out.end_offset = total_;
  if (after >= total_) return out;  // nothing new (or an offset from the future: nothing to give)
  const std::uint64_t oldest = total_ - size_;
  std::uint64_t from = std::max(after, oldest);
  if (total_ - from > max_bytes) from = total_ - max_bytes;
  out.truncated = from > after;
  const std::size_t count = static_cast<std::size_t>(total_ - from);
  out.text.resize(count);
  const std::size_t cap = buffer_.size();
  const std::size_t start = (head_ + static_cast<std::size_t>(from - oldest)) % cap;
  const std::size_t first = std::min(count, cap - start);
  std::memcpy(out.text.data(), buffer_.data() + start, first);
  std::memcpy(out.text.data() + first, buffer_.data(), count - first);
  return out;
}

std::string LogRing::tail(std::size_t lines) const {
  std::string text = read(0, buffer_.size()).text;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  std::size_t pos = text.size();
  for (std::size_t n = 0; n < lines; ++n) {
    const auto nl = text.rfind('\n', pos == 0 ? 0 : pos - 1);
    if (nl == std::string::npos || pos == 0) return text;
    pos = nl;
  }
  return text.substr(pos + 1);
}

std::size_t LogRing::kept() const {
  std::lock_guard lock(mutex_);
  return size_;
}

std::uint64_t LogRing::written() const {
  std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace samokoder::preview_common::internal
