// JsonWriter: appends compact JSON to a string as it goes, without building an nlohmann::json
// document first. For responses with a fixed shape and many items (lists), where a document per item
// (a std::map node per member, a string per value) cost more than the storage read behind it.
//
// The output is byte for byte what http::dump_json writes for the same values, so routes can switch
// between the two freely: strings escaped the same way, invalid UTF-8 replaced by U+FFFD the same way.
// nlohmann::json objects keep their members sorted by key, so callers that want identical output
// write keys in that order.
//
// Ownership: writes into a string the caller owns and keeps alive. Thread-safety: none (one writer per
// response). Misuse (a value where a key is due, unbalanced ends) is not detected; the route's tests
// parse what it writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace samokoder::http {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  // The next member's name; the value follows with one of the calls below.
  JsonWriter& key(std::string_view name);

  JsonWriter& string(std::string_view value);
  JsonWriter& number(std::int64_t value);
  JsonWriter& boolean(bool value);
  JsonWriter& null();

 private:
  JsonWriter& open(char bracket);
  JsonWriter& close(char bracket);
  // A comma before every value or key but the first of its container; none after a key.
  void separate();
  void quoted(std::string_view text);

  std::string& out_;
  std::vector<bool> first_in_container_;
  bool after_key_ = false;
};

}  // namespace samokoder::http
