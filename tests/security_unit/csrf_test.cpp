#include "security/csrf.hpp"

#include <string>

#include <gtest/gtest.h>

namespace samokoder::security {
namespace {

using std::chrono::seconds;

TEST(Csrf, GeneratedTokensVerifyAgainstThemselvesOnly) {
  auto token = generate_csrf_token();
  auto other = generate_csrf_token();
  ASSERT_TRUE(token.ok() && other.ok());
  EXPECT_EQ(token->size(), 43U);
  EXPECT_TRUE(verify_csrf(*token, *token));
  EXPECT_FALSE(verify_csrf(*token, *other));
  EXPECT_FALSE(verify_csrf(*token, ""));
  EXPECT_FALSE(verify_csrf("", ""));
  EXPECT_FALSE(verify_csrf(*token, token->substr(1)));
  std::string flipped = *token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify_csrf(*token, flipped));
}

TEST(Csrf, RefusesValuesNotShapedLikeATokenEvenWhenEqual) {
  const std::string spaces(43, ' ');
  EXPECT_FALSE(verify_csrf(spaces, spaces));
  const std::string short_value = "abc";
  EXPECT_FALSE(verify_csrf(short_value, short_value));
  const std::string with_semicolon = std::string(42, 'a') + ";";
  EXPECT_FALSE(verify_csrf(with_semicolon, with_semicolon));
}

TEST(SetCookie, FormatsAttributesInOrder) {
  CookieOptions access;
  access.max_age = seconds(900);
  EXPECT_EQ(format_set_cookie("access_token", "abc.def-ghi_j", access).value(),
            "access_token=abc.def-ghi_j; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Strict");

  CookieOptions csrf;
  csrf.http_only = false;
  csrf.secure = false;
  csrf.same_site = SameSite::kLax;
  csrf.path = "/api/v1";
  EXPECT_EQ(format_set_cookie("samokoder_csrf", "tok", csrf).value(),
            "samokoder_csrf=tok; Path=/api/v1; SameSite=Lax");

  CookieOptions clear;
  clear.max_age = seconds(0);
  EXPECT_EQ(format_set_cookie("refresh_token", "", clear).value(),
            "refresh_token=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
}

TEST(SetCookie, RefusesHeaderInjectionAndInvalidCharacters) {
  EXPECT_FALSE(format_set_cookie("", "v").ok());
  EXPECT_FALSE(format_set_cookie("a b", "v").ok());
  EXPECT_FALSE(format_set_cookie("a=b", "v").ok());
  EXPECT_FALSE(format_set_cookie("a;b", "v").ok());
  EXPECT_FALSE(format_set_cookie("n\u00e9", "v").ok());
  EXPECT_FALSE(format_set_cookie("n", "v; Domain=evil.example").ok());
  EXPECT_FALSE(format_set_cookie("n", "v\r\nSet-Cookie: x=y").ok());
  EXPECT_FALSE(format_set_cookie("n", "a b").ok());
  EXPECT_FALSE(format_set_cookie("n", "a,b").ok());
  EXPECT_FALSE(format_set_cookie("n", "\"quoted\"").ok());
  EXPECT_FALSE(format_set_cookie("n", "back\\slash").ok());
  EXPECT_FALSE(format_set_cookie("n", std::string("nul\0", 4)).ok());
  CookieOptions bad_path;
  bad_path.path = "/a;Secure";
  EXPECT_FALSE(format_set_cookie("n", "v", bad_path).ok());
  bad_path.path = "relative";
  EXPECT_FALSE(format_set_cookie("n", "v", bad_path).ok());
  bad_path.path = "/a\nb";
  EXPECT_FALSE(format_set_cookie("n", "v", bad_path).ok());
}

TEST(SetCookie, EnforcesAttributeRules) {
  CookieOptions options;
  options.max_age = seconds(-1);
  EXPECT_FALSE(format_set_cookie("n", "v", options).ok());
  options = {};
  options.secure = false;
  options.same_site = SameSite::kNone;
  EXPECT_FALSE(format_set_cookie("n", "v", options).ok());
  options = {};
  options.secure = false;
  EXPECT_FALSE(format_set_cookie(kCsrfCookieNameSecure, "v", options).ok());
  EXPECT_FALSE(format_set_cookie("__Secure-x", "v", options).ok());
  options = {};
  options.path = "/api";
  EXPECT_FALSE(format_set_cookie(kCsrfCookieNameSecure, "v", options).ok());
  options.path = "/";
  EXPECT_TRUE(format_set_cookie(kCsrfCookieNameSecure, "v", options).ok());
}

TEST(FindCookie, ReadsOneValueAndRefusesDuplicates) {
  EXPECT_EQ(find_cookie("a=1; samokoder_csrf=tok; b=2", "samokoder_csrf"), "tok");
  EXPECT_EQ(find_cookie("samokoder_csrf=tok", "samokoder_csrf"), "tok");
  EXPECT_EQ(find_cookie("a=1;b=\"quoted\"", "b"), "quoted");
  EXPECT_EQ(find_cookie("a=1; b=", "b"), "");
  EXPECT_FALSE(find_cookie("a=1; b=2", "c").has_value());
  EXPECT_FALSE(find_cookie("", "a").has_value());
  EXPECT_FALSE(find_cookie("xa=1; ax=2", "a").has_value());
  EXPECT_FALSE(find_cookie("samokoder_csrf=attacker; samokoder_csrf=ours", "samokoder_csrf").has_value());
}

}  // namespace
}  // namespace samokoder::security
