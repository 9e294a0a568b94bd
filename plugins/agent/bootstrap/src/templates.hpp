// The bootstrap agent's project templates: the folders of plugins/agent/bootstrap/templates/ compiled in,
// plus those of the "templates_dir" config folder, which add templates or replace built-in ones by name.
// A template is a folder <name>/ holding template.json ({"name", "description", "stack", "run_command",
// "summary"}) and the files to copy; in those files the literal {{project_name}} and
// {{project_description}} are replaced, and nothing else is touched (JSX's style={{...}} stays).
//
// Thread-safety: a TemplateSet is immutable after load(); any thread may read and render from it.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/agent_common/prompt_book.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::agent_common {
// The compiled-in templates/ folder, named by path relative to it ("node_http/server.js").
std::span<const EmbeddedFile> bootstrap_templates() noexcept;
}  // namespace samokoder::agent_common

namespace samokoder::bootstrap {

struct Template {
  std::string name;
  std::string description;
  std::string stack;
  std::string run_command;
  std::string summary;
  std::vector<std::pair<std::string, std::string>> files;  // path -> content, by path; no template.json
};

class TemplateSet {
 public:
  // The built-in templates, then those of config["templates_dir"] when set. kInvalidArgument naming
  // the template and the problem for a malformed one (no or a bad template.json, a name that differs
  // from its folder's, no files) and for a templates_dir that is not a folder of template folders.
  static sdk::Result<TemplateSet> load(std::span<const agent_common::EmbeddedFile> builtin,
                                       const nlohmann::json& config);

  const Template* find(std::string_view name) const;
  // Every template, by name.
  const std::map<std::string, Template, std::less<>>& all() const noexcept { return templates_; }

 private:
  std::map<std::string, Template, std::less<>> templates_;
};

// `content` with every {{project_name}} and {{project_description}} replaced. The description is made
// safe for where it lands, judged by `path`'s extension: JSON-escaped (without quotes) in JSON, JS and
// Python files, where templates put it inside a double-quoted string; HTML-escaped in HTML; as it is
// elsewhere.
std::string render(std::string_view content, std::string_view path, std::string_view project_name,
                   std::string_view project_description);

// A model's project name made [a-z0-9-]{1,64}: lowercased, other characters runs made one "-", no "-"
// at either end; "app" when nothing is left.
std::string sanitize_project_name(std::string_view name);

// A description on one line (whitespace runs made one space) of at most `max_bytes`, cut at a UTF-8
// character boundary with "...".
std::string one_line(std::string_view text, std::size_t max_bytes = 160);

}  // namespace samokoder::bootstrap
