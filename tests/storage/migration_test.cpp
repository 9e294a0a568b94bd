// Conformance: the "auto_migrate" config key every backend has. Off, init() opens the database
// without applying pending migrations (what `samokoder db status` and `db migrate` need), still refuses
// a newer schema, and migrate() applies them. These tests open the database themselves (the usual
// fixture would migrate it at SetUp).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "storage_fixture.hpp"

namespace samokoder::testing {
namespace {

using sdk::Status;
using sdk::StatusCode;

class AutoMigrateTest : public ::testing::TestWithParam<StorageBackend> {
 protected:
  void SetUp() override { database_ = GetParam().create_database(); }

  // The backend's config for this database with "auto_migrate" set to `value` (any JSON, to test
  // validation too).
  nlohmann::json config_with(const nlohmann::json& value) const {
    nlohmann::json config = database_->plugin_config();
    config["auto_migrate"] = value;
    return config;
  }

  // Loads a new instance with its own host (kept until the end of the test, as the plugin needs).
  sdk::Result<std::unique_ptr<LoadedStorage>> load(const nlohmann::json& config) {
    hosts_.push_back(std::make_unique<TestHost>("storage." + GetParam().name, config));
    return LoadedStorage::load(GetParam().plugin_path, *hosts_.back());
  }
  TestHost& last_host() { return *hosts_.back(); }

  static bool warned_pending(const TestHost& host) {
    const auto logs = host.logs();
    return std::any_of(logs.begin(), logs.end(), [](const TestHost::LogLine& line) {
      return line.level == sdk::LogLevel::kWarn && line.message.find("pending") != std::string::npos;
    });
  }

  BackendDatabase& database() { return *database_; }

 private:
  std::unique_ptr<BackendDatabase> database_;
  std::vector<std::unique_ptr<TestHost>> hosts_;
};
SAMOKODER_STORAGE_TEST_SUITE(AutoMigrateTest);

TEST_P(AutoMigrateTest, OffLeavesAFreshDatabaseUnmigratedUntilMigrateIsCalled) {
  std::int64_t supported = 0;
  std::string user_id;
  {
    ASSERT_OK_AND_ASSIGN(auto loaded, load(config_with(false)));
    sdk::Storage& storage = loaded->storage();
    ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus before, storage.schema_status());
    EXPECT_EQ(before.current_version, 0);
    EXPECT_GE(before.supported_version, 1);
    EXPECT_TRUE(before.applied.empty());
    supported = before.supported_version;
    const auto logs = last_host().logs();
    EXPECT_TRUE(warned_pending(last_host()));
    EXPECT_TRUE(std::any_of(logs.begin(), logs.end(), [&](const TestHost::LogLine& line) {
      return line.message.find(std::to_string(supported) + " schema migration(s) pending") !=
             std::string::npos;
    }));

    ASSERT_OK(storage.migrate());
    ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus after, storage.schema_status());
    EXPECT_EQ(after.current_version, supported);
    EXPECT_EQ(after.supported_version, supported);
    ASSERT_EQ(after.applied.size(), static_cast<std::size_t>(supported));
    for (std::size_t i = 0; i < after.applied.size(); ++i) {
      EXPECT_EQ(after.applied[i].version, static_cast<std::int64_t>(i + 1));
      EXPECT_FALSE(after.applied[i].description.empty());
    }
    // The schema is there now: data calls work on the same instance.
    ASSERT_OK_AND_ASSIGN(sdk::User user, storage.users().create_user(sdk::NewUser{
                                             "auto-migrate@example.com", "$argon2id$h", false, "free"}));
    user_id = user.id;
  }

  // A second init with auto_migrate off on the migrated database: nothing pending, nothing changed.
  ASSERT_OK_AND_ASSIGN(auto reopened, load(config_with(false)));
  ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus again, reopened->storage().schema_status());
  EXPECT_EQ(again.current_version, supported);
  EXPECT_EQ(again.supported_version, supported);
  EXPECT_EQ(again.applied.size(), static_cast<std::size_t>(supported));
  EXPECT_FALSE(warned_pending(last_host()));
  EXPECT_OK(reopened->storage().users().get_user(user_id).status());
  ASSERT_OK(reopened->storage().migrate());  // idempotent with the switch off, too
  ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus still, reopened->storage().schema_status());
  EXPECT_EQ(still.current_version, supported);
}

TEST_P(AutoMigrateTest, OnIsTheDefaultAndMigratesAtInit) {
  ASSERT_OK_AND_ASSIGN(auto loaded, load(config_with(true)));
  ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus status, loaded->storage().schema_status());
  EXPECT_GE(status.current_version, 1);
  EXPECT_EQ(status.current_version, status.supported_version);
  EXPECT_FALSE(warned_pending(last_host()));
  loaded.reset();

  nlohmann::json without = database().plugin_config();
  without.erase("auto_migrate");
  ASSERT_OK_AND_ASSIGN(auto defaulted, load(without));
  ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus same, defaulted->storage().schema_status());
  EXPECT_EQ(same.current_version, status.supported_version);
}

TEST_P(AutoMigrateTest, OffStillRefusesANewerSchema) {
  std::int64_t supported = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto loaded, load(config_with(true)));
    ASSERT_OK_AND_ASSIGN(sdk::SchemaStatus status, loaded->storage().schema_status());
    supported = status.supported_version;
  }
  const std::int64_t newer = supported + 3;
  ASSERT_OK(database().force_schema_version(newer));
  auto refused = load(config_with(false));
  ASSERT_FALSE(refused.ok());
  const Status& s = refused.status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      s.message().find("database schema version " + std::to_string(newer) + " is newer than this storage."),
      std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("supports (" + std::to_string(supported) + ")"), std::string::npos)
      << s.message();
}

TEST_P(AutoMigrateTest, MustBeABooleanAndTheErrorNamesIt) {
  for (const nlohmann::json& wrong : {nlohmann::json("false"), nlohmann::json(0), nlohmann::json(1),
                                      nlohmann::json(nullptr), nlohmann::json::object()}) {
    auto refused = load(config_with(wrong));
    ASSERT_FALSE(refused.ok()) << wrong.dump();
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << wrong.dump();
    EXPECT_NE(refused.status().message().find("auto_migrate"), std::string::npos)
        << refused.status().message();
  }
}

}  // namespace
}  // namespace samokoder::testing
