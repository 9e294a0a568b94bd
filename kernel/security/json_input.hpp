// Strict parsing of request bodies for API handlers: JSON objects and application/x-www-form-urlencoded
// forms, plus FieldReader, which reads typed fields and collects every validation failure with its
// JSON pointer path for a problem+json `errors` array.
//
// "Strict" means one reading of every body: duplicate object keys are refused (a proxy or a second
// parser might keep the other value), as are nesting deeper than max_depth, invalid UTF-8, lone
// surrogate escapes, non-finite numbers and anything after the value. Error messages name the
// problem and a byte offset but never echo the body, which may hold a password.
//
// Ownership: parse functions return owned values; a FieldReader borrows the document it reads, which
// must outlive it.
// Thread-safety: functions are reentrant; a FieldReader is used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::security {

inline constexpr std::size_t kDefaultMaxJsonDepth = 32;

// Parses `body` as one JSON object. kInvalidArgument (with a message for the client) when it is empty,
// not JSON, not an object, nested deeper than max_depth (the top-level object is depth 1), or holds a
// duplicate key at any level.
sdk::Result<nlohmann::json> parse_json_object(std::string_view body,
                                              std::size_t max_depth = kDefaultMaxJsonDepth);

// One validation failure: `path` is a JSON pointer ("/email", "/settings/model"); for a form field it
// is "/<name>" as well.
struct FieldError {
  std::string path;
  std::string message;

  friend bool operator==(const FieldError&, const FieldError&) = default;
};

// Reads fields of a parsed object and records what is wrong with them instead of stopping at the first
// problem, so the client gets every error at once:
//
//   FieldReader r(doc);
//   auto email = r.required_string("/email", 3, 254);
//   auto name = r.optional_string("/name", 1, 100);
//   r.reject_unknown({"email", "name"});
//   if (!r.ok()) return problem(422, r.errors());
//
// String lengths count Unicode code points. Strings holding NUL are refused. Pointers are written by
// the programmer; a malformed one is reported as a field error on that pointer.
class FieldReader {
 public:
  explicit FieldReader(const nlohmann::json& doc) : doc_(doc) {}

  std::optional<std::string> required_string(std::string_view pointer, std::size_t min_length,
                                             std::size_t max_length);
  // nullopt, without an error, when the field is absent; a present null is a type error.
  std::optional<std::string> optional_string(std::string_view pointer, std::size_t min_length,
                                             std::size_t max_length);
  std::optional<std::int64_t> required_integer(std::string_view pointer, std::int64_t min, std::int64_t max);
  std::optional<std::int64_t> optional_integer(std::string_view pointer, std::int64_t min, std::int64_t max);
  std::optional<bool> required_bool(std::string_view pointer);
  std::optional<bool> optional_bool(std::string_view pointer);
  // The raw value (any JSON type) if present; for nested objects handed to another reader.
  const nlohmann::json* optional_value(std::string_view pointer);

  // Records an error for every top-level key of the document not in `allowed`.
  void reject_unknown(std::initializer_list<std::string_view> allowed);
  // Records a failure found by the caller (a cross-field rule, a uniqueness check...).
  void add_error(std::string path, std::string message);

  bool ok() const noexcept { return errors_.empty(); }
  const std::vector<FieldError>& errors() const noexcept { return errors_; }

 private:
  // The value at `pointer`, nullptr if absent (an error is recorded when `required`).
  const nlohmann::json* find(std::string_view pointer, bool required);
  std::optional<std::string> read_string(std::string_view pointer, std::size_t min_length,
                                         std::size_t max_length, bool required);
  std::optional<std::int64_t> read_integer(std::string_view pointer, std::int64_t min, std::int64_t max,
                                           bool required);
  std::optional<bool> read_bool(std::string_view pointer, bool required);

  const nlohmann::json& doc_;
  std::vector<FieldError> errors_;
};

// Limits for form bodies (login forms are tiny; these only stop abuse).
inline constexpr std::size_t kMaxFormFields = 64;

// Parses "a=1&b=x+y%21" into {a:"1", b:"x y!"}. Strict: every pair has a non-empty name and an '=';
// no empty pairs ("a=1&&b=2"); '%' is followed by two hex digits; decoded names and values are
// well-formed UTF-8 without NUL; a name appears at most once; at most kMaxFormFields pairs. An empty
// body is an empty map. kInvalidArgument otherwise, naming the offending field but not its value.
sdk::Result<std::map<std::string, std::string>> parse_form_urlencoded(std::string_view body);

}  // namespace samokoder::security
