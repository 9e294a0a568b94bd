// keep_until_exit: hands an object over to be kept, never destroyed, until the process exits.
//
// For the few objects a thread that shutdown gave up on may still use (a plugin's slot and mapped
// library, the API context): destroying them could crash that thread whenever its call returns. Unlike
// a bare release(), the object stays reachable from a global, so leak checkers see a deliberate keep
// rather than a leak.
//
// Ownership: the registry of kept objects is itself never destroyed. Thread-safety: safe from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

namespace samokoder::core {

template <typename T>
void keep_until_exit(std::unique_ptr<T> object) {
  static std::mutex* const mutex = new std::mutex;
  static auto* const kept = new std::vector<std::shared_ptr<void>>;
  std::lock_guard lock(*mutex);
  kept->push_back(std::shared_ptr<T>(std::move(object)));
}

}  // namespace samokoder::core
