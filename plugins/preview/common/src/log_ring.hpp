// LogRing: the bounded tail of one preview's output (install and app, line by line), addressed by the
// byte offset of everything ever written, as PreviewRunner::logs() reads it.
//
// Ownership: shared between the preview and the on_line callbacks of its children, which the kernel
// may keep a little longer than the preview. Thread-safety: every method may be called concurrently
// (an internal mutex; appends never allocate once the ring is full).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/preview.hpp>

namespace samokoder::preview_common::internal {

class LogRing {
 public:
  explicit LogRing(std::size_t capacity);

  // Appends `line` and a '\n'. A line longer than the ring keeps only its end.
  void append_line(std::string_view line);
  // From offset `after`, at most the newest `max_bytes`, as PreviewRunner::logs().
  sdk::PreviewLog read(std::uint64_t after, std::size_t max_bytes) const;
  // The last `lines` complete or partial lines kept, joined with '\n'.
  std::string tail(std::size_t lines) const;

  std::size_t capacity() const noexcept { return buffer_.size(); }
  std::size_t kept() const;
  std::uint64_t written() const;

 private:
  void put(std::string_view bytes);  // under mutex_

  mutable std::mutex mutex_;
  std::vector<char> buffer_;
  std::size_t head_ = 0;  // index of the oldest byte kept
  std::size_t size_ = 0;  // bytes kept
  std::uint64_t total_ = 0;
};

}  // namespace samokoder::preview_common::internal
