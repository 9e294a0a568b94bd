#include "security/encoding.hpp"

#include <array>
#include <cstdint>
#include <cstring>

#include <openssl/crypto.h>

namespace samokoder::security {
namespace {

constexpr std::string_view kBase64UrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::uint8_t kInvalid = 0xFF;

constexpr std::array<std::uint8_t, 256> make_base64url_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& entry : table)
    entry = kInvalid;
  for (std::size_t i = 0; i < kBase64UrlAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}
constexpr auto kBase64UrlTable = make_base64url_table();

constexpr std::uint8_t hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<std::uint8_t>(c - 'A' + 10);
  return kInvalid;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kBase64UrlAlphabet[(v >> 18) & 63];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
    out += kBase64UrlAlphabet[(v >> 6) & 63];
    out += kBase64UrlAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = at(i) << 16;
    out += kBase64UrlAlphabet[(v >> 18) & 63];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out += kBase64UrlAlphabet[(v >> 18) & 63];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
    out += kBase64UrlAlphabet[(v >> 6) & 63];
  }
  return out;
}

sdk::Result<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return sdk::Status::invalid_argument("base64url: a length of " + std::to_string(text.size()) +
                                         " characters cannot encode whole bytes");
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::uint8_t v = kBase64UrlTable[static_cast<unsigned char>(text[i])];
    if (v == kInvalid) {
      return sdk::Status::invalid_argument("base64url: invalid character at offset " + std::to_string(i) +
                                           " (padding and the +/ alphabet are not accepted)");
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // The bits left over must be zero, or two spellings would decode to the same bytes.
  if (bits > 0 && (acc & ((1U << bits) - 1)) != 0) {
    return sdk::Status::invalid_argument("base64url: non-zero trailing bits (non-canonical encoding)");
  }
  return out;
}

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 0x0F];
  }
  return out;
}

sdk::Result<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return sdk::Status::invalid_argument("hex: odd number of digits");
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const std::uint8_t hi = hex_value(text[i]);
    const std::uint8_t lo = hex_value(text[i + 1]);
    if (hi == kInvalid || lo == kInvalid) {
      return sdk::Status::invalid_argument("hex: invalid digit near offset " + std::to_string(i));
    }
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

bool constant_time_equals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<char32_t> utf8_next(std::string_view text, std::size_t& pos) noexcept {
  if (pos >= text.size()) return std::nullopt;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(pos);
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (lead < 0x80) {
    ++pos;
    return static_cast<char32_t>(lead);
  } else if ((lead & 0xE0) == 0xC0) {
    len = 2;
    cp = lead & 0x1F;
    min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3;
    cp = lead & 0x0F;
    min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4;
    cp = lead & 0x07;
    min = 0x10000;
  } else {
    return std::nullopt;  // a continuation byte or 0xF8..0xFF in lead position
  }
  if (text.size() - pos < len) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char c = byte(pos + k);
    if ((c & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  pos += len;
  return cp;
}

bool is_valid_utf8(std::string_view text) noexcept {
  constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
  std::size_t pos = 0;
  while (pos < text.size()) {
    // Runs of ASCII, most of a source file or a JSON body, eight bytes at a time; the decoder takes
    // over from the word that holds a byte >= 0x80.
    for (std::uint64_t word; pos + sizeof(word) <= text.size(); pos += sizeof(word)) {
      std::memcpy(&word, text.data() + pos, sizeof(word));
      if ((word & kHighBits) != 0) break;
    }
    if (pos < text.size() && !utf8_next(text, pos)) return false;
  }
  return true;
}

std::optional<std::size_t> utf8_length(std::string_view text) noexcept {
  std::size_t pos = 0;
  std::size_t count = 0;
  while (pos < text.size()) {
    if (!utf8_next(text, pos)) return std::nullopt;
    ++count;
  }
  return count;
}

}  // namespace samokoder::security
