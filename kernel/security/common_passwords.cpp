#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "security/password.hpp"

namespace samokoder::security {
namespace {

// Passwords of 8 or more characters from the most frequent entries of the public "10 million
// passwords" frequency list (SecLists, Passwords/Common-Credentials, top 10000), plus the usual
// keyboard-walk and product-name variants. Shorter ones are already refused by the length rule.
// Lowercase, sorted, so the lookup is a binary search; the static_assert keeps it sorted.
constexpr std::array kCommonPasswords = std::to_array<std::string_view>({
    "00000000",     "00000000000",   "01011980",      "01011990",       "01012000",      "01012011",
    "0123456789",   "0987654321",    "1029384756",    "11111111",       "1111111111",    "11111111111",
    "111222333",    "11223344",      "11235813",      "1123581321",     "12121212",      "123123123",
    "1232323q",     "123321123",     "12341234",      "12344321",       "1234512345",    "123454321",
    "1234554321",   "12345678",      "123456789",     "1234567890",     "1234567891",    "12345678910",
    "1234567899",   "123456789a",    "123456789q",    "123456789z",     "12345678a",     "1234567a",
    "123456abc",    "12345qwert",    "1234abcd",      "1234qwer",       "123654789",     "123698745",
    "123qweasd",    "123qweasdzxc",  "12qwaszx",      "13131313",       "147258369",     "147852369",
    "14789632",     "192837465",     "1q2w3e4r",      "1q2w3e4r5t",     "1q2w3e4r5t6y",  "1q2w3e4r5t6y7u",
    "1qaz2wsx",     "1qaz2wsx!",     "1qaz2wsx3edc",  "1qazxsw2",       "1qazzaq1",      "21122112",
    "22222222",     "25802580",      "31415926",      "44444444",       "4815162342",    "51505150",
    "55555555",     "66666666",      "69696969",      "741852963",      "77777777",      "789456123",
    "87654321",     "88888888",      "98765432",      "987654321",      "987654321a",    "99999999",
    "999999999",    "a1234567",      "a12345678",     "a1b2c3d4",       "aa123456",      "aaaaaaaa",
    "aardvark",     "abc12345",      "abc123456",     "abcd1234",       "abcdef123",     "abcdefgh",
    "access14",     "adgjmptw",      "admin123",      "admin1234",      "administrator", "airborne",
    "airforce",     "airplane",      "alejandr",      "aleksandr",      "alexande",      "alexander",
    "alexandr",     "american",      "anderson",      "angelina",       "anthony1",      "asdf1234",
    "asdfasdf",     "asdfghjk",      "asdfghjkl",     "asdfghjkl1",     "assassin",      "atlantis",
    "babydoll",     "babygirl",      "babylon5",      "barcelona",      "baseball",      "baseball1",
    "basketba",     "basketball",    "benjamin",      "bigdaddy",       "billybob",      "birthday",
    "blahblah",     "blink182",      "blink1823",     "blizzard",       "bluemoon",      "bobafett",
    "bonehead",     "brittany",      "brooklyn",      "buckeyes",       "budlight",      "bulldogs",
    "business",     "butterfl",      "butterfly",     "campbell",       "cardinal",      "carolina",
    "caroline",     "cavalier",      "cdtnkfyf",      "champion",       "chandler",      "changeme",
    "changeme1",    "changeme123",   "chargers",      "charlie1",       "charlie123",    "charlott",
    "cherokee",     "chevelle",      "chocolat",      "christia",       "christian",     "christin",
    "christop",     "cjkysirj",      "cocacola",      "colorado",       "columbia",      "computer",
    "computer1",    "concrete",      "consumer",      "cooldude",       "corvette",      "courtney",
    "creative",     "cristina",      "danielle",      "darkness",       "darkside",      "darkstar",
    "dbrnjhbz",     "december",      "default1",      "defender",       "devildog",      "diamonds",
    "dolphins",     "dragon123",     "drowssap",      "einstein",       "ekaterina",     "electric",
    "elephant",     "elizabet",      "elizabeth",     "engineer",       "enterpri",      "eternity",
    "explorer",     "fernando",      "fireball",      "firebird",       "fktrcfylh",     "football",
    "football1",    "franklin",      "fredfred",      "freedom1",       "freepass",      "freeuser",
    "fyfcnfcbz",    "garfield",      "geronimo",      "ghbdtnbr",       "giovanni",      "gn56gn56",
    "godzilla",     "goldberg",      "goldfish",      "greenday",       "guinness",      "hamilton",
    "hardcore",     "harrison",      "hellfire",      "hello123",       "hercules",      "highland",
    "hollywoo",     "hongkong",      "hotstuff",      "icecream",       "iloveyou",      "iloveyou1",
    "iloveyou123",  "iloveyou2",     "immortal",      "infantry",       "infinity",      "internet",
    "internet1",    "intrepid",      "isabelle",      "jennifer",       "jessica1",      "jonathan",
    "jordan123",    "jordan23",      "juventus",      "kathleen",       "kawasaki",      "kimberly",
    "kingkong",     "kristina",      "lacrosse",      "lasvegas",       "lawrence",      "leonardo",
    "letmein!",     "letmein1",      "letmein123",    "lifehack",       "liverpoo",      "liverpool",
    "logitech",     "lollipop",      "lonewolf",      "longhorn",       "lovelove",      "loverboy",
    "makaveli",     "manchester",    "marathon",      "margaret",       "marlboro",      "marshall",
    "master123",    "matrix123",     "matthew1",      "maverick",       "megadeth",      "mercedes",
    "metallic",     "metallica",     "michael1",      "michael123",     "michelle",      "michigan",
    "microsoft",    "midnight",      "minecraft",     "mitchell",       "monkey123",     "montreal",
    "morpheus",     "morrison",      "motorola",      "mountain",       "musicman",      "mustang1",
    "myspace1",     "napoleon",      "naruto123",     "ncc1701d",       "nicholas",      "nintendo",
    "november",     "overlord",      "p@ssw0rd",      "p@ssword",       "pa$$w0rd",      "pakistan",
    "panthers",     "paradise",      "passport",      "passw0rd",       "passw0rd!",     "passw0rd1",
    "password",     "password!",     "password1",     "password1!",     "password12",    "password123",
    "password123!", "password1234",  "password12345", "patriots",       "pavilion",      "pearljam",
    "personal",     "platinum",      "pokemon123",    "poohbear",       "portugal",      "precious",
    "predator",     "presario",      "princess",      "princess1",      "punisher",      "punkrock",
    "q1w2e3r4",     "q1w2e3r4t5",    "q1w2e3r4t5y6",  "q1w2e3r4t5y6u7", "qazwsx123",     "qazwsxed",
    "qazwsxedc",    "qazxswedc",     "qwe123qwe",     "qweasdzxc",      "qwer1234",      "qwerty1!",
    "qwerty12",     "qwerty123",     "qwerty1234",    "qwerty12345",    "qwerty123456",  "qwertyui",
    "qwertyuiop",   "qwertyuiop123", "redskins",      "redwings",       "remember",      "rhbcnbyf",
    "rockstar",     "rolltide",      "rush2112",      "samantha",       "samokoder",     "samokoder1",
    "samokoder123", "sandiego",      "scorpion",      "scotland",       "sebastia",      "security",
    "seinfeld",     "semperfi",      "serenity",      "shadow123",      "shaney14",      "sherlock",
    "skywalke",     "slapshot",      "slipknot",      "snickers",       "snowball",      "softball",
    "spiderma",     "spiderman",     "stallion",      "starcraft",      "stardust",      "startrek",
    "starwars",     "starwars1",     "steelers",      "stephani",       "sterling",      "stocking",
    "sunshine",     "sunshine1",     "super123",      "superfly",       "superman",      "superman1",
    "svetlana",     "sweetpea",      "swimming",      "swordfis",       "swordfish",     "tarheels",
    "testtest",     "thailand",      "tottenha",      "trfnthbyf",      "trombone",      "trustno1",
    "trustno1!",    "ultimate",      "valentin",      "valentina",      "vanhalen",      "verbatim",
    "veronica",     "veronika",      "victoria",      "virginia",       "vladimir",      "warcraft",
    "waterloo",     "welcome1",      "welcome1!",     "welcome123",     "werewolf",      "westside",
    "whatever",     "whatever1",     "wildcats",      "williams",       "wolfgang",      "wolfpack",
    "wolverin",     "wolverine",     "wordpass",      "wrangler",       "wrinkle1",      "xxxxxxxx",
    "zaq12wsx",     "zaq1xsw2",      "zaq1zaq1",      "zeppelin",       "zxcvbnm123",    "zzzzzzzz",
});
static_assert(std::ranges::is_sorted(kCommonPasswords), "kCommonPasswords must stay sorted");
static_assert(std::ranges::adjacent_find(kCommonPasswords) == kCommonPasswords.end(),
              "kCommonPasswords must not repeat an entry");

}  // namespace

bool is_common_password(std::string_view password) {
  // Only ASCII letters are folded: every entry is ASCII, and a non-ASCII password cannot match anyway.
  if (password.size() > 64) return false;
  std::string lowered(password);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return std::ranges::binary_search(kCommonPasswords, std::string_view(lowered));
}

std::size_t common_password_count() noexcept {
  return kCommonPasswords.size();
}

}  // namespace samokoder::security
