#include "security/json_input.hpp"

#include <string>

#include <gtest/gtest.h>

namespace samokoder::security {
namespace {

using json = nlohmann::json;

sdk::StatusCode code_of(std::string_view body, std::size_t depth = kDefaultMaxJsonDepth) {
  return parse_json_object(body, depth).status().code();
}

TEST(ParseJsonObject, AcceptsObjects) {
  auto doc = parse_json_object(R"( {"email":"a@b.c","n":1,"nested":{"x":[1,2,{"y":null}]}} )");
  ASSERT_TRUE(doc.ok()) << doc.status().to_string();
  EXPECT_EQ((*doc)["email"], "a@b.c");
  EXPECT_EQ((*doc)["nested"]["x"][2]["y"], nullptr);
  EXPECT_TRUE(parse_json_object("{}").ok());
  // The same key in different objects is not a duplicate.
  EXPECT_TRUE(parse_json_object(R"({"a":{"k":1},"b":{"k":2}})").ok());
}

TEST(ParseJsonObject, RejectsNonObjects) {
  for (const char* body : {"[]", "[{}]", "\"text\"", "42", "true", "null"}) {
    auto result = parse_json_object(body);
    EXPECT_EQ(result.status().code(), sdk::StatusCode::kInvalidArgument) << body;
    EXPECT_NE(result.status().message().find("JSON object"), std::string::npos) << body;
  }
  EXPECT_EQ(code_of(""), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of(" \n\t"), sdk::StatusCode::kInvalidArgument);
}

TEST(ParseJsonObject, RejectsDuplicateKeysAtAnyDepth) {
  auto top = parse_json_object(R"({"role":"user","role":"admin"})");
  EXPECT_EQ(top.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(top.status().message().find("duplicate"), std::string::npos);
  EXPECT_FALSE(parse_json_object(R"({"a":{"b":1,"b":2}})").ok());
  EXPECT_FALSE(parse_json_object(R"({"a":[{"b":1,"c":2,"b":3}]})").ok());
  // Escapes that decode to the same key are the same key.
  EXPECT_FALSE(parse_json_object(R"({"role":1,"r\u006fle":2})").ok());
}

TEST(ParseJsonObject, EnforcesTheDepthLimit) {
  std::string at_limit;
  for (int i = 0; i < 32; ++i)
    at_limit += "{\"a\":";
  at_limit += "1";
  for (int i = 0; i < 32; ++i)
    at_limit += "}";
  EXPECT_TRUE(parse_json_object(at_limit).ok());
  EXPECT_FALSE(parse_json_object(at_limit, 31).ok());

  // A depth bomb: a million open brackets fails fast on the limit, not on the stack.
  std::string bomb = "{\"a\":";
  bomb += std::string(1'000'000, '[');
  auto result = parse_json_object(bomb);
  EXPECT_EQ(result.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("deeper than 32"), std::string::npos);
  EXPECT_FALSE(parse_json_object(R"({"a":[[1]]})", 2).ok());
  EXPECT_TRUE(parse_json_object(R"({"a":[1]})", 2).ok());
}

TEST(ParseJsonObject, RejectsTrailingGarbageAndMalformedText) {
  for (const char* body : {R"({"a":1} x)", R"({"a":1}{"b":2})", R"({"a":1},)", R"({"a":1)", R"({"a":})",
                           R"({'a':1})", R"({"a":1,})", R"({a:1})", R"({"a":01})", R"({"a":NaN})",
                           R"({"a":1e999})", "{\"a\":\"\x01\"}", R"({"a":"\ud800"})"}) {
    EXPECT_EQ(code_of(body), sdk::StatusCode::kInvalidArgument) << body;
  }
  EXPECT_EQ(code_of(std::string("{\"a\":1}\0", 8)), sdk::StatusCode::kInvalidArgument);
  // nlohmann alone would stop at the NUL and accept the object.
  EXPECT_EQ(code_of(std::string("{\"a\":1}\0{\"b\":2}", 15)), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of(std::string("{\"a\":\"x\0y\"}", 11)), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(parse_json_object("{\"a\":1}  \r\n").ok());
}

TEST(ParseJsonObject, RejectsInvalidUtf8) {
  EXPECT_FALSE(parse_json_object("{\"a\":\"\xff\"}").ok());
  EXPECT_FALSE(parse_json_object("{\"a\":\"\xc0\xaf\"}").ok());
  EXPECT_FALSE(parse_json_object("{\"\xed\xa0\x80\":1}").ok());
  EXPECT_TRUE(parse_json_object("{\"name\":\"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\"}").ok());
}

TEST(ParseJsonObject, ErrorsNeverEchoTheBody) {
  auto result = parse_json_object(R"({"email":"a@b.c","password":"hunter2-top-secret)");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message().find("hunter2"), std::string::npos);
  EXPECT_NE(result.status().message().find("byte"), std::string::npos);
}

TEST(FieldReader, ReadsTypedFieldsWithinBounds) {
  const json doc =
      parse_json_object(
          R"({"email":"a@example.com","name":"Ada","age":36,"admin":false,"settings":{"model":"gpt"}})")
          .value();
  FieldReader r(doc);
  EXPECT_EQ(r.required_string("/email", 3, 254), "a@example.com");
  EXPECT_EQ(r.optional_string("/name", 1, 100), "Ada");
  EXPECT_EQ(r.optional_string("/nickname", 1, 100), std::nullopt);
  EXPECT_EQ(r.required_integer("/age", 0, 200), 36);
  EXPECT_EQ(r.optional_bool("/admin"), false);
  EXPECT_EQ(r.optional_string("/settings/model", 1, 64), "gpt");
  EXPECT_NE(r.optional_value("/settings"), nullptr);
  r.reject_unknown({"email", "name", "age", "admin", "settings"});
  EXPECT_TRUE(r.ok());
}

TEST(FieldReader, CollectsEveryErrorWithItsPointer) {
  const json doc =
      parse_json_object(R"({"email":42,"name":"","bio":"x","age":-1,"admin":"yes","extra":1,"we/ird~":2,)"
                        R"("settings":{"model":null}})")
          .value();
  FieldReader r(doc);
  EXPECT_FALSE(r.required_string("/email", 3, 254));
  EXPECT_FALSE(r.required_string("/password", 8, 128));
  EXPECT_FALSE(r.optional_string("/name", 1, 100));
  EXPECT_FALSE(r.optional_string("/bio", 2, 100));
  EXPECT_FALSE(r.required_integer("/age", 0, 200));
  EXPECT_FALSE(r.optional_bool("/admin"));
  EXPECT_FALSE(r.optional_string("/settings/model", 1, 64));
  r.reject_unknown({"email", "password", "name", "bio", "age", "admin", "settings"});
  ASSERT_FALSE(r.ok());
  const std::vector<FieldError> expected = {
      {"/email", "must be a string"},
      {"/password", "is required"},
      {"/name", "must be at least 1 characters long"},
      {"/bio", "must be at least 2 characters long"},
      {"/age", "must be an integer from 0 to 200"},
      {"/admin", "must be true or false"},
      {"/settings/model", "must be a string"},
      {"/extra", "is not a recognised field"},
      {"/we~1ird~0", "is not a recognised field"},
  };
  EXPECT_EQ(r.errors(), expected);
}

TEST(FieldReader, CountsCodePointsAndRefusesNul) {
  const json doc = {
      {"name", "\xd0\xbf\xd1\x80\xd0\xb8"}, {"nul", std::string("a\0b", 3)}, {"long", std::string(300, 'x')}};
  FieldReader r(doc);
  EXPECT_EQ(r.required_string("/name", 3, 3), "\xd0\xbf\xd1\x80\xd0\xb8");
  EXPECT_FALSE(r.required_string("/nul", 1, 10));
  EXPECT_FALSE(r.required_string("/long", 1, 254));
  ASSERT_EQ(r.errors().size(), 2U);
  EXPECT_EQ(r.errors()[0].message, "must not contain NUL characters");
  EXPECT_EQ(r.errors()[1].message, "must be at most 254 characters long");
}

TEST(FieldReader, HandlesIntegerEdgesAndBadPointers) {
  const json doc =
      parse_json_object(R"({"big":18446744073709551615,"f":1.5,"neg":-9223372036854775808})").value();
  FieldReader r(doc);
  EXPECT_FALSE(r.required_integer("/big", 0, 100));
  EXPECT_FALSE(r.required_integer("/f", 0, 100));
  EXPECT_EQ(r.required_integer("/neg", INT64_MIN, 0), INT64_MIN);
  EXPECT_FALSE(r.required_string("no-leading-slash", 0, 1));
  EXPECT_EQ(r.errors().size(), 3U);
  EXPECT_EQ(r.errors().back().message, "is not a valid field pointer");
}

TEST(FormUrlencoded, DecodesPlusAndPercentEscapes) {
  auto form = parse_form_urlencoded("username=ada%40example.com&password=p%26ss+word%21&grant_type=password");
  ASSERT_TRUE(form.ok()) << form.status().to_string();
  EXPECT_EQ(form->at("username"), "ada@example.com");
  EXPECT_EQ(form->at("password"), "p&ss word!");
  EXPECT_EQ(form->at("grant_type"), "password");
  EXPECT_TRUE(parse_form_urlencoded("")->empty());
  EXPECT_EQ(parse_form_urlencoded("a=")->at("a"), "");
  EXPECT_EQ(parse_form_urlencoded("n=%D0%BF%D1%80")->at("n"), "\xd0\xbf\xd1\x80");
}

TEST(FormUrlencoded, RejectsMalformedForms) {
  for (const char* body : {"a", "=1", "a=1&&b=2", "a=1&", "&a=1", "a=%", "a=%4", "a=%zz", "a=%00", "a=%ff",
                           "a=1&a=2", "a%00=1", "a=%C0%AF"}) {
    EXPECT_EQ(parse_form_urlencoded(body).status().code(), sdk::StatusCode::kInvalidArgument) << body;
  }
  std::string many;
  for (int i = 0; i <= 64; ++i)
    many += (i ? "&k" : "k") + std::to_string(i) + "=v";
  EXPECT_FALSE(parse_form_urlencoded(many).ok());
}

TEST(FormUrlencoded, ErrorsNameTheFieldButNotTheValue) {
  auto result = parse_form_urlencoded("username=ada&password=hunter2%zz");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("password"), std::string::npos);
  EXPECT_EQ(result.status().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace samokoder::security
