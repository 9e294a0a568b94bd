// Preview grants: what lets one browser into one project's preview on the preview origin.
//
// The preview origin never sees the API's cookies or tokens (another host name), so the API hands the
// owner a grant: "<user>.<project>.<expiry>.<mac>", an HMAC-SHA256 (key derived from
// SAMOKODER_SECRET_KEY) over the rest. The proxy turns it into a cookie on the preview's own origin and
// checks it on every request; a grant names one project, so a preview can do nothing with it
// elsewhere, and it is stripped before a request reaches the app.
//
// Ownership: plain functions over values. Thread-safety: pure, callable from any thread (an I/O
// thread too: one HMAC, no I/O).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace samokoder::previews {

using GrantClock = std::chrono::system_clock;

// The grant for `user_id` to preview `project_id` until `expires`; empty if the MAC cannot be made.
std::string mint_grant(std::string_view key, std::string_view user_id, std::string_view project_id,
                       GrantClock::time_point expires);

// What a valid grant says.
struct VerifiedGrant {
  std::string user_id;
  GrantClock::time_point expires;
};

// The grant's claims when it is well formed, its MAC verifies, it names `project_id` and it has not
// expired at `now`; nullopt otherwise.
std::optional<VerifiedGrant> verify_grant(std::string_view key, std::string_view grant,
                                          std::string_view project_id, GrantClock::time_point now);

}  // namespace samokoder::previews
