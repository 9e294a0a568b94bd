#include "security/path_guard.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "temp_dir.hpp"

namespace samokoder::security {
namespace {

namespace fs = std::filesystem;
using samokoder::testing::TempDir;

TEST(NormalizeRelativePath, AcceptsOrdinaryPaths) {
  for (const char* good :
       {"a", "src/App.tsx", "src/components/Button.jsx", ".env.example", ".gitignore", "a/b/c/d/e", "...",
        "a/...b", "file name with spaces.txt", "dir/.samokoder", ".samokoder-notes",
        "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82/index.html", "a..b", "a.", "-rf", "~", "%2e%2e"}) {
    auto result = normalize_relative_path(good);
    ASSERT_TRUE(result.ok()) << good << ": " << result.status().to_string();
    EXPECT_EQ(*result, good);
  }
  std::string deep;
  for (std::size_t i = 0; i < kMaxPathComponents; ++i)
    deep += (i ? "/d" : "d");
  EXPECT_TRUE(normalize_relative_path(deep).ok());
  EXPECT_TRUE(normalize_relative_path(std::string(kMaxPathComponentBytes, 'n')).ok());
}

TEST(NormalizeRelativePath, RefusesHostilePaths) {
  std::string too_deep;
  for (std::size_t i = 0; i <= kMaxPathComponents; ++i)
    too_deep += (i ? "/d" : "d");
  std::string long_path;
  while (long_path.size() < 5000)
    long_path += "abcdefghi/";
  long_path += "x";
  const std::vector<std::string> hostile = {
      "",
      "..",
      "../etc/passwd",
      "../../../../etc/shadow",
      "a/..",
      "a/../b",
      "a/../../b",
      "a/b/../../..",
      ".",
      "./a",
      "a/./b",
      "a/.",
      "/etc/passwd",
      "/",
      "//server/share",
      "a/",
      "a/b/",
      "a//b",
      "a///b",
      "a\\b",
      "..\\..\\windows\\system32",
      "\\\\server\\share",
      "C:/x",
      "C:",
      "c:\\boot.ini",
      "a/C:/b",
      "file.txt:stream",
      std::string("a\0b", 3),
      std::string("\0", 1),
      std::string("a/\0/b", 5),
      "\x01",
      "a\x1f"
      "b",
      "a\tb",
      "a\nb",
      "a\rb",
      "a\x7f",
      "a\xc2\x85"
      "b",  // U+0085 NEL, a C1 control
      "\xe2\x80\xae"
      "txt.exe",  // U+202E right-to-left override
      "a\xe2\x81\xa6"
      "b",              // U+2066 isolate
      "a\xe2\x80\x8f",  // U+200F right-to-left mark
      std::string(256, 'n'),
      "a/" + std::string(256, 'n'),
      long_path,
      std::string(kMaxPathBytes + 1, 'x'),
      too_deep,
      "\xff",
      "a/\xc0\xae\xc0\xae/b",  // overlong "..", the classic UTF-8 traversal
      "\xc0\xaf"
      "etc",           // overlong '/'
      "\xe0\x80\xae",  // overlong '.'
      "\xed\xa0\x80",  // surrogate
      "abc\xe2\x82",   // truncated sequence
      ".samokoder",
      ".samokoder/x",
      ".SAMOKODER/config.json",
      ".Samokoder",
      " a",
      "a ",
      "a/ b",
      "dir /file",
      " ",
  };
  ASSERT_GE(hostile.size(), 40U);
  for (const std::string& path : hostile) {
    auto result = normalize_relative_path(path);
    EXPECT_EQ(result.status().code(), sdk::StatusCode::kInvalidArgument) << ::testing::PrintToString(path);
  }
}

TEST(NormalizeRelativePath, ExplainsTheRuleBroken) {
  EXPECT_NE(normalize_relative_path("a/../b").status().message().find("'..'"), std::string::npos);
  EXPECT_NE(normalize_relative_path("/etc").status().message().find("relative"), std::string::npos);
  EXPECT_NE(normalize_relative_path("a\\b").status().message().find("backslash"), std::string::npos);
  EXPECT_NE(normalize_relative_path(".samokoder/x").status().message().find("reserved"), std::string::npos);
  EXPECT_NE(normalize_relative_path("a//b").status().message().find("empty component"), std::string::npos);
}

class WorkspaceTest : public ::testing::Test {
 protected:
  WorkspaceTest() : root_(dir_.path() / "workspace"), outside_(dir_.path() / "outside") {
    fs::create_directories(root_ / "src");
    fs::create_directories(outside_);
    dir_.write("workspace/src/app.js", "console.log('hi');\n");
    dir_.write("outside/secret.txt", "TOP SECRET\n");
  }

  TempDir dir_{"samokoder-path-guard"};
  fs::path root_;
  fs::path outside_;
};

TEST_F(WorkspaceTest, ResolvesExistingAndNewFiles) {
  auto existing = resolve_in_workspace(root_, "src/app.js", false);
  ASSERT_TRUE(existing.ok()) << existing.status().to_string();
  EXPECT_EQ(*existing, root_ / "src/app.js");
  EXPECT_TRUE(resolve_in_workspace(root_, "src", false).ok());  // directories may be read (listed)
  EXPECT_EQ(resolve_in_workspace(root_, "src/missing.js", false).status().code(), sdk::StatusCode::kNotFound);

  auto fresh = resolve_in_workspace(root_, "new/deep/file.txt", true);
  ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
  EXPECT_EQ(*fresh, root_ / "new/deep/file.txt");
  EXPECT_TRUE(fs::is_directory(root_ / "new/deep"));
  EXPECT_EQ(resolve_in_workspace(root_, "src", true).status().code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(resolve_in_workspace(root_, "src/app.js/x", true).status().code(),
            sdk::StatusCode::kFailedPrecondition);
}

TEST_F(WorkspaceTest, RevalidatesThePathText) {
  EXPECT_EQ(resolve_in_workspace(root_, "../outside/secret.txt", false).status().code(),
            sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(open_workspace_file(root_, "/etc/passwd").status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_FALSE(write_workspace_file(root_, "a/../../x", "x").ok());
  EXPECT_FALSE(fs::exists(dir_.path() / "x"));
}

TEST_F(WorkspaceTest, RefusesASymlinkedDirectoryPointingOutsideForReadAndWrite) {
  fs::create_directory_symlink(outside_, root_ / "escape");
  for (const bool for_write : {false, true}) {
    auto result = resolve_in_workspace(root_, "escape/secret.txt", for_write);
    EXPECT_EQ(result.status().code(), sdk::StatusCode::kPermissionDenied) << for_write;
    EXPECT_NE(result.status().message().find("symbolic link"), std::string::npos);
  }
  EXPECT_EQ(read_workspace_file(root_, "escape/secret.txt").status().code(),
            sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(write_workspace_file(root_, "escape/secret.txt", "pwned").code(),
            sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(write_workspace_file(root_, "escape/new.txt", "pwned").code(),
            sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(remove_workspace_file(root_, "escape/secret.txt").code(), sdk::StatusCode::kPermissionDenied);
  // Nothing outside changed.
  EXPECT_FALSE(fs::exists(outside_ / "new.txt"));
  EXPECT_TRUE(fs::exists(outside_ / "secret.txt"));
  auto check = read_workspace_file(dir_.path(), "outside/secret.txt");
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(*check, "TOP SECRET\n");
}

TEST_F(WorkspaceTest, RefusesASymlinkedFileForReadAndWrite) {
  fs::create_symlink(outside_ / "secret.txt", root_ / "src/link.txt");
  EXPECT_EQ(resolve_in_workspace(root_, "src/link.txt", false).status().code(),
            sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(resolve_in_workspace(root_, "src/link.txt", true).status().code(),
            sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(open_workspace_file(root_, "src/link.txt").status().code(), sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(write_workspace_file(root_, "src/link.txt", "pwned").code(), sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(read_workspace_file(dir_.path(), "outside/secret.txt").value(), "TOP SECRET\n");
}

TEST_F(WorkspaceTest, RefusesEvenSymlinksThatStayInside) {
  fs::create_directory_symlink(root_ / "src", root_ / "alias");
  EXPECT_EQ(resolve_in_workspace(root_, "alias/app.js", false).status().code(),
            sdk::StatusCode::kPermissionDenied);
  fs::create_symlink("app.js", root_ / "src/relative-link.js");
  EXPECT_EQ(open_workspace_file(root_, "src/relative-link.js").status().code(),
            sdk::StatusCode::kPermissionDenied);
}

TEST_F(WorkspaceTest, RefusesHardLinksAndSpecialFiles) {
  fs::create_hard_link(outside_ / "secret.txt", root_ / "src/hard.txt");
  EXPECT_EQ(read_workspace_file(root_, "src/hard.txt").status().code(), sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(write_workspace_file(root_, "src/hard.txt", "pwned").code(), sdk::StatusCode::kPermissionDenied);
  std::ifstream secret(outside_ / "secret.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(secret), {}), "TOP SECRET\n");

  ASSERT_EQ(::mkfifo((root_ / "src/fifo").c_str(), 0600), 0);
  // Must return at once (O_NONBLOCK) and refuse, not hang waiting for a writer.
  EXPECT_EQ(open_workspace_file(root_, "src/fifo").status().code(), sdk::StatusCode::kPermissionDenied);
}

TEST_F(WorkspaceTest, WritesReadsAndRemovesFiles) {
  ASSERT_TRUE(write_workspace_file(root_, "web/index.html", "<h1>v1</h1>").ok());
  EXPECT_EQ(read_workspace_file(root_, "web/index.html").value(), "<h1>v1</h1>");
  ASSERT_TRUE(write_workspace_file(root_, "web/index.html", "<h1>v2</h1>").ok());
  EXPECT_EQ(read_workspace_file(root_, "web/index.html").value(), "<h1>v2</h1>");
  // No temporary files are left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(root_ / "web"))
    ++entries;
  EXPECT_EQ(entries, 1U);
  EXPECT_EQ(read_workspace_file(root_, "web/index.html", 4).status().code(),
            sdk::StatusCode::kResourceExhausted);
  EXPECT_EQ(read_workspace_file(root_, "web").status().code(), sdk::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(remove_workspace_file(root_, "web/index.html").ok());
  EXPECT_FALSE(fs::exists(root_ / "web/index.html"));
  EXPECT_EQ(remove_workspace_file(root_, "web/index.html").code(), sdk::StatusCode::kNotFound);
  EXPECT_EQ(remove_workspace_file(root_, "web").code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_EQ(write_workspace_file(root_, "src", "x").code(), sdk::StatusCode::kFailedPrecondition);
}

TEST_F(WorkspaceTest, RemovesEmptyParentsUpToTheRootButNoFurtherAndFollowsNoLink) {
  ASSERT_TRUE(write_workspace_file(root_, "a/b/c/leaf.txt", "x").ok());
  ASSERT_TRUE(write_workspace_file(root_, "a/kept.txt", "y").ok());
  ASSERT_TRUE(remove_workspace_file(root_, "a/b/c/leaf.txt").ok());
  ASSERT_TRUE(remove_empty_parents(root_, "a/b/c/leaf.txt").ok());
  EXPECT_FALSE(fs::exists(root_ / "a/b"));
  EXPECT_TRUE(fs::is_regular_file(root_ / "a/kept.txt"));
  ASSERT_TRUE(remove_workspace_file(root_, "a/kept.txt").ok());
  ASSERT_TRUE(remove_empty_parents(root_, "a/kept.txt").ok());
  EXPECT_FALSE(fs::exists(root_ / "a"));
  EXPECT_TRUE(fs::is_directory(root_));
  // A link to an empty directory outside: neither the link's target nor the link is taken for a folder.
  fs::create_directory(outside_ / "empty");
  fs::create_directory_symlink(outside_ / "empty", root_ / "link");
  EXPECT_TRUE(remove_empty_parents(root_, "link/gone.txt").ok());
  EXPECT_TRUE(fs::is_directory(outside_ / "empty"));
  EXPECT_TRUE(fs::is_symlink(root_ / "link"));
  EXPECT_EQ(remove_empty_parents(root_, "../x").code(), sdk::StatusCode::kInvalidArgument);
}

TEST_F(WorkspaceTest, MissingRootIsUnavailable) {
  EXPECT_EQ(resolve_in_workspace(dir_.path() / "nope", "a", false).status().code(),
            sdk::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace samokoder::security
