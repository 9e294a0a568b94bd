#include "console/assets.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <system_error>
#include <utility>

#include "core/file_util.hpp"
#include "http/field_value.hpp"

namespace samokoder::console {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kContentTypes = {{
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
}};

bool ends_with_ci(std::string_view text, std::string_view suffix) {
  if (text.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), text.end() - static_cast<std::ptrdiff_t>(suffix.size()),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

// The build names every asset <stem>-<hash>.<ext>; a hash of eight or more letters and digits means
// the name changes whenever the content does.
bool has_content_hash(std::string_view relative_path) {
  if (!relative_path.starts_with("assets/")) return false;
  std::string_view name = relative_path.substr(relative_path.rfind('/') + 1);
  name = name.substr(0, name.find('.'));
  const auto dash = name.rfind('-');
  if (dash == std::string_view::npos) return false;
  const std::string_view hash = name.substr(dash + 1);
  return hash.size() >= 8 && std::all_of(hash.begin(), hash.end(),
                                         [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The q-value of one Accept-Encoding element ("gzip;q=0.5"), 1 without one; a malformed one refuses.
double quality_of(std::string_view parameters) {
  for (std::size_t start = 0; start <= parameters.size();) {
    const auto end = std::min(parameters.find(';', start), parameters.size());
    const std::string_view parameter = http::trim_ows(parameters.substr(start, end - start));
    if (parameter.size() > 2 && (parameter[0] == 'q' || parameter[0] == 'Q') && parameter[1] == '=') {
      const std::string_view text = parameter.substr(2);
      double value = 0;
      const auto [last, failure] = std::from_chars(text.data(), text.data() + text.size(), value);
      return failure == std::errc() && last == text.data() + text.size() ? value : 0.0;
    }
    start = end + 1;
  }
  return 1.0;
}

// How acceptable `coding` is under the header: its own element's q, else "*"'s, else not at all.
bool accepts(std::string_view accept_encoding, std::string_view coding) {
  std::optional<double> named;
  std::optional<double> wildcard;
  for (std::size_t start = 0; start <= accept_encoding.size();) {
    const auto end = std::min(accept_encoding.find(',', start), accept_encoding.size());
    const std::string_view element = http::trim_ows(accept_encoding.substr(start, end - start));
    const auto semicolon = element.find(';');
    const std::string name = lower(http::trim_ows(element.substr(0, semicolon)));
    const std::string_view parameters =
        semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
    if (name == coding) named = quality_of(parameters);
    if (name == "*") wildcard = quality_of(parameters);
    start = end + 1;
  }
  if (named) return *named > 0;
  return wildcard.value_or(0) > 0;
}

}  // namespace

std::string_view content_type_for(std::string_view file_name) {
  for (const auto& [extension, type] : kContentTypes) {
    if (ends_with_ci(file_name, extension)) return type;
  }
  return {};
}

sdk::Result<ConsoleAssets> ConsoleAssets::load(const fs::path& dir) {
  std::error_code error;
  if (!fs::is_regular_file(dir / "index.html", error)) {
    return sdk::Status::not_found("the console folder " + dir.string() +
                                  " has no index.html (build the console, or set console.dir)");
  }
  ConsoleAssets out;
  std::map<std::string, std::string> compressed;  // "<path>.br" / "<path>.gz" -> bytes
  std::size_t files = 0;
  std::size_t total = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const fs::directory_entry& entry = *it;
    const std::string relative = entry.path().lexically_relative(dir).generic_string();
    if (entry.is_symlink(error)) {
      return sdk::Status::invalid_argument("the console folder holds a symbolic link, " +
                                           entry.path().string() + ": the console's build writes none");
    }
    if (entry.is_directory(error)) continue;
    if (!entry.is_regular_file(error)) {
      return sdk::Status::invalid_argument("the console folder holds " + entry.path().string() +
                                           ", which is not a regular file");
    }
    if (++files > kMaxFiles) {
      return sdk::Status::invalid_argument("the console folder " + dir.string() + " holds more than " +
                                           std::to_string(kMaxFiles) + " files: is console.dir right?");
    }
    auto bytes = core::read_file(entry.path());
    if (!bytes.ok()) return bytes.status();
    total += bytes->size();
    if (total > kMaxTotalBytes) {
      return sdk::Status::invalid_argument("the console folder " + dir.string() + " holds more than " +
                                           std::to_string(kMaxTotalBytes >> 20) +
                                           " MiB: is console.dir right?");
    }
    if (ends_with_ci(relative, ".br") || ends_with_ci(relative, ".gz")) {
      compressed.emplace(relative, std::move(bytes).value());
      continue;
    }
    const std::string_view type = content_type_for(relative);
    if (type.empty()) {
      return sdk::Status::invalid_argument("the console folder holds " + entry.path().string() +
                                           ", a kind of file the console does not serve");
    }
    Asset asset;
    asset.content_type = std::string(type);
    asset.identity = std::move(bytes).value();
    asset.etag = core::sha256_hex(asset.identity).substr(0, 32);
    asset.etag.insert(asset.etag.begin(), '"');
    asset.etag.push_back('"');
    asset.immutable = has_content_hash(relative);
    out.assets_.emplace(relative, std::move(asset));
  }
  if (error) {
    return sdk::Status::unavailable("cannot read the console folder " + dir.string() + ": " +
                                    error.message());
  }
  for (auto& [name, bytes] : compressed) {
    const auto base = out.assets_.find(std::string_view(name).substr(0, name.size() - 3));
    if (base == out.assets_.end()) continue;  // a stray copy of nothing served
    // A copy no smaller than the original only costs the client a decompression.
    if (bytes.size() >= base->second.identity.size()) continue;
    (ends_with_ci(name, ".br") ? base->second.brotli : base->second.gzip) = std::move(bytes);
  }
  return out;
}

const Asset* ConsoleAssets::find(std::string_view relative_path) const {
  const auto it = assets_.find(relative_path);
  return it == assets_.end() ? nullptr : &it->second;
}

Encoded choose_encoding(const Asset& asset, std::string_view accept_encoding) {
  // A strong ETag names one representation: the coding is part of it.
  const auto tagged = [&asset](std::string_view suffix) {
    return asset.etag.substr(0, asset.etag.size() - 1) + std::string(suffix) + "\"";
  };
  if (!asset.brotli.empty() && accepts(accept_encoding, "br")) return {asset.brotli, "br", tagged("-br")};
  if (!asset.gzip.empty() && accepts(accept_encoding, "gzip")) return {asset.gzip, "gzip", tagged("-gz")};
  return {asset.identity, "", asset.etag};
}

}  // namespace samokoder::console
