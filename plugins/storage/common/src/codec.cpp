#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <openssl/evp.h>
#include <sys/random.h>

#include <samokoder/storage_common/codec.hpp>

namespace samokoder::storage_common {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::size_t kMaxPathBytes = 4096;

void fill_random(unsigned char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::getrandom(out + done, size - done, 0);
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

}  // namespace

std::int64_t to_micros(sdk::Timestamp t) noexcept {
  return std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
}

sdk::Timestamp from_micros(std::int64_t us) noexcept {
  return sdk::Timestamp(std::chrono::duration_cast<sdk::Timestamp::duration>(std::chrono::microseconds(us)));
}

// Howard Hinnant's civil_from_days (http://howardhinnant.github.io/date_algorithms.html): exact for
// every day number an int64 of microseconds can produce, which std::chrono::year (+-32767) is not.
std::string utc_day(std::int64_t days_since_epoch) {
  const std::int64_t z = days_since_epoch + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;                                       // [0, 146096]
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const std::int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11], March first
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  std::array<char, 32> out{};
  const int n = std::snprintf(out.data(), out.size(), "%04lld-%02lld-%02lld", static_cast<long long>(year),
                              static_cast<long long>(month), static_cast<long long>(day));
  return std::string(out.data(), static_cast<std::size_t>(n));
}

std::string new_id(sdk::Timestamp now) {
  std::array<unsigned char, 16> bytes{};
  fill_random(bytes.data() + 6, bytes.size() - 6);
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::floor<std::chrono::milliseconds>(now.time_since_epoch()).count());
  for (int i = 0; i < 6; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  bytes[6] = static_cast<unsigned char>(0x70 | (bytes[6] & 0x0f));
  bytes[8] = static_cast<unsigned char>(0x80 | (bytes[8] & 0x3f));
  return hex_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

bool is_id(std::string_view s) noexcept {
  if (s.size() != 32) return false;
  for (const char c : s) {
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
  for (const char c : bytes) {
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

bool is_valid_text(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char lead = *p;
    if (lead == 0) return false;
    if (lead < 0x80) {
      ++p;
      continue;
    }
    // Sequence length and the smallest code point it may encode (anything smaller is overlong).
    std::size_t length = 0;
    std::uint32_t min = 0;
    std::uint32_t cp = 0;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2, min = 0x80, cp = lead & 0x1fu;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3, min = 0x800, cp = lead & 0x0fu;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4, min = 0x10000, cp = lead & 0x07u;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((p[k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[k] & 0x3fu);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += length;
  }
  return true;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

sdk::Status validate_path(std::string_view path) {
  if (path.empty() || path.size() > kMaxPathBytes) {
    return sdk::Status::invalid_argument("file path must be 1..4096 bytes long");
  }
  if (!is_valid_text(path)) return sdk::Status::invalid_argument("file path must be UTF-8 without NUL");
  if (path.front() == '/')
    return sdk::Status::invalid_argument("file path must be relative: " + std::string(path));
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return sdk::Status::invalid_argument("file path is not normalised (empty, \".\" or \"..\" segment): " +
                                           std::string(path));
    }
    start = end + 1;
  }
  return {};
}

sdk::Status validate_page_limit(std::uint32_t limit) {
  if (limit < 1 || limit > sdk::kMaxPageLimit) {
    return sdk::Status::invalid_argument("page limit must be 1.." + std::to_string(sdk::kMaxPageLimit) +
                                         ", got " + std::to_string(limit));
  }
  return {};
}

sdk::Status validate_llm_request(const sdk::NewLlmRequest& request) {
  const auto invalid = [](std::string message) { return sdk::Status::invalid_argument(std::move(message)); };
  if (request.provider.empty()) return invalid("LLM provider is required");
  if (request.model.empty()) return invalid("LLM model is required");
  if (request.status != "ok" && request.status != "error" && request.status != "timeout" &&
      request.status != "cancelled") {
    return invalid("LLM request status must be ok, error, timeout or cancelled");
  }
  if (request.prompt_tokens < 0 || request.completion_tokens < 0 || request.latency_ms < 0 ||
      request.cache_write_tokens < 0 || request.cost_micro_usd < 0) {
    return invalid("token counts, latency and cost must not be negative");
  }
  // Cache reads are a part of the prompt, so budgets that count prompt_tokens already include them.
  if (request.cached_prompt_tokens < 0 || request.cached_prompt_tokens > request.prompt_tokens) {
    return invalid("cached prompt tokens must be 0..prompt_tokens");
  }
  if (request.time_to_first_token_ms < -1) {
    return invalid("time to first token must be -1 (no token) or not negative");
  }
  if (request.attempt < 1) return invalid("LLM request attempt must be 1 or more");
  return {};
}

}  // namespace samokoder::storage_common
