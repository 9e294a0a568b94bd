// The sandbox options parser: defaults, every key, and errors that name the key they are about.
#include <filesystem>

#include <gtest/gtest.h>

#include "bubblewrap.hpp"

namespace samokoder::preview_sandbox {
namespace {

TEST(SandboxOptionsTest, DefaultsFromAnEmptyObject) {
  auto options = parse_sandbox_options(nlohmann::json::object());
  ASSERT_TRUE(options.ok()) << options.status().to_string();
  EXPECT_EQ(options->bwrap, "/usr/bin/bwrap");
  EXPECT_EQ(options->socat, "/usr/bin/socat");
  EXPECT_EQ(options->network, Network::kNone);
  EXPECT_EQ(options->pids_max, 512u);
  EXPECT_EQ(options->memory_bytes, 2ULL * 1024 * 1024 * 1024);
  EXPECT_EQ(options->ro_binds, (std::vector<std::string>{"/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc"}));
  EXPECT_TRUE(options->cgroup_root.empty());
  EXPECT_EQ(options->socket_dir, (std::filesystem::current_path() / "var/run/previews").string());
}

TEST(SandboxOptionsTest, ReadsEveryKey) {
  auto options = parse_sandbox_options({{"bwrap", "/opt/bwrap"},
                                        {"socat", "/opt/socat"},
                                        {"network", "host"},
                                        {"pids_max", 64},
                                        {"memory_bytes", 0},
                                        {"ro_binds", {"/usr", "/etc"}},
                                        {"cgroup_root", "/sys/fs/cgroup/previews"},
                                        {"socket_dir", "/run/samokoder/previews/"}});
  ASSERT_TRUE(options.ok()) << options.status().to_string();
  EXPECT_EQ(options->bwrap, "/opt/bwrap");
  EXPECT_EQ(options->socat, "/opt/socat");
  EXPECT_EQ(options->network, Network::kHost);
  EXPECT_EQ(options->pids_max, 64u);
  EXPECT_EQ(options->memory_bytes, 0u);
  EXPECT_EQ(options->ro_binds, (std::vector<std::string>{"/usr", "/etc"}));
  EXPECT_EQ(options->cgroup_root, "/sys/fs/cgroup/previews");
  EXPECT_EQ(options->socket_dir, "/run/samokoder/previews");
}

TEST(SandboxOptionsTest, ErrorsNameTheKey) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"netwrk", "none"}}, "`netwrk`"},
      {{{"network", "bridge"}}, "`network`"},
      {{{"network", 1}}, "`network`"},
      {{{"pids_max", 0}}, "`pids_max`"},
      {{{"pids_max", -5}}, "`pids_max`"},
      {{{"pids_max", "512"}}, "`pids_max`"},
      {{{"memory_bytes", 1.5}}, "`memory_bytes`"},
      {{{"bwrap", "bwrap"}}, "`bwrap`"},
      {{{"socat", 7}}, "`socat`"},
      {{{"ro_binds", "/usr"}}, "`ro_binds`"},
      {{{"ro_binds", {"usr"}}}, "`ro_binds`"},
      {{{"ro_binds", {"/"}}}, "`ro_binds`"},
      {{{"ro_binds", {"/usr/../root"}}}, "`ro_binds`"},
      {{{"cgroup_root", "sys/fs/cgroup"}}, "`cgroup_root`"},
      {{{"socket_dir", ""}}, "`socket_dir`"},
  };
  for (const auto& [json, key] : cases) {
    auto options = parse_sandbox_options(json);
    ASSERT_FALSE(options.ok()) << json.dump();
    EXPECT_EQ(options.status().code(), sdk::StatusCode::kInvalidArgument) << json.dump();
    EXPECT_NE(options.status().message().find(key), std::string::npos) << options.status().message();
  }
  EXPECT_EQ(parse_sandbox_options(nlohmann::json::array()).status().code(),
            sdk::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samokoder::preview_sandbox
