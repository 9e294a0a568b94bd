#include "plugins/elf_inspector.hpp"

#include <cstring>
#include <random>

#include <elf.h>
#include <gtest/gtest.h>

#include "abi_fixtures.hpp"
#include "core/file_util.hpp"

namespace samokoder::plugins {
namespace {

using testing::fixture;

std::string good_image() {
  return core::read_file(fixture("fixture_echo_v1")).value();
}

TEST(ElfInspector, FindsTheEntrySymbolAsTheOnlyExport) {
  auto info = inspect_elf_image(good_image());
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  ASSERT_EQ(info->exported.size(), 1u);
  EXPECT_EQ(info->exported[0].name, "samokoder_plugin_entry");
  EXPECT_TRUE(info->unique_symbols.empty());
}

TEST(ElfInspector, ReportsGnuUniqueSymbols) {
  auto info = inspect_elf_file(fixture("fixture_unique"));
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  EXPECT_FALSE(info->unique_symbols.empty());
  EXPECT_TRUE(info->exports("samokoder_plugin_entry"));
}

TEST(ElfInspector, RejectsTextFile) {
  auto info = inspect_elf_file(fixture("not_elf"));
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("not an ELF file"), std::string::npos) << info.status().message();
}

TEST(ElfInspector, MissingFileIsNotFound) {
  auto info = inspect_elf_file(fixture("does_not_exist"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), sdk::StatusCode::kNotFound);
}

TEST(ElfInspector, Rejects32BitClass) {
  std::string image = good_image();
  image[EI_CLASS] = ELFCLASS32;
  auto info = inspect_elf_image(image);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("32-bit"), std::string::npos) << info.status().message();
}

TEST(ElfInspector, RejectsOtherMachine) {
  std::string image = good_image();
  const std::uint16_t arm = EM_ARM;
  std::memcpy(image.data() + offsetof(Elf64_Ehdr, e_machine), &arm, sizeof arm);
  auto info = inspect_elf_image(image);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("built for ELF machine 40"), std::string::npos)
      << info.status().message();
}

TEST(ElfInspector, RejectsExecutable) {
  std::string image = good_image();
  const std::uint16_t exec = ET_EXEC;
  std::memcpy(image.data() + offsetof(Elf64_Ehdr, e_type), &exec, sizeof exec);
  auto info = inspect_elf_image(image);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("an executable, not a shared object"), std::string::npos);
}

TEST(ElfInspector, RejectsSectionTableOutsideTheFile) {
  std::string image = good_image();
  const std::uint64_t far = image.size() * 2;
  std::memcpy(image.data() + offsetof(Elf64_Ehdr, e_shoff), &far, sizeof far);
  auto info = inspect_elf_image(image);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("outside the file"), std::string::npos) << info.status().message();
}

TEST(ElfInspector, EveryTruncationIsRejectedOrParsedWithoutReadingPastTheEnd) {
  const std::string image = good_image();
  int rejected = 0;
  for (std::size_t size = 0; size < image.size(); size += 97) {
    // Copy into an exact-size buffer so AddressSanitizer catches any read past the end.
    const std::string truncated = image.substr(0, size);
    if (!inspect_elf_image(truncated).ok()) ++rejected;
  }
  EXPECT_GT(rejected, 0);
}

TEST(ElfInspector, RandomCorruptionNeverReadsOutOfBounds) {
  const std::string image = good_image();
  std::mt19937 random(20261126);
  std::uniform_int_distribution<std::size_t> position(0, 4095);
  int parsed = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string corrupted = image;
    for (int flips = 0; flips < 8; ++flips) {
      corrupted[position(random) % corrupted.size()] = static_cast<char>(random());
    }
    if (inspect_elf_image(corrupted).ok()) ++parsed;
  }
  // Most flips land in code, not in headers or tables: many images still parse.
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace samokoder::plugins
