// Projects and files over HTTP: CRUD, pagination, writes and reads, versions, export, body limits, and
// the workspace copy each write leaves behind.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include <sys/stat.h>

#include "archive_util.hpp"
#include "resources_fixture.hpp"

namespace samokoder::resources_test {
namespace {

namespace fs = std::filesystem;
using boost::beast::http::verb;

class ProjectsFilesTest : public ResourcesApiTest {};

TEST_F(ProjectsFilesTest, ProjectCrudWithWorkspaceDirectory) {
  const User alice = sign_up("alice@example.com");
  const auto created = call(verb::post, "/api/v1/projects", alice,
                            R"({"name": "todo-app", "description": "A small\ntodo app"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  const auto project = created.json();
  const std::string id = project["id"];
  EXPECT_EQ(created.header("Location"), "/api/v1/projects/" + id);
  EXPECT_EQ(project["name"], "todo-app");
  EXPECT_EQ(project["description"], "A small\ntodo app");
  EXPECT_TRUE(project["created_at"].is_string());
  EXPECT_EQ(mode_of(workspace_root() / id), 0700u);

  const auto fetched = get("/api/v1/projects/" + id, alice);
  ASSERT_EQ(fetched.status, 200u);
  EXPECT_EQ(fetched.json(), project);

  const auto renamed = call(verb::patch, "/api/v1/projects/" + id, alice, R"({"name": "renamed"})");
  ASSERT_EQ(renamed.status, 200u) << renamed.body;
  EXPECT_EQ(renamed.json()["name"], "renamed");
  EXPECT_EQ(renamed.json()["description"], "A small\ntodo app");
  const auto described = call(verb::patch, "/api/v1/projects/" + id, alice, R"({"description": ""})");
  ASSERT_EQ(described.status, 200u);
  EXPECT_EQ(described.json()["description"], "");
  EXPECT_EQ(described.json()["name"], "renamed");

  ASSERT_EQ(put_file(alice, id, "src/index.js", "console.log(1)").status, 200u);
  ASSERT_TRUE(fs::exists(workspace_root() / id / "src" / "index.js"));
  const auto deleted = call(verb::delete_, "/api/v1/projects/" + id, alice);
  EXPECT_EQ(deleted.status, 204u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(workspace_root() / id)));
  EXPECT_EQ(get("/api/v1/projects/" + id, alice).status, 404u);
  EXPECT_EQ(call(verb::delete_, "/api/v1/projects/" + id, alice).status, 404u);
}

TEST_F(ProjectsFilesTest, ProjectInputIsValidated) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "p");
  struct Case {
    verb method;
    std::string target;
    std::string body;
    std::string pointer;
  };
  const std::vector<Case> cases = {
      {verb::post, "/api/v1/projects", R"({})", "/name"},
      {verb::post, "/api/v1/projects", R"({"name": ""})", "/name"},
      {verb::post, "/api/v1/projects", R"({"name": 5})", "/name"},
      {verb::post, "/api/v1/projects", R"({"name": "a\u0007b"})", "/name"},
      {verb::post, "/api/v1/projects", R"({"name": "x", "owner_id": "someone"})", "/owner_id"},
      {verb::post, "/api/v1/projects", nlohmann::json{{"name", std::string(101, 'n')}}.dump(), "/name"},
      {verb::post, "/api/v1/projects",
       nlohmann::json{{"name", "x"}, {"description", std::string(1001, 'd')}}.dump(), "/description"},
      {verb::patch, "/api/v1/projects/" + id, R"({})", ""},
      {verb::patch, "/api/v1/projects/" + id, R"({"name": ""})", "/name"},
      {verb::patch, "/api/v1/projects/" + id, R"({"id": "other"})", "/id"},
  };
  for (const auto& c : cases) {
    const auto response = call(c.method, c.target, alice, c.body);
    ASSERT_EQ(response.status, 400u) << c.body << ": " << response.body;
    EXPECT_EQ(response.header("Content-Type"), "application/problem+json");
    bool named = false;
    const auto problem = response.json();
    for (const auto& error : problem["errors"])
      named = named || error["path"] == c.pointer;
    EXPECT_TRUE(named) << c.body << ": " << response.body;
  }
  EXPECT_EQ(call(verb::post, "/api/v1/projects", alice, R"({"name": "x"})", "text/plain").status, 415u);
  EXPECT_EQ(call(verb::post, "/api/v1/projects", alice, R"({"name": "x", "name": "y"})").status, 400u);
}

TEST_F(ProjectsFilesTest, ProjectListIsPaginatedNewestFirst) {
  const User alice = sign_up("alice@example.com");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(create_project(alice, "p" + std::to_string(i)));
    clock_.advance(std::chrono::seconds(1));
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    const auto page = get("/api/v1/projects?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), alice);
    ASSERT_EQ(page.status, 200u) << page.body;
    const auto doc = page.json();
    EXPECT_LE(doc["items"].size(), 2u);
    for (const auto& item : doc["items"])
      seen.push_back(item["id"]);
    cursor = doc["next_cursor"].is_null() ? "" : doc["next_cursor"].get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));
  EXPECT_EQ(get("/api/v1/projects?limit=0", alice).status, 400u);
  EXPECT_EQ(get("/api/v1/projects?limit=501", alice).status, 400u);
  EXPECT_EQ(get("/api/v1/projects?cursor=garbage", alice).status, 400u);
}

TEST_F(ProjectsFilesTest, FilesAreWrittenReadListedAndDeleted) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "site");
  const std::string binary("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  const std::map<std::string, std::string> files = {
      {"index.html", "<!doctype html><p>hi</p>"},
      {"src/app/main.js", "console.log('hi')\n"},
      {"assets/logo.png", binary},
      {"empty.txt", ""},
      {"docs/\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82.md", "# hello"},
  };
  for (const auto& [path, content] : files) {
    const auto written = put_file(alice, id, path, content);
    ASSERT_EQ(written.status, 200u) << path << ": " << written.body;
    EXPECT_EQ(written.json()["path"], path);
    EXPECT_EQ(written.json()["version"], 1);
    EXPECT_EQ(written.json()["size"], content.size());
    EXPECT_EQ(written.json()["content_hash"].get<std::string>().size(), 64u);
    EXPECT_EQ(file_bytes(workspace_root() / id / path), content) << path;
  }
  const auto html = get("/api/v1/projects/" + id + "/files/index.html", alice);
  ASSERT_EQ(html.status, 200u);
  EXPECT_EQ(html.body, files.at("index.html"));
  EXPECT_EQ(html.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(html.header("X-File-Version"), "1");
  EXPECT_EQ(html.header("ETag").size(), 66u);
  EXPECT_NE(html.header("Content-Security-Policy").find("sandbox"), std::string::npos);
  EXPECT_EQ(html.header("X-Content-Type-Options"), "nosniff");
  const auto png = get("/api/v1/projects/" + id + "/files/assets/logo.png", alice);
  ASSERT_EQ(png.status, 200u);
  EXPECT_EQ(png.body, binary);
  EXPECT_EQ(png.header("Content-Type"), "image/png");
  // Percent-encoded names address the same file.
  const auto encoded =
      get("/api/v1/projects/" + id + "/files/docs/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82.md", alice);
  ASSERT_EQ(encoded.status, 200u);
  EXPECT_EQ(encoded.body, "# hello");
  EXPECT_EQ(encoded.header("Content-Type"), "text/markdown; charset=utf-8");
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files/src%2Fapp%2Fmain.js", alice).body,
            files.at("src/app/main.js"));

  const auto tree = get("/api/v1/projects/" + id + "/files", alice);
  ASSERT_EQ(tree.status, 200u);
  std::vector<std::string> listed;
  const auto tree_doc = tree.json();
  for (const auto& item : tree_doc["items"])
    listed.push_back(item["path"]);
  std::vector<std::string> expected;
  for (const auto& [path, content] : files)
    expected.push_back(path);  // std::map: bytewise order
  EXPECT_EQ(listed, expected);
  EXPECT_TRUE(tree.json()["next_cursor"].is_null());
  const auto prefixed = get("/api/v1/projects/" + id + "/files?prefix=src/&limit=1", alice);
  ASSERT_EQ(prefixed.status, 200u);
  ASSERT_EQ(prefixed.json()["items"].size(), 1u);
  EXPECT_EQ(prefixed.json()["items"][0]["path"], "src/app/main.js");

  EXPECT_EQ(call(verb::delete_, "/api/v1/projects/" + id + "/files/src/app/main.js", alice).status, 204u);
  EXPECT_FALSE(fs::exists(workspace_root() / id / "src" / "app" / "main.js"));
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files/src/app/main.js", alice).status, 404u);
  EXPECT_EQ(call(verb::delete_, "/api/v1/projects/" + id + "/files/src/app/main.js", alice).status, 404u);
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files/never.txt", alice).status, 404u);
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files", alice).json()["items"].size(), files.size() - 1);

  // A file where a directory is needed, and the other way round.
  EXPECT_EQ(put_file(alice, id, "index.html/inner.txt", "x").status, 409u);
  EXPECT_EQ(put_file(alice, id, "assets", "x").status, 409u);
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files/index.html/inner.txt", alice).status, 404u);
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files/assets", alice).status, 404u);
}

// Deleting the last file of a folder removes the folders it leaves empty, up to the project directory,
// so a file can take the folder's name later; folders that still hold something stay.
TEST_F(ProjectsFilesTest, DeletingTheLastFileOfAFolderLeavesNoFolderBehind) {
  const User alice = sign_up("folders@example.com");
  const std::string id = create_project(alice, "folders");
  ASSERT_EQ(put_file(alice, id, "lib/deep/er/only.txt", "one").status, 200u);
  ASSERT_EQ(put_file(alice, id, "lib/kept.txt", "two").status, 200u);

  ASSERT_EQ(call(verb::delete_, "/api/v1/projects/" + id + "/files/lib/deep/er/only.txt", alice).status,
            204u);
  EXPECT_FALSE(fs::exists(workspace_root() / id / "lib" / "deep"));
  EXPECT_TRUE(fs::is_regular_file(workspace_root() / id / "lib" / "kept.txt"));
  const auto file = put_file(alice, id, "lib/deep", "a file where the folder was");
  EXPECT_EQ(file.status, 200u) << file.body;
  EXPECT_EQ(file_bytes(workspace_root() / id / "lib" / "deep"), "a file where the folder was");

  ASSERT_EQ(call(verb::delete_, "/api/v1/projects/" + id + "/files/lib/kept.txt", alice).status, 204u);
  ASSERT_EQ(call(verb::delete_, "/api/v1/projects/" + id + "/files/lib/deep", alice).status, 204u);
  EXPECT_FALSE(fs::exists(workspace_root() / id / "lib"));
  EXPECT_TRUE(fs::is_directory(workspace_root() / id));  // the project directory itself stays
  EXPECT_EQ(put_file(alice, id, "lib", "now a file").status, 200u);
  const auto read = get("/api/v1/projects/" + id + "/files/lib", alice);
  EXPECT_EQ(read.status, 200u);
  EXPECT_EQ(read.body, "now a file");
}

TEST_F(ProjectsFilesTest, EveryWriteIsAVersionAndOldVersionsStayReadable) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "p");
  ASSERT_EQ(put_file(alice, id, "a.txt", "one").json()["version"], 1);
  clock_.advance(std::chrono::seconds(1));
  ASSERT_EQ(put_file(alice, id, "a.txt", "two").json()["version"], 2);
  // The same content again is not a new version.
  ASSERT_EQ(put_file(alice, id, "a.txt", "two").json()["version"], 2);
  ASSERT_EQ(put_file(alice, id, "a.txt", "three").json()["version"], 3);
  EXPECT_EQ(file_bytes(workspace_root() / id / "a.txt"), "three");

  const std::string file = "/api/v1/projects/" + id + "/files/a.txt";
  EXPECT_EQ(get(file, alice).body, "three");
  const auto first = get(file + "?version=1", alice);
  ASSERT_EQ(first.status, 200u);
  EXPECT_EQ(first.body, "one");
  EXPECT_EQ(first.header("X-File-Version"), "1");
  EXPECT_EQ(get(file + "?version=2", alice).body, "two");
  EXPECT_EQ(get(file + "?version=9", alice).status, 404u);
  for (const char* bad : {"0", "-1", "abc", "1.5", "", "99999999999999999999"}) {
    EXPECT_EQ(get(file + "?version=" + bad, alice).status, 400u) << bad;
  }

  ASSERT_EQ(call(verb::delete_, file, alice).status, 204u);
  const auto history = get("/api/v1/projects/" + id + "/history/a.txt", alice);
  ASSERT_EQ(history.status, 200u) << history.body;
  const auto doc = history.json();
  EXPECT_EQ(doc["path"], "a.txt");
  ASSERT_EQ(doc["items"].size(), 4u);
  EXPECT_EQ(doc["items"][0]["version"], 4);
  EXPECT_EQ(doc["items"][0]["deleted"], true);
  EXPECT_TRUE(doc["items"][0]["content_hash"].is_null());
  EXPECT_EQ(doc["items"][3]["version"], 1);
  EXPECT_EQ(doc["items"][3]["size"], 3);
  EXPECT_EQ(doc["items"][3]["deleted"], false);
  EXPECT_TRUE(doc["items"][3]["run_step_id"].is_null());
  // After the delete, old versions are still there; the tombstone itself is not content.
  EXPECT_EQ(get(file + "?version=1", alice).body, "one");
  EXPECT_EQ(get(file + "?version=4", alice).status, 404u);
  EXPECT_EQ(get(file, alice).status, 404u);

  const auto paged = get("/api/v1/projects/" + id + "/history/a.txt?limit=3", alice);
  ASSERT_EQ(paged.json()["items"].size(), 3u);
  const std::string cursor = paged.json()["next_cursor"];
  const auto rest = get("/api/v1/projects/" + id + "/history/a.txt?limit=3&cursor=" + cursor, alice);
  ASSERT_EQ(rest.json()["items"].size(), 1u);
  EXPECT_EQ(rest.json()["items"][0]["version"], 1);
  EXPECT_EQ(get("/api/v1/projects/" + id + "/history/never.txt", alice).status, 404u);
}

TEST_F(ProjectsFilesTest, ExportIsATarGzOfTheCurrentTree) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "export me");
  std::map<std::string, std::string> files = {
      {"README.md", "# export\n"},
      {"src/main.c", "int main(void) { return 0; }\n"},
      {"bin/blob", std::string("\0\1\2\3\xff", 5)},
      {"empty", ""},
      {std::string(120, 'd') + "/" + std::string(120, 'f'), "long name"},
  };
  for (const auto& [path, content] : files)
    ASSERT_EQ(put_file(alice, id, path, content).status, 200u) << path;
  ASSERT_EQ(put_file(alice, id, "gone.txt", "deleted later").status, 200u);
  ASSERT_EQ(call(verb::delete_, "/api/v1/projects/" + id + "/files/gone.txt", alice).status, 204u);
  ASSERT_EQ(put_file(alice, id, "README.md", "# export, v2\n").status, 200u);
  files["README.md"] = "# export, v2\n";

  const auto exported = get("/api/v1/projects/" + id + "/export", alice);
  ASSERT_EQ(exported.status, 200u) << exported.body;
  EXPECT_EQ(exported.header("Content-Type"), "application/gzip");
  EXPECT_EQ(exported.header("Content-Disposition"), "attachment; filename=\"project-" + id + ".tar.gz\"");
  EXPECT_EQ(testing::unpack_tar_gz(exported.body, dir() / "unpacked"), files);
  for (const auto& line : testing::list_tar_gz(exported.body, dir())) {
    EXPECT_EQ(line.rfind("-rw-r--r-- 0/0", 0), 0u) << line;
  }

  const std::string empty_project = create_project(alice, "empty");
  const auto empty = get("/api/v1/projects/" + empty_project + "/export", alice);
  ASSERT_EQ(empty.status, 200u);
  EXPECT_TRUE(testing::unpack_tar_gz(empty.body, dir() / "unpacked-empty").empty());
}

TEST_F(ProjectsFilesTest, FileBodiesOverTenMebibytesAreRefusedWith413) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "big");
  const std::string limit(10 * 1024 * 1024, 'a');
  const auto at_limit = put_file(alice, id, "at-limit.bin", limit);
  ASSERT_EQ(at_limit.status, 200u) << at_limit.body;
  EXPECT_EQ(at_limit.json()["size"], limit.size());
  // The server answers from Content-Length before reading the body (and closes the connection), so
  // the request goes out raw: headers only.
  const std::string over_request =
      "PUT /api/v1/projects/" + id + "/files/over.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
      alice.token +
      "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(limit.size() + 1) +
      "\r\n\r\n";
  const auto answers = testing::parse_responses(client_->send_raw(over_request));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 413u);
  EXPECT_EQ(answers[0].header("Content-Type"), "application/problem+json");
  EXPECT_EQ(get("/api/v1/projects/" + id + "/files/over.bin", alice).status, 404u);
  EXPECT_FALSE(fs::exists(workspace_root() / id / "over.bin"));
  // Other routes keep the small default limit.
  const std::string big_json = nlohmann::json{{"name", std::string(2 * 1024 * 1024, 'n')}}.dump();
  EXPECT_EQ(call(verb::post, "/api/v1/projects", alice, big_json).status, 413u);
}

TEST_F(ProjectsFilesTest, EveryResourceRouteNeedsAuthentication) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "p");
  const User nobody{"not-a-token", ""};
  for (const auto& [method, target] : std::vector<std::pair<verb, std::string>>{
           {verb::get, "/api/v1/projects"},
           {verb::post, "/api/v1/projects"},
           {verb::get, "/api/v1/projects/" + id},
           {verb::patch, "/api/v1/projects/" + id},
           {verb::delete_, "/api/v1/projects/" + id},
           {verb::get, "/api/v1/projects/" + id + "/files"},
           {verb::get, "/api/v1/projects/" + id + "/files/a.txt"},
           {verb::put, "/api/v1/projects/" + id + "/files/a.txt"},
           {verb::delete_, "/api/v1/projects/" + id + "/files/a.txt"},
           {verb::get, "/api/v1/projects/" + id + "/history/a.txt"},
           {verb::get, "/api/v1/projects/" + id + "/export"},
           {verb::get, "/api/v1/keys"},
           {verb::get, "/api/v1/keys/openai"},
           {verb::put, "/api/v1/keys/openai"},
           {verb::delete_, "/api/v1/keys/openai"},
       }) {
    const bool has_body = method == verb::post || method == verb::put || method == verb::patch;
    const auto response = call(method, target, nobody, has_body ? "{}" : "");
    EXPECT_EQ(response.status, 401u) << target;
  }
  EXPECT_EQ(get("/api/v1/projects/" + id, alice).status, 200u);
}

}  // namespace
}  // namespace samokoder::resources_test
