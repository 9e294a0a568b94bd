#include "security/csrf.hpp"

#include <algorithm>

#include "security/encoding.hpp"
#include "security/random.hpp"

namespace samokoder::security {
namespace {

// RFC 9110 tchar, which RFC 6265 uses for cookie names.
bool is_token_char(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 6265 cookie-octet: printable US-ASCII except space, DQUOTE, comma, semicolon and backslash.
bool is_cookie_octet(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u <= 0x2B) || (u >= 0x2D && u <= 0x3A) || (u >= 0x3C && u <= 0x5B) ||
         (u >= 0x5D && u <= 0x7E);
}

bool is_base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

sdk::Result<std::string> generate_csrf_token() {
  return random_token(kCsrfTokenBytes);
}

bool verify_csrf(std::string_view cookie_value, std::string_view header_value) noexcept {
  // base64url of 32 bytes is 43 characters; anything else was not made by generate_csrf_token.
  constexpr std::size_t kTokenChars = (kCsrfTokenBytes * 4 + 2) / 3;
  if (cookie_value.size() != kTokenChars || header_value.size() != kTokenChars) return false;
  if (!std::all_of(cookie_value.begin(), cookie_value.end(), is_base64url_char)) return false;
  return constant_time_equals(cookie_value, header_value);
}

sdk::Result<std::string> format_set_cookie(std::string_view name, std::string_view value,
                                           const CookieOptions& options) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
    return sdk::Status::invalid_argument("cookie name must be a non-empty RFC 6265 token");
  }
  if (!std::all_of(value.begin(), value.end(), is_cookie_octet)) {
    return sdk::Status::invalid_argument("cookie '" + std::string(name) +
                                         "' value has characters outside RFC 6265 cookie-octet");
  }
  const bool path_ok = !options.path.empty() && options.path.front() == '/' &&
                       std::all_of(options.path.begin(), options.path.end(),
                                   [](char c) { return c >= 0x20 && c < 0x7F && c != ';'; });
  if (!path_ok)
    return sdk::Status::invalid_argument(
        "cookie path must start with '/' and be printable ASCII without ';'");
  if (options.max_age && options.max_age->count() < 0) {
    return sdk::Status::invalid_argument("cookie Max-Age must not be negative");
  }
  if (options.same_site == SameSite::kNone && !options.secure) {
    return sdk::Status::invalid_argument("cookie with SameSite=None must be Secure");
  }
  if ((name.starts_with("__Secure-") || name.starts_with("__Host-")) && !options.secure) {
    return sdk::Status::invalid_argument("cookie '" + std::string(name) + "' needs the Secure attribute");
  }
  if (name.starts_with("__Host-") && options.path != "/") {
    return sdk::Status::invalid_argument("cookie '" + std::string(name) + "' must have Path=/");
  }
  std::string out(name);
  out += '=';
  out += value;
  out += "; Path=";
  out += options.path;
  if (options.max_age) out += "; Max-Age=" + std::to_string(options.max_age->count());
  if (options.http_only) out += "; HttpOnly";
  if (options.secure) out += "; Secure";
  switch (options.same_site) {
    case SameSite::kStrict:
      out += "; SameSite=Strict";
      break;
    case SameSite::kLax:
      out += "; SameSite=Lax";
      break;
    case SameSite::kNone:
      out += "; SameSite=None";
      break;
  }
  return out;
}

std::optional<std::string_view> find_cookie(std::string_view cookie_header, std::string_view name) noexcept {
  std::optional<std::string_view> found;
  std::size_t start = 0;
  while (start <= cookie_header.size()) {
    const std::size_t semi = cookie_header.find(';', start);
    const std::string_view pair =
        trim_ows(cookie_header.substr(start, semi == std::string_view::npos ? semi : semi - start));
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && trim_ows(pair.substr(0, eq)) == name) {
      if (found) return std::nullopt;
      std::string_view value = trim_ows(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      found = value;
    }
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  return found;
}

}  // namespace samokoder::security
