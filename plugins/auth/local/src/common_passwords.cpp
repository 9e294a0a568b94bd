// The bundled list of well-known weak passwords of 8+ characters (shorter ones fail the length rule
// anyway). Small on purpose: it stops the passwords every guessing list starts with, not every weak
// one; length does the rest.
#include <algorithm>
#include <array>
#include <string>

#include "password.hpp"

namespace samokoder::auth_local {
namespace {

constexpr std::array<std::string_view, 175> kCommon = {
    "00000000",      "0987654321",   "1111111111",   "11111111",     "11223344",      "112233445566",
    "12121212",      "123123123",    "12341234",     "12344321",     "1234567890",    "123456789",
    "12345678",      "1234qwer",     "123qweasd",    "147258369",    "159753456",     "1q2w3e4r",
    "1q2w3e4r5t",    "1q2w3e4r5t6y", "1qaz2wsx",     "1qazxsw2",     "!qaz2wsx",      "666666666",
    "87654321",      "88888888",     "987654321",    "999999999",    "a1b2c3d4",      "aa123456",
    "abc12345",      "abcd1234",     "abcdefgh",     "access14",     "admin123",      "adminadmin",
    "administrator", "arsenal1",     "asdfasdf",     "asdfghjk",     "asdfghjkl",     "ashley12",
    "autumn2024",    "baseball",     "baseball1",    "batman123",    "blink182",      "butterfly",
    "changeme",      "changeme1",    "charlie1",     "chelsea1",     "chocolate",     "computer",
    "cookie12",      "corvette",     "cowboys1",     "daniel12",     "default1",      "dragon12",
    "dragon123",     "eagles12",     "flower12",     "football",     "football1",     "freedom1",
    "guest123",      "hello123",     "hellohello",   "hockey12",     "hunter22",      "iloveyou",
    "iloveyou1",     "internet",     "jasmine1",     "jennifer",     "jessica1",      "jordan23",
    "killer12",      "letmein!",     "letmein1",     "letmein123",   "liverpool",     "loveme12",
    "lovely12",      "master12",     "master123",    "matrix12",     "mercedes",      "michael1",
    "michelle",      "minecraft",    "monkey12",     "monkey123",    "mustang1",      "nicole12",
    "p@ssw0rd",      "p@ssword",     "pa$$w0rd",     "pass1234",     "passpass",      "passw0rd",
    "password",      "password!",    "password01",   "password1",    "password12",    "password123",
    "password1234",  "peaches1",     "pokemon1",     "princess",     "princess1",     "purple12",
    "q1w2e3r4",      "q1w2e3r4t5",   "qazwsxedc",    "qwe12345",     "qwer1234",      "qwerty12",
    "qwerty123",     "qwerty1234",   "qwertyui",     "qwertyuiop",   "qwertyuiop123", "root1234",
    "samokoder",     "samokoder1",   "secret12",     "secret123",    "shadow12",      "shadow123",
    "soccer12",      "spring2024",   "starwars",     "starwars1",    "summer2024",    "sunshine",
    "sunshine1",     "superman",     "superman1",    "test1234",     "testtest",      "toor1234",
    "trustno1",      "welcome01",    "welcome1",     "welcome123",   "whatever",      "whatever1",
    "winter2024",    "yankees1",     "zaq12wsx",     "zaq1zaq1",     "zxcvbnm1",      "zxcvbnm123",
    "qwerty123456",  "iloveyou123",  "password2024", "password2025", "password2026",  "welcome2024",
    "letmeinnow",    "trustnoone",   "football123",  "baseball123",  "princess123",   "sunshine123",
    "1234567891",    "12345678910",  "123456789a",   "123456789q",   "a123456789",    "q123456789",
    "12345qwert",
};

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

bool is_common_password(std::string_view secret) {
  if (secret.size() < 8 || secret.size() > 16) return false;
  std::string folded(secret);
  std::transform(folded.begin(), folded.end(), folded.begin(), lower);
  return std::find(kCommon.begin(), kCommon.end(), std::string_view(folded)) != kCommon.end();
}

}  // namespace samokoder::auth_local
