// Hostile file paths: whatever the spelling (literal, percent-encoded, over-long, with control or
// look-alike characters), a path that is not a plain relative name inside the project is refused with
// 400 problem+json naming the reason, on every file route, and nothing outside the workspace is touched.
// Symlinks planted inside a workspace are refused for reading and writing.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "resources_fixture.hpp"

namespace samokoder::resources_test {
namespace {

namespace fs = std::filesystem;
using boost::beast::http::verb;

std::string repeat(const std::string& part, std::size_t times, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i)
    out += (i ? separator : "") + part;
  return out;
}

// The part of the URL after /files/ (or /history/), as sent on the wire.
std::vector<std::string> hostile_paths() {
  return {
      "..",
      "../etc/passwd",
      "../../../../../../etc/passwd",
      "a/..",
      "a/../../x",
      "%2e%2e",
      "%2e%2e/etc/passwd",
      "%2E%2E%2Fetc%2Fpasswd",
      "a/%2e%2e/%2e%2e/x",
      "a%2f..%2f..%2fx",
      ".",
      "./a",
      "a/./b",
      "%2e/a",
      "a//b",
      "a/",
      "%2fetc%2fpasswd",
      "%2F",
      "a%5c..%5c..%5cwindows",
      "..%5cwindows",
      "a%5cb",
      "C:%5cwindows",
      "c:/windows/win.ini",
      "a%3a%24DATA",
      "a%01b",
      "a%0ab",
      "a%0db",
      "a%09b",
      "a%7fb",
      "a%c2%85b",
      "a%ffb",
      "%c0%ae%c0%ae/x",
      "%e2%80%aetxt.exe",
      "a%e2%80%8fb",
      "%20a",
      "a%20",
      "dir%20/a",
      ".samokoder/state",
      ".SAMOKODER",
      std::string(256, 'n'),
      "a/" + std::string(300, 'n') + "/b",
      repeat("abcdefghijklmnopqrstuvwxyz0123456789", 120, "/"),
      repeat("d", 65, "/"),
  };
}

class HostilePathsTest : public ResourcesApiTest {};

TEST_F(HostilePathsTest, AreRefusedWith400OnEveryFileRoute) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "p");
  ASSERT_EQ(put_file(alice, id, "ok.txt", "fine").status, 200u);
  const auto paths = hostile_paths();
  ASSERT_GE(paths.size(), 30u);
  const std::string base = "/api/v1/projects/" + id;
  for (const auto& path : paths) {
    for (const auto& [method, prefix] : std::vector<std::pair<verb, std::string>>{{verb::get, "/files/"},
                                                                                  {verb::put, "/files/"},
                                                                                  {verb::delete_, "/files/"},
                                                                                  {verb::get, "/history/"}}) {
      const auto response = call(method, base + prefix + path, alice, method == verb::put ? "planted" : "",
                                 "application/octet-stream");
      ASSERT_EQ(response.status, 400u) << prefix << path << ": " << response.body;
      ASSERT_EQ(response.header("Content-Type"), "application/problem+json") << path;
      const auto problem = response.json();
      EXPECT_EQ(problem["type"], "https://samokoder.dev/problems/invalid_path") << path;
      EXPECT_EQ(problem["detail"].get<std::string>().rfind("path ", 0), 0u)
          << path << ": " << problem["detail"];
    }
  }
  // An encoded NUL never reaches a handler: the server refuses the request line itself.
  for (const std::string path : {"%00", "a%00b", "ok.txt%00.png"}) {
    EXPECT_EQ(get(base + "/files/" + path, alice).status, 400u) << path;
    EXPECT_EQ(call(verb::put, base + "/files/" + path, alice, "x", "application/octet-stream").status, 400u);
  }
  // Nothing landed anywhere: the project still has only its one file, in storage and on disk.
  const auto tree = get(base + "/files", alice);
  ASSERT_EQ(tree.json()["items"].size(), 1u);
  std::vector<std::string> on_disk;
  for (const auto& entry : fs::recursive_directory_iterator(workspace_root())) {
    on_disk.push_back(fs::relative(entry.path(), workspace_root()).string());
  }
  EXPECT_EQ(on_disk, (std::vector<std::string>{id, id + "/ok.txt"}));
  EXPECT_FALSE(fs::exists(dir() / "planted"));
  EXPECT_FALSE(fs::exists(dir() / "x"));
}

TEST_F(HostilePathsTest, ReasonsAreNamed) {
  const User alice = sign_up("alice@example.com");
  const std::string base = "/api/v1/projects/" + create_project(alice, "p") + "/files/";
  const std::vector<std::pair<std::string, std::string>> reasons = {
      {"a/../b", "'..'"},           {"a%5cb", "backslash"},      {"a%01b", "control character"},
      {"%2fetc", "relative"},       {"a//b", "empty component"}, {std::string(256, 'n'), "longer than 255"},
      {".samokoder/x", "reserved"},
  };
  for (const auto& [path, reason] : reasons) {
    const auto response = get(base + path, alice);
    ASSERT_EQ(response.status, 400u) << path;
    EXPECT_NE(response.json()["detail"].get<std::string>().find(reason), std::string::npos)
        << path << ": " << response.json()["detail"];
  }
}

TEST_F(HostilePathsTest, SymlinksPlantedInTheWorkspaceAreRefusedForReadAndWrite) {
  const User alice = sign_up("alice@example.com");
  const std::string id = create_project(alice, "p");
  const std::string base = "/api/v1/projects/" + id + "/files/";
  testing::TempDir outside("samokoder-outside");
  const fs::path secret = outside.write("secret.txt", "outside secret");
  ASSERT_EQ(put_file(alice, id, "real.txt", "mine").status, 200u);
  ASSERT_EQ(put_file(alice, id, "dir/inner.txt", "inner").status, 200u);

  // What a command in the workspace could do: link names to places outside it.
  const fs::path ws = workspace_root() / id;
  fs::create_symlink(secret, ws / "link.txt");
  fs::create_directory_symlink(outside.path(), ws / "escape");
  fs::remove(ws / "real.txt");
  fs::create_symlink(secret, ws / "real.txt");  // a stored file's name now points outside
  fs::remove_all(ws / "dir");
  fs::create_directory_symlink(outside.path(), ws / "dir");

  for (const std::string path : {"link.txt", "escape/secret.txt", "real.txt", "dir/inner.txt"}) {
    for (const verb method : {verb::get, verb::put, verb::delete_}) {
      const auto response = call(method, base + path, alice, method == verb::put ? "overwrite" : "",
                                 "application/octet-stream");
      ASSERT_EQ(response.status, 400u) << path << ": " << response.body;
      EXPECT_EQ(response.json()["type"], "https://samokoder.dev/problems/invalid_path");
      EXPECT_NE(response.json()["detail"].get<std::string>().find("symbolic link"), std::string::npos)
          << response.json()["detail"];
      EXPECT_EQ(response.body.find("outside secret"), std::string::npos);
    }
  }
  EXPECT_EQ(put_file(alice, id, "escape/new.txt", "planted").status, 400u);
  EXPECT_EQ(file_bytes(secret), "outside secret");
  EXPECT_FALSE(fs::exists(outside.path() / "new.txt"));
  EXPECT_FALSE(fs::exists(outside.path() / "inner.txt"));
  // The history of a stored file stays readable: it comes from storage, not from the link.
  EXPECT_EQ(get("/api/v1/projects/" + id + "/history/real.txt", alice).status, 200u);
  // Deleting the project removes the links, never what they point at.
  ASSERT_EQ(call(verb::delete_, "/api/v1/projects/" + id, alice).status, 204u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(ws)));
  EXPECT_EQ(file_bytes(secret), "outside secret");
}

}  // namespace
}  // namespace samokoder::resources_test
