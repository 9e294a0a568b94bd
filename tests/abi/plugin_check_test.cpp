#include "plugins/plugin_check.hpp"

#include <gtest/gtest.h>

#include "abi_fixtures.hpp"
#include "temp_dir.hpp"

namespace samokoder::plugins {
namespace {

using testing::fixture;

class PluginCheckTest : public ::testing::Test {
 protected:
  PluginCheckReport check(const std::string& name) {
    return check_plugin_file(fixture(name), nlohmann::json::object(), runtime_.path());
  }
  testing::TempDir runtime_{"samokoder-check"};
};

TEST_F(PluginCheckTest, GoodPluginIsAcceptedAndItsDescriptorPrinted) {
  const auto report = check("fixture_echo_v2");
  EXPECT_TRUE(report.accepted) << report.message;
  ASSERT_TRUE(report.descriptor.has_value());
  EXPECT_EQ(report.descriptor->id, "agent.fixture_echo");
  EXPECT_EQ(report.exported_symbols, std::vector<std::string>{"samokoder_plugin_entry"});
  const std::string text = format_check_report(report);
  EXPECT_NE(text.find("id:          agent.fixture_echo"), std::string::npos) << text;
  EXPECT_NE(text.find("version:     2.0.0"), std::string::npos) << text;
  EXPECT_NE(text.find("kind:        agent"), std::string::npos) << text;
  EXPECT_NE(text.find("verdict:     OK"), std::string::npos) << text;
  EXPECT_TRUE(std::filesystem::is_empty(runtime_.path())) << "the private copy must be removed";
}

TEST_F(PluginCheckTest, EachNegativeFixturePrintsItsSpecificReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"fixture_abi_major", "REJECTED (abi_major)"},
      {"fixture_abi_minor", "REJECTED (abi_minor)"},
      {"fixture_fingerprint", "REJECTED (fingerprint)"},
      {"fixture_no_entry", "REJECTED (no_entry_symbol)"},
      {"not_elf", "REJECTED (not_elf)"},
      {"fixture_init_throws", "REJECTED (init_failed): "},
      {"fixture_init_error", "REJECTED (init_failed): "},
      {"fixture_unique", "REJECTED (pinned)"},
  };
  for (const auto& [name, verdict] : cases) {
    const auto report = check(name);
    EXPECT_FALSE(report.accepted) << name;
    const std::string text = format_check_report(report);
    EXPECT_NE(text.find(verdict), std::string::npos) << name << ":\n" << text;
  }
}

TEST_F(PluginCheckTest, ForgedDescriptorIsStillDescribed) {
  const auto report = check("fixture_fingerprint");
  ASSERT_TRUE(report.descriptor.has_value());
  EXPECT_EQ(report.descriptor->fingerprint, "gcc7/libstdc++7/cxx11abi0");
  EXPECT_EQ(check_report_to_json(report)["reason"], "fingerprint");
}

TEST_F(PluginCheckTest, UniqueSymbolReportNamesTheCauseAndTheFix) {
  const auto report = check("fixture_unique");
  EXPECT_NE(report.message.find("STB_GNU_UNIQUE"), std::string::npos) << report.message;
  EXPECT_NE(report.message.find("-fno-gnu-unique"), std::string::npos) << report.message;
  EXPECT_GT(report.exported_symbols.size(), 1u);
  ASSERT_FALSE(report.warnings.empty());
}

}  // namespace
}  // namespace samokoder::plugins
