#include "security/encoding.hpp"

#include <string>

#include <gtest/gtest.h>

#include "security/random.hpp"

namespace samokoder::security {
namespace {

TEST(Base64Url, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode(std::string("\xfb\xff\xbf", 3)), "-_-_");
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    auto decoded = base64url_decode(base64url_encode(bytes));
    ASSERT_TRUE(decoded.ok()) << i;
    EXPECT_EQ(*decoded, bytes);
    bytes += static_cast<char>(i * 37 + 11);
  }
}

TEST(Base64Url, RejectsPaddingForeignAlphabetAndNonCanonicalForms) {
  for (const char* bad :
       {"Zg==", "Zm8=", "Zm9v+g", "Zm9v/g", "Zm 9v", "Zm9v\n", "Z", "Zm9vY", "Zh", "Zm9", "Zm-=", "%41"}) {
    EXPECT_FALSE(base64url_decode(bad).ok()) << bad;
  }
  EXPECT_FALSE(base64url_decode(std::string("Zg\0A", 4)).ok());
  // "Zh" and "Zm9" carry non-zero unused bits: another spelling of "f" / "fo".
  EXPECT_TRUE(base64url_decode("Zg").ok());
  EXPECT_TRUE(base64url_decode("Zm8").ok());
}

TEST(Hex, EncodesLowercaseAndDecodesEitherCase) {
  EXPECT_EQ(hex_encode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  auto decoded = hex_decode("0001ABff");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, std::string("\x00\x01\xab\xff", 4));
  EXPECT_FALSE(hex_decode("abc").ok());
  EXPECT_FALSE(hex_decode("zz").ok());
  EXPECT_FALSE(hex_decode("0x").ok());
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equals("", ""));
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "ab"));
  EXPECT_FALSE(constant_time_equals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(Utf8, AcceptsWellFormedAndRejectsMalformed) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"));  // "привет"
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));                                  // U+1F600
  EXPECT_EQ(utf8_length("\xd0\xbf\xd1\x80\xf0\x9f\x98\x80"
                        "a"),
            4U);
  for (const char* bad : {"\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                          "\xc3", "\xe2\x82", "a\xf0\x9f\x98"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << ::testing::PrintToString(std::string(bad));
  }
}

// is_valid_utf8 skips ASCII eight bytes at a time; every sequence, good or bad, must be judged the
// same at every offset of a word and in the tail after the last whole word. utf8_length decodes one
// code point at a time and is the reference.
TEST(Utf8, ValidityDoesNotDependOnWhereASequenceFalls) {
  for (const std::string sequence : {"\xd0\xbf", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x80", "\xc0\xaf",
                                     "\xed\xa0\x80", "\xff", "\xc3", "\xe2\x82", "\xf0\x9f\x98"}) {
    for (std::size_t length = 0; length <= 20; ++length) {
      for (std::size_t at = 0; at <= length; ++at) {
        std::string text(length, 'a');
        text.insert(at, sequence);
        ASSERT_EQ(is_valid_utf8(text), utf8_length(text).has_value())
            << ::testing::PrintToString(text) << " (sequence at offset " << at << ")";
      }
    }
  }
}

TEST(Random, BytesHaveTheRequestedLengthAndDiffer) {
  auto a = random_bytes(32);
  auto b = random_bytes(32);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->size(), 32U);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(random_bytes(0)->size(), 0U);
  EXPECT_EQ(random_bytes(kMaxRandomBytes + 1).status().code(), sdk::StatusCode::kInvalidArgument);
}

TEST(Random, TokensAreUnpaddedBase64UrlOfTheRightSize) {
  auto token = random_token();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 43U);
  auto decoded = base64url_decode(*token);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->size(), 32U);
  EXPECT_FALSE(random_token(8).ok());

  auto id = random_hex_id();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->size(), 32U);
  EXPECT_EQ(id->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(*id, *random_hex_id());
  EXPECT_FALSE(random_hex_id(4).ok());
}

}  // namespace
}  // namespace samokoder::security
