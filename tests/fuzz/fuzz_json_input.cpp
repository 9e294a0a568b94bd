// Fuzzes the strict request-body parsers: parse_json_object (against nlohmann's own parser as an
// oracle), FieldReader on whatever it accepts, and parse_form_urlencoded.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "security/encoding.hpp"
#include "security/json_input.hpp"

using namespace samokoder::security;
using json = nlohmann::json;

namespace {

std::size_t depth_of(const json& value) {
  if (!value.is_structured()) return 0;
  std::size_t deepest = 0;
  for (const auto& child : value)
    deepest = std::max(deepest, depth_of(child));
  return deepest + 1;
}

void check_json(std::string_view body) {
  auto result = parse_json_object(body);
  if (!result.ok()) {
    FUZZ_CHECK(result.status().code() == samokoder::sdk::StatusCode::kInvalidArgument);
    // Bodies are never echoed back in the error message. (Only bodies holding a '{', which no message
    // template contains; otherwise the fuzzer simply rediscovers the template text as an input.)
    if (body.size() >= 16 && body.find('{') != std::string_view::npos) {
      FUZZ_CHECK(result.status().message().find(body) == std::string::npos);
    }
    return;
  }
  const json& doc = *result;
  FUZZ_CHECK(doc.is_object());
  FUZZ_CHECK(depth_of(doc) <= kDefaultMaxJsonDepth);
  // Accepted text is plain JSON: nlohmann's parser reads the same value (no duplicate keys were
  // dropped, nothing was read past).
  const json oracle = json::parse(body.begin(), body.end(), nullptr, false);
  FUZZ_CHECK(!oracle.is_discarded());
  FUZZ_CHECK(oracle == doc);
  // What we accept serialises (valid UTF-8 throughout) and re-parses to itself.
  const std::string text = doc.dump();
  auto again = parse_json_object(text);
  FUZZ_CHECK(again.ok() && *again == doc);

  FieldReader reader(doc);
  auto s = reader.optional_string("/a", 0, 64);
  if (s) {
    FUZZ_CHECK(is_valid_utf8(*s));
    FUZZ_CHECK(utf8_length(*s).value() <= 64);
  }
  reader.optional_integer("/n", -10, 10);
  reader.optional_bool("/b");
  reader.optional_string("/o/x", 1, 8);
  reader.reject_unknown({"a", "n", "b", "o"});
  for (const FieldError& error : reader.errors())
    FUZZ_CHECK(!error.path.empty() && error.path[0] == '/');
  FUZZ_CHECK(reader.ok() == reader.errors().empty());
}

void check_form(std::string_view body) {
  auto result = parse_form_urlencoded(body);
  if (!result.ok()) {
    FUZZ_CHECK(result.status().code() == samokoder::sdk::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(result->size() <= kMaxFormFields);
  for (const auto& [name, value] : *result) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(is_valid_utf8(name) && is_valid_utf8(value));
    FUZZ_CHECK(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  check_json(body);
  check_form(body);
  return 0;
}
