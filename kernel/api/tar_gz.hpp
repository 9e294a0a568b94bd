// TarGzWriter: writes a gzip-compressed POSIX tar archive (ustar, with a pax "path" record for names
// that do not fit ustar's 100 + 155 byte fields) into a string as entries are added, for project
// exports. Only regular files: every entry has mode 0644, uid and gid 0, no owner names, no links, so
// unpacking an export can neither create a symlink nor set surprising permissions.
//
// The writer does not judge names: callers pass paths accepted by security::normalize_relative_path
// (relative, no "." or "..", no NUL); add_file refuses an empty name or one with a NUL, an absolute
// name or a ".." component as a last line of defence.
//
// Ownership: appends to a string the caller owns, which must outlive the writer.
// Thread-safety: none; one writer per archive, one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <samokoder/sdk/status.hpp>

namespace samokoder::api {

class TarGzWriter {
 public:
  // `level` is zlib's 0..9 (6 is its default trade-off).
  explicit TarGzWriter(std::string& out, int level = 6);
  ~TarGzWriter();
  TarGzWriter(const TarGzWriter&) = delete;
  TarGzWriter& operator=(const TarGzWriter&) = delete;

  // Appends one regular file. `mtime` is seconds since the Unix epoch (negative values become 0).
  // kInvalidArgument for a refused name, kFailedPrecondition after finish(), kInternal if zlib fails.
  sdk::Status add_file(std::string_view name, std::string_view content, std::int64_t mtime);

  // Writes the end-of-archive blocks and the gzip trailer; the string then holds the whole archive.
  sdk::Status finish();

  // Uncompressed tar bytes written so far (for size limits).
  std::uint64_t tar_bytes() const noexcept { return tar_bytes_; }

 private:
  struct Stream;
  sdk::Status write(std::string_view bytes);
  sdk::Status write_header(std::string_view name, char type, std::uint64_t size, std::int64_t mtime);
  sdk::Status pad(std::uint64_t size);

  std::string& out_;
  std::unique_ptr<Stream> stream_;
  std::uint64_t tar_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace samokoder::api
