// Limits on heavy requests: per-user quotas on file count and bytes, the export size limit, and the
// gate on concurrent exports, at and just above each limit.
#include "api/export_gate.hpp"
#include "archive_util.hpp"
#include "resources_fixture.hpp"

namespace samokoder::resources_test {
namespace {

using boost::beast::http::verb;

class LimitsTest : public ResourcesApiTest {
 protected:
  void configure(config::Config& config) override {
    config.limits.files_per_user = 4;
    config.limits.workspace_bytes_per_user = 200;
    config.limits.export_max_bytes = 100;
  }
  std::string read_file(const User& user, const std::string& project, const std::string& path) {
    return get("/api/v1/projects/" + project + "/files/" + path, user).body;
  }
  static std::string problem_type(const ClientResponse& response) {
    return response.json().value("type", "");
  }
};

TEST_F(LimitsTest, FileCountAndBytesQuotasHoldAcrossProjectsAndLoseNothing) {
  const User alice = sign_up("alice@example.com");
  const std::string one = create_project(alice, "one");
  const std::string two = create_project(alice, "two");
  for (const char* path : {"a", "b", "c"})
    ASSERT_EQ(put_file(alice, one, path, std::string(10, 'x')).status, 200u);
  ASSERT_EQ(put_file(alice, two, "d", std::string(10, 'x')).status, 200u);  // 4 files: at the quota

  const auto fifth = put_file(alice, two, "e", "y");
  EXPECT_EQ(fifth.status, 413u) << fifth.body;
  EXPECT_TRUE(problem_type(fifth).ends_with("/quota_exceeded")) << fifth.body;
  EXPECT_NE(fifth.json()["detail"].get<std::string>().find("over the limit of 4"), std::string::npos);
  EXPECT_EQ(get("/api/v1/projects/" + two + "/files/e", alice).status, 404u);

  // Overwriting is not a new file; bytes: 170 + 10 + 10 + 10 = 200, exactly the quota.
  ASSERT_EQ(put_file(alice, one, "a", std::string(170, 'z')).status, 200u);
  const auto over = put_file(alice, one, "b", std::string(11, 'w'));  // 201
  EXPECT_EQ(over.status, 413u) << over.body;
  EXPECT_TRUE(problem_type(over).ends_with("/quota_exceeded"));
  EXPECT_EQ(read_file(alice, one, "b"), std::string(10, 'x'))
      << "a refused write must leave the file as it was";
  // Shrinking is allowed at the quota, and deleting frees room.
  EXPECT_EQ(put_file(alice, one, "b", "small").status, 200u);
  ASSERT_EQ(call(verb::delete_, "/api/v1/projects/" + one + "/files/c", alice).status, 204u);
  EXPECT_EQ(put_file(alice, two, "e", "y").status, 200u);

  // Another user's quota is their own.
  const User bob = sign_up("bob@example.com");
  EXPECT_EQ(put_file(bob, create_project(bob, "bob's"), "a", std::string(200, 'b')).status, 200u);
}

TEST_F(LimitsTest, AnExportAtTheLimitIsServedAndOneByteOverIsRefused) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "export");
  ASSERT_EQ(put_file(alice, id, "a.txt", std::string(60, 'a')).status, 200u);
  ASSERT_EQ(put_file(alice, id, "b.txt", std::string(40, 'b')).status, 200u);  // 100 bytes: the limit
  const auto at_limit = get("/api/v1/projects/" + id + "/export", alice);
  EXPECT_EQ(at_limit.status, 200u) << at_limit.body;
  EXPECT_EQ(testing::unpack_tar_gz(at_limit.body, dir() / "unpacked").size(), 2u);

  ASSERT_EQ(put_file(alice, id, "b.txt", std::string(41, 'b')).status, 200u);
  const auto over = get("/api/v1/projects/" + id + "/export", alice);
  EXPECT_EQ(over.status, 413u) << over.body;
  EXPECT_TRUE(problem_type(over).ends_with("/export_too_large")) << over.body;
  EXPECT_NE(over.json()["detail"].get<std::string>().find("101 bytes"), std::string::npos) << over.body;
}

TEST(ExportGateTest, LetsInUpToTheCapsPerUserAndInAllAndGivesPlacesBack) {
  api::ExportGate gate(2, 3);
  auto a1 = gate.try_enter("alice");
  auto a2 = gate.try_enter("alice");
  ASSERT_TRUE(std::holds_alternative<api::ExportGate::Slot>(a1));
  ASSERT_TRUE(std::holds_alternative<api::ExportGate::Slot>(a2));
  auto a3 = gate.try_enter("alice");
  ASSERT_TRUE(std::holds_alternative<api::ExportGate::Refusal>(a3));
  EXPECT_EQ(std::get<api::ExportGate::Refusal>(a3), api::ExportGate::Refusal::kUserBusy);
  {
    auto b1 = gate.try_enter("bob");
    ASSERT_TRUE(std::holds_alternative<api::ExportGate::Slot>(b1));
    auto c1 = gate.try_enter("carol");  // three running: the node is full
    ASSERT_TRUE(std::holds_alternative<api::ExportGate::Refusal>(c1));
    EXPECT_EQ(std::get<api::ExportGate::Refusal>(c1), api::ExportGate::Refusal::kServerBusy);
  }
  // Bob's slot went back with its scope.
  EXPECT_TRUE(std::holds_alternative<api::ExportGate::Slot>(gate.try_enter("carol")));
}

}  // namespace
}  // namespace samokoder::resources_test
