// Display form of a stored secret (a provider API key) for lists and logs: "sk-…wxyz".
//
// At most a short scheme prefix ("sk-", up to and including a '-' within the first four characters)
// and the last four characters stay visible, never more than 8 characters in all, and only when the
// secret is long enough (16+ characters for the prefix, 12+ for the tail) that what is shown is a
// small fraction of it. Shorter secrets, and secrets with anything but printable ASCII, become the
// fixed "****", which reveals neither content nor length.
//
// Ownership: returns an owned string. Thread-safety: reentrant.
#pragma once

#include <string>
#include <string_view>

namespace samokoder::security {

inline constexpr std::string_view kFullyMasked = "****";

std::string mask_secret(std::string_view secret);

}  // namespace samokoder::security
