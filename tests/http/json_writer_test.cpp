// http::JsonWriter writes what http::dump_json writes for the same values, byte for byte, including
// escapes, control characters, non-ASCII text, invalid UTF-8 and integer extremes.
#include "http/json_writer.hpp"

#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/response.hpp"

namespace samokoder::http {
namespace {

std::string written_string(std::string_view value) {
  std::string out;
  JsonWriter(out).string(value);
  return out;
}

TEST(JsonWriter, StringsMatchDumpJsonForEveryByteClass) {
  std::vector<std::string> samples = {
      "",
      "plain",
      "quote \" backslash \\ slash /",
      "\b\f\n\r\t",
      std::string("nul \0 inside", 12),
      "\x01\x1f\x7f",
      "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xf0\x9f\x98\x80 \xe2\x82\xac",
      "lone continuation \x80 here",
      "truncated \xe2\x82",
      "overlong \xc0\xaf",
      "surrogate \xed\xa0\x80",
      "above U+10FFFF \xf4\x90\x80\x80",
      "\xff\xfe"};
  for (int c = 0; c < 0x20; ++c)
    samples.emplace_back(1, static_cast<char>(c));
  for (const auto& sample : samples) {
    EXPECT_EQ(written_string(sample), dump_json(nlohmann::json(sample))) << "input bytes: " << sample.size();
  }
}

// The writer tests eight bytes at a time; a byte that needs care must be found at every offset of a
// word and in the tail after the last whole word.
TEST(JsonWriter, ByteThatNeedsEscapingIsFoundAtEveryOffset) {
  const std::string needs_care[] = {"\"",       "\\",   "\n",  std::string(1, '\0'), "\x1f", "\x7f",
                                    "\xc3\xa9", "\x80", "\xff"};
  for (const auto& inserted : needs_care) {
    for (std::size_t length = 1; length <= 24; ++length) {
      for (std::size_t at = 0; at < length; ++at) {
        std::string sample(length, 'a');
        sample.replace(at, 1, inserted);
        ASSERT_EQ(written_string(sample), dump_json(nlohmann::json(sample)))
            << "inserted byte 0x" << std::hex << static_cast<int>(static_cast<unsigned char>(inserted[0]))
            << std::dec << " at offset " << at << " of " << length;
      }
    }
  }
  // Bytes just inside the plain range, next to the ones that are not.
  const std::string edges = " !#[]~0123456789abcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(written_string(edges), "\"" + edges + "\"");
}

TEST(JsonWriter, NumbersBooleansAndNullMatchDumpJson) {
  for (const std::int64_t n :
       {std::int64_t{0}, std::int64_t{-1}, std::int64_t{42}, std::numeric_limits<std::int64_t>::min(),
        std::numeric_limits<std::int64_t>::max()}) {
    std::string out;
    JsonWriter(out).number(n);
    EXPECT_EQ(out, dump_json(nlohmann::json(n)));
  }
  std::string out;
  JsonWriter(out).begin_array().boolean(true).boolean(false).null().end_array();
  EXPECT_EQ(out, dump_json(nlohmann::json::parse("[true,false,null]")));
}

TEST(JsonWriter, NestedContainersMatchDumpJson) {
  const auto expected = nlohmann::json::parse(R"({
    "empty_array": [], "empty_object": {},
    "items": [{"a": 1, "b": "x"}, {"a": 2, "b": null}, [[], [1, [2]]]],
    "next_cursor": "c\"1"
  })");
  std::string out;
  JsonWriter json(out);
  json.begin_object();
  json.key("empty_array").begin_array().end_array();
  json.key("empty_object").begin_object().end_object();
  json.key("items").begin_array();
  json.begin_object().key("a").number(1).key("b").string("x").end_object();
  json.begin_object().key("a").number(2).key("b").null().end_object();
  json.begin_array()
      .begin_array()
      .end_array()
      .begin_array()
      .number(1)
      .begin_array()
      .number(2)
      .end_array()
      .end_array();
  json.end_array();
  json.end_array();
  json.key("next_cursor").string("c\"1");
  json.end_object();
  EXPECT_EQ(out, dump_json(expected));
}

}  // namespace
}  // namespace samokoder::http
