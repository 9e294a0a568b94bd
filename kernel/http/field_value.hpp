// Helpers for HTTP field values (RFC 9110, section 5.5) that the kernel's header parsers share: the API's
// Authorization and cookie reading, the preview proxy's cookies, the console's Accept-Encoding.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace samokoder::http {

// The value without the optional whitespace (spaces and horizontal tabs) around it.
constexpr std::string_view trim_ows(std::string_view value) noexcept {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  return value;
}

}  // namespace samokoder::http
