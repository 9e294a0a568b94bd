// The readiness probe: does an HTTP server answer on the endpoint? One `GET /` with short timeouts;
// any status line counts (a 404 or a 500 is still a server the proxy can reach).
//
// Ownership: nothing kept between calls. Thread-safety: may be called concurrently.
#pragma once

#include <chrono>

#include <samokoder/sdk/preview.hpp>

namespace samokoder::preview_common::internal {

// True when an HTTP status line came back within `timeout` (connect, send and read together).
bool http_answers(const sdk::PreviewEndpoint& endpoint, std::chrono::milliseconds timeout) noexcept;

}  // namespace samokoder::preview_common::internal
