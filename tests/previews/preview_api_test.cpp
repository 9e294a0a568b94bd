// Live previews through the whole kernel (ctest label preview): a real server with the real
// preview.sandbox and preview.static runners, projects whose files go in over the files API, and the
// preview reached through the proxy on its own origin exactly as a browser does (grant link, cookie,
// Host p-<id>.localhost), over HTTP, streamed responses and WebSocket.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include <samokoder/sdk/storage.hpp>

#include "resources_fixture.hpp"
#include "wait_until.hpp"

namespace samokoder::previews_test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::beast::http::verb;
using nlohmann::json;
using resources_test::User;
using testing::ClientResponse;
using testing::HeaderList;

// A dependency-free Node app: its answer names version.txt (read at start, so a restart shows a
// change), /headers echoes what reached it, /stream sends two events 400 ms apart, and an upgrade is
// answered as a WebSocket that echoes one text frame.
constexpr const char* kNodeServer = R"JS(
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const version = fs.readFileSync(__dirname + '/version.txt', 'utf8').trim();
const server = http.createServer((req, res) => {
  if (req.url === '/headers') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headers));
    return;
  }
  if (req.url === '/stream') {
    res.writeHead(200, {'content-type': 'text/event-stream'});
    res.write('data: one\n\n');
    setTimeout(() => { res.write('data: two\n\n'); res.end(); }, 400);
    return;
  }
  res.setHeader('set-cookie', ['app_cookie=1; Domain=localhost; Path=/', 'samokoder_preview=forged; Path=/']);
  res.end('hello from node ' + version);
});
server.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1')
      .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
               'Sec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  socket.on('data', (buf) => {
    const len = buf[1] & 0x7f;
    const mask = buf.slice(2, 6);
    const data = Buffer.alloc(len);
    for (let i = 0; i < len; i++) data[i] = buf[6 + i] ^ mask[i % 4];
    const reply = Buffer.from('echo:' + data.toString());
    socket.write(Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
  });
});
server.listen(Number(process.env.PORT), process.env.HOST);
)JS";

constexpr const char* kNodePackage =
    R"({"name": "preview-test", "private": true, "scripts": {"start": "node server.js"}})";

// A Python stdlib app: its answer is greeting.txt (read at start), and an upgrade is answered as a
// WebSocket that echoes one text frame.
constexpr const char* kPythonApp = R"PY(
import base64, hashlib, http.server, os
BODY = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "greeting.txt")).read().strip().encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
            self.end_headers()
            self.wfile.flush()
            head = self.rfile.read(2)
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(head[1] & 0x7F)))
            reply = b"py:" + data
            self.wfile.write(bytes([0x81, len(reply)]) + reply)
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler).serve_forever()
)PY";

config::PluginEntry plugin(std::string id, std::string file, nlohmann::json config) {
  config::PluginEntry entry;
  entry.id = std::move(id);
  entry.file = std::move(file);
  entry.config = std::move(config);
  return entry;
}

class PreviewApiTest : public resources_test::ResourcesApiTest {
 protected:
  void SetUp() override {
    // The runners time readiness and restarts on the kernel's clock: let the test's clock follow real
    // time.
    driver_ = std::thread([this] {
      auto last = std::chrono::steady_clock::now();
      while (!stop_driver_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const auto now = std::chrono::steady_clock::now();
        clock_.advance(now - last);
        last = now;
      }
    });
    ResourcesApiTest::SetUp();
  }
  void TearDown() override {
    ResourcesApiTest::TearDown();
    stop_driver_.store(true);
    driver_.join();
    std::error_code ignored;
    std::filesystem::remove_all(socket_dir_, ignored);
  }

  void configure(config::Config& config) override {
    // Unix socket paths are short (108 bytes): keep the sandbox's sockets near the root.
    socket_dir_ =
        std::filesystem::path("/tmp") / ("skp-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(reinterpret_cast<std::uintptr_t>(this) % 100000));
    config.plugins.plugins.push_back(plugin("preview.sandbox", "preview_sandbox.so",
                                            {{"socket_dir", socket_dir_.string()},
                                             {"ready_timeout_ms", 20000},
                                             {"restart_backoff_ms", 200},
                                             {"pids_max", 64},
                                             {"memory_bytes", 512LL * 1024 * 1024}}));
    config.plugins.plugins.push_back(plugin("preview.static", "preview_static.so", json::object()));
    config.previews.runners = {"preview.sandbox", "preview.static"};
    config.previews.debounce_ms = 100;
    config.previews.max_per_user = 2;
    config.processes.kill_grace_ms = 500;
    config.processes.state_dir = dir() / "processes";
  }

  std::string project_with(const User& user, const std::vector<std::pair<std::string, std::string>>& files) {
    const std::string project = create_project(user, "preview");
    for (const auto& [path, content] : files) {
      const auto put = put_file(user, project, path, content);
      EXPECT_TRUE(put.status == 200 || put.status == 201) << put.status << " " << put.body;
    }
    return project;
  }

  ClientResponse start(const User& user, const std::string& project, const std::string& body = "") {
    return call(verb::post, "/api/v1/projects/" + project + "/preview", user, body);
  }

  // Waits until the preview is running; returns its document.
  json wait_running(const User& user, const std::string& project) {
    json last;
    const bool running = testing::wait_until(
        [&] {
          const auto got = get("/api/v1/projects/" + project + "/preview", user);
          if (got.status != 200) return false;
          last = got.json();
          return last["state"] == "running" || last["state"] == "failed";
        },
        std::chrono::seconds(40));
    EXPECT_TRUE(running) << last.dump();
    EXPECT_EQ(last["state"], "running") << last.dump();
    return last;
  }

  testing::HttpClient& proxy() {
    if (!proxy_) proxy_ = std::make_unique<testing::HttpClient>("127.0.0.1", app_->preview_port());
    return *proxy_;
  }

  static std::string host_of(const std::string& project) { return "p-" + project + ".localhost"; }

  // Follows the preview's url as a browser does: the grant link sets the cookie, then redirects.
  std::string open_preview(const json& preview) {
    const std::string url = preview["url"].get<std::string>();
    const std::string origin = preview["origin"].get<std::string>();
    EXPECT_TRUE(url.starts_with(origin)) << url;
    const std::string target = url.substr(origin.size());
    const auto answer = proxy().get(target, {{"Host", host_of(preview["project_id"])}});
    EXPECT_EQ(answer.status, 303u) << answer.body;
    EXPECT_EQ(answer.header("Location"), "/");
    const std::string set_cookie = answer.header("Set-Cookie");
    EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
    // A *.localhost origin is a secure context: the cookie can be SameSite=None, so the console's frame
    // of the preview carries it, and Partitioned keeps it to frames under the site that opened it.
    EXPECT_NE(set_cookie.find("; SameSite=None; Secure; Partitioned"), std::string::npos) << set_cookie;
    return set_cookie.substr(0, set_cookie.find(';'));
  }

  ClientResponse through_proxy(const std::string& project, const std::string& cookie,
                               const std::string& target, HeaderList extra = {}) {
    extra.emplace_back("Host", host_of(project));
    if (!cookie.empty()) extra.emplace_back("Cookie", cookie);
    return proxy().get(target, extra);
  }

  // Waits until GET `target` through the proxy answers `body`.
  void expect_body_soon(const std::string& project, const std::string& cookie, const std::string& body) {
    std::string last;
    const bool seen = testing::wait_until(
        [&] {
          const auto got = through_proxy(project, cookie, "/");
          last = std::to_string(got.status) + " " + got.body;
          return got.status == 200 && got.body == body;
        },
        std::chrono::seconds(30));
    EXPECT_TRUE(seen) << "last answer: " << last;
  }

  // Opens a WebSocket to the preview through the proxy, sends `text` and returns the app's answer.
  std::string websocket_echo(const std::string& project, const std::string& cookie, const std::string& text) {
    asio::io_context io;
    beast::websocket::stream<asio::ip::tcp::socket> ws(io);
    ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), app_->preview_port()});
    ws.set_option(beast::websocket::stream_base::decorator(
        [&](beast::websocket::request_type& request) { request.set(beast::http::field::cookie, cookie); }));
    ws.handshake(host_of(project), "/hot");
    ws.text(true);
    ws.write(asio::buffer(text));
    beast::flat_buffer buffer;
    ws.read(buffer);
    return beast::buffers_to_string(buffer.data());
  }

  std::filesystem::path socket_dir_;
  std::thread driver_;
  std::atomic<bool> stop_driver_{false};
  std::unique_ptr<testing::HttpClient> proxy_;
};

TEST_F(PreviewApiTest, ANodeAppAnswersThroughTheProxyAndPicksUpAChangedFile) {
  const User user = sign_up("node@example.com");
  const std::string project =
      project_with(user, {{"package.json", kNodePackage}, {"server.js", kNodeServer}, {"version.txt", "v1"}});
  const auto started = start(user, project);
  ASSERT_EQ(started.status, 202u) << started.body;
  EXPECT_EQ(started.json()["state"], "starting");
  EXPECT_EQ(started.json()["runner"], "preview.sandbox");
  const json preview = wait_running(user, project);
  const std::string cookie = open_preview(preview);

  const auto page = through_proxy(project, cookie, "/");
  ASSERT_EQ(page.status, 200u) << page.body;
  EXPECT_EQ(page.body, "hello from node v1");
  // HEAD gets the head alone, and the connection carries the next request cleanly.
  const auto head = proxy().request(verb::head, "/", "", {{"Host", host_of(project)}, {"Cookie", cookie}});
  EXPECT_EQ(head.status, 200u);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(through_proxy(project, cookie, "/").body, "hello from node v1");
  // The app may set its own cookies, on its own host only, and never one of ours.
  ASSERT_EQ(page.header_count("Set-Cookie"), 1u);
  EXPECT_EQ(page.header("Set-Cookie"), "app_cookie=1; Path=/");

  // What reached the app: none of our credentials, the app's own cookie, the forwarding headers.
  const auto seen = through_proxy(project, cookie + "; app_cookie=1", "/headers",
                                  {{"Authorization", "Bearer " + user.token}});
  ASSERT_EQ(seen.status, 200u) << seen.body;
  const json headers = seen.json();
  EXPECT_FALSE(headers.contains("authorization")) << headers.dump();
  EXPECT_EQ(headers.value("cookie", ""), "app_cookie=1") << headers.dump();
  EXPECT_EQ(headers.value("x-forwarded-host", ""), host_of(project));
  EXPECT_EQ(headers.value("host", ""), host_of(project));

  // A change through the files API reaches the app without a manual restart.
  const auto put = put_file(user, project, "version.txt", "v2");
  ASSERT_TRUE(put.status == 200 || put.status == 201) << put.body;
  expect_body_soon(project, cookie, "hello from node v2");
  EXPECT_GE(get("/api/v1/projects/" + project + "/preview", user).json()["restarts"].get<int>(), 1);
}

TEST_F(PreviewApiTest, StreamedResponsesAndWebSocketsPassThroughTheProxy) {
  const User user = sign_up("stream@example.com");
  const std::string project =
      project_with(user, {{"package.json", kNodePackage}, {"server.js", kNodeServer}, {"version.txt", "v1"}});
  ASSERT_EQ(start(user, project).status, 202u);
  const std::string cookie = open_preview(wait_running(user, project));

  asio::io_context io;
  // The first event arrives before the app finished its answer (400 ms later): nothing is buffered.
  {
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), app_->preview_port()});
    const std::string request = "GET /stream HTTP/1.1\r\nHost: " + host_of(project) +
                                "\r\nCookie: " + cookie + "\r\nConnection: close\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    std::string received;
    std::array<char, 4096> chunk{};
    while (received.find("data: one") == std::string::npos) {
      const std::size_t n = socket.read_some(asio::buffer(chunk));
      received.append(chunk.data(), n);
    }
    EXPECT_EQ(received.find("data: two"), std::string::npos)
        << "the stream arrived in one piece: " << received;
    boost::system::error_code ec;
    while (!ec) {
      const std::size_t n = socket.read_some(asio::buffer(chunk), ec);
      received.append(chunk.data(), n);
    }
    EXPECT_NE(received.find("data: two"), std::string::npos) << received;
  }
  // A WebSocket (a dev server's hot reload) is tunnelled to the app.
  EXPECT_EQ(websocket_echo(project, cookie, "ping"), "echo:ping");
}

TEST_F(PreviewApiTest, APythonAppAnswersThroughTheProxyAndPicksUpAChangedFile) {
  const User user = sign_up("python@example.com");
  const std::string project = project_with(user, {{"requirements.txt", "# the standard library is enough\n"},
                                                  {"main.py", kPythonApp},
                                                  {"greeting.txt", "hello from python"}});
  const auto started = start(user, project);
  ASSERT_EQ(started.status, 202u);
  ASSERT_EQ(started.json()["state"], "starting");
  // Opened at once, as a user clicks the link: the request waits for the app instead of a "starting"
  // page.
  const std::string cookie = open_preview(started.json());
  const auto first = through_proxy(project, cookie, "/");
  EXPECT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(first.body, "hello from python");
  EXPECT_EQ(websocket_echo(project, cookie, "hi"), "py:hi");
  ASSERT_EQ(put_file(user, project, "greeting.txt", "changed greeting").status, 200u);
  expect_body_soon(project, cookie, "changed greeting");

  // The log of the install and the app, as JSON.
  const auto log = get("/api/v1/projects/" + project + "/preview/logs", user);
  ASSERT_EQ(log.status, 200u) << log.body;
  EXPECT_GT(log.json()["end_offset"].get<std::uint64_t>(), 0u);
}

TEST_F(PreviewApiTest, AStaticSiteIsServedWithoutAProcessAndShowsChangesAtOnce) {
  const User user = sign_up("static@example.com");
  const std::string project =
      project_with(user, {{"dist/index.html", "<h1>one</h1>"}, {"dist/app.js", "console.log(1)"}});
  const auto started = start(user, project);
  ASSERT_EQ(started.status, 202u) << started.body;
  EXPECT_EQ(started.json()["runner"], "preview.static");
  EXPECT_EQ(started.json()["state"], "running");
  const std::string cookie = open_preview(started.json());
  auto page = through_proxy(project, cookie, "/");
  EXPECT_EQ(page.body, "<h1>one</h1>");
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(through_proxy(project, cookie, "/app.js").header("Content-Type"),
            "text/javascript; charset=utf-8");
  // Client-side routes fall back to the app's index.html; files that do not exist are 404.
  EXPECT_EQ(through_proxy(project, cookie, "/todos/3").body, "<h1>one</h1>");
  EXPECT_EQ(through_proxy(project, cookie, "/missing.png").status, 404u);
  EXPECT_EQ(through_proxy(project, cookie, "/%2e%2e/%2e%2e/etc/passwd").status, 404u);
  ASSERT_EQ(put_file(user, project, "dist/index.html", "<h1>two</h1>").status, 200u);
  EXPECT_EQ(through_proxy(project, cookie, "/").body, "<h1>two</h1>");

  // An app of an earlier preview swaps dist/ for a link to somewhere else: nothing is served from it.
  const std::filesystem::path outside = dir() / "secret-dir";
  std::filesystem::create_directories(outside);
  std::ofstream(outside / "secret.txt") << "server secret";
  const std::filesystem::path dist = workspace_root() / project / "dist";
  std::filesystem::rename(dist, workspace_root() / project / "dist-old");
  std::filesystem::create_directory_symlink(outside, dist);
  const auto swapped = through_proxy(project, cookie, "/secret.txt");
  EXPECT_EQ(swapped.status, 404u) << swapped.body;
  EXPECT_EQ(swapped.body.find("server secret"), std::string::npos);
}

TEST_F(PreviewApiTest, OnlyTheOwnersGrantOpensAPreviewAndNoneOpensAnother) {
  const User owner = sign_up("owner@example.com");
  const User other = sign_up("other@example.com");
  const std::string first = project_with(owner, {{"index.html", "first"}});
  const std::string second = project_with(owner, {{"index.html", "second"}});
  const auto one = start(owner, first);
  const auto two = start(owner, second);
  ASSERT_EQ(one.status, 202u);
  ASSERT_EQ(two.status, 202u);
  const std::string cookie = open_preview(one.json());

  EXPECT_EQ(through_proxy(first, "", "/").status, 401u);
  EXPECT_EQ(through_proxy(first, "samokoder_preview=forged", "/").status, 401u);
  // A cookie of one preview opens no other, and a grant link of one project fails on another's host.
  EXPECT_EQ(through_proxy(second, cookie, "/").status, 401u);
  const std::string url = one.json()["url"];
  const std::string grant_target = url.substr(one.json()["origin"].get<std::string>().size());
  EXPECT_EQ(proxy().get(grant_target, {{"Host", host_of(second)}}).status, 401u);
  // An unknown host, and the API's own credentials on the preview origin, get nothing.
  EXPECT_EQ(proxy().get("/", {{"Host", "localhost"}}).status, 404u);
  EXPECT_EQ(through_proxy(first, "", "/", {{"Authorization", "Bearer " + owner.token}}).status, 401u);
  // Another user sees no preview, cannot stop it, and a grant link never redirects off the host.
  EXPECT_EQ(get("/api/v1/projects/" + first + "/preview", other).status, 404u);
  EXPECT_EQ(call(verb::delete_, "/api/v1/projects/" + first + "/preview", other).status, 404u);
  EXPECT_EQ(start(other, first).status, 404u);
  const auto offsite =
      proxy().get(grant_target.substr(0, grant_target.find("&next=")) + "&next=//evil.example",
                  {{"Host", host_of(first)}});
  EXPECT_EQ(offsite.status, 303u);
  EXPECT_EQ(offsite.header("Location"), "/");
  // A tab a browser would drop ("/\t/evil" is "//evil" to it) is refused the same way.
  const auto tabbed =
      proxy().get(grant_target.substr(0, grant_target.find("&next=")) + "&next=/%09/evil.example",
                  {{"Host", host_of(first)}});
  EXPECT_EQ(tabbed.header("Location"), "/");
  EXPECT_EQ(through_proxy(first, cookie, "/").body, "first");
}

TEST_F(PreviewApiTest, LimitsNothingToRunAndStopAreClearAnswers) {
  const User user = sign_up("limits@example.com");
  const std::string empty = create_project(user, "nothing");
  const auto refused = start(user, empty);
  EXPECT_EQ(refused.status, 409u) << refused.body;
  EXPECT_NE(refused.json()["detail"].get<std::string>().find("preview.static"), std::string::npos)
      << refused.body;

  const std::string a = project_with(user, {{"index.html", "a"}});
  const std::string b = project_with(user, {{"index.html", "b"}});
  const std::string c = project_with(user, {{"index.html", "c"}});
  EXPECT_EQ(start(user, a).status, 202u);
  EXPECT_EQ(start(user, b).status, 202u);
  const auto third = start(user, c);
  EXPECT_EQ(third.status, 429u) << third.body;
  // Restarting one the user already runs is not a third.
  EXPECT_EQ(start(user, a).status, 202u);

  EXPECT_EQ(call(verb::delete_, "/api/v1/projects/" + a + "/preview", user).status, 204u);
  EXPECT_EQ(get("/api/v1/projects/" + a + "/preview", user).status, 404u);
  EXPECT_EQ(start(user, c).status, 202u);
  EXPECT_EQ(start(user, c, R"({"runner": "preview.nope"})").status, 400u);
  EXPECT_EQ(start(user, c, R"({"command": "npm start"})").status, 400u);
  const std::string metrics = client_->get("/metrics").body;
  EXPECT_NE(metrics.find("samokoder_previews{state=\"running\"} 2"), std::string::npos) << metrics;
}

TEST_F(PreviewApiTest, AForkBombIsBoundedAndTheServerKeepsServing) {
  const User user = sign_up("bomb@example.com");
  const std::string project = create_project(user, "bomb");
  const auto started =
      start(user, project, R"({"command": ["/bin/sh", "-c", "while :; do sleep 60 & done"]})");
  ASSERT_EQ(started.status, 202u) << started.body;
  // While the bomb presses against its pids limit, the API answers.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(client_->get("/healthz").status, 200u);
    EXPECT_EQ(get("/api/v1/projects/" + project + "/preview", user).status, 200u);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The sandbox's sleeps never outnumber its limit, and stopping the preview ends them all.
  const auto count_sleepers = [] {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::ifstream cmdline(entry.path() / "cmdline");
      std::string text;
      std::getline(cmdline, text, '\n');
      if (text.starts_with(std::string("sleep\0"
                                       "60",
                                       8)))
        ++n;
    }
    return n;
  };
  EXPECT_LE(count_sleepers(), 64);
  EXPECT_EQ(call(verb::delete_, "/api/v1/projects/" + project + "/preview", user).status, 204u);
  EXPECT_TRUE(testing::wait_until([&] { return count_sleepers() == 0; }, std::chrono::seconds(10)))
      << count_sleepers() << " left";
}

// A hostile app: it looks for the server's secrets, files, processes and API from inside the sandbox
// and answers with what it found.
constexpr const char* kSnoopingApp = R"PY(
import glob, http.server, json, os, socket
t = json.load(open("targets.json"))
secret = t["secret"].encode()
def readable(path):
    try:
        with open(path, "rb") as f:
            return f.read(1) is not None
    except Exception:
        return False
def writable(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except Exception:
        return False
def connects(port):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except Exception:
        return False
    finally:
        s.close()
leaks = []
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
    try:
        if secret in open(path, "rb").read():
            leaks.append(path)
    except Exception:
        pass
report = {
    "ran": True,
    "secret_in_environment": any(t["secret"] in v for v in os.environ.values()),
    "secret_in_proc": leaks,
    "processes_seen": len(glob.glob("/proc/[0-9]*")),
    "database_readable": readable(t["database"]),
    "other_workspace_visible": os.path.exists(t["other_workspace"]),
    "wrote_outside": writable(t["outside_file"]),
    "api_reachable": connects(t["api_port"]),
    "proxy_reachable": connects(t["proxy_port"]),
}
body = json.dumps(report).encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
)PY";

TEST_F(PreviewApiTest, AnAppSeesNoneOfTheServersSecretsFilesProcessesOrApi) {
  const std::string secret = "preview-secret-" + std::to_string(::getpid());
  ::setenv("SAMOKODER_PREVIEW_TEST_SECRET", secret.c_str(), 1);
  const User user = sign_up("snoop@example.com");
  const std::string other = project_with(user, {{"index.html", "another project"}});
  // A file of the host beside the workspaces: the app may write to what looks like its path, but only
  // ever into its own private /tmp.
  const std::filesystem::path outside = dir() / "outside.txt";
  std::ofstream(outside) << "original";
  const json targets = {{"secret", secret},
                        {"database", database().string()},
                        {"other_workspace", (workspace_root() / other).string()},
                        {"outside_file", outside.string()},
                        {"api_port", app_->port()},
                        {"proxy_port", app_->preview_port()}};
  const std::string project = project_with(
      user, {{"requirements.txt", "\n"}, {"main.py", kSnoopingApp}, {"targets.json", targets.dump()}});
  ASSERT_EQ(start(user, project).status, 202u);
  const std::string cookie = open_preview(wait_running(user, project));
  const auto answer = through_proxy(project, cookie, "/");
  ::unsetenv("SAMOKODER_PREVIEW_TEST_SECRET");
  ASSERT_EQ(answer.status, 200u) << answer.body;
  const json report = answer.json();
  EXPECT_TRUE(report["ran"].get<bool>());
  EXPECT_FALSE(report["secret_in_environment"].get<bool>());
  EXPECT_TRUE(report["secret_in_proc"].empty()) << report.dump();
  EXPECT_LT(report["processes_seen"].get<int>(), 10) << "it sees the host's processes: " << report.dump();
  EXPECT_FALSE(report["database_readable"].get<bool>());
  EXPECT_FALSE(report["other_workspace_visible"].get<bool>());
  std::ifstream kept(outside);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "original");
  EXPECT_FALSE(report["api_reachable"].get<bool>());
  EXPECT_FALSE(report["proxy_reachable"].get<bool>());
  // The server it could not touch keeps serving.
  EXPECT_EQ(client_->get("/healthz").status, 200u);
}

TEST_F(PreviewApiTest, TheLogIsReadFromAnOffsetAndFollowedOverSse) {
  const User user = sign_up("logs@example.com");
  const std::string project = create_project(user, "chatty");
  const auto started = start(user, project,
                             R"JSON({"command": ["/usr/bin/python3", "-u", "-c",
                          "import time\nfor i in range(1000):\n    print('line', i)\n    time.sleep(0.05)"]})JSON");
  ASSERT_EQ(started.status, 202u) << started.body;
  std::uint64_t offset = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto log = get("/api/v1/projects/" + project + "/preview/logs", user);
        if (log.status != 200) return false;
        offset = log.json()["end_offset"].get<std::uint64_t>();
        return log.json()["text"].get<std::string>().find("line 2\n") != std::string::npos;
      },
      std::chrono::seconds(20)));
  const auto later =
      get("/api/v1/projects/" + project + "/preview/logs?after=" + std::to_string(offset), user);
  ASSERT_EQ(later.status, 200u);
  EXPECT_EQ(later.json()["text"].get<std::string>().find("line 0\n"), std::string::npos) << later.body;
  EXPECT_EQ(get("/api/v1/projects/" + project + "/preview/logs?after=x", user).status, 400u);

  // Followed: new lines arrive as `log` events whose ids are offsets.
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), app_->port()});
  const std::string request =
      "GET /api/v1/projects/" + project + "/preview/logs?after=" + std::to_string(offset) +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer " + user.token +
      "\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  std::string received;
  std::array<char, 4096> chunk{};
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int events = 0;
  while (events < 3 && std::chrono::steady_clock::now() < until) {
    const std::size_t n = socket.read_some(asio::buffer(chunk));
    received.append(chunk.data(), n);
    events = 0;
    for (auto at = received.find("event: log"); at != std::string::npos;
         at = received.find("event: log", at + 1))
      ++events;
  }
  EXPECT_GE(events, 3) << received;
  EXPECT_NE(received.find("text/event-stream"), std::string::npos);
  EXPECT_NE(received.find("id: "), std::string::npos);
  EXPECT_EQ(call(verb::delete_, "/api/v1/projects/" + project + "/preview", user).status, 204u);
}

TEST_F(PreviewApiTest, APreviewRecordedByAnEarlierProcessIsReconciledAsStopped) {
  const User user = sign_up("restart@example.com");
  const std::string project = project_with(user, {{"index.html", "x"}});
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const auto planted = with_storage([&](sdk::Storage& storage) {
    return storage.store<sdk::PreviewStore>().upsert_preview(
        user.id, {.project_id = project,
                  .state = "running",
                  .node_id = std::string(host) + "/1/deadbeef",
                  .port = 20001,
                  .pid = 1,
                  .started_at = clock_.now(),
                  .expires_at = clock_.now() + std::chrono::hours(1)});
  });
  ASSERT_TRUE(planted.ok()) << planted.status().to_string();
  // A restart of the server: the record of the process that died is not left looking alive.
  app_->stop();
  app_.reset();
  ResourcesApiTest::TearDown();
  ResourcesApiTest::SetUp();
  const auto after = get("/api/v1/projects/" + project + "/preview", log_in("restart@example.com"));
  ASSERT_EQ(after.status, 200u) << after.body;
  EXPECT_EQ(after.json()["state"], "stopped") << after.body;
  EXPECT_TRUE(after.json()["url"].is_null());
}

// A run's agent starts its project's preview (AgentContext::start_preview) through the manager the API
// uses. The fixture previewer writes index.html (its description as the heading) and asks for the
// preview, so preview.static serves it; it keeps the answer in the run's state.
class PreviewFromRunTest : public PreviewApiTest {
 protected:
  void configure(config::Config& config) override {
    PreviewApiTest::configure(config);
    // Storage dates the runs engine's leases by the real clock: the kernel's must agree.
    clock_.advance(std::chrono::system_clock::now() - clock_.now());
    config.plugins.plugins.push_back(
        plugin("agent.fixture_previewer", SAMOKODER_PREVIEWER_AGENT, json::object()));
    config.runs.pipeline = {"agent.fixture_previewer"};
    config.runs.poll_interval_ms = 50;
  }

  // Runs the previewer once on `project`; returns the state it ended with.
  json run_previewer(const User& user, const std::string& project, const std::string& heading) {
    const auto created = call(verb::post, "/api/v1/projects/" + project + "/runs", user,
                              json{{"description", heading}}.dump());
    EXPECT_EQ(created.status, 201u) << created.body;
    if (created.status != 201) return json();
    const std::string run_id = created.json().value("id", "");
    json run;
    const bool ended = testing::wait_until(
        [&] {
          run = get("/api/v1/runs/" + run_id, user).json();
          return run["state"] == "succeeded" || run["state"] == "failed";
        },
        std::chrono::seconds(20));
    EXPECT_TRUE(ended) << run.dump();
    EXPECT_EQ(run["state"], "succeeded") << run.dump();
    if (run["state"] != "succeeded") return json();
    const auto step = get("/api/v1/runs/" + run_id + "/steps/" + run["current_step"].value("id", ""), user);
    EXPECT_EQ(step.status, 200u) << step.body;
    return step.json()["state"];
  }

  // How many previews preview.static started, as /metrics counts them.
  std::string static_starts() {
    const std::string metrics = client_->get("/metrics").body;
    const std::string name = "samokoder_previews_started_total{runner=\"preview.static\"} ";
    const auto at = metrics.find(name);
    if (at == std::string::npos) return "0";
    return metrics.substr(at + name.size(), metrics.find('\n', at) - at - name.size());
  }
};

TEST_F(PreviewFromRunTest, AnAgentStartsThePreviewAndAskingAgainKeepsIt) {
  const User user = sign_up("agent-preview@example.com");
  const std::string project = create_project(user, "previewed");
  const json first = run_previewer(user, project, "first");
  EXPECT_EQ(first["preview"]["code"], "ok") << first.dump();

  // The owner sees it running, and it serves what the agent wrote.
  const auto got = get("/api/v1/projects/" + project + "/preview", user);
  ASSERT_EQ(got.status, 200u) << got.body;
  const json preview = got.json();
  EXPECT_EQ(preview["state"], "running") << preview.dump();
  EXPECT_EQ(preview["runner"], "preview.static");
  const std::string cookie = open_preview(preview);
  EXPECT_EQ(through_proxy(project, cookie, "/").body, "<h1>first</h1>");
  EXPECT_EQ(static_starts(), "1");

  // A second run asks again: the running preview is kept, not restarted, and shows the new page.
  const json second = run_previewer(user, project, "second");
  EXPECT_EQ(second["preview"]["code"], "ok") << second.dump();
  const json after = get("/api/v1/projects/" + project + "/preview", user).json();
  EXPECT_EQ(after["state"], "running") << after.dump();
  EXPECT_EQ(after["started_at"], preview["started_at"]);
  EXPECT_EQ(static_starts(), "1") << "the second start restarted the preview";
  EXPECT_EQ(through_proxy(project, cookie, "/").body, "<h1>second</h1>");
}

// A server whose previews.runners is empty runs no previews: an agent that asks is told so and the
// run goes on.
class PreviewlessRunTest : public resources_test::ResourcesApiTest {
 protected:
  void configure(config::Config& config) override {
    clock_.advance(std::chrono::system_clock::now() - clock_.now());
    config.plugins.plugins.push_back(
        plugin("agent.fixture_previewer", SAMOKODER_PREVIEWER_AGENT, json::object()));
    config.runs.pipeline = {"agent.fixture_previewer"};
    config.runs.poll_interval_ms = 50;
    config.previews.runners = {};
  }
};

TEST_F(PreviewlessRunTest, AnAgentIsToldThereAreNoPreviewsAndTheRunGoesOn) {
  const User user = sign_up("no-previews@example.com");
  const std::string project = create_project(user, "plain");
  const auto created =
      call(verb::post, "/api/v1/projects/" + project + "/runs", user, json{{"description", "page"}}.dump());
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string run_id = created.json().value("id", "");
  json run;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        run = get("/api/v1/runs/" + run_id, user).json();
        return run["state"] == "succeeded" || run["state"] == "failed";
      },
      std::chrono::seconds(20)))
      << run.dump();
  ASSERT_EQ(run["state"], "succeeded") << run.dump();
  const auto step = get("/api/v1/runs/" + run_id + "/steps/" + run["current_step"].value("id", ""), user);
  ASSERT_EQ(step.status, 200u) << step.body;
  const json state = step.json()["state"];
  EXPECT_EQ(state["preview"]["code"], "unavailable") << state.dump();
  EXPECT_EQ(state["done"], true);
  // The agent's page is stored all the same, and no preview was started.
  EXPECT_EQ(get("/api/v1/projects/" + project + "/files/index.html", user).body, "<h1>page</h1>");
  EXPECT_EQ(get("/api/v1/projects/" + project + "/preview", user).status, 404u);
}

}  // namespace

}  // namespace samokoder::previews_test
