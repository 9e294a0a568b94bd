#include "security/masking.hpp"

#include <string>

#include <gtest/gtest.h>

namespace samokoder::security {
namespace {

// Visible characters: everything but the ellipsis.
std::size_t visible(const std::string& masked) {
  const std::string ellipsis = "\u2026";
  const std::size_t at = masked.find(ellipsis);
  return at == std::string::npos ? masked.size() : masked.size() - ellipsis.size();
}

TEST(MaskSecret, KeepsSchemePrefixAndLastFour) {
  EXPECT_EQ(mask_secret("sk-abcdefghijklmnopqrstuvwxyz"), "sk-\u2026wxyz");
  EXPECT_EQ(mask_secret("sk-proj-abcdefghijklmnopqrstuvwxyz"), "sk-\u2026wxyz");
  EXPECT_EQ(mask_secret("gsk-0123456789abcdefWXYZ"), "gsk-\u2026WXYZ");
}

TEST(MaskSecret, DropsLongPrefixesAndPrefixesOnMediumSecrets) {
  EXPECT_EQ(mask_secret("github_pat_0123456789abcdef"), "\u2026cdef");  // no '-' early on
  EXPECT_EQ(mask_secret("abcdefgh-ijklmnopqrstu"), "\u2026rstu");       // '-' too far in
  EXPECT_EQ(mask_secret("sk-abcdefghijk"), "\u2026hijk");               // 14 chars: tail only
}

TEST(MaskSecret, FullyMasksShortAndNonAsciiSecrets) {
  EXPECT_EQ(mask_secret(""), "****");
  EXPECT_EQ(mask_secret("sk-abc"), "****");
  EXPECT_EQ(mask_secret("12345678901"), "****");
  EXPECT_EQ(mask_secret("sk-abc def ghijklmnop"), "****");
  EXPECT_EQ(mask_secret("sk-\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82-abcdef"), "****");
  EXPECT_EQ(mask_secret(std::string("sk-abcdefgh\0ijklmnop", 20)), "****");
}

TEST(MaskSecret, NeverShowsMoreThanEightCharacters) {
  std::string secret = "sk-";
  for (int i = 0; i < 200; ++i) {
    secret += static_cast<char>('a' + i % 26);
    EXPECT_LE(visible(mask_secret(secret)), 8U) << secret;
  }
}

}  // namespace
}  // namespace samokoder::security
