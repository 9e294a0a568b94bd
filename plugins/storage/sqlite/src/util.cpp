#include "util.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <openssl/evp.h>
#include <sys/random.h>

namespace samokoder::storage_sqlite {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void fill_random(unsigned char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = getrandom(out + done, size - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // getrandom only fails on a kernel without it (< 3.17), which Debian 12 does not run on.
      throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

sdk::Status bad_cursor() {
  return sdk::Status::invalid_argument("cursor was not issued by this list of storage.sqlite");
}

}  // namespace

std::int64_t to_micros(Timestamp t) noexcept {
  return std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
}

Timestamp from_micros(std::int64_t us) noexcept {
  return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::microseconds(us)));
}

std::string new_id(Timestamp now) {
  std::array<unsigned char, 16> bytes{};
  fill_random(bytes.data(), bytes.size());
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::floor<std::chrono::milliseconds>(now.time_since_epoch()).count());
  for (int i = 0; i < 6; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  bytes[6] = static_cast<unsigned char>(0x70 | (bytes[6] & 0x0f));
  bytes[8] = static_cast<unsigned char>(0x80 | (bytes[8] & 0x3f));
  std::string out;
  out.reserve(32);
  for (unsigned char b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0x0f]);
  }
  return out;
}

bool is_id(std::string_view s) noexcept {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (hex_value(c) < 0) return false;
  }
  return true;
}

std::string sha256_hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(sha256) failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), size));
}

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0x0f]);
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_valid_text(std::string_view s) noexcept {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

sdk::Status validate_path(std::string_view path) {
  if (path.empty() || path.size() > 4096) {
    return sdk::Status::invalid_argument("file path must be 1..4096 bytes long");
  }
  if (!is_valid_text(path)) return sdk::Status::invalid_argument("file path must be UTF-8 without NUL");
  if (path.front() == '/')
    return sdk::Status::invalid_argument("file path must be relative: " + std::string(path));
  for (std::string_view segment : split(path, '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return sdk::Status::invalid_argument("file path is not normalised (empty, \".\" or \"..\" segment): " +
                                           std::string(path));
    }
  }
  return {};
}

std::optional<std::string> prefix_upper_bound(std::string_view prefix) {
  std::string upper(prefix);
  while (!upper.empty()) {
    auto last = static_cast<unsigned char>(upper.back());
    if (last != 0xff) {
      upper.back() = static_cast<char>(last + 1);
      return upper;
    }
    upper.pop_back();
  }
  return std::nullopt;
}

std::string encode_time_id_cursor(std::string_view tag, std::int64_t micros, std::string_view id) {
  return std::string(tag) + "." + std::to_string(micros) + "." + std::string(id);
}

sdk::Result<TimeIdKey> decode_time_id_cursor(std::string_view tag, std::string_view cursor) {
  const auto parts = split(cursor, '.');
  if (parts.size() != 3 || parts[0] != tag || !is_id(parts[2])) return bad_cursor();
  const auto micros = parse_int(parts[1]);
  if (!micros) return bad_cursor();
  return TimeIdKey{*micros, std::string(parts[2])};
}

std::string encode_int_cursor(std::string_view tag, std::int64_t value) {
  return std::string(tag) + "." + std::to_string(value);
}

sdk::Result<std::int64_t> decode_int_cursor(std::string_view tag, std::string_view cursor) {
  const auto parts = split(cursor, '.');
  if (parts.size() != 2 || parts[0] != tag) return bad_cursor();
  const auto value = parse_int(parts[1]);
  if (!value) return bad_cursor();
  return *value;
}

std::string encode_text_cursor(std::string_view tag, std::string_view a, std::string_view b) {
  return std::string(tag) + "." + hex_encode(a) + "." + hex_encode(b);
}

sdk::Result<std::pair<std::string, std::string>> decode_text_cursor(std::string_view tag,
                                                                    std::string_view cursor) {
  const auto parts = split(cursor, '.');
  if (parts.size() != 3 || parts[0] != tag) return bad_cursor();
  auto a = hex_decode(parts[1]);
  auto b = hex_decode(parts[2]);
  if (!a || !b) return bad_cursor();
  return std::pair{std::move(*a), std::move(*b)};
}

sdk::Status validate_page(const sdk::PageRequest& page) {
  if (page.limit < 1 || page.limit > sdk::kMaxPageLimit) {
    return sdk::Status::invalid_argument("page limit must be 1.." + std::to_string(sdk::kMaxPageLimit) +
                                         ", got " + std::to_string(page.limit));
  }
  return {};
}

}  // namespace samokoder::storage_sqlite
