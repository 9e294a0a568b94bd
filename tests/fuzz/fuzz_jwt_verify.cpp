// Fuzzes JwtKeyRing::verify two ways. Mode 0: the input is a raw token (forging a signature is out of
// reach, so this covers splitting, decoding and header checks). Mode 1: the input is "<header>\n<claims>"
// which the harness signs with the ring's key, so the fuzzer reaches header and claim validation;
// anything verify accepts must then satisfy every documented rule.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "security/encoding.hpp"
#include "security/jwt.hpp"

using namespace samokoder::security;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;
const std::string kSecret = "fuzz-key-0123456789-abcdefghijklmnop";

const JwtKeyRing& ring() {
  static const JwtKeyRing instance = [] {
    JwtKeyRing r(std::chrono::seconds(5));
    if (!r.add_key("k1", kSecret).ok()) std::abort();
    return r;
  }();
  return instance;
}

void check_accepted(std::string_view token, const json& claims) {
  FUZZ_CHECK(token.size() <= kMaxJwtBytes);
  FUZZ_CHECK(claims.is_object());
  for (const char* name : {"sub", "jti", "typ"}) {
    FUZZ_CHECK(claims.contains(name) && claims[name].is_string() && !claims[name].get<std::string>().empty());
  }
  FUZZ_CHECK(claims["typ"] == "access");
  FUZZ_CHECK(claims["exp"].is_number_integer() && claims["iat"].is_number_integer());
  FUZZ_CHECK(claims["exp"].get<std::int64_t>() + 5 > kNow);
  FUZZ_CHECK(claims["iat"].get<std::int64_t>() <= kNow + 5);
  if (claims.contains("nbf")) FUZZ_CHECK(claims["nbf"].get<std::int64_t>() <= kNow + 5);
  const std::string header = base64url_decode(token.substr(0, token.find('.'))).value();
  const json parsed = json::parse(header, nullptr, false);
  FUZZ_CHECK(parsed.is_object() && parsed.value("alg", "") == "HS256" && parsed.value("kid", "") == "k1");
  FUZZ_CHECK(!parsed.contains("crit"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(kNow));
  std::string token;
  if (data[0] % 2 == 0) {
    token = std::string(input);
  } else {
    const std::size_t newline = input.find('\n');
    if (newline == std::string_view::npos) return 0;
    const std::string signing_input =
        base64url_encode(input.substr(0, newline)) + "." + base64url_encode(input.substr(newline + 1));
    token = signing_input + "." + base64url_encode(hmac_sha256(kSecret, signing_input).value());
  }
  auto result = ring().verify(token, kAccessTokenType, now);
  if (!result.ok()) {
    FUZZ_CHECK(result.status().code() == samokoder::sdk::StatusCode::kUnauthenticated);
    // Tokens are never echoed back. (Only tokens holding a '.', which no message template contains;
    // otherwise the fuzzer simply rediscovers the template text as an input.)
    if (token.size() >= 16 && token.find('.') != std::string::npos) {
      FUZZ_CHECK(result.status().message().find(token) == std::string::npos);
    }
    return 0;
  }
  check_accepted(token, *result);
  return 0;
}
