#include "api/tar_gz.hpp"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "archive_util.hpp"
#include "temp_dir.hpp"

namespace samokoder::api {
namespace {

using samokoder::testing::TempDir;

TEST(TarGzWriter, SystemTarUnpacksEveryFileWithItsBytes) {
  std::map<std::string, std::string> files = {
      {"README.md", "# hello\n"},
      {"empty", ""},
      {"src/app/main.cpp", "int main() { return 0; }\n"},
      {"bin/data.bin", std::string("\0\x01\x02\xff binary \0 tail", 18)},
      {"exactly/512", std::string(512, 'x')},
      {"big/file.txt", std::string(300000, 'z') + "end"},
  };
  // ustar name (100) + prefix (155) split, and names only a pax record can carry.
  files[std::string(120, 'p') + "/" + std::string(90, 'n')] = "split";
  files[std::string(100, 'a') + "/" + std::string(100, 'b') + "/" + std::string(100, 'c')] = "pax";
  files["dir/" + std::string(200, 'l')] = "long component";
  files["\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82/index.html"] = "<p>utf-8 name</p>";

  std::string archive;
  TarGzWriter writer(archive);
  for (const auto& [name, content] : files)
    ASSERT_TRUE(writer.add_file(name, content, 1700000000).ok()) << name;
  ASSERT_TRUE(writer.finish().ok());
  ASSERT_GE(archive.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(archive[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(archive[1]), 0x8b);

  TempDir dir("samokoder-tar");
  EXPECT_EQ(samokoder::testing::unpack_tar_gz(archive, dir.path()), files);
}

TEST(TarGzWriter, EntriesAreRegularFilesWithMode0644AndTheGivenTime) {
  std::string archive;
  TarGzWriter writer(archive);
  ASSERT_TRUE(writer.add_file("a/b.txt", "hello", 1700000000).ok());
  ASSERT_TRUE(writer.add_file("c", "x", -5).ok());
  ASSERT_TRUE(writer.finish().ok());
  TempDir dir("samokoder-tar");
  const auto lines = samokoder::testing::list_tar_gz(archive, dir.path());
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& line : lines)
    EXPECT_EQ(line.rfind("-rw-r--r-- 0/0", 0), 0u) << line;
  EXPECT_NE(lines[0].find("2023-11-14"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" a/b.txt"), std::string::npos);
  EXPECT_NE(lines[1].find("1970-01-01"), std::string::npos) << lines[1];
}

TEST(TarGzWriter, AnEmptyArchiveIsValid) {
  std::string archive;
  TarGzWriter writer(archive);
  ASSERT_TRUE(writer.finish().ok());
  TempDir dir("samokoder-tar");
  EXPECT_TRUE(samokoder::testing::unpack_tar_gz(archive, dir.path()).empty());
}

TEST(TarGzWriter, RefusesNamesThatCouldEscapeAndWritesAfterFinish) {
  std::string archive;
  TarGzWriter writer(archive);
  for (const std::string& bad : std::vector<std::string>{"", "/etc/passwd", "../x", "a/../../x", "a/./b",
                                                         "a//b", "a/", ".", std::string("a\0b", 3)}) {
    const auto status = writer.add_file(bad, "x", 0);
    EXPECT_EQ(status.code(), sdk::StatusCode::kInvalidArgument) << bad;
  }
  ASSERT_TRUE(writer.finish().ok());
  EXPECT_EQ(writer.add_file("late", "x", 0).code(), sdk::StatusCode::kFailedPrecondition);
  TempDir dir("samokoder-tar");
  EXPECT_TRUE(samokoder::testing::unpack_tar_gz(archive, dir.path()).empty());
}

TEST(TarGzWriter, CountsUncompressedBytes) {
  std::string archive;
  TarGzWriter writer(archive);
  ASSERT_TRUE(writer.add_file("a", std::string(1000, 'x'), 0).ok());
  EXPECT_EQ(writer.tar_bytes(), 512u + 1024u);  // header + content padded to blocks
  ASSERT_TRUE(writer.finish().ok());
  EXPECT_EQ(writer.tar_bytes(), 512u + 1024u + 1024u);
  EXPECT_LT(archive.size(), 512u);
}

}  // namespace
}  // namespace samokoder::api
