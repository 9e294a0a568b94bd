// Fuzzes normalize_relative_path: whatever it accepts must be a canonical, confined relative path.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "security/encoding.hpp"
#include "security/path_guard.hpp"

using namespace samokoder::security;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto result = normalize_relative_path(raw);
  if (!result.ok()) {
    FUZZ_CHECK(result.status().code() == samokoder::sdk::StatusCode::kInvalidArgument);
    return 0;
  }
  const std::string& path = *result;
  FUZZ_CHECK(path == raw);  // canonical input is returned unchanged; nothing is "repaired"
  FUZZ_CHECK(!path.empty() && path.size() <= kMaxPathBytes);
  FUZZ_CHECK(path.front() != '/' && path.back() != '/');
  FUZZ_CHECK(path.find("//") == std::string::npos);
  FUZZ_CHECK(path.find('\\') == std::string::npos);
  FUZZ_CHECK(path.find(':') == std::string::npos);
  FUZZ_CHECK(path.find('\0') == std::string::npos);
  FUZZ_CHECK(is_valid_utf8(path));
  for (const char c : path)
    FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);

  std::size_t components = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string_view part =
        std::string_view(path).substr(start, slash == std::string::npos ? slash : slash - start);
    ++components;
    FUZZ_CHECK(!part.empty() && part.size() <= kMaxPathComponentBytes);
    FUZZ_CHECK(part != "." && part != "..");
    FUZZ_CHECK(part.front() != ' ' && part.back() != ' ');
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  FUZZ_CHECK(components <= kMaxPathComponents);

  // std::filesystem agrees the path stays below its root.
  const std::filesystem::path fs_path(path);
  FUZZ_CHECK(fs_path.is_relative());
  const std::filesystem::path normal = fs_path.lexically_normal();
  FUZZ_CHECK(normal.empty() || *normal.begin() != "..");

  // Idempotent.
  auto again = normalize_relative_path(path);
  FUZZ_CHECK(again.ok() && *again == path);
  return 0;
}
