// auth.apitoken's token shape, its storage hash and the comparison (src/token.hpp).
#include "token.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace samokoder::auth_apitoken {
namespace {

TEST(MakeToken, HasThePrefixAndFortyThreeBase64UrlCharacters) {
  auto token = make_token();
  ASSERT_TRUE(token.ok()) << token.status().to_string();
  EXPECT_EQ(token->size(), kTokenChars);
  EXPECT_TRUE(token->starts_with("skp_")) << *token;
  EXPECT_TRUE(well_formed(*token)) << *token;
  EXPECT_EQ(token->find_first_of("+/="), std::string::npos) << "base64url without padding: " << *token;
}

TEST(MakeToken, NeverRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto token = make_token();
    ASSERT_TRUE(token.ok());
    EXPECT_TRUE(seen.insert(*token).second) << "repeated: " << *token;
  }
}

TEST(WellFormed, RefusesEveryOtherShape) {
  const std::string body(kBodyChars, 'A');
  EXPECT_TRUE(well_formed("skp_" + body));
  EXPECT_TRUE(well_formed("skp_" + std::string(kBodyChars - 2, 'z') + "-_"));
  EXPECT_FALSE(well_formed(""));
  EXPECT_FALSE(well_formed("skp_"));
  EXPECT_FALSE(well_formed("skp_" + body.substr(1))) << "one character short";
  EXPECT_FALSE(well_formed("skp_" + body + "A")) << "one character long";
  EXPECT_FALSE(well_formed("SKP_" + body)) << "the prefix is case-sensitive";
  EXPECT_FALSE(well_formed("pat_" + body));
  EXPECT_FALSE(well_formed("skp_" + body.substr(1) + "+")) << "standard base64 is not base64url";
  EXPECT_FALSE(well_formed("skp_" + body.substr(1) + "="));
  EXPECT_FALSE(well_formed("skp_" + body.substr(1) + std::string(1, '\0')));
  EXPECT_FALSE(well_formed("eyJhbGciOiJIUzI1NiJ9.e30.sig")) << "a JWT is not a token";
}

TEST(Sha256Hex, MatchesKnownAnswers) {
  // FIPS 180-2 examples.
  EXPECT_EQ(*sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(*sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto token = make_token();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*sha256_hex(*token), *sha256_hex(*token)) << "deterministic, so a token is found by its hash";
  EXPECT_EQ(sha256_hex(*token)->size(), 64u);
}

TEST(ConstantTimeEqual, ComparesLengthAndEveryByte) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("same", "same"));
  EXPECT_FALSE(constant_time_equal("same", "samf"));
  EXPECT_FALSE(constant_time_equal("same", "sam"));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace samokoder::auth_apitoken
