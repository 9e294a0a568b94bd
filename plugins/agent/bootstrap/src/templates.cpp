#include "templates.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace samokoder::bootstrap {
namespace {

constexpr std::string_view kManifest = "template.json";
constexpr std::string_view kNamePlaceholder = "{{project_name}}";
constexpr std::string_view kDescriptionPlaceholder = "{{project_description}}";

// A template's files by path relative to its folder, template.json included.
using FileMap = std::map<std::string, std::string, std::less<>>;

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "none") return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

sdk::Result<Template> parse(const std::string& folder, FileMap files, const std::string& origin) {
  const std::string where = "template " + folder + " (" + origin + ")";
  if (!valid_name(folder))
    return sdk::Status::invalid_argument(where +
                                         ": a template's folder is named [a-z0-9_-]{1,64}, not \"none\"");
  const auto manifest_file = files.find(kManifest);
  if (manifest_file == files.end()) return sdk::Status::invalid_argument(where + " has no template.json");
  const auto manifest = nlohmann::json::parse(manifest_file->second, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object())
    return sdk::Status::invalid_argument(where + ": template.json is not a JSON object");
  Template result;
  const std::pair<const char*, std::string*> members[] = {{"name", &result.name},
                                                          {"description", &result.description},
                                                          {"stack", &result.stack},
                                                          {"run_command", &result.run_command},
                                                          {"summary", &result.summary}};
  for (const auto& [member, target] : members) {
    const auto value = manifest.find(member);
    if (value == manifest.end() || !value->is_string())
      return sdk::Status::invalid_argument(where + ": template.json needs \"" + member + "\" as a string");
    *target = value->get<std::string>();
  }
  if (result.name != folder)
    return sdk::Status::invalid_argument(where + ": template.json names it \"" + result.name +
                                         "\", not its folder's name");
  if (result.description.empty()) return sdk::Status::invalid_argument(where + ": its description is empty");
  files.erase(manifest_file);
  if (files.empty()) return sdk::Status::invalid_argument(where + " has no files besides template.json");
  for (auto& [path, content] : files)
    result.files.emplace_back(path, std::move(content));
  return result;
}

sdk::Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return sdk::Status::invalid_argument("cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The files of one template folder of templates_dir, by path relative to it.
sdk::Result<FileMap> read_folder(const std::filesystem::path& folder) {
  FileMap files;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(folder, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_directory(error)) continue;
    if (!it->is_regular_file(error))
      return sdk::Status::invalid_argument("templates_dir: " + it->path().string() +
                                           " is not a regular file");
    auto content = read_file(it->path());
    if (!content.ok()) return content.status();
    files[it->path().lexically_relative(folder).generic_string()] = std::move(content).value();
  }
  if (error)
    return sdk::Status::invalid_argument("templates_dir: cannot list " + folder.string() + ": " +
                                         error.message());
  return files;
}

void append_json_escaped(std::string& out, std::string_view text) {
  const std::string quoted =
      nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.append(quoted, 1, quoted.size() - 2);
}

void append_html_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

enum class Escape { kNone, kJson, kHtml };

Escape escape_for(std::string_view path) {
  const auto dot = path.rfind('.');
  const auto slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return Escape::kNone;
  const std::string_view extension = path.substr(dot);
  for (const std::string_view json : {".json", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".py"})
    if (extension == json) return Escape::kJson;
  for (const std::string_view html : {".html", ".htm", ".xml", ".svg"})
    if (extension == html) return Escape::kHtml;
  return Escape::kNone;
}

}  // namespace

sdk::Result<TemplateSet> TemplateSet::load(std::span<const agent_common::EmbeddedFile> builtin,
                                           const nlohmann::json& config) {
  TemplateSet set;
  std::map<std::string, FileMap, std::less<>> folders;
  for (const auto& file : builtin) {
    const auto slash = file.name.find('/');
    if (slash == std::string_view::npos)
      return sdk::Status::invalid_argument("built-in templates: " + std::string(file.name) +
                                           " is outside a template folder");
    folders[std::string(file.name.substr(0, slash))][std::string(file.name.substr(slash + 1))] =
        std::string(file.content);
  }
  for (auto& [folder, files] : folders) {
    auto parsed = parse(folder, std::move(files), "built in");
    if (!parsed.ok()) return parsed.status();
    set.templates_[folder] = std::move(parsed).value();
  }

  const auto dir = config.find("templates_dir");
  if (dir == config.end() || dir->is_null()) return set;
  if (!dir->is_string()) return sdk::Status::invalid_argument("templates_dir must be a folder's path");
  const std::filesystem::path root = dir->get<std::string>();
  std::error_code error;
  if (!std::filesystem::is_directory(root, error))
    return sdk::Status::invalid_argument("templates_dir " + root.string() + " is not a folder");
  std::map<std::string, Template, std::less<>> added;  // all parsed before any replaces a built-in one
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    const std::string folder = entry.path().filename().string();
    if (!entry.is_directory())
      return sdk::Status::invalid_argument(
          "templates_dir holds " + folder +
          ", which is not a template folder (<name>/template.json and its files)");
    auto files = read_folder(entry.path());
    if (!files.ok()) return files.status();
    auto parsed = parse(folder, std::move(files).value(), root.string());
    if (!parsed.ok()) return parsed.status();
    added[folder] = std::move(parsed).value();
  }
  if (error)
    return sdk::Status::invalid_argument("cannot list templates_dir " + root.string() + ": " +
                                         error.message());
  for (auto& [name, template_] : added)
    set.templates_[name] = std::move(template_);
  return set;
}

const Template* TemplateSet::find(std::string_view name) const {
  const auto it = templates_.find(name);
  return it == templates_.end() ? nullptr : &it->second;
}

std::string render(std::string_view content, std::string_view path, std::string_view project_name,
                   std::string_view project_description) {
  const Escape escape = escape_for(path);
  std::string out;
  out.reserve(content.size());
  std::size_t at = 0;
  while (at < content.size()) {
    const auto open = content.find("{{", at);
    if (open == std::string_view::npos) break;
    out.append(content, at, open - at);
    const auto rest = content.substr(open);
    if (rest.starts_with(kNamePlaceholder)) {
      out += project_name;
      at = open + kNamePlaceholder.size();
    } else if (rest.starts_with(kDescriptionPlaceholder)) {
      if (escape == Escape::kJson) {
        append_json_escaped(out, project_description);
      } else if (escape == Escape::kHtml) {
        append_html_escaped(out, project_description);
      } else {
        out += project_description;
      }
      at = open + kDescriptionPlaceholder.size();
    } else {
      out += "{{";
      at = open + 2;
    }
  }
  out.append(content, at, std::string_view::npos);
  return out;
}

std::string sanitize_project_name(std::string_view name) {
  std::string out;
  bool dash = false;
  for (const char c : name) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) {
      const bool separated = dash && !out.empty();
      if (out.size() + (separated ? 2 : 1) > 64) break;
      if (separated) out += '-';
      dash = false;
      out += lower;
    } else {
      dash = true;
    }
  }
  return out.empty() ? std::string("app") : out;
}

std::string one_line(std::string_view text, std::size_t max_bytes) {
  std::string out;
  bool space = false;
  for (const char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() <= max_bytes) return out;
  std::size_t cut = max_bytes > 3 ? max_bytes - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80)
    --cut;  // not inside a UTF-8 character
  out.resize(cut);
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out + "...";
}

}  // namespace samokoder::bootstrap
