// Cancellation: the one token type every long call in the SDK takes (outbound HTTP, child
// processes, scheduled work, LLM calls, agent steps).
//
// It is C++20's std::stop_token, named for the SDK: whoever starts a long call keeps a
// CancelSource, passes its token down, and calls request_stop() from any thread to end the call.
// The callee either polls stop_requested() or registers an OnCancel callback that wakes whatever it
// waits on (closes a socket, signals a child). Why the standard type rather than one of our own: it
// is already lock-free, thread-safe and understood, and it crosses the plugin boundary like any
// other libstdc++ type under the toolchain fingerprint (plugin.hpp).
//
// Ownership: tokens and sources share one reference-counted state; copy them freely. An OnCancel
// object must outlive neither the callee's frame nor the plugin generation whose code it runs.
// Thread-safety: request_stop(), stop_requested() and OnCancel registration are safe from any
// thread, concurrently. An OnCancel callback runs exactly once: on the thread that requests the
// stop, or at registration when the stop was already requested; its destructor waits for a
// callback running on another thread to finish.
#pragma once

#include <stop_token>

namespace samokoder::sdk {

using CancelToken = std::stop_token;
using CancelSource = std::stop_source;

template <typename Callback>
using OnCancel = std::stop_callback<Callback>;

// A token nobody can cancel, for callers that have no reason to stop a call early.
inline CancelToken never_cancelled() noexcept {
  return {};
}

}  // namespace samokoder::sdk
