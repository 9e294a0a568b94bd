// The symbol gate (docs/architecture.md "The plugin boundary"): every plugin the project builds exports
// exactly one symbol and has no STB_GNU_UNIQUE symbol. Checked twice, by the kernel's own ELF reader and by
// binutils' readelf.
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>

#include "abi_fixtures.hpp"
#include "plugins/elf_inspector.hpp"

namespace samokoder::plugins {
namespace {

std::vector<std::string> project_plugins() {
  std::ifstream list(SAMOKODER_PLUGIN_FILES_LIST);
  std::vector<std::string> files;
  for (std::string line; std::getline(list, line);) {
    if (!line.empty()) files.push_back(line);
  }
  return files;
}

std::string readelf_dynamic_symbols(const std::string& file) {
  const std::string command = "readelf --dyn-syms --wide '" + file + "' 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  std::string out;
  std::array<char, 4096> buffer{};
  while (pipe && std::fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr)
    out += buffer.data();
  return out;
}

// Exported = defined (Ndx not UND), GLOBAL/WEAK/UNIQUE binding, DEFAULT/PROTECTED visibility.
std::vector<std::string> readelf_exports(const std::string& table, int& unique_count) {
  std::vector<std::string> exported;
  unique_count = 0;
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string num, value, size, type, bind, vis, ndx, name;
    if (!(fields >> num >> value >> size >> type >> bind >> vis >> ndx >> name)) continue;
    if (num.empty() || num.back() != ':') continue;
    if (bind == "UNIQUE") ++unique_count;
    if (ndx != "UND" && bind != "LOCAL" && (vis == "DEFAULT" || vis == "PROTECTED")) {
      exported.push_back(name.substr(0, name.find('@')));
    }
  }
  return exported;
}

TEST(SymbolGate, EveryProjectPluginExportsOnlyTheEntryAndNoUniqueSymbol) {
  const auto files = project_plugins();
  ASSERT_GE(files.size(), 5u) << "the plugin list " SAMOKODER_PLUGIN_FILES_LIST " looks incomplete";
  for (const auto& file : files) {
    auto info = inspect_elf_file(file);
    ASSERT_TRUE(info.ok()) << info.status().to_string();
    ASSERT_EQ(info->exported.size(), 1u) << file;
    EXPECT_EQ(info->exported.front().name, "samokoder_plugin_entry") << file;
    EXPECT_TRUE(info->unique_symbols.empty())
        << file << " has GNU unique symbol " << info->unique_symbols.front();

    int unique_count = -1;
    const auto exported = readelf_exports(readelf_dynamic_symbols(file), unique_count);
    EXPECT_EQ(exported, std::vector<std::string>{"samokoder_plugin_entry"}) << file;
    EXPECT_EQ(unique_count, 0) << file;
  }
}

// The gate must be able to fail: the fixture built against the rules trips both checks.
TEST(SymbolGate, RuleBreakingFixtureFailsTheGate) {
  const std::string file = testing::fixture("fixture_unique").string();
  auto info = inspect_elf_file(file);
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->exported.size(), 1u);
  EXPECT_FALSE(info->unique_symbols.empty());
  int unique_count = 0;
  readelf_exports(readelf_dynamic_symbols(file), unique_count);
  EXPECT_GT(unique_count, 0);
}

}  // namespace
}  // namespace samokoder::plugins
