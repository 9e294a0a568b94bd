// PromptBook: an agent's prompts and answer schemas (docs/pipeline.md, "Prompts and schemas").
//
// The files of plugins/agent/<name>/prompts/ are compiled into the plugin (builtin_prompts(), generated
// by samokoder_add_agent); an operator replaces any of them from the plugin's config ("prompt_dir": a
// folder whose files, named like built-in ones, win). A prompt is a template: "{{name}}" is replaced by
// the value given under that name, a string as it is and anything else as JSON; a name without a value
// is an error, so a typo in an overriding prompt fails loudly instead of reaching the model.
//
// Ownership: a book owns copies of its files. Thread-safety: immutable after load(); any thread may
// render from it.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>

namespace samokoder::agent_common {

struct EmbeddedFile {
  std::string_view name;  // "system.md", "spec.md", "spec.schema.json"
  std::string_view content;
};

// The calling plugin's built-in prompt files (defined by the source samokoder_add_agent generates).
std::span<const EmbeddedFile> builtin_prompts() noexcept;

class PromptBook {
 public:
  // The built-in files, then those of config["prompt_dir"] when set. kInvalidArgument for a prompt_dir
  // that is not a readable folder, for a file there that names no built-in file (a misspelt override),
  // and for a schema that is not a JSON object.
  static sdk::Result<PromptBook> load(std::span<const EmbeddedFile> builtin, const nlohmann::json& config);

  // Whether the book has the prompt "<call>.md".
  bool has(std::string_view call) const;
  // "<call>.md" with every {{name}} replaced by values[name]. kNotFound for an unknown call,
  // kInvalidArgument naming a placeholder without a value.
  sdk::Result<std::string> render(std::string_view call, const nlohmann::json& values) const;
  // "<call>.schema.json", parsed. kNotFound when the call has no schema (its answer is free text).
  sdk::Result<nlohmann::json> schema(std::string_view call) const;

 private:
  std::map<std::string, std::string, std::less<>> files_;
  std::map<std::string, nlohmann::json, std::less<>> schemas_;
};

}  // namespace samokoder::agent_common
