#include "api/workspace.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "resources_fixture.hpp"
#include "temp_dir.hpp"

namespace samokoder::api {
namespace {

namespace fs = std::filesystem;
using resources_test::file_bytes;
using resources_test::mode_of;
using samokoder::testing::TempDir;

constexpr std::string_view kProject = "0190f5a2b3c47d8e9f00112233445566";

TEST(Workspaces, CreatesRootAndProjectDirectoriesPrivateToTheOwner) {
  TempDir tmp("samokoder-ws");
  const Workspaces workspaces(tmp.path() / "var" / "workspaces");
  ASSERT_TRUE(workspaces.create(kProject).ok());
  EXPECT_EQ(mode_of(tmp.path() / "var" / "workspaces"), 0700u);
  EXPECT_EQ(mode_of(tmp.path() / "var" / "workspaces" / std::string(kProject)), 0700u);
  EXPECT_TRUE(workspaces.create(kProject).ok());  // idempotent
}

// The workspace's name taken by something that is not a directory (a file, or a link that could lead
// out) is refused, never followed or replaced.
TEST(Workspaces, CreateRefusesANameHeldByAFileOrALink) {
  TempDir tmp("samokoder-ws");
  TempDir outside("samokoder-ws-outside");
  const Workspaces workspaces(tmp.path());
  std::ofstream(tmp.path() / std::string(kProject)) << "not a directory";
  EXPECT_EQ(workspaces.create(kProject).code(), sdk::StatusCode::kFailedPrecondition);
  constexpr std::string_view kLinked = "0190f5a2b3c47d8e9f00112233445577";
  fs::create_directory_symlink(outside.path(), tmp.path() / std::string(kLinked));
  EXPECT_EQ(workspaces.create(kLinked).code(), sdk::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fs::is_symlink(tmp.path() / std::string(kLinked)));
  EXPECT_EQ(file_bytes(tmp.path() / std::string(kProject)), "not a directory");
}

TEST(Workspaces, DirectoryNamesComeOnlyFromIdShapedStrings) {
  const Workspaces workspaces("/nonexistent");
  for (const std::string_view bad : std::vector<std::string_view>{"", "..", "a/b", "../x", ".hidden", "a b",
                                                                  std::string_view("a\0b", 3)}) {
    EXPECT_EQ(workspaces.directory(bad).status().code(), sdk::StatusCode::kInternal) << bad;
  }
  EXPECT_EQ(*workspaces.directory(kProject), fs::path("/nonexistent") / std::string(kProject));
}

TEST(Workspaces, WritesReplacesAndRemovesFiles) {
  TempDir tmp("samokoder-ws");
  const Workspaces workspaces(tmp.path());
  ASSERT_TRUE(workspaces.write_file(kProject, "src/a.txt", "one").ok());
  const fs::path file = tmp.path() / std::string(kProject) / "src" / "a.txt";
  EXPECT_EQ(file_bytes(file), "one");
  ASSERT_TRUE(workspaces.write_file(kProject, "src/a.txt", "two").ok());
  EXPECT_EQ(file_bytes(file), "two");
  ASSERT_TRUE(workspaces.remove_file(kProject, "src/a.txt").ok());
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(workspaces.remove_file(kProject, "src/a.txt").ok());        // already gone
  EXPECT_TRUE(workspaces.remove_file("ffffffffffffffff", "a.txt").ok());  // no workspace at all
}

TEST(Workspaces, RefusesSymlinksPlantedInsideForReadAndWrite) {
  TempDir tmp("samokoder-ws");
  TempDir outside("samokoder-outside");
  const fs::path secret = outside.write("secret.txt", "top secret");
  const Workspaces workspaces(tmp.path());
  ASSERT_TRUE(workspaces.create(kProject).ok());
  const fs::path dir = tmp.path() / std::string(kProject);
  fs::create_symlink(secret, dir / "link.txt");
  fs::create_directory_symlink(outside.path(), dir / "linked_dir");

  for (const bool for_write : {false, true}) {
    EXPECT_EQ(workspaces.check_path(kProject, "link.txt", for_write).code(),
              sdk::StatusCode::kPermissionDenied);
    EXPECT_EQ(workspaces.check_path(kProject, "linked_dir/secret.txt", for_write).code(),
              sdk::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(workspaces.write_file(kProject, "linked_dir/new.txt", "x").code(),
            sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(workspaces.write_file(kProject, "link.txt", "x").code(), sdk::StatusCode::kPermissionDenied);
  EXPECT_EQ(file_bytes(secret), "top secret");
  EXPECT_FALSE(fs::exists(outside.path() / "new.txt"));
  EXPECT_TRUE(workspaces.check_path(kProject, "missing/file.txt", false).ok());
}

TEST(Workspaces, RemoveDeletesTheTreeButNeverFollowsLinksOut) {
  TempDir tmp("samokoder-ws");
  TempDir outside("samokoder-outside");
  const fs::path kept = outside.write("keep/me.txt", "keep");
  const Workspaces workspaces(tmp.path());
  ASSERT_TRUE(workspaces.write_file(kProject, "a/b/c/d.txt", "deep").ok());
  const fs::path dir = tmp.path() / std::string(kProject);
  fs::create_directory_symlink(outside.path() / "keep", dir / "a" / "escape");
  fs::create_symlink(kept, dir / "file_link");
  fs::create_directories(dir / "locked" / "inner");
  fs::permissions(dir / "locked", fs::perms::owner_read | fs::perms::owner_exec);

  ASSERT_TRUE(workspaces.remove(kProject).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir)));
  EXPECT_EQ(file_bytes(kept), "keep");
  EXPECT_TRUE(workspaces.remove(kProject).ok());  // already gone
}

}  // namespace
}  // namespace samokoder::api
