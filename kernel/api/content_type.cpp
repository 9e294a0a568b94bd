#include "api/content_type.hpp"

#include <array>
#include <utility>

#include "security/encoding.hpp"

namespace samokoder::api {
namespace {

struct Mapping {
  std::string_view extension;  // lowercase, without the dot
  std::string_view type;
  bool text;  // gets "; charset=utf-8" when the bytes are UTF-8
};

constexpr std::array kMappings = {
    Mapping{"html", "text/html", true},         Mapping{"htm", "text/html", true},
    Mapping{"css", "text/css", true},           Mapping{"js", "text/javascript", true},
    Mapping{"mjs", "text/javascript", true},    Mapping{"cjs", "text/javascript", true},
    Mapping{"json", "application/json", true},  Mapping{"map", "application/json", true},
    Mapping{"md", "text/markdown", true},       Mapping{"txt", "text/plain", true},
    Mapping{"csv", "text/csv", true},           Mapping{"xml", "application/xml", true},
    Mapping{"svg", "image/svg+xml", true},      Mapping{"yaml", "application/yaml", true},
    Mapping{"yml", "application/yaml", true},   Mapping{"toml", "application/toml", true},
    Mapping{"png", "image/png", false},         Mapping{"jpg", "image/jpeg", false},
    Mapping{"jpeg", "image/jpeg", false},       Mapping{"gif", "image/gif", false},
    Mapping{"webp", "image/webp", false},       Mapping{"ico", "image/vnd.microsoft.icon", false},
    Mapping{"woff", "font/woff", false},        Mapping{"woff2", "font/woff2", false},
    Mapping{"ttf", "font/ttf", false},          Mapping{"pdf", "application/pdf", false},
    Mapping{"zip", "application/zip", false},   Mapping{"gz", "application/gzip", false},
    Mapping{"wasm", "application/wasm", false},
};

std::string lowercase_extension(std::string_view path) {
  const auto slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return ext;
}

bool is_text(std::string_view content) {
  return content.find('\0') == std::string_view::npos && security::is_valid_utf8(content);
}

}  // namespace

std::string content_type_for(std::string_view path, std::string_view content) {
  const std::string ext = lowercase_extension(path);
  for (const auto& m : kMappings) {
    if (m.extension != ext) continue;
    if (!m.text) return std::string(m.type);
    return is_text(content) ? std::string(m.type) + "; charset=utf-8" : std::string(m.type);
  }
  return is_text(content) ? "text/plain; charset=utf-8" : "application/octet-stream";
}

}  // namespace samokoder::api
