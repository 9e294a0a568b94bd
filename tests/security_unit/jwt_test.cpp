#include "security/jwt.hpp"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "security/encoding.hpp"

namespace samokoder::security {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;
using std::chrono::system_clock;

const std::string kSecretA(32, 'A');  // length is all add_key checks; validate_secret is separate
const std::string kSecretB = "0123456789abcdef0123456789ABCDEF";
constexpr std::int64_t kNow = 1'700'000'000;

system_clock::time_point at(std::int64_t epoch_seconds) {
  return system_clock::time_point(seconds(epoch_seconds));
}

std::string bytes_from_hex(std::string_view hex) {
  return hex_decode(hex).value();
}

json claims(std::int64_t iat = kNow, std::int64_t exp = kNow + 900, std::string typ = "access") {
  return {{"sub", "user-42"}, {"jti", "a1b2c3"}, {"typ", typ}, {"iat", iat}, {"exp", exp}};
}

JwtKeyRing ring_with(std::string kid, const std::string& secret, seconds leeway = seconds(0)) {
  JwtKeyRing ring(leeway);
  EXPECT_TRUE(ring.add_key(std::move(kid), secret).ok());
  return ring;
}

// Builds a token by hand from raw header/payload text, signed with `secret`.
std::string hand_token(std::string_view header, std::string_view payload, std::string_view secret) {
  const std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(hmac_sha256(secret, input).value());
}

// RFC 4231 section 4: HMAC-SHA256 test cases 1, 2, 3, 4, 6 and 7.
TEST(HmacSha256, MatchesRfc4231Vectors) {
  struct Case {
    std::string key, data, mac;
  };
  const Case cases[] = {
      {std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {bytes_from_hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {std::string(131, '\xaa'),
       "This is a test using a larger than block-size key and a larger than block-size data. The key needs "
       "to "
       "be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const Case& c : cases) {
    auto mac = hmac_sha256(c.key, c.data);
    ASSERT_TRUE(mac.ok());
    EXPECT_EQ(hex_encode(*mac), c.mac);
  }
}

// RFC 7515 appendix A.1: the HS256 example's signature over its exact signing input.
TEST(HmacSha256, ReproducesTheRfc7515Hs256ExampleSignature) {
  const std::string key =
      base64url_decode(
          "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
          .value();
  const std::string input =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
  EXPECT_EQ(base64url_encode(hmac_sha256(key, input).value()), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");

  // The same token is a valid HS256 JWS but not one of ours: no kid, no sub/jti/typ/iat.
  JwtKeyRing ring;
  ASSERT_TRUE(ring.add_key("k1", key).ok());
  auto result = ring.verify(input + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "access", at(1300819000));
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kUnauthenticated);
}

TEST(Jwt, HandBuiltTokenVerifies) {
  const std::string token = hand_token(R"({"alg":"HS256","typ":"JWT","kid":"k1"})",
                                       R"({"sub":"user-42","jti":"j-1","typ":"access","iat":1700000000,)"
                                       R"("exp":1700000900,"role":"admin"})",
                                       kSecretA);
  auto ring = ring_with("k1", kSecretA);
  auto result = ring.verify(token, "access", at(kNow + 10));
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ((*result)["sub"], "user-42");
  EXPECT_EQ((*result)["role"], "admin");
}

TEST(Jwt, SignProducesTheDocumentedHeaderAndRoundTrips) {
  auto ring = ring_with("k1", kSecretA);
  auto token = ring.sign(claims());
  ASSERT_TRUE(token.ok()) << token.status().to_string();
  const std::string header = base64url_decode(token->substr(0, token->find('.'))).value();
  EXPECT_EQ(header, R"({"alg":"HS256","typ":"JWT","kid":"k1"})");
  auto verified = ring.verify(*token, "access", at(kNow));
  ASSERT_TRUE(verified.ok()) << verified.status().to_string();
  EXPECT_EQ(*verified, claims());
}

TEST(Jwt, SignRefusesClaimsVerifyWouldReject) {
  auto ring = ring_with("k1", kSecretA);
  for (const char* missing : {"sub", "jti", "typ", "iat", "exp"}) {
    json c = claims();
    c.erase(missing);
    EXPECT_EQ(ring.sign(c).status().code(), sdk::StatusCode::kInvalidArgument) << missing;
  }
  EXPECT_FALSE(ring.sign(json::array()).ok());
  EXPECT_FALSE(ring.sign(claims(kNow, kNow)).ok());  // exp must follow iat
  json c = claims();
  c["sub"] = 42;
  EXPECT_FALSE(ring.sign(c).ok());
  c = claims();
  c["blob"] = std::string(5000, 'x');
  EXPECT_FALSE(ring.sign(c).ok());
  EXPECT_EQ(JwtKeyRing().sign(claims()).status().code(), sdk::StatusCode::kFailedPrecondition);
}

TEST(Jwt, RejectsAlgNoneAndOtherAlgorithms) {
  auto ring = ring_with("k1", kSecretA);
  const std::string payload = claims().dump();
  // alg none with an empty signature, and with a signature part present.
  const std::string none =
      base64url_encode(R"({"alg":"none","typ":"JWT","kid":"k1"})") + "." + base64url_encode(payload) + ".";
  EXPECT_EQ(ring.verify(none, "access", at(kNow)).status().code(), sdk::StatusCode::kUnauthenticated);
  EXPECT_FALSE(
      ring.verify(hand_token(R"({"alg":"none","kid":"k1"})", payload, kSecretA), "access", at(kNow)).ok());
  EXPECT_FALSE(
      ring.verify(hand_token(R"({"alg":"HS512","kid":"k1"})", payload, kSecretA), "access", at(kNow)).ok());
  EXPECT_FALSE(
      ring.verify(hand_token(R"({"alg":"hs256","kid":"k1"})", payload, kSecretA), "access", at(kNow)).ok());
  EXPECT_FALSE(
      ring.verify(hand_token(R"({"alg":["HS256"],"kid":"k1"})", payload, kSecretA), "access", at(kNow)).ok());
  EXPECT_FALSE(ring.verify(hand_token(R"({"kid":"k1"})", payload, kSecretA), "access", at(kNow)).ok());
  // A duplicated alg key could be read either way by different parsers: refused outright.
  EXPECT_FALSE(ring.verify(hand_token(R"({"alg":"none","alg":"HS256","kid":"k1"})", payload, kSecretA),
                           "access", at(kNow))
                   .ok());
  EXPECT_FALSE(ring.verify(hand_token(R"({"alg":"HS256","kid":"k1","crit":["exp"]})", payload, kSecretA),
                           "access", at(kNow))
                   .ok());
  EXPECT_FALSE(ring.verify(hand_token(R"({"alg":"HS256","kid":"k1","typ":"JOSE+JSON"})", payload, kSecretA),
                           "access", at(kNow))
                   .ok());
}

TEST(Jwt, RejectsMissingUnknownAndMismatchedKeyIds) {
  auto ring = ring_with("k1", kSecretA);
  ASSERT_TRUE(ring.add_key("k2", kSecretB).ok());
  const std::string payload = claims().dump();
  EXPECT_FALSE(ring.verify(hand_token(R"({"alg":"HS256"})", payload, kSecretA), "access", at(kNow)).ok());
  EXPECT_FALSE(
      ring.verify(hand_token(R"({"alg":"HS256","kid":"k9"})", payload, kSecretA), "access", at(kNow)).ok());
  EXPECT_FALSE(
      ring.verify(hand_token(R"({"alg":"HS256","kid":7})", payload, kSecretA), "access", at(kNow)).ok());
  // Signed with k1's secret but claiming to be k2.
  auto mismatched =
      ring.verify(hand_token(R"({"alg":"HS256","kid":"k2"})", payload, kSecretA), "access", at(kNow));
  EXPECT_EQ(mismatched.status().code(), sdk::StatusCode::kUnauthenticated);
  EXPECT_TRUE(
      ring.verify(hand_token(R"({"alg":"HS256","kid":"k2"})", payload, kSecretB), "access", at(kNow)).ok());
}

TEST(Jwt, KeyRotationKeepsOldTokensValidUntilTheKeyIsRemoved) {
  auto ring = ring_with("2024", kSecretA);
  auto old_token = ring.sign(claims());
  ASSERT_TRUE(old_token.ok());
  ASSERT_TRUE(ring.add_key("2025", kSecretB).ok());
  EXPECT_EQ(ring.current_key_id(), "2024");  // adding does not switch
  ASSERT_TRUE(ring.set_current("2025").ok());
  auto new_token = ring.sign(claims());
  ASSERT_TRUE(new_token.ok());
  EXPECT_NE(base64url_decode(new_token->substr(0, new_token->find('.'))).value().find("\"kid\":\"2025\""),
            std::string::npos);
  EXPECT_TRUE(ring.verify(*old_token, "access", at(kNow)).ok());
  EXPECT_TRUE(ring.verify(*new_token, "access", at(kNow)).ok());
  EXPECT_EQ(ring.remove_key("2025").code(), sdk::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ring.remove_key("2024").ok());
  EXPECT_FALSE(ring.verify(*old_token, "access", at(kNow)).ok());
  EXPECT_TRUE(ring.verify(*new_token, "access", at(kNow)).ok());
}

TEST(Jwt, KeyRingValidatesKeys) {
  JwtKeyRing ring;
  EXPECT_EQ(ring.add_key("k1", "short").code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.add_key("bad id", kSecretA).code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.add_key("", kSecretA).code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.add_key("k\"1", kSecretA).code(), sdk::StatusCode::kInvalidArgument);
  ASSERT_TRUE(ring.add_key("k1", kSecretA).ok());
  EXPECT_EQ(ring.add_key("k1", kSecretB).code(), sdk::StatusCode::kAlreadyExists);
  EXPECT_EQ(ring.set_current("nope").code(), sdk::StatusCode::kNotFound);
  EXPECT_TRUE(ring.has_key("k1"));
}

TEST(Jwt, RejectsTamperedPayloadAndSignature) {
  auto ring = ring_with("k1", kSecretA);
  const std::string token = ring.sign(claims()).value();
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = token.rfind('.');
  json elevated = claims();
  elevated["sub"] = "admin";
  const std::string swapped =
      token.substr(0, dot1 + 1) + base64url_encode(elevated.dump()) + token.substr(dot2);
  EXPECT_EQ(ring.verify(swapped, "access", at(kNow)).status().code(), sdk::StatusCode::kUnauthenticated);
  // Flip one bit in every byte position of the signature.
  const std::string sig = base64url_decode(token.substr(dot2 + 1)).value();
  for (std::size_t i = 0; i < sig.size(); ++i) {
    std::string bad = sig;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(ring.verify(token.substr(0, dot2 + 1) + base64url_encode(bad), "access", at(kNow)).ok())
        << i;
  }
  // Truncated signature, and the signature re-encoded with padding.
  EXPECT_FALSE(ring.verify(token.substr(0, token.size() - 2), "access", at(kNow)).ok());
  EXPECT_FALSE(ring.verify(token + "=", "access", at(kNow)).ok());
}

TEST(Jwt, EnforcesExpiryNotBeforeAndIssuedAtWithInjectedTime) {
  auto strict = ring_with("k1", kSecretA, seconds(0));
  const std::string token = strict.sign(claims(kNow, kNow + 900)).value();
  EXPECT_TRUE(strict.verify(token, "access", at(kNow + 899)).ok());
  auto expired = strict.verify(token, "access", at(kNow + 900));
  EXPECT_EQ(expired.status().code(), sdk::StatusCode::kUnauthenticated);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
  EXPECT_FALSE(strict.verify(token, "access", at(kNow - 1)).ok());  // issued in the future

  auto lenient = ring_with("k1", kSecretA, seconds(30));
  EXPECT_TRUE(lenient.verify(token, "access", at(kNow + 929)).ok());
  EXPECT_FALSE(lenient.verify(token, "access", at(kNow + 930)).ok());
  EXPECT_TRUE(lenient.verify(token, "access", at(kNow - 30)).ok());
  EXPECT_EQ(JwtKeyRing(seconds(3600)).leeway(), kMaxJwtLeeway);

  json c = claims();
  c["nbf"] = kNow + 60;
  const std::string later = strict.sign(c).value();
  auto early = strict.verify(later, "access", at(kNow + 59));
  EXPECT_NE(early.status().message().find("not valid yet"), std::string::npos);
  EXPECT_TRUE(strict.verify(later, "access", at(kNow + 60)).ok());
}

TEST(Jwt, RejectsMissingOrMistypedRequiredClaims) {
  auto ring = ring_with("k1", kSecretA);
  const std::string header = R"({"alg":"HS256","typ":"JWT","kid":"k1"})";
  for (const char* missing : {"sub", "jti", "typ", "iat", "exp"}) {
    json c = claims();
    c.erase(missing);
    EXPECT_FALSE(ring.verify(hand_token(header, c.dump(), kSecretA), "access", at(kNow)).ok()) << missing;
  }
  for (const char* payload : {R"({"sub":"u","jti":"j","typ":"access","iat":1700000000,"exp":"1700000900"})",
                              R"({"sub":"u","jti":"j","typ":"access","iat":1700000000,"exp":1700000900.5})",
                              R"({"sub":"","jti":"j","typ":"access","iat":1700000000,"exp":1700000900})",
                              R"({"sub":"u","jti":"j","typ":"access","iat":-5,"exp":1700000900})",
                              R"({"sub":"u","jti":"j","typ":"access","iat":1,"exp":9223372036854775807})",
                              R"({"sub":"u","jti":"j","typ":"access","iat":1,"exp":1700000900,"nbf":"x"})",
                              R"({"sub":"u","jti":"j","typ":"access","iat":1,"exp":1700000900,"exp":1})",
                              R"(["sub","jti"])", "null"}) {
    EXPECT_FALSE(ring.verify(hand_token(header, payload, kSecretA), "access", at(kNow)).ok()) << payload;
  }
}

TEST(Jwt, TokenTypeMustMatchTheExpectedType) {
  auto ring = ring_with("k1", kSecretA);
  const std::string refresh = ring.sign(claims(kNow, kNow + 900, "refresh")).value();
  EXPECT_FALSE(ring.verify(refresh, kAccessTokenType, at(kNow)).ok());
  EXPECT_TRUE(ring.verify(refresh, kRefreshTokenType, at(kNow)).ok());
  EXPECT_EQ(ring.verify(refresh, "", at(kNow)).status().code(), sdk::StatusCode::kInvalidArgument);
}

TEST(Jwt, RejectsOversizeAndGarbageTokens) {
  auto ring = ring_with("k1", kSecretA);
  json c = claims();
  c["pad"] = std::string(4000, 'p');
  const std::string big = hand_token(R"({"alg":"HS256","kid":"k1"})", c.dump(), kSecretA);
  ASSERT_GT(big.size(), kMaxJwtBytes);
  auto oversize = ring.verify(big, "access", at(kNow));
  EXPECT_NE(oversize.status().message().find("longer than 4096"), std::string::npos);
  const std::string good = ring.sign(claims()).value();
  for (const std::string& garbage :
       {std::string(), std::string("."), std::string(".."), std::string("..."), std::string("a.b.c"),
        std::string("not a token"), good + ".extra", "." + good, good.substr(0, good.find('.')),
        std::string("e30.e30.e30"), std::string("\xff\xfe.\x00.x", 7), good.substr(0, good.rfind('.')) + ".",
        base64url_encode("{\"alg\":\"HS256\",\"kid\":\"k1\"") + ".e30.AAAA"}) {
    EXPECT_EQ(ring.verify(garbage, "access", at(kNow)).status().code(), sdk::StatusCode::kUnauthenticated)
        << ::testing::PrintToString(garbage);
  }
}

TEST(Jwt, ErrorMessagesNeverEchoTheToken) {
  auto ring = ring_with("k1", kSecretA);
  const std::string token = ring.sign(claims()).value();
  auto result = ring.verify(token, "refresh", at(kNow));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message().find(token.substr(0, 10)), std::string::npos);
}

TEST(ValidateSecret, RefusesWeakAndPlaceholderSecrets) {
  for (const std::string& weak :
       {std::string(), std::string("short"), std::string("changeme"), std::string(64, 'a')}) {
    EXPECT_EQ(validate_secret(weak).code(), sdk::StatusCode::kFailedPrecondition) << weak;
  }
  EXPECT_FALSE(validate_secret("abababababababababababababababababab").ok());
  EXPECT_FALSE(validate_secret("CHANGE_ME-please-4f8a9b2c7d1e6f30a5b4").ok());
  EXPECT_FALSE(validate_secret("my-super-Secret-key-1234567890-xyzw").ok());
  EXPECT_FALSE(validate_secret("your_password_goes_here_0123456789ab").ok());
  EXPECT_FALSE(validate_secret("samokoder-production-key-0123456789").ok());
  const auto status = validate_secret("changeme-changeme-changeme-changeme");
  EXPECT_EQ(status.message().find("changeme-changeme"), std::string::npos);
  EXPECT_TRUE(validate_secret("q8Jr3v0NkZ1pXc7LwT4mYb9HsD2fGe6A").ok());
  EXPECT_TRUE(validate_secret("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978").ok());
}

}  // namespace
}  // namespace samokoder::security
