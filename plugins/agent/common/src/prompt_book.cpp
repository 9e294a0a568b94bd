#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <samokoder/agent_common/prompt_book.hpp>

namespace samokoder::agent_common {
namespace {

constexpr std::string_view kSchemaSuffix = ".schema.json";

bool is_schema(std::string_view name) {
  return name.ends_with(kSchemaSuffix);
}

sdk::Status add_schema(std::map<std::string, nlohmann::json, std::less<>>& schemas, const std::string& name,
                       std::string_view text) {
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return sdk::Status::invalid_argument(name + " is not a JSON object");
  schemas[name] = std::move(parsed);
  return {};
}

sdk::Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return sdk::Status::invalid_argument("cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

sdk::Result<PromptBook> PromptBook::load(std::span<const EmbeddedFile> builtin,
                                         const nlohmann::json& config) {
  PromptBook book;
  for (const auto& file : builtin) {
    std::string name(file.name);
    if (is_schema(name)) {
      if (auto added = add_schema(book.schemas_, name, file.content); !added.ok()) return added;
    }
    book.files_[name] = std::string(file.content);
  }
  const auto dir = config.find("prompt_dir");
  if (dir == config.end() || dir->is_null()) return book;
  if (!dir->is_string()) return sdk::Status::invalid_argument("prompt_dir must be a folder's path");
  const std::filesystem::path folder = dir->get<std::string>();
  std::error_code error;
  if (!std::filesystem::is_directory(folder, error))
    return sdk::Status::invalid_argument("prompt_dir " + folder.string() + " is not a folder");
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    if (!book.files_.contains(name))
      return sdk::Status::invalid_argument("prompt_dir holds " + name +
                                           ", which names no prompt or schema of this agent");
    auto text = read_file(entry.path());
    if (!text.ok()) return text.status();
    if (is_schema(name)) {
      if (auto added = add_schema(book.schemas_, name, *text); !added.ok()) return added;
    }
    book.files_[name] = std::move(text).value();
  }
  if (error)
    return sdk::Status::invalid_argument("cannot list prompt_dir " + folder.string() + ": " +
                                         error.message());
  return book;
}

bool PromptBook::has(std::string_view call) const {
  return files_.contains(std::string(call) + ".md");
}

sdk::Result<std::string> PromptBook::render(std::string_view call, const nlohmann::json& values) const {
  const std::string name = std::string(call) + ".md";
  const auto it = files_.find(name);
  if (it == files_.end()) return sdk::Status::not_found("no prompt " + name);
  const std::string& text = it->second;
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  while (true) {
    const auto open = text.find("{{", at);
    if (open == std::string::npos) break;
    const auto close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string key = text.substr(open + 2, close - open - 2);
    key.erase(0, key.find_first_not_of(' '));
    key.erase(key.find_last_not_of(' ') + 1);
    const auto value = values.find(key);
    if (value == values.end())
      return sdk::Status::invalid_argument(name + " uses {{" + key + "}}, which the agent does not provide");
    out.append(text, at, open - at);
    out += value->is_string() ? value->get<std::string>() : value->dump(2);
    at = close + 2;
  }
  out.append(text, at, std::string::npos);
  return out;
}

sdk::Result<nlohmann::json> PromptBook::schema(std::string_view call) const {
  const auto it = schemas_.find(std::string(call) + std::string(kSchemaSuffix));
  if (it == schemas_.end()) return sdk::Status::not_found("no schema for " + std::string(call));
  return it->second;
}

}  // namespace samokoder::agent_common
