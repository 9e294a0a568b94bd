// ConsoleAssets: the web console's built files (index.html and assets/), read into memory once at
// startup, each with the compressed copies the console's build wrote beside it (<file>.br, <file>.gz).
//
// Serving never touches the filesystem: a request path is a key into this map or a 404, so no path a
// client sends can reach a file outside the folder, and a console rebuilt while the server runs takes
// effect at the next start, never half-way through a page load.
//
// Ownership: a plain value, shared as std::shared_ptr<const ConsoleAssets>. Thread-safety: immutable
// after load(); const methods are safe to call concurrently.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::console {

// One file as the browser gets it.
struct Asset {
  std::string content_type;
  std::string identity;    // the bytes as built
  std::string brotli;      // empty when the build wrote no smaller .br copy
  std::string gzip;        // likewise for .gz
  std::string etag;        // quoted, strong, of the identity bytes; a coding appends its own suffix
  bool immutable = false;  // its name carries its content hash: cacheable for a year
};

// The representation an Accept-Encoding header and an asset settle on.
struct Encoded {
  std::string_view body;
  std::string_view content_encoding;  // "" for identity
  std::string etag;
};

class ConsoleAssets {
 public:
  // Guards against pointing the console at the wrong folder (a home directory, /): a console build is
  // a few hundred KiB in a few dozen files.
  static constexpr std::size_t kMaxFiles = 2000;
  static constexpr std::size_t kMaxTotalBytes = 64ULL * 1024 * 1024;

  // Reads every regular file under `dir` (symbolic links are refused, not followed). Fails with
  // kNotFound when `dir` has no index.html, kInvalidArgument for a file type the console does not
  // use or a folder over the limits above, each message naming the path.
  static sdk::Result<ConsoleAssets> load(const std::filesystem::path& dir);

  // "index.html", "assets/app-5XKQ2L7M.js": the path relative to the folder, "/"-separated.
  const Asset* find(std::string_view relative_path) const;
  std::size_t size() const noexcept { return assets_.size(); }

 private:
  std::map<std::string, Asset, std::less<>> assets_;
};

// The Content-Type the console's build may produce for a file name, or "" for any other.
std::string_view content_type_for(std::string_view file_name);

// Picks brotli, then gzip, then identity, as `accept_encoding` allows (q=0 refuses a coding; "*"
// stands for any coding not named) and as the asset has a compressed copy.
Encoded choose_encoding(const Asset& asset, std::string_view accept_encoding);

}  // namespace samokoder::console
