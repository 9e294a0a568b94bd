#include "security/masking.hpp"

#include <algorithm>

namespace samokoder::security {
namespace {

constexpr std::size_t kTailChars = 4;
constexpr std::size_t kMinLengthForTail = 12;
constexpr std::size_t kMinLengthForPrefix = 16;
constexpr std::size_t kMaxPrefixChars = 4;  // "sk-" and the like; "sk-proj-" keeps only "sk-"
constexpr std::string_view kEllipsis = "\u2026";

}  // namespace

std::string mask_secret(std::string_view secret) {
  const bool printable =
      std::all_of(secret.begin(), secret.end(), [](char c) { return c > ' ' && c < 0x7F; });
  if (!printable || secret.size() < kMinLengthForTail) return std::string(kFullyMasked);
  std::string out;
  if (secret.size() >= kMinLengthForPrefix) {
    const std::size_t dash = secret.find('-');
    if (dash != std::string_view::npos && dash > 0 && dash < kMaxPrefixChars)
      out = secret.substr(0, dash + 1);
  }
  out += kEllipsis;
  out += secret.substr(secret.size() - kTailChars);
  return out;
}

}  // namespace samokoder::security
