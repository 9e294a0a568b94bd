// parse_retry_after: the Retry-After header (RFC 9110 section 10.2.3) of a 429 or 503 answer as the
// delay the gateway waits before it retries, for every LLM provider.
//
// The header is either a number of seconds ("120"; a fraction such as "1.5" is accepted too, as some
// gateways send it) or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT", IMF-fixdate), which is
// measured from `now`, the host's clock. A date in the past is a delay of zero; anything else that
// does not parse is no delay at all, so a garbled header never makes the gateway wait.
//
// Not part of the SDK: plugin code shared by the LLM providers (linked statically into each).
// Thread-safety: reentrant.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include <samokoder/sdk/http_client.hpp>

namespace samokoder::llm_common {

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now);

// The first Retry-After header of `headers` (names compared without case), parsed as above.
std::optional<std::chrono::milliseconds> retry_after_of(const std::vector<sdk::HttpHeader>& headers,
                                                        std::chrono::system_clock::time_point now);

}  // namespace samokoder::llm_common
