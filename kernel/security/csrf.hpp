// CSRF protection for cookie-authenticated writes (double-submit cookie) and Set-Cookie formatting.
//
// Double submit: on login the server sets a random token in a cookie the page's script can read
// (not HttpOnly) and the client echoes it in the X-CSRF-Token header on every unsafe request. A
// cross-site page can make the browser send the cookie but can neither read it nor set the header, so
// verify_csrf(cookie, header) fails for a forged request. Requests authenticated by a Bearer header
// need no CSRF check: browsers never attach it on their own. With Secure cookies, name the cookie with
// the "__Host-" prefix (kCsrfCookieNameSecure) so a sibling subdomain cannot plant its own value.
//
// Ownership: free functions returning owned strings. Thread-safety: reentrant.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

inline constexpr std::string_view kCsrfCookieName = "samokoder_csrf";
inline constexpr std::string_view kCsrfCookieNameSecure = "__Host-samokoder_csrf";
inline constexpr std::string_view kCsrfHeaderName = "X-CSRF-Token";
inline constexpr std::size_t kCsrfTokenBytes = 32;

// A fresh token: 32 random bytes as base64url (43 characters).
sdk::Result<std::string> generate_csrf_token();

// True when both values are present, have the shape of a generated token, and are equal (compared in
// constant time).
bool verify_csrf(std::string_view cookie_value, std::string_view header_value) noexcept;

enum class SameSite { kStrict, kLax, kNone };

struct CookieOptions {
  bool http_only = true;
  bool secure = true;
  SameSite same_site = SameSite::kStrict;
  std::string path = "/";
  // Absent: a session cookie. Zero: delete the cookie now.
  std::optional<std::chrono::seconds> max_age;
};

// "name=value; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Strict". kInvalidArgument when the name
// is not an RFC 6265 token, the value has characters outside cookie-octet (no quotes, spaces, commas,
// semicolons, backslashes, controls), the path is not "/..." of printable ASCII without ';', Max-Age
// is negative, SameSite=None lacks Secure, or a "__Host-"/"__Secure-" name breaks its prefix rules.
sdk::Result<std::string> format_set_cookie(std::string_view name, std::string_view value,
                                           const CookieOptions& options = {});

// The value of cookie `name` in a Cookie request header ("a=1; b=2"). nullopt when it is absent or
// appears more than once: two values mean another origin planted one, and guessing which is ours
// would reopen the hole the check exists for.
std::optional<std::string_view> find_cookie(std::string_view cookie_header, std::string_view name) noexcept;

}  // namespace samokoder::security
