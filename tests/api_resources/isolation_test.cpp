// One user never reaches another user's projects, files or keys: every route answers another user's
// resource exactly like one that never existed (404, same problem document), and changes nothing.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include "resources_fixture.hpp"

namespace samokoder::resources_test {
namespace {

namespace fs = std::filesystem;
using boost::beast::http::verb;

struct Probe {
  verb method;
  std::string suffix;  // after /api/v1/projects/<id>
  std::string body;
  std::string content_type;
};

// Every project-scoped route, with a body where the route takes one.
std::vector<Probe> project_probes() {
  return {
      {verb::get, "", "", ""},
      {verb::patch, "", R"({"name": "stolen"})", "application/json"},
      {verb::delete_, "", "", ""},
      {verb::get, "/files", "", ""},
      {verb::get, "/files?prefix=src", "", ""},
      {verb::get, "/files/secret.txt", "", ""},
      {verb::get, "/files/secret.txt?version=1", "", ""},
      {verb::put, "/files/secret.txt", "overwritten", "application/octet-stream"},
      {verb::put, "/files/new/file.txt", "planted", "application/octet-stream"},
      {verb::delete_, "/files/secret.txt", "", ""},
      {verb::get, "/history/secret.txt", "", ""},
      {verb::get, "/export", "", ""},
  };
}

// The problem document with the given id replaced, so answers about two ids can be compared.
nlohmann::json comparable(const ClientResponse& response, const std::string& id) {
  nlohmann::json doc = response.json();
  doc.erase("instance");
  doc.erase("request_id");
  if (doc.contains("detail")) {
    doc["detail"] = std::regex_replace(doc["detail"].get<std::string>(), std::regex(id), "<id>");
  }
  return doc;
}

class IsolationTest : public ResourcesApiTest {};

TEST_F(IsolationTest, AnotherUsersProjectAnswersLikeOneThatNeverExisted) {
  const User alice = sign_up("alice@example.com");
  const User mallory = sign_up("mallory@example.com");
  const std::string id = create_project(alice, "alice's");
  ASSERT_EQ(put_file(alice, id, "secret.txt", "alice's secret").status, 200u);
  const std::string mallory_own = create_project(mallory, "mallory's");
  // Never issued, but shaped like an id; and not shaped like one at all.
  const std::string never = "0190f5a2b3c47d8e9f00112233445566";
  for (const std::string& unknown : {never, std::string("nope")}) {
    for (const auto& probe : project_probes()) {
      const auto foreign = call(probe.method, "/api/v1/projects/" + id + probe.suffix, mallory, probe.body,
                                probe.content_type);
      const auto missing = call(probe.method, "/api/v1/projects/" + unknown + probe.suffix, mallory,
                                probe.body, probe.content_type);
      EXPECT_EQ(foreign.status, 404u) << probe.suffix << ": " << foreign.body;
      EXPECT_EQ(missing.status, 404u) << probe.suffix << ": " << missing.body;
      EXPECT_EQ(foreign.header("Content-Type"), "application/problem+json");
      EXPECT_EQ(comparable(foreign, id), comparable(missing, unknown)) << probe.suffix;
    }
  }
  // Mallory's own list shows only her project.
  const auto list = get("/api/v1/projects", mallory);
  ASSERT_EQ(list.json()["items"].size(), 1u);
  EXPECT_EQ(list.json()["items"][0]["id"], mallory_own);

  // Nothing of Alice's changed: name, file, history, workspace.
  const auto project = get("/api/v1/projects/" + id, alice);
  ASSERT_EQ(project.status, 200u);
  EXPECT_EQ(project.json()["name"], "alice's");
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files/secret.txt", alice).body, "alice's secret");
  EXPECT_EQ(get("/api/v1/projects/" + id + "/history/secret.txt", alice).json()["items"].size(), 1u);
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files", alice).json()["items"].size(), 1u);
  EXPECT_FALSE(fs::exists(workspace_root() / id / "new"));
  std::ifstream in(workspace_root() / id / "secret.txt", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
            "alice's secret");
  // No directory was created for ids that are not Mallory's.
  EXPECT_FALSE(fs::exists(workspace_root() / never));
  EXPECT_FALSE(fs::exists(workspace_root() / "nope"));
}

TEST_F(IsolationTest, AnotherUsersKeysAreInvisibleAndUntouchable) {
  const User alice = sign_up("alice@example.com");
  const User mallory = sign_up("mallory@example.com");
  const std::string alice_key = R"({"api_key": "sk-alice-0123456789abcdefghijklmnop"})";
  ASSERT_EQ(call(verb::put, "/api/v1/keys/openai", alice, alice_key).status, 200u);

  const auto foreign = get("/api/v1/keys/openai", mallory);
  const auto missing = get("/api/v1/keys/neverstored", mallory);
  EXPECT_EQ(foreign.status, 404u);
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(comparable(foreign, "openai"), comparable(missing, "neverstored"));
  const auto foreign_delete = call(verb::delete_, "/api/v1/keys/openai", mallory);
  const auto missing_delete = call(verb::delete_, "/api/v1/keys/neverstored", mallory);
  EXPECT_EQ(foreign_delete.status, 404u);
  EXPECT_EQ(comparable(foreign_delete, "openai"), comparable(missing_delete, "neverstored"));
  EXPECT_TRUE(get("/api/v1/keys", mallory).json()["items"].empty());

  // Mallory storing her own key for the same provider is hers alone.
  ASSERT_EQ(
      call(verb::put, "/api/v1/keys/openai", mallory, R"({"api_key": "sk-mallory-zyxwvutsrqponmlk9876"})")
          .status,
      200u);
  const auto alices = get("/api/v1/keys/openai", alice);
  ASSERT_EQ(alices.status, 200u);
  EXPECT_EQ(alices.json()["masked_key"], "sk-…mnop");
  EXPECT_EQ(get("/api/v1/keys/openai", mallory).json()["masked_key"], "sk-…9876");
  ASSERT_EQ(call(verb::delete_, "/api/v1/keys/openai", mallory).status, 204u);
  EXPECT_EQ(get("/api/v1/keys/openai", alice).status, 200u);
}

}  // namespace
}  // namespace samokoder::resources_test
