// TempDir: a fresh directory under $TMPDIR (or /tmp) that is removed with everything in it when the
// object goes out of scope. Not thread-safe; one per test.
#pragma once

#include <filesystem>
#include <string_view>

namespace samokoder::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "samokoder-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  // Writes `content` to path()/relative (creating parent directories) and returns the full path.
  std::filesystem::path write(std::string_view relative, std::string_view content) const;

 private:
  std::filesystem::path path_;
};

}  // namespace samokoder::testing
