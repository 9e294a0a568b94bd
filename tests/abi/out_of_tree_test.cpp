// docs/sdk.md: an integrator builds a plugin out of tree against the installed SDK only. This test
// installs the SDK component into a fresh prefix, configures and builds tests/abi/out_of_tree with
// nothing but that prefix on CMAKE_PREFIX_PATH, and loads the result through the plugin manager; the
// plugin then runs a child with limits and streams an HTTPS answer through its host services alone.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <samokoder/sdk/agent.hpp>

#include "fixed_agent_context.hpp"
#include "loopback_http.hpp"
#include "plugins/plugin_check.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"

namespace samokoder::plugins {
namespace {

// Runs a shell command, its output going to `log`; returns its exit status.
int run(const std::string& command, const std::filesystem::path& log) {
  const std::string line = command + " >>'" + log.string() + "' 2>&1";
  return std::system(line.c_str());
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(OutOfTree, PluginBuiltAgainstTheInstalledSdkLoads) {
  testing::TempDir work("samokoder-oot");
  const auto prefix = work.path() / "sdk";
  const auto build = work.path() / "build";
  const auto log = work.path() / "build.log";
  const std::string cmake = SAMOKODER_CMAKE_COMMAND;

  ASSERT_EQ(run("'" + cmake + "' --install '" SAMOKODER_BINARY_DIR "' --component sdk --prefix '" +
                    prefix.string() + "'",
                log),
            0)
      << read_text(log);
  ASSERT_TRUE(std::filesystem::exists(prefix / "include/samokoder/abi.h")) << read_text(log);
  ASSERT_EQ(run("'" + cmake + "' -S '" SAMOKODER_SOURCE_DIR "/tests/abi/out_of_tree' -B '" + build.string() +
                    "' -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER='" SAMOKODER_CXX_COMPILER
                    "' -DCMAKE_PREFIX_PATH='" +
                    prefix.string() + "'",
                log),
            0)
      << read_text(log);
  ASSERT_EQ(run("'" + cmake + "' --build '" + build.string() + "'", log), 0) << read_text(log);
  // The build must have used the installed headers, not the source tree's.
  const std::string cache = read_text(build / "CMakeCache.txt");
  EXPECT_NE(cache.find("SamokoderSDK_DIR:PATH=" + prefix.string()), std::string::npos);

  const auto plugin = build / "agent_greeter.so";
  const auto report = check_plugin_file(plugin, {{"name", "integrator"}}, work.path() / "check");
  ASSERT_TRUE(report.accepted) << format_check_report(report);

  // The news arrive over TLS, signed by a CA made now, in three chunks.
  const testing::TestPki pki = testing::make_pki();
  testing::LoopbackHttpServer news(
      [](const testing::ReceivedRequest&, testing::ServerConnection& connection) {
        connection.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (const char* piece : {"all ", "quiet ", "today", ""})
          connection.write_chunk(piece);
      },
      &pki);
  const auto ca_file = work.path() / "ca.pem";
  std::ofstream(ca_file) << pki.ca_cert;

  config::PluginsConfig config;
  config.runtime_dir = work.path() / "run";
  config::PluginEntry entry;
  entry.id = "agent.greeter";
  entry.file = plugin.string();
  entry.required = true;
  entry.config = {{"name", "integrator"}, {"news_url", news.url("/news", "localhost")}};
  config.plugins.push_back(entry);
  metrics::Registry registry;
  core::SystemClock clock;
  config::ProcessesConfig processes_config;
  processes_config.state_dir = work.path() / "processes";
  processes::ProcessService processes(processes_config, registry);
  config::HttpClientConfig http_config;
  http_config.extra_ca_file = ca_file.string();
  outbound_http::Service http(http_config, outbound_http::ProxySettings{}, registry);
  PluginManager manager(config, registry, clock, KernelServices{.http = &http, .processes = &processes});
  ASSERT_TRUE(manager.start().ok());
  testing::FixedAgentContext context;
  auto step =
      manager.acquire("agent.greeter").call<sdk::Agent>([&](sdk::Agent& a) { return a.run_step(context); });
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["greeting"], "hello, integrator");
  EXPECT_EQ(step->next_state["child_open_files"], "64");  // the limit reached the child
  EXPECT_EQ(step->next_state["news"]["body"], "all quiet today");
  EXPECT_GE(step->next_state["news"]["pieces"], 1);
  EXPECT_EQ(news.requests(), 1U);
  EXPECT_NE(registry.render().find("samokoder_http_client_requests_total{plugin=\"agent.greeter\""),
            std::string::npos);
}

}  // namespace
}  // namespace samokoder::plugins
