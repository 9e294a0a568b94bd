#include "llm/json_schema.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace samokoder::llm {

namespace {

using nlohmann::json;

// A schema whose $refs loop without consuming the instance would recurse for ever.
constexpr int kMaxDepth = 64;

std::string escape_token(std::string_view token) {
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

// A $ref is a URI fragment: percent escapes come off before it is read as a JSON Pointer.
std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const std::string hex(text.substr(i + 1, 2));
      char* end = nullptr;
      const long value = std::strtol(hex.c_str(), &end, 16);
      if (end == hex.c_str() + 2) {
        out += static_cast<char>(value);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::size_t code_points(const std::string& text) {
  std::size_t count = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++count;
  }
  return count;
}

// JSON Schema equality: numbers compare by value (1 == 1.0), objects and arrays element-wise.
bool schema_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!schema_equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a.items()) {
      const auto it = b.find(key);
      if (it == b.end() || !schema_equal(value, *it)) return false;
    }
    return true;
  }
  return a == b;
}

bool is_integer(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

bool has_type(const json& value, std::string_view type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "number") return value.is_number();
  if (type == "integer") return is_integer(value);
  return false;
}

std::string format_number(const json& number) {
  return number.dump();
}

}  // namespace

std::vector<std::string> JsonSchema::validate(const json& instance) const {
  std::vector<std::string> errors;
  check(root_, instance, "", errors, 0);
  return errors;
}

void JsonSchema::check(const json& schema, const json& instance, const std::string& pointer,
                       std::vector<std::string>& errors, int depth) const {
  const auto fail = [&](const std::string& reason) { errors.push_back(pointer + ": " + reason); };
  if (depth > kMaxDepth) {
    fail("schema nested too deeply (a $ref loop?)");
    return;
  }
  if (schema.is_boolean()) {
    if (!schema.get<bool>()) fail("no value is allowed here");
    return;
  }
  if (!schema.is_object()) return;

  if (const auto ref = schema.find("$ref"); ref != schema.end() && ref->is_string()) {
    const auto& target = ref->get_ref<const std::string&>();
    if (target == "#") {
      check(root_, instance, pointer, errors, depth + 1);
    } else if (target.starts_with("#/")) {
      try {
        check(root_.at(json::json_pointer(percent_decode(target.substr(1)))), instance, pointer, errors,
              depth + 1);
      } catch (const json::exception&) {
        fail("schema $ref " + target + " does not resolve");
      }
    } else {
      fail("schema $ref " + target + " is not supported (only #/$defs/... and #/definitions/...)");
    }
  }

  if (const auto type = schema.find("type"); type != schema.end()) {
    bool matched = false;
    std::string names;
    if (type->is_string()) {
      matched = has_type(instance, type->get_ref<const std::string&>());
      names = type->get<std::string>();
    } else if (type->is_array()) {
      for (const auto& t : *type) {
        if (!t.is_string()) continue;
        matched = matched || has_type(instance, t.get_ref<const std::string&>());
        names += (names.empty() ? "" : " or ") + t.get<std::string>();
      }
    } else {
      matched = true;
    }
    if (!matched) {
      fail("expected " + names + ", found " + std::string(instance.type_name()));
      return;  // the other keywords would only repeat the type error
    }
  }

  if (const auto it = schema.find("enum"); it != schema.end() && it->is_array()) {
    bool found = false;
    for (const auto& option : *it)
      found = found || schema_equal(option, instance);
    if (!found) fail("not one of the allowed values " + it->dump());
  }
  if (const auto it = schema.find("const"); it != schema.end() && !schema_equal(*it, instance)) {
    fail("must be " + it->dump());
  }

  if (instance.is_string()) {
    const std::size_t length = code_points(instance.get_ref<const std::string&>());
    if (const auto it = schema.find("minLength");
        it != schema.end() && it->is_number() && static_cast<double>(length) < it->get<double>()) {
      fail("shorter than " + format_number(*it) + " characters");
    }
    if (const auto it = schema.find("maxLength");
        it != schema.end() && it->is_number() && static_cast<double>(length) > it->get<double>()) {
      fail("longer than " + format_number(*it) + " characters");
    }
  }

  if (instance.is_number()) {
    const double value = instance.get<double>();
    if (const auto it = schema.find("minimum");
        it != schema.end() && it->is_number() && value < it->get<double>()) {
      fail("less than the minimum " + format_number(*it));
    }
    if (const auto it = schema.find("maximum");
        it != schema.end() && it->is_number() && value > it->get<double>()) {
      fail("greater than the maximum " + format_number(*it));
    }
    if (const auto it = schema.find("exclusiveMinimum");
        it != schema.end() && it->is_number() && value <= it->get<double>()) {
      fail("not greater than the exclusive minimum " + format_number(*it));
    }
    if (const auto it = schema.find("exclusiveMaximum");
        it != schema.end() && it->is_number() && value >= it->get<double>()) {
      fail("not less than the exclusive maximum " + format_number(*it));
    }
  }

  if (instance.is_object()) {
    if (const auto it = schema.find("required"); it != schema.end() && it->is_array()) {
      for (const auto& name : *it) {
        if (name.is_string() && !instance.contains(name.get_ref<const std::string&>())) {
          errors.push_back(pointer + "/" + escape_token(name.get_ref<const std::string&>()) +
                           ": required property missing");
        }
      }
    }
    const auto properties = schema.find("properties");
    const bool has_properties = properties != schema.end() && properties->is_object();
    const auto additional = schema.find("additionalProperties");
    for (const auto& [key, value] : instance.items()) {
      const std::string child = pointer + "/" + escape_token(key);
      if (has_properties) {
        if (const auto p = properties->find(key); p != properties->end()) {
          check(*p, value, child, errors, depth + 1);
          continue;
        }
      }
      if (additional == schema.end()) continue;
      if (additional->is_boolean() && !additional->get<bool>()) {
        errors.push_back(child + ": property not allowed");
      } else {
        check(*additional, value, child, errors, depth + 1);
      }
    }
  }

  if (instance.is_array()) {
    const auto count = static_cast<double>(instance.size());
    if (const auto it = schema.find("minItems");
        it != schema.end() && it->is_number() && count < it->get<double>()) {
      fail("fewer than " + format_number(*it) + " items");
    }
    if (const auto it = schema.find("maxItems");
        it != schema.end() && it->is_number() && count > it->get<double>()) {
      fail("more than " + format_number(*it) + " items");
    }
    if (const auto it = schema.find("uniqueItems");
        it != schema.end() && it->is_boolean() && it->get<bool>()) {
      for (std::size_t i = 0; i < instance.size(); ++i) {
        for (std::size_t j = i + 1; j < instance.size(); ++j) {
          if (schema_equal(instance[i], instance[j])) {
            fail("items " + std::to_string(i) + " and " + std::to_string(j) + " are equal");
            i = j = instance.size();  // one report is enough
          }
        }
      }
    }
    if (const auto it = schema.find("items"); it != schema.end()) {
      // An array of schemas is draft 7's tuple form (prefixItems in 2020-12): item i against schema i.
      const bool tuple = it->is_array();
      const std::size_t checked = tuple ? std::min(it->size(), instance.size()) : instance.size();
      for (std::size_t i = 0; i < checked; ++i) {
        check(tuple ? (*it)[i] : *it, instance[i], pointer + "/" + std::to_string(i), errors, depth + 1);
      }
    }
  }

  if (const auto it = schema.find("allOf"); it != schema.end() && it->is_array()) {
    for (const auto& branch : *it)
      check(branch, instance, pointer, errors, depth + 1);
  }
  const auto matching = [&](const json& branches) {
    std::size_t matches = 0;
    for (const auto& branch : branches) {
      std::vector<std::string> branch_errors;
      check(branch, instance, pointer, branch_errors, depth + 1);
      if (branch_errors.empty()) ++matches;
    }
    return matches;
  };
  if (const auto it = schema.find("anyOf"); it != schema.end() && it->is_array() && matching(*it) == 0) {
    fail("matches none of the anyOf schemas");
  }
  if (const auto it = schema.find("oneOf"); it != schema.end() && it->is_array()) {
    const std::size_t matches = matching(*it);
    if (matches != 1) fail("matches " + std::to_string(matches) + " of the oneOf schemas, not exactly one");
  }
}

}  // namespace samokoder::llm
