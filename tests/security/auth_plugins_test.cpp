// The two auth plugins through the SDK interface, loaded by the real plugin manager: auth.local
// (Argon2id, parameters from config, policy, equal-cost answer for a missing account) and
// auth.apitoken (token format, deterministic hash, constant-time verification).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <samokoder/sdk/auth.hpp>

#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "temp_dir.hpp"

namespace samokoder::security_test {
namespace {

using ::testing::HasSubstr;

class AuthPluginTest : public ::testing::Test {
 protected:
  sdk::Status start(nlohmann::json local_config) {
    config::PluginsConfig plugins;
    plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
    plugins.runtime_dir = dir_.path() / "run";
    config::PluginEntry local;
    local.id = "auth.local";
    local.file = "auth_local.so";
    local.required = true;
    local.config = std::move(local_config);
    config::PluginEntry apitoken;
    apitoken.id = "auth.apitoken";
    apitoken.file = "auth_apitoken.so";
    apitoken.required = true;
    plugins.plugins = {local, apitoken};
    manager_ = std::make_unique<plugins::PluginManager>(plugins, registry_, clock_);
    return manager_->start();
  }

  template <typename F>
  auto local(F&& fn) {
    return manager_->acquire("auth.local").call<sdk::AuthProvider>(std::forward<F>(fn));
  }
  template <typename F>
  auto tokens(F&& fn) {
    return manager_->acquire("auth.apitoken").call<sdk::AuthProvider>(std::forward<F>(fn));
  }

  testing::TempDir dir_{"samokoder-auth-plugins"};
  metrics::Registry registry_;
  core::ManualClock clock_;
  std::unique_ptr<plugins::PluginManager> manager_;
};

TEST_F(AuthPluginTest, LocalHashesWithItsConfiguredParametersAndVerifies) {
  ASSERT_TRUE(start({{"memory_kib", 2048}, {"iterations", 1}, {"parallelism", 1}}).ok());
  EXPECT_EQ(manager_->acquire("auth.local").as<sdk::AuthProvider>()->scheme(), "password");
  auto hash = local([](sdk::AuthProvider& p) { return p.hash_secret("correct horse battery"); });
  ASSERT_TRUE(hash.ok()) << hash.status().to_string();
  EXPECT_THAT(*hash, HasSubstr("$argon2id$v=19$m=2048,t=1,p=1$"));
  auto again = local([](sdk::AuthProvider& p) { return p.hash_secret("correct horse battery"); });
  EXPECT_NE(*hash, *again);  // salted
  EXPECT_TRUE(*local([&](sdk::AuthProvider& p) { return p.verify_secret("correct horse battery", *hash); }));
  EXPECT_FALSE(*local([&](sdk::AuthProvider& p) { return p.verify_secret("correct horse batterY", *hash); }));
  // A missing account: false, never an error, so the kernel answers it like a wrong password.
  auto missing = local([](sdk::AuthProvider& p) { return p.verify_secret("anything at all", ""); });
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);
  EXPECT_EQ(
      local([](sdk::AuthProvider& p) { return p.verify_secret("x", "$argon2id$garbage"); }).status().code(),
      sdk::StatusCode::kDataLoss);
  // A planted hash asking for 4 GiB is refused before libargon2 allocates anything.
  EXPECT_EQ(local([](sdk::AuthProvider& p) {
              return p.verify_secret(
                  "x", "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA");
            })
                .status()
                .code(),
            sdk::StatusCode::kDataLoss);
  EXPECT_EQ(local([](sdk::AuthProvider& p) { return p.issue_secret(); }).status().code(),
            sdk::StatusCode::kUnimplemented);
}

TEST_F(AuthPluginTest, LocalAsksForARehashWhenParametersChange) {
  ASSERT_TRUE(start({{"memory_kib", 2048}, {"iterations", 1}}).ok());
  const std::string old_hash =
      *local([](sdk::AuthProvider& p) { return p.hash_secret("a long passphrase"); });
  auto* provider = manager_->acquire("auth.local").as<sdk::AuthProvider>();
  EXPECT_FALSE(provider->needs_rehash(old_hash));
  manager_.reset();
  ASSERT_TRUE(start({{"memory_kib", 4096}, {"iterations", 2}}).ok());
  provider = manager_->acquire("auth.local").as<sdk::AuthProvider>();
  EXPECT_TRUE(provider->needs_rehash(old_hash));
  EXPECT_TRUE(provider->needs_rehash("not a hash"));
  // Old hashes keep verifying: parameters travel inside the PHC string.
  EXPECT_TRUE(*local([&](sdk::AuthProvider& p) { return p.verify_secret("a long passphrase", old_hash); }));
}

TEST_F(AuthPluginTest, LocalPolicyRefusesShortLongCommonAndMalformedPasswords) {
  ASSERT_TRUE(start({{"memory_kib", 1024}, {"iterations", 1}}).ok());
  auto policy = [&](std::string_view secret) {
    return local([&](sdk::AuthProvider& p) { return p.check_policy(secret); });
  };
  EXPECT_TRUE(policy("violet-anchor-47").ok());
  EXPECT_TRUE(policy("пароль-из-кириллицы").ok());
  EXPECT_EQ(policy("short").code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(policy(std::string(129, 'k')).code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_TRUE(policy(std::string(128, 'k')).ok());
  EXPECT_THAT(policy("Password123").message(), HasSubstr("too common"));
  EXPECT_EQ(policy("QWERTYUIOP").code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(policy(std::string("abc\0defghij", 11)).code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(policy("bad-utf8-\xC3\x28-here").code(), sdk::StatusCode::kInvalidArgument);
}

TEST_F(AuthPluginTest, LocalRefusesBadConfig) {
  EXPECT_FALSE(start({{"memory_kib", 1}}).ok());
  EXPECT_FALSE(start({{"iterations", 0}}).ok());
  const auto unknown = start({{"rounds", 3}});
  EXPECT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.message(), HasSubstr("rounds"));
}

TEST_F(AuthPluginTest, ApiTokensHaveAPrefixAreHashedDeterministicallyAndVerify) {
  ASSERT_TRUE(start({{"memory_kib", 1024}, {"iterations", 1}}).ok());
  EXPECT_EQ(manager_->acquire("auth.apitoken").as<sdk::AuthProvider>()->scheme(), "api_token");
  auto issued = tokens([](sdk::AuthProvider& p) { return p.issue_secret(); });
  ASSERT_TRUE(issued.ok());
  EXPECT_THAT(issued->secret, ::testing::MatchesRegex("skp_[A-Za-z0-9_-]{43}"));
  EXPECT_THAT(issued->stored_hash, ::testing::MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(issued->stored_hash.find(issued->secret), std::string::npos);
  EXPECT_EQ(*tokens([&](sdk::AuthProvider& p) { return p.hash_secret(issued->secret); }),
            issued->stored_hash);
  EXPECT_TRUE(
      *tokens([&](sdk::AuthProvider& p) { return p.verify_secret(issued->secret, issued->stored_hash); }));
  auto other = tokens([](sdk::AuthProvider& p) { return p.issue_secret(); });
  EXPECT_NE(other->secret, issued->secret);
  EXPECT_FALSE(
      *tokens([&](sdk::AuthProvider& p) { return p.verify_secret(other->secret, issued->stored_hash); }));
  EXPECT_FALSE(*tokens([&](sdk::AuthProvider& p) { return p.verify_secret(issued->secret, ""); }));
  EXPECT_TRUE(tokens([&](sdk::AuthProvider& p) { return p.check_policy(issued->secret); }).ok());
  for (const std::string& bad : std::vector<std::string>{"skp_short", "ghp_" + std::string(43, 'a'),
                                                         "skp_" + std::string(42, 'a') + "!", ""}) {
    EXPECT_FALSE(tokens([&](sdk::AuthProvider& p) { return p.check_policy(bad); }).ok()) << bad;
  }
}

}  // namespace
}  // namespace samokoder::security_test
