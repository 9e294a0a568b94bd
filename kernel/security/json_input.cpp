#include "security/json_input.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "security/encoding.hpp"

namespace samokoder::security {
namespace {

using json = nlohmann::json;

// Builds the document itself so that it can refuse what nlohmann's DOM parser would accept silently:
// a repeated key (the DOM keeps the last one), excessive depth, and non-finite numbers.
class StrictSax {
 public:
  explicit StrictSax(std::size_t max_depth) : max_depth_(max_depth) {}

  bool null() { return add(json(nullptr)); }
  bool boolean(bool value) { return add(json(value)); }
  bool number_integer(json::number_integer_t value) { return add(json(value)); }
  bool number_unsigned(json::number_unsigned_t value) { return add(json(value)); }
  bool number_float(json::number_float_t value, const json::string_t& /*text*/) {
    if (!std::isfinite(value)) return fail("a number is too large to represent");
    return add(json(value));
  }
  bool string(json::string_t& value) { return add(json(std::move(value))); }
  bool binary(json::binary_t& /*value*/) { return fail("binary values are not JSON"); }
  bool start_object(std::size_t /*elements*/) { return open(json::object()); }
  bool start_array(std::size_t /*elements*/) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& name) {
    if (stack_.back()->contains(name)) return fail("duplicate object key");
    key_ = std::move(name);
    return true;
  }
  bool parse_error(std::size_t position, const std::string& /*last_token*/, const json::exception& /*ex*/) {
    // nlohmann's message quotes the last token read, which may be part of a password: keep only where.
    error_ = "request body is not valid JSON (error at byte " + std::to_string(position) + ")";
    return false;
  }

  json take_root() { return std::move(root_); }
  const std::string& error() const noexcept { return error_; }

 private:
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  json* place(json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    return &(parent[std::move(key_)] = std::move(value));
  }

  bool add(json&& value) {
    place(std::move(value));
    return true;
  }

  bool open(json&& container) {
    if (stack_.size() >= max_depth_) {
      return fail("JSON is nested deeper than " + std::to_string(max_depth_) + " levels");
    }
    stack_.push_back(place(std::move(container)));
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  std::size_t max_depth_;
  json root_;
  std::vector<json*> stack_;
  std::string key_;
  std::string error_;
};

std::string escape_pointer_token(std::string_view token) {
  std::string out;
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> form_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (text.size() - i < 3) return std::nullopt;
      const int hi = hex_digit(text[i + 1]);
      const int lo = hex_digit(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  if (out.find('\0') != std::string::npos || !is_valid_utf8(out)) return std::nullopt;
  return out;
}

}  // namespace

sdk::Result<nlohmann::json> parse_json_object(std::string_view body, std::size_t max_depth) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return sdk::Status::invalid_argument("request body is empty; a JSON object is required");
  }
  if (max_depth == 0) return sdk::Status::invalid_argument("JSON depth limit must be at least 1");
  // nlohmann's lexer takes a NUL byte for the end of input, so "{}\0<anything>" would parse as "{}".
  // A raw NUL is never valid JSON text (inside a string it must be escaped), so refuse it up front.
  if (body.find('\0') != std::string_view::npos) {
    return sdk::Status::invalid_argument("request body is not valid JSON (it contains a NUL byte)");
  }
  StrictSax sax(max_depth);
  const bool parsed = json::sax_parse(body.begin(), body.end(), &sax);
  if (!parsed) {
    return sdk::Status::invalid_argument(sax.error().empty() ? "request body is not valid JSON"
                                                             : sax.error());
  }
  json doc = sax.take_root();
  if (!doc.is_object()) return sdk::Status::invalid_argument("request body must be a JSON object");
  return doc;
}

const nlohmann::json* FieldReader::find(std::string_view pointer, bool required) {
  const std::string path(pointer);
  try {
    const json::json_pointer ptr(path);
    if (!doc_.contains(ptr)) {
      if (required) add_error(path, "is required");
      return nullptr;
    }
    return &doc_.at(ptr);
  } catch (const json::exception&) {
    add_error(path, "is not a valid field pointer");
    return nullptr;
  }
}

const nlohmann::json* FieldReader::optional_value(std::string_view pointer) {
  return find(pointer, false);
}

std::optional<std::string> FieldReader::read_string(std::string_view pointer, std::size_t min_length,
                                                    std::size_t max_length, bool required) {
  const json* value = find(pointer, required);
  if (value == nullptr) return std::nullopt;
  const std::string path(pointer);
  if (!value->is_string()) {
    add_error(path, "must be a string");
    return std::nullopt;
  }
  const auto& text = value->get_ref<const std::string&>();
  if (text.find('\0') != std::string::npos) {
    add_error(path, "must not contain NUL characters");
    return std::nullopt;
  }
  const auto length = utf8_length(text);
  if (!length) {
    add_error(path, "must be valid UTF-8 text");
    return std::nullopt;
  }
  if (*length < min_length) {
    add_error(path, "must be at least " + std::to_string(min_length) + " characters long");
    return std::nullopt;
  }
  if (*length > max_length) {
    add_error(path, "must be at most " + std::to_string(max_length) + " characters long");
    return std::nullopt;
  }
  return text;
}

std::optional<std::int64_t> FieldReader::read_integer(std::string_view pointer, std::int64_t min,
                                                      std::int64_t max, bool required) {
  const json* value = find(pointer, required);
  if (value == nullptr) return std::nullopt;
  const std::string path(pointer);
  const std::string range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (value->is_number_unsigned()) {
    const auto u = value->get<std::uint64_t>();
    if (max < 0 || u > static_cast<std::uint64_t>(max)) {
      add_error(path, range);
      return std::nullopt;
    }
    if (static_cast<std::int64_t>(u) < min) {
      add_error(path, range);
      return std::nullopt;
    }
    return static_cast<std::int64_t>(u);
  }
  if (!value->is_number_integer()) {
    add_error(path, range);
    return std::nullopt;
  }
  const auto v = value->get<std::int64_t>();
  if (v < min || v > max) {
    add_error(path, range);
    return std::nullopt;
  }
  return v;
}

std::optional<bool> FieldReader::read_bool(std::string_view pointer, bool required) {
  const json* value = find(pointer, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    add_error(std::string(pointer), "must be true or false");
    return std::nullopt;
  }
  return value->get<bool>();
}

std::optional<std::string> FieldReader::required_string(std::string_view pointer, std::size_t min_length,
                                                        std::size_t max_length) {
  return read_string(pointer, min_length, max_length, true);
}
std::optional<std::string> FieldReader::optional_string(std::string_view pointer, std::size_t min_length,
                                                        std::size_t max_length) {
  return read_string(pointer, min_length, max_length, false);
}
std::optional<std::int64_t> FieldReader::required_integer(std::string_view pointer, std::int64_t min,
                                                          std::int64_t max) {
  return read_integer(pointer, min, max, true);
}
std::optional<std::int64_t> FieldReader::optional_integer(std::string_view pointer, std::int64_t min,
                                                          std::int64_t max) {
  return read_integer(pointer, min, max, false);
}
std::optional<bool> FieldReader::required_bool(std::string_view pointer) {
  return read_bool(pointer, true);
}
std::optional<bool> FieldReader::optional_bool(std::string_view pointer) {
  return read_bool(pointer, false);
}

void FieldReader::reject_unknown(std::initializer_list<std::string_view> allowed) {
  if (!doc_.is_object()) return;
  for (const auto& [name, value] : doc_.items()) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      add_error("/" + escape_pointer_token(name), "is not a recognised field");
    }
  }
}

void FieldReader::add_error(std::string path, std::string message) {
  errors_.push_back({std::move(path), std::move(message)});
}

sdk::Result<std::map<std::string, std::string>> parse_form_urlencoded(std::string_view body) {
  std::map<std::string, std::string> out;
  if (body.empty()) return out;
  std::size_t pairs = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t amp = body.find('&', start);
    const std::string_view pair = body.substr(start, amp == std::string_view::npos ? amp : amp - start);
    if (++pairs > kMaxFormFields) {
      return sdk::Status::invalid_argument("form has more than " + std::to_string(kMaxFormFields) +
                                           " fields");
    }
    if (pair.empty()) return sdk::Status::invalid_argument("form has an empty field (\"&&\" or a stray '&')");
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return sdk::Status::invalid_argument("form field " + std::to_string(pairs) + " is not name=value");
    }
    auto name = form_decode(pair.substr(0, eq));
    if (!name) {
      return sdk::Status::invalid_argument("form field " + std::to_string(pairs) +
                                           " has a malformed name (bad %-escape, NUL or invalid UTF-8)");
    }
    auto value = form_decode(pair.substr(eq + 1));
    // The name is the client's own field name; quoting it (escaped, short) helps and reveals nothing.
    const std::string shown = name->size() <= 64 ? json(*name).dump(-1, ' ', true) : std::to_string(pairs);
    if (!value) {
      return sdk::Status::invalid_argument("form field " + shown +
                                           " has a malformed value (bad %-escape, NUL or invalid UTF-8)");
    }
    if (!out.emplace(std::move(*name), std::move(*value)).second) {
      return sdk::Status::invalid_argument("form field " + shown + " appears more than once");
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return out;
}

}  // namespace samokoder::security
