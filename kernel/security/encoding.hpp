// Byte encodings with strict decoders, constant-time comparison and UTF-8 validation.
//
// The decoders accept exactly one spelling of each value: base64url without padding and with zero
// unused trailing bits, hex with an even number of digits. A signature or token therefore has one
// valid text form, and a tampered spelling of the same bytes is rejected rather than silently accepted.
//
// Ownership: free functions taking views and returning owned strings.
// Thread-safety: all functions are reentrant.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

// RFC 4648 section 5 alphabet (A-Z a-z 0-9 - _), no '=' padding.
std::string base64url_encode(std::string_view bytes);

// Inverse of base64url_encode. Fails with kInvalidArgument on any character outside the alphabet
// (including '=', '+', '/', whitespace), a length of 1 mod 4, or non-zero unused trailing bits.
sdk::Result<std::string> base64url_decode(std::string_view text);

// Lowercase hex.
std::string hex_encode(std::string_view bytes);

// Accepts upper- or lowercase digits; fails with kInvalidArgument on odd length or a non-hex character.
sdk::Result<std::string> hex_decode(std::string_view text);

// True when a and b hold the same bytes. The time taken depends on the length only, never on where
// the first difference is; a length mismatch returns false at once (lengths are not secret here).
bool constant_time_equals(std::string_view a, std::string_view b) noexcept;

// True when `text` is well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

// Number of code points in `text`, or nullopt when it is not well-formed UTF-8.
std::optional<std::size_t> utf8_length(std::string_view text) noexcept;

// Decodes the code point starting at text[pos] and advances pos past it; nullopt (pos unchanged)
// when the bytes there are not a well-formed UTF-8 sequence.
std::optional<char32_t> utf8_next(std::string_view text, std::size_t& pos) noexcept;

}  // namespace samokoder::security
