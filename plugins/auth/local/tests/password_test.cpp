// auth.local's Argon2id hashing, decoy hash and password policy (src/password.hpp), compiled from the
// plugin's own sources.
#include "password.hpp"

#include <string>

#include <gtest/gtest.h>

namespace samokoder::auth_local {
namespace {

// Cheap parameters so the suite stays fast; the defaults are exercised where their form matters.
constexpr Argon2Params kFast{64, 1, 1};

TEST(PasswordHash, ProducesArgon2idPhcStringThatVerifies) {
  auto made = hash("correct horse battery staple", kFast);
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  EXPECT_TRUE(made->starts_with("$argon2id$v=19$m=64,t=1,p=1$")) << *made;
  auto good = verify("correct horse battery staple", *made);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(*good);
  auto bad = verify("correct horse battery stapler", *made);
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(*bad);
}

TEST(PasswordHash, SaltsEveryHash) {
  auto a = hash("same password", kFast);
  auto b = hash("same password", kFast);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(PasswordHash, DefaultParametersFollowOwasp) {
  const Argon2Params defaults;
  EXPECT_EQ(defaults.memory_kib, 19U * 1024);
  EXPECT_EQ(defaults.iterations, 2U);
  EXPECT_EQ(defaults.parallelism, 1U);
  auto made = hash("a perfectly fine passphrase", defaults);
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(made->starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << *made;
  EXPECT_EQ(params_of(*made), defaults);
}

TEST(PasswordHash, RefusesParametersOutsideBounds) {
  EXPECT_EQ(hash("x", {4, 1, 1}).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash("x", {64, 0, 1}).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash("x", {64, 1, 0}).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash("x", {kMaxMemoryKib + 1, 1, 1}).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash(std::string(kMaxSecretBytes + 1, 'a'), kFast).status().code(),
            sdk::StatusCode::kInvalidArgument);
}

TEST(PasswordVerify, ReportsCorruptOrHostileHashesAsDataLoss) {
  for (const char* bad : {"", "plaintext", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
                          "$argon2id$v=19$m=064,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=19$m=64,t=1,p=1$c2Fs!HNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          // a planted hash asking for 4 GiB of memory or a billion passes
                          "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=19$m=64,t=1000000000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}) {
    auto result = verify("whatever", bad);
    EXPECT_EQ(result.status().code(), sdk::StatusCode::kDataLoss) << bad;
  }
}

TEST(PasswordVerify, ErrorMessagesNeverContainThePasswordOrHash) {
  const std::string planted = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
  auto result = verify("hunter2-secret", planted);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message().find("hunter2"), std::string::npos);
  EXPECT_EQ(result.status().message().find("c2FsdHNhbHQ"), std::string::npos);
}

TEST(PasswordVerify, OverlongPasswordIsAMismatchNotAnError) {
  auto made = hash("short", kFast);
  ASSERT_TRUE(made.ok());
  auto result = verify(std::string(kMaxSecretBytes + 1, 'a'), *made);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(*result);
}

TEST(ParamsOf, ReadsTheParametersAStoredHashWasMadeWith) {
  auto made = hash("passphrase here", kFast);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(params_of(*made), kFast);
  EXPECT_NE(params_of(*made), (Argon2Params{128, 1, 1}));
  EXPECT_EQ(params_of("not a hash"), std::nullopt);
  EXPECT_EQ(params_of("$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"), std::nullopt);
}

TEST(DecoyHash, HasTheRequestedParametersAndMatchesNoPassword) {
  // Timing parity for unknown accounts holds only if the decoy costs what a real hash costs.
  auto decoy = decoy_hash(kFast);
  ASSERT_TRUE(decoy.ok()) << decoy.status().to_string();
  EXPECT_EQ(params_of(*decoy), kFast);
  for (const char* guess : {"", "password", "self-test password", "correct horse battery staple"}) {
    auto result = verify(guess, *decoy);
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    EXPECT_FALSE(*result) << guess;
  }
}

TEST(DecoyHash, IsARealArgon2idStringWithFreshRandomness) {
  const Argon2Params defaults;
  auto a = decoy_hash(defaults);
  auto b = decoy_hash(defaults);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(a->starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << *a;
  // Same shape as what hash() writes: 16-byte salt and 32-byte digest, unpadded base64.
  auto real = hash("x", kFast);
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(a->size() - a->rfind('$'), real->size() - real->rfind('$'));
  EXPECT_EQ(decoy_hash({4, 1, 1}).status().code(), sdk::StatusCode::kInvalidArgument);
}

TEST(PasswordPolicy, AcceptsReasonablePasswords) {
  EXPECT_TRUE(check_policy("tr0ub4dor&3-xyz").ok());
  EXPECT_TRUE(check_policy("correct horse battery staple").ok());
  // Length counts code points: 8 Cyrillic letters are 16 bytes but 8 characters.
  EXPECT_TRUE(check_policy("\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c\xd0\xb8\xd0\xba").ok());
  EXPECT_TRUE(check_policy(std::string(128, 'x').replace(0, 3, "abc")).ok());
}

TEST(PasswordPolicy, RefusesTooShortAndTooLong) {
  auto short_pw = check_policy("Ab1!xyz");
  EXPECT_EQ(short_pw.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(short_pw.message().find("8 to 128"), std::string::npos) << short_pw.message();
  auto long_pw = check_policy(std::string(129, 'q'));
  EXPECT_EQ(long_pw.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(long_pw.message().find("8 to 128"), std::string::npos) << long_pw.message();
  // 4 emoji are 16 bytes but only 4 characters.
  EXPECT_FALSE(check_policy("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80").ok());
}

TEST(PasswordPolicy, RefusesCommonPasswordsCaseInsensitively) {
  for (const char* common : {"password", "Password", "PASSWORD1", "12345678", "qwertyuiop", "iloveyou",
                             "Sunshine", "trustno1", "changeme", "samokoder"}) {
    auto status = check_policy(common);
    EXPECT_EQ(status.code(), sdk::StatusCode::kInvalidArgument) << common;
    EXPECT_NE(status.message().find("common"), std::string::npos) << common;
  }
  EXPECT_TRUE(is_common_password("FootBall"));
  EXPECT_FALSE(is_common_password("footballs-are-round"));
}

TEST(PasswordPolicy, RefusesInvalidUtf8AndNul) {
  EXPECT_EQ(check_policy("abcdefgh\xff").code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(check_policy("abcd\xc0\xafxyz").code(), sdk::StatusCode::kInvalidArgument);
  auto nul = check_policy(std::string("abcd\0efghij", 11));
  EXPECT_EQ(nul.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(nul.message().find("NUL"), std::string::npos);
}

}  // namespace
}  // namespace samokoder::auth_local
