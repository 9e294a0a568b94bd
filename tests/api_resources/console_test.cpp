// The web console as the kernel serves it: the page with its Content-Security-Policy, the assets with
// their caching, compression and validators, paths outside the build, and the folder checks at start.
#include <fstream>
#include <map>

#include "console/assets.hpp"
#include "console/routes.hpp"
#include "resources_fixture.hpp"

namespace samokoder::resources_test {
namespace {

using boost::beast::http::verb;

class ConsoleTest : public ResourcesApiTest {};

TEST_F(ConsoleTest, PageCarriesTheConsolePolicyAndIsRevalidatedOnEachVisit) {
  const auto page = client_->get("/");
  ASSERT_EQ(page.status, 200u) << page.body;
  EXPECT_EQ(page.body, ConsoleBuild::kIndex);
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.header("Cache-Control"), "no-cache");
  EXPECT_EQ(page.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(page.header("Content-Encoding"), "");
  // The one other origin the page may show is the preview origin, with the port the proxy got.
  const std::string preview_url = app_->previews()->public_url("{project}");
  const std::string port = preview_url.substr(preview_url.rfind(':') + 1);
  EXPECT_EQ(page.header("Content-Security-Policy"),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
            "connect-src 'self'; frame-src http://*.localhost:" +
                port + "; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");

  const std::string etag = page.header("ETag");
  ASSERT_FALSE(etag.empty());
  const auto again = client_->get("/", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.header("ETag"), etag);
  EXPECT_EQ(client_->get("/", {{"If-None-Match", "\"something-else\""}}).status, 200u);

  const auto head = client_->request(verb::head, "/");
  EXPECT_EQ(head.status, 200u);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("ETag"), etag);
}

TEST_F(ConsoleTest, AssetsComeInTheBestCodingTheClientAcceptsAndHashedOnesAreCachedForAYear) {
  const std::string target = "/" + std::string(ConsoleBuild::kScriptPath);
  struct Case {
    std::string accept_encoding;
    std::string_view body;
    std::string coding;
  };
  const Case cases[] = {
      {"", ConsoleBuild::kScript, ""},
      {"gzip, deflate, br", ConsoleBuild::kScriptBrotli, "br"},
      {"GZIP", ConsoleBuild::kScriptGzip, "gzip"},
      {"br;q=0, gzip;q=0.5", ConsoleBuild::kScriptGzip, "gzip"},
      {"gzip;q=0.000, br;q=0", ConsoleBuild::kScript, ""},
      {"*", ConsoleBuild::kScriptBrotli, "br"},
      {"*;q=0, identity", ConsoleBuild::kScript, ""},
      {"gzip;q=nonsense", ConsoleBuild::kScript, ""},
  };
  std::map<std::string, std::string> etag_of;  // coding -> ETag
  for (const Case& c : cases) {
    HeaderList headers;
    if (!c.accept_encoding.empty()) headers.emplace_back("Accept-Encoding", c.accept_encoding);
    const auto asset = client_->get(target, headers);
    ASSERT_EQ(asset.status, 200u) << c.accept_encoding;
    EXPECT_EQ(asset.body, c.body) << c.accept_encoding;
    EXPECT_EQ(asset.header("Content-Encoding"), c.coding) << c.accept_encoding;
    EXPECT_EQ(asset.header("Vary"), "Accept-Encoding");
    EXPECT_EQ(asset.header("Content-Type"), "text/javascript; charset=utf-8");
    EXPECT_EQ(asset.header("Cache-Control"), "public, max-age=31536000, immutable");
    etag_of[c.coding] = asset.header("ETag");
    EXPECT_EQ(
        client_
            ->get(target, {{"Accept-Encoding", c.accept_encoding}, {"If-None-Match", asset.header("ETag")}})
            .status,
        304u);
  }
  ASSERT_EQ(etag_of.size(), 3u);
  EXPECT_NE(etag_of[""], etag_of["br"]);
  EXPECT_NE(etag_of["gzip"], etag_of["br"]);
  // A validator of one coding does not stand for another.
  EXPECT_EQ(client_->get(target, {{"Accept-Encoding", "br"}, {"If-None-Match", etag_of["gzip"]}}).status,
            200u);
  EXPECT_EQ(client_->get(target, {{"If-None-Match", etag_of["br"]}}).status, 200u);

  const auto icon = client_->get("/" + std::string(ConsoleBuild::kIconPath));
  ASSERT_EQ(icon.status, 200u);
  EXPECT_EQ(icon.body, ConsoleBuild::kIcon);
  EXPECT_EQ(icon.header("Content-Type"), "image/svg+xml");
  EXPECT_EQ(icon.header("Cache-Control"), "no-cache");  // its name does not change with its content
}

TEST_F(ConsoleTest, OnlyTheBuiltFilesAreServed) {
  for (const std::string target :
       {"/assets/missing.js", "/assets/app-5XKQ2L7M.js.br", "/assets/%2e%2e/index.html",
        "/assets/../index.html", "/assets/..%2f..%2fsamokoder.db", "/index.html", "/assets/",
        "/assets//etc/passwd"}) {
    const auto answer = client_->get(target);
    EXPECT_EQ(answer.status, 404u) << target << " " << answer.body;
    EXPECT_NE(answer.body, ConsoleBuild::kIndex) << target;
  }
  EXPECT_EQ(client_->request(verb::post, "/", "x", {{"Content-Type", "text/plain"}}).status, 405u);
}

class DisabledConsoleTest : public ResourcesApiTest {
  void configure(config::Config& config) override { config.console.enabled = false; }
};

TEST_F(DisabledConsoleTest, LeavesTheRootUnserved) {
  EXPECT_EQ(client_->get("/").status, 404u);
  EXPECT_EQ(client_->get("/" + std::string(ConsoleBuild::kScriptPath)).status, 404u);
  EXPECT_EQ(client_->get("/healthz").status, 200u);
}

TEST(ConsoleStartTest, AConfiguredFolderWithoutABuildStopsTheServerFromStarting) {
  testing::TempDir dir("samokoder-console-start");
  config::Config config;
  config.server.listen = {"127.0.0.1", 0};
  config.plugins.plugins = {};
  config.console.dir = dir.path() / "not-built";
  config.workspace_root = dir.path() / "workspaces";
  core::ManualClock clock;
  app::Application application(std::move(config), clock);
  const sdk::Status status = application.start();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), sdk::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("not-built has no index.html"), std::string::npos) << status.message();
}

void write(const std::filesystem::path& path, std::string_view content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

TEST(ConsoleAssetsTest, LoadRefusesWhatAConsoleBuildNeverHolds) {
  testing::TempDir dir("samokoder-console-assets");
  EXPECT_EQ(console::ConsoleAssets::load(dir.path()).status().code(), sdk::StatusCode::kNotFound);

  write(dir.path() / "index.html", "<!doctype html>");
  write(dir.path() / "assets" / "app-AAAAAAAA.js", "x");
  // A compressed copy no smaller than the file, and one of a file that is not there, are left out.
  write(dir.path() / "assets" / "app-AAAAAAAA.js.gz", "longer than x");
  write(dir.path() / "assets" / "gone.css.br", "b");
  auto loaded = console::ConsoleAssets::load(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->size(), 2u);
  const console::Asset* script = loaded->find("assets/app-AAAAAAAA.js");
  ASSERT_NE(script, nullptr);
  EXPECT_TRUE(script->gzip.empty());
  EXPECT_TRUE(script->immutable);
  EXPECT_EQ(loaded->find("assets/gone.css"), nullptr);
  EXPECT_FALSE(loaded->find("index.html")->immutable);

  write(dir.path() / "notes.exe", "MZ");
  auto refused = console::ConsoleAssets::load(dir.path());
  EXPECT_EQ(refused.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("notes.exe"), std::string::npos);
  std::filesystem::remove(dir.path() / "notes.exe");

  std::filesystem::create_symlink("/etc/passwd", dir.path() / "assets" / "passwd.txt");
  auto linked = console::ConsoleAssets::load(dir.path());
  EXPECT_EQ(linked.status().code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(linked.status().message().find("symbolic link"), std::string::npos);
}

TEST(ConsolePolicyTest, FrameSourceCoversEveryPreviewOriginAndNothingWider) {
  EXPECT_EQ(console::preview_frame_source("http://p-{project}.localhost:8081"), "http://*.localhost:8081");
  EXPECT_EQ(console::preview_frame_source("https://{project}.preview.example.com"),
            "https://*.preview.example.com");
  EXPECT_EQ(console::preview_frame_source("https://preview.example.com/p/{project}/"),
            "https://preview.example.com");
  // CSP allows a wildcard only as a host's first label.
  EXPECT_EQ(console::preview_frame_source("https://app.{project}.example.com"), "https:");
  EXPECT_EQ(console::preview_frame_source("not a url"), "'none'");
}

}  // namespace
}  // namespace samokoder::resources_test
