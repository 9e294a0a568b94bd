// JsonSchema: validates a JSON value against the subset of JSON Schema (draft 2020-12, also read as
// draft 7) that structured model answers use, so the LLM gateway can tell a model exactly what was
// wrong with its answer and ask again.
//
// Supported keywords: type (a name or an array of names; "integer" is a number with no fraction),
// properties, required, additionalProperties (bool or schema), items (one schema for every item, or
// draft 7's array of schemas, one per position),
// enum, const, minLength/maxLength (in Unicode code points), minimum/maximum, exclusiveMinimum/
// exclusiveMaximum (numbers, as in draft 6 and later), minItems/maxItems, uniqueItems, anyOf/oneOf/allOf,
// and $ref to "#" or any "#/..." pointer into the same document ("#/$defs/<name>", "#/definitions/<name>";
// percent and JSON Pointer escapes honoured; keywords beside a $ref apply too, as in 2020-12). Every
// other keyword is ignored, as the specification asks of unknown ones. A boolean schema (true/false)
// is accepted.
//
// Errors name the failing value by its JSON Pointer in the instance and say why, e.g.
// "/tasks/0/title: required property missing".
//
// Ownership: a JsonSchema copies the schema document. Thread-safety: validate() is const and
// reentrant; share one instance freely.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace samokoder::llm {

class JsonSchema {
 public:
  explicit JsonSchema(nlohmann::json schema) : root_(std::move(schema)) {}

  // Every violation found, each "<pointer>: <reason>" (the pointer is empty for the root); empty when
  // `instance` is valid.
  std::vector<std::string> validate(const nlohmann::json& instance) const;

 private:
  void check(const nlohmann::json& schema, const nlohmann::json& instance, const std::string& pointer,
             std::vector<std::string>& errors, int depth) const;

  nlohmann::json root_;
};

}  // namespace samokoder::llm
