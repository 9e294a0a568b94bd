// SDK 1.0 stays loadable (ctest label abi): one plugin of every kind built against the released 1.0
// headers (frozen/sdk-1.0/include), loaded by today's plugin manager and used through today's SDK.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <samokoder/sdk.hpp>

#include "core/clock.hpp"
#include "fixed_agent_context.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"

namespace samokoder::plugins {
namespace {

std::string frozen(const char* name) {
  return std::string(SAMOKODER_FROZEN_FIXTURE_DIR) + "/" + name + ".so";
}

class FrozenSdk : public ::testing::Test {
 protected:
  FrozenSdk() {
    config::PluginsConfig config;
    config.runtime_dir = dir_.path() / "run";
    const auto add = [&](const char* id, const char* file,
                         nlohmann::json section = nlohmann::json::object()) {
      config::PluginEntry entry;
      entry.id = id;
      entry.file = frozen(file);
      entry.required = true;
      entry.config = std::move(section);
      config.plugins.push_back(std::move(entry));
    };
    add("agent.fixture_echo", "frozen_agent", {{"greeting", "still here"}});
    add("llm.fixture", "frozen_llm");
    add("auth.fixture", "frozen_auth", {{"secret", "s3cret"}});
    add("preview.fixture", "frozen_preview");
    add("storage.sqlite", "frozen_storage", {{"path", (dir_.path() / "frozen.db").string()}});
    manager_ = std::make_unique<PluginManager>(config, registry_, clock_);
    started_ = manager_->start();
  }

  testing::TempDir dir_{"samokoder-frozen"};
  metrics::Registry registry_;
  core::SystemClock clock_;
  std::unique_ptr<PluginManager> manager_;
  sdk::Status started_;
};

TEST_F(FrozenSdk, EveryKindBuiltAgainstTheReleasedHeadersLoads) {
  ASSERT_TRUE(started_.ok()) << started_.to_string();
  for (const char* id :
       {"agent.fixture_echo", "llm.fixture", "auth.fixture", "preview.fixture", "storage.sqlite"}) {
    const auto info = manager_->find(id);
    ASSERT_TRUE(info.has_value()) << id;
    EXPECT_EQ(info->state, PluginState::kActive) << id << ": " << info->failure_message;
  }
}

TEST_F(FrozenSdk, EveryKindStillWorksThroughTodaysInterfaces) {
  ASSERT_TRUE(started_.ok()) << started_.to_string();
  testing::FixedAgentContext context(nlohmann::json{{"from", "the kernel"}});
  auto step = manager_->acquire("agent.fixture_echo").call<sdk::Agent>([&](sdk::Agent& a) {
    return a.run_step(context);
  });
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->next_state["greeting"], "still here");

  sdk::CompletionRequest request;
  request.model = "fixed-model";
  request.messages.push_back({"user", "hello"});
  auto completion = manager_->acquire("llm.fixture").call<sdk::LlmProvider>([&](sdk::LlmProvider& llm) {
    return llm.complete(request, nullptr, sdk::never_cancelled());
  });
  ASSERT_TRUE(completion.ok()) << completion.status().to_string();
  EXPECT_EQ(completion->content, "fixed answer");

  auto verified = manager_->acquire("auth.fixture").call<sdk::AuthProvider>([&](sdk::AuthProvider& auth) {
    return auth.verify_secret("s3cret", "plain:s3cret");
  });
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(*verified);

  // A 1.0 preview runner knows nothing of contain_command: it answers with the SDK's default.
  auto contained =
      manager_->acquire("preview.fixture").call<sdk::PreviewRunner>([&](sdk::PreviewRunner& runner) {
        return runner.contain_command(sdk::ProcessSpec{}, "p1");
      });
  EXPECT_EQ(contained.status().code(), sdk::StatusCode::kUnimplemented);

  std::string user_id;
  auto stored = manager_->acquire("storage.sqlite").call<sdk::Storage>([&](sdk::Storage& storage) {
    return storage.transaction([&](sdk::Stores& stores) -> sdk::Status {
      sdk::NewUser user;
      user.email = "frozen@example.com";
      user.password_hash = "plain:x";
      auto created = stores.users().create_user(user);
      if (!created.ok()) return created.status();
      user_id = created->id;
      return {};
    });
  });
  ASSERT_TRUE(stored.ok()) << stored.to_string();
  auto found = manager_->acquire("storage.sqlite").call<sdk::Storage>([&](sdk::Storage& storage) {
    sdk::Result<sdk::User> user = sdk::Status::internal("not read");
    auto read = storage.transaction([&](sdk::Stores& stores) -> sdk::Status {
      user = stores.users().find_user_by_email("FROZEN@example.com");
      return user.status();
    });
    if (!read.ok()) return sdk::Result<sdk::User>(read);
    return user;
  });
  ASSERT_TRUE(found.ok()) << found.status().to_string();
  EXPECT_EQ(found->id, user_id);
}

TEST_F(FrozenSdk, TheReleasedHeadersSayOnePointZero) {
  std::ifstream in(std::string(SAMOKODER_FROZEN_SDK_INCLUDE) + "/samokoder/abi.h");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("#define SAMOKODER_SDK_VERSION_MAJOR 1"), std::string::npos);
  EXPECT_NE(text.str().find("#define SAMOKODER_SDK_VERSION_MINOR 0"), std::string::npos);
  EXPECT_NE(text.str().find("#define SAMOKODER_ABI_MAJOR 5"), std::string::npos);
}

}  // namespace
}  // namespace samokoder::plugins
