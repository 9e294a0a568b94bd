#include "storage_fixture.hpp"

namespace samokoder::testing {

void StorageTest::SetUp() {
  database_ = GetParam().create_database();
  host_ = std::make_unique<TestHost>("storage." + GetParam().name, database_->plugin_config());
  auto loaded = LoadedStorage::load(GetParam().plugin_path, *host_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  loaded_ = std::move(*loaded);
}

void StorageTest::TearDown() {
  loaded_.reset();
  host_.reset();
  database_.reset();
}

void StorageTest::reopen() {
  loaded_.reset();
  auto loaded = LoadedStorage::load(GetParam().plugin_path, *host_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  loaded_ = std::move(*loaded);
}

sdk::Result<std::unique_ptr<LoadedStorage>> StorageTest::load_another(TestHost& host) {
  return LoadedStorage::load(GetParam().plugin_path, host);
}

sdk::User StorageTest::make_user(const std::string& email) {
  auto user = storage().users().create_user(
      sdk::NewUser{email, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", false, "free"});
  EXPECT_TRUE(user.ok()) << user.status().to_string();
  return user.value_or(sdk::User{});
}

sdk::Project StorageTest::make_project(const sdk::User& owner, const std::string& name) {
  auto project = storage().projects().create_project(sdk::NewProject{owner.id, name, "a test project"});
  EXPECT_TRUE(project.ok()) << project.status().to_string();
  return project.value_or(sdk::Project{});
}

sdk::Run StorageTest::make_run(const sdk::Project& project, const std::string& state) {
  auto run =
      storage().runs().create_run(project.owner_id, sdk::NewRun{project.id, "build a todo app", state});
  EXPECT_TRUE(run.ok()) << run.status().to_string();
  return run.value_or(sdk::Run{});
}

}  // namespace samokoder::testing
