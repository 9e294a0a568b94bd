#include "security/password.hpp"

#include <string>

#include <gtest/gtest.h>

namespace samokoder::security {
namespace {

// Cheap parameters so the suite stays fast; the defaults are exercised where timing parity matters.
constexpr Argon2Params kFast{64, 1, 1};

TEST(PasswordHash, ProducesArgon2idPhcStringThatVerifies) {
  auto hash = hash_password("correct horse battery staple", kFast);
  ASSERT_TRUE(hash.ok()) << hash.status().to_string();
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=64,t=1,p=1$")) << *hash;
  auto good = verify_password("correct horse battery staple", *hash);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(*good);
  auto bad = verify_password("correct horse battery stapler", *hash);
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(*bad);
}

TEST(PasswordHash, SaltsEveryHash) {
  auto a = hash_password("same password", kFast);
  auto b = hash_password("same password", kFast);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(PasswordHash, DefaultParametersFollowOwasp) {
  const Argon2Params defaults;
  EXPECT_EQ(defaults.memory_kib, 19U * 1024);
  EXPECT_EQ(defaults.iterations, 2U);
  EXPECT_EQ(defaults.parallelism, 1U);
  auto hash = hash_password("a perfectly fine passphrase");
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
  EXPECT_FALSE(needs_rehash(*hash));
}

TEST(PasswordHash, RefusesParametersOutsideBounds) {
  EXPECT_EQ(hash_password("x", {4, 1, 1}).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash_password("x", {64, 0, 1}).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash_password("x", {64, 1, 0}).status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash_password("x", {kMaxArgon2MemoryKib + 1, 1, 1}).status().code(),
            sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(hash_password(std::string(kMaxPasswordBytes + 1, 'a'), kFast).status().code(),
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
    auto result = verify_password("whatever", bad);
    EXPECT_EQ(result.status().code(), sdk::StatusCode::kDataLoss) << bad;
  }
}

TEST(PasswordVerify, ErrorMessagesNeverContainThePasswordOrHash) {
  const std::string hash = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
  auto result = verify_password("hunter2-secret", hash);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message().find("hunter2"), std::string::npos);
  EXPECT_EQ(result.status().message().find("c2FsdHNhbHQ"), std::string::npos);
}

TEST(PasswordVerify, OverlongPasswordIsAMismatchNotAnError) {
  auto hash = hash_password("short", kFast);
  ASSERT_TRUE(hash.ok());
  auto result = verify_password(std::string(kMaxPasswordBytes + 1, 'a'), *hash);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(*result);
}

TEST(NeedsRehash, FlagsAnyParameterChange) {
  auto hash = hash_password("passphrase here", kFast);
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(needs_rehash(*hash, kFast));
  EXPECT_TRUE(needs_rehash(*hash, {128, 1, 1}));
  EXPECT_TRUE(needs_rehash(*hash, {64, 2, 1}));
  EXPECT_TRUE(needs_rehash(*hash, {64, 1, 2}));
  EXPECT_TRUE(needs_rehash(*hash));
  EXPECT_TRUE(needs_rehash("not a hash", kFast));
}

TEST(DummyHash, DefaultDummyHashMatchesDefaultParams) {
  // Timing parity for unknown users only holds if the dummy costs what a real default hash costs.
  EXPECT_FALSE(needs_rehash(dummy_hash()));
  auto result = verify_password("any password at all", dummy_hash());
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(*result);
}

TEST(DummyHash, IsMadeWithTheRequestedParamsAndCached) {
  const std::string& first = dummy_hash(kFast);
  EXPECT_FALSE(needs_rehash(first, kFast));
  EXPECT_EQ(&first, &dummy_hash(kFast));
  auto result = verify_password("", first);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(*result);
}

TEST(PasswordPolicy, AcceptsReasonablePasswords) {
  EXPECT_TRUE(check_password_policy("tr0ub4dor&3-xyz").ok());
  EXPECT_TRUE(check_password_policy("correct horse battery staple").ok());
  // Length counts code points: 8 Cyrillic letters are 16 bytes but 8 characters.
  EXPECT_TRUE(check_password_policy("\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c\xd0\xb8\xd0\xba").ok());
  EXPECT_TRUE(check_password_policy(std::string(128, 'x').replace(0, 3, "abc")).ok());
}

TEST(PasswordPolicy, RefusesTooShortAndTooLong) {
  auto short_pw = check_password_policy("Ab1!xyz");
  EXPECT_EQ(short_pw.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(short_pw.message().find("at least 8"), std::string::npos);
  auto long_pw = check_password_policy(std::string(129, 'q'));
  EXPECT_EQ(long_pw.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(long_pw.message().find("at most 128"), std::string::npos);
  // 4 emoji are 16 bytes but only 4 characters.
  EXPECT_FALSE(
      check_password_policy("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80").ok());
}

TEST(PasswordPolicy, RefusesCommonPasswordsCaseInsensitively) {
  for (const char* common : {"password", "Password", "PASSWORD1", "12345678", "qwertyuiop", "iloveyou",
                             "Sunshine", "trustno1", "changeme", "samokoder"}) {
    auto status = check_password_policy(common);
    EXPECT_EQ(status.code(), sdk::StatusCode::kInvalidArgument) << common;
    EXPECT_NE(status.message().find("common"), std::string::npos) << common;
  }
  EXPECT_GE(common_password_count(), 300U);
  EXPECT_TRUE(is_common_password("FootBall"));
  EXPECT_FALSE(is_common_password("footballs-are-round"));
}

TEST(PasswordPolicy, RefusesInvalidUtf8AndNul) {
  EXPECT_EQ(check_password_policy("abcdefgh\xff").code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(check_password_policy("abcd\xc0\xafxyz").code(), sdk::StatusCode::kInvalidArgument);
  auto nul = check_password_policy(std::string("abcd\0efghij", 11));
  EXPECT_EQ(nul.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(nul.message().find("NUL"), std::string::npos);
}

}  // namespace
}  // namespace samokoder::security
