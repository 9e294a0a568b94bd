#include "previews/proxy.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/logging.hpp"
#include "http/field_value.hpp"
#include "http/uri.hpp"
#include "previews/grant.hpp"
#include "security/path_guard.hpp"

namespace samokoder::previews {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kKeepAliveTimeout = std::chrono::seconds(60);
constexpr auto kHeaderTimeout = std::chrono::seconds(30);
constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr std::size_t kHeaderLimit = 32 * 1024;
constexpr std::size_t kRelayChunk = 64 * 1024;
constexpr std::size_t kMaxStaticFile = 64 * 1024 * 1024;
// How long a request for a starting preview waits for it, and how often it looks.
constexpr auto kStartWait = std::chrono::seconds(30);
constexpr auto kStartPoll = std::chrono::milliseconds(20);
// A request body must arrive within this (a slow upload of max_body_bytes still fits).
constexpr auto kBodyTimeout = std::chrono::seconds(300);
// Connections the proxy holds at once; past it a new one is closed at once.
constexpr std::size_t kMaxConnections = 4096;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using UnixStream = beast::basic_stream<asio::local::stream_protocol>;

// "p-<id>.<anything>[:port]" -> <id>; ids are 32 lowercase hex digits (storage issues no other shape).
std::optional<std::string> project_of_host(std::string_view host) {
  if (!host.starts_with("p-")) return std::nullopt;
  host.remove_prefix(2);
  const auto dot = host.find('.');
  const std::string_view id = host.substr(0, dot);
  if (id.size() != 32) return std::nullopt;
  std::string out;
  for (const char c : id) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!((lower >= '0' && lower <= '9') || (lower >= 'a' && lower <= 'f'))) return std::nullopt;
    out.push_back(lower);
  }
  return out;
}

// Every value of one header field, in order.
template <typename Fields>
std::vector<std::string_view> values_of(const Fields& fields, bhttp::field name) {
  std::vector<std::string_view> out;
  const auto [first, last] = fields.equal_range(name);
  for (auto it = first; it != last; ++it)
    out.emplace_back(it->value().data(), it->value().size());
  return out;
}

// The value of cookie `name` in every Cookie header, and the Cookie header without any samokoder_*
// cookie (what the app may see).
struct Cookies {
  std::optional<std::string> grant;
  std::string forwarded;
};

Cookies split_cookies(const Request& request) {
  Cookies out;
  for (const std::string_view value : values_of(request, bhttp::field::cookie)) {
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      const std::string_view pair = http::trim_ows(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      const std::string_view name = http::trim_ows(pair.substr(0, eq));
      if (name.starts_with("samokoder_")) {
        if (name == kPreviewCookie && eq != std::string_view::npos)
          out.grant = std::string(http::trim_ows(pair.substr(eq + 1)));
        continue;
      }
      if (!out.forwarded.empty()) out.forwarded += "; ";
      out.forwarded += pair;
    }
  }
  return out;
}

// Is the public URL's host loopback by name: localhost, a *.localhost name, 127.0.0.1 or [::1]?
bool is_local_host_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return false;
  std::string_view host = url.substr(scheme_end + 3);
  host = host.substr(0, host.find_first_of("/?#"));
  if (host.starts_with("[")) return host.starts_with("[::1]");
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1";
}

// A Set-Cookie the app sent, fit for the browser: none for samokoder_* names, and without Domain so it
// stays on the preview's own host.
std::optional<std::string> filter_set_cookie(std::string_view value) {
  const std::string_view name = http::trim_ows(value.substr(0, value.find('=')));
  if (name.starts_with("samokoder_") || name.starts_with("__Host-samokoder") ||
      name.starts_with("__Secure-samokoder")) {
    return std::nullopt;
  }
  std::string out;
  std::string_view rest = value;
  bool first = true;
  while (!rest.empty() || first) {
    const auto semi = rest.find(';');
    const std::string_view part = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    std::string lower(http::trim_ows(part));
    for (auto& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!first && lower.starts_with("domain")) {
      first = false;
      continue;
    }
    if (!out.empty()) out += ";";
    out += part;
    first = false;
    if (semi == std::string_view::npos) break;
  }
  return out;
}

// Headers that describe one connection, not the message (RFC 9110 7.6.1), plus what the Connection
// header itself lists.
template <bool isRequest, typename Fields>
void remove_hop_by_hop(bhttp::header<isRequest, Fields>& message, bool keep_upgrade) {
  std::vector<std::string> listed;
  for (const std::string_view value : values_of(message, bhttp::field::connection)) {
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string token(http::trim_ows(rest.substr(0, comma)));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      for (auto& c : token)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!token.empty() && token != "close" && token != "keep-alive" &&
          !(keep_upgrade && token == "upgrade")) {
        listed.push_back(token);
      }
    }
  }
  for (const auto& name : listed)
    message.erase(name);
  message.erase(bhttp::field::keep_alive);
  message.erase(bhttp::field::proxy_connection);
  message.erase(bhttp::field::te);
  message.erase(bhttp::field::trailer);
  if (!keep_upgrade) {
    message.erase(bhttp::field::upgrade);
    message.erase(bhttp::field::connection);
  }
}

std::string_view content_type_for(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kTypes = {{
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".wasm", "application/wasm"},
      {".xml", "application/xml"},
      {".webmanifest", "application/manifest+json"},
      {".pdf", "application/pdf"},
  }};
  const auto dot = path.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(path.substr(dot));
  for (auto& c : ext)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [suffix, type] : kTypes) {
    if (ext == suffix) return type;
  }
  return "application/octet-stream";
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// A page of the proxy's own (not the app's), never cached.
Response own_page(const Request& request, bhttp::status status, std::string_view title,
                  std::string_view detail, bool reload) {
  Response response(status, 11);
  response.set(bhttp::field::content_type, "text/html; charset=utf-8");
  response.set(bhttp::field::cache_control, "no-store");
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  if (reload) response.set(bhttp::field::retry_after, "1");
  std::string body = "<!doctype html><meta charset=utf-8>";
  if (reload) body += "<meta http-equiv=refresh content=1>";
  body += "<title>" + html_escape(title) + "</title><style>body{font:16px system-ui;margin:3em}</style><h1>" +
          html_escape(title) + "</h1><p>" + html_escape(detail) + "</p>";
  response.body() = request.method() == bhttp::verb::head ? std::string() : std::move(body);
  response.keep_alive(request.keep_alive());
  response.prepare_payload();
  return response;
}

// "/a/b?x" -> "a/b" percent-decoded; nullopt for a malformed escape.
std::optional<std::string> decoded_path(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  while (path.starts_with("/"))
    path.remove_prefix(1);
  std::string out;
  if (!http::decode_path_segment(path, out)) return std::nullopt;
  return out;
}

}  // namespace

struct PreviewProxy::Impl {
  explicit Impl(Dependencies d)
      : settings(*d.settings),
        manager(*d.manager),
        grant_key(std::move(d.grant_key)),
        clock(*d.clock),
        any_port(d.any_port),
        requests(d.metrics->counter("samokoder_preview_proxy_requests_total",
                                    "Requests the preview proxy answered")),
        upgrades(d.metrics->counter("samokoder_preview_proxy_websockets_total",
                                    "WebSocket upgrades the preview proxy tunnelled")),
        refused(d.metrics->counter("samokoder_preview_proxy_refused_total",
                                   "Preview requests refused for want of a valid preview cookie")),
        upstream_errors(d.metrics->counter("samokoder_preview_proxy_upstream_errors_total",
                                           "Preview requests whose app could not be reached or broke off")) {}

  const config::PreviewsConfig& settings;
  PreviewManager& manager;
  const std::string grant_key;
  const core::Clock& clock;
  const bool any_port;
  metrics::Counter& requests;
  metrics::Counter& upgrades;
  metrics::Counter& refused;
  metrics::Counter& upstream_errors;

  // One single-threaded loop per proxy thread, as the API server does: a connection lives on one loop,
  // so its steps never hop threads (a strand on a shared loop made each request wake two threads).
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::optional<tcp::acceptor> acceptor;  // on loops[0]
  std::size_t next_loop = 0;              // only touched by the accept loop
  std::vector<std::thread> threads;
  std::atomic<std::uint16_t> port{0};
  std::atomic<std::size_t> connections{0};
  bool https = false;
  // Browsers treat https and localhost origins as secure, so a Secure cookie works there, and only a
  // Secure cookie may be SameSite=None, which the console's frame of the preview needs.
  bool secure_context = false;

  // One client connection's upstream, kept alive between its requests.
  struct Upstream {
    std::optional<beast::tcp_stream> tcp;
    std::optional<UnixStream> local;
    beast::flat_buffer buffer;
    // The relay's body buffer, made once per client connection (not per request) and never zeroed.
    std::unique_ptr<char[]> chunk;
    std::uint16_t port = 0;
    std::string socket_path;

    bool matches(const sdk::PreviewEndpoint& endpoint) const {
      if (endpoint.port != 0) return tcp && port == endpoint.port;
      return local && socket_path == endpoint.socket_path;
    }
    void reset() {
      tcp.reset();
      local.reset();
      buffer.clear();
      port = 0;
      socket_path.clear();
    }
  };

  awaitable<void> accept_loop() {
    for (;;) {
      auto& loop = *loops[next_loop++ % loops.size()];
      auto [ec, socket] = co_await acceptor->async_accept(loop.get_executor(), kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        // Out of descriptors or memory: let connections end before accepting again, not spin.
        asio::steady_timer backoff(acceptor->get_executor(), std::chrono::milliseconds(50));
        co_await backoff.async_wait(kTuple);
        continue;
      }
      if (connections.load() >= kMaxConnections) {
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
      connections.fetch_add(1);
      asio::co_spawn(socket.get_executor(), serve(std::move(socket)),
                     [this](const std::exception_ptr&) { connections.fetch_sub(1); });
    }
  }

  // What to do with a request that parsed: a ready answer, or where to forward it. `starting`: the
  // answer says the preview is starting, and the request may rather wait for it.
  struct Admission {
    std::optional<Response> answer;
    sdk::PreviewEndpoint endpoint;
    std::string workspace;
    bool starting = false;

    static Admission refuse(Response response, bool starting = false) {
      Admission out;
      out.answer = std::move(response);
      out.starting = starting;
      return out;
    }
    static Admission forward(sdk::PreviewEndpoint endpoint, std::string workspace) {
      Admission out;
      out.endpoint = std::move(endpoint);
      out.workspace = std::move(workspace);
      return out;
    }
  };

  // The last grant cookie a connection proved, so its next requests skip the HMAC until it expires.
  struct ProvenGrant {
    std::string cookie;
    std::string project;
    VerifiedGrant claims;
  };

  Admission admit(Request& request, const std::string& peer, ProvenGrant& proven) {
    const std::string_view host(request[bhttp::field::host].data(), request[bhttp::field::host].size());
    const auto project = project_of_host(host);
    if (!project) {
      return Admission::refuse(
          own_page(request, bhttp::status::not_found, "No such preview",
                   "Previews are reached at p-<project id>.<domain>; open one from the console.", false));
    }
    const std::string_view target(request.target().data(), request.target().size());
    const auto now = clock.now();
    if (target.starts_with(kGrantPath) &&
        (target.size() == kGrantPath.size() || target[kGrantPath.size()] == '?')) {
      return Admission::refuse(grant_exchange(request, *project, target, now));
    }
    const Cookies cookies = split_cookies(request);
    std::optional<std::string> user;
    if (cookies.grant && *cookies.grant == proven.cookie && *project == proven.project &&
        now < proven.claims.expires) {
      user = proven.claims.user_id;
    } else if (cookies.grant) {
      if (auto claims = verify_grant(grant_key, *cookies.grant, *project, now)) {
        user = claims->user_id;
        proven = {*cookies.grant, *project, std::move(*claims)};
      }
    }
    if (!user) {
      refused.add();
      return Admission::refuse(
          own_page(request, bhttp::status::unauthorized, "Open this preview from the console",
                   "This preview is private to its owner: open it through the Samokoder console or the "
                   "url the API gives (GET /api/v1/projects/{id}/preview).",
                   false));
    }
    const auto route = manager.route(*project);
    if (!route || route->owner_id != *user) {
      return Admission::refuse(
          own_page(request, bhttp::status::not_found, "No preview running",
                   "This project has no preview running on this server; start one from the console.", false));
    }
    if (!route->running) {
      const bool starting = route->state == "starting";
      return Admission::refuse(own_page(request, bhttp::status::service_unavailable,
                                        starting ? "The preview is starting" : "The preview is not running",
                                        route->detail.empty() ? route->state : route->detail, starting),
                               starting);
    }
    // What the app may see: no credential of ours, no connection-level headers of the client's.
    request.erase(bhttp::field::authorization);
    request.erase(bhttp::field::proxy_authorization);
    request.erase(bhttp::field::cookie);
    if (!cookies.forwarded.empty()) request.set(bhttp::field::cookie, cookies.forwarded);
    const bool upgrade = beast::websocket::is_upgrade(request);
    remove_hop_by_hop(request, upgrade);
    request.set("X-Forwarded-For", peer);
    request.set("X-Forwarded-Host", host);
    request.set("X-Forwarded-Proto", https ? "https" : "http");
    // The body is read whole before it is forwarded (no interim 100 to relay), and sent with a length.
    request.erase(bhttp::field::expect);
    request.erase(bhttp::field::transfer_encoding);
    return Admission::forward(route->endpoint, route->workspace);
  }

  Response grant_exchange(const Request& request, const std::string& project, std::string_view target,
                          Timestamp now) {
    const std::string_view query =
        target.size() > kGrantPath.size() ? target.substr(kGrantPath.size() + 1) : "";
    const auto grant = http::find_query_param(query, "grant");
    std::string next = http::find_query_param(query, "next").value_or("/");
    // Only a path on this host: never "//elsewhere", a scheme, or a control, space or backslash a
    // browser would drop or turn into a slash ("/\t/evil" becomes "//evil").
    const bool plain = std::all_of(next.begin(), next.end(), [](char c) {
      const auto byte = static_cast<unsigned char>(c);
      return byte > 0x20 && byte < 0x7f && c != '\\';
    });
    if (!plain || !next.starts_with("/") || next.starts_with("//")) next = "/";
    if (!grant || !verify_grant(grant_key, *grant, project, now).has_value()) {
      refused.add();
      return own_page(request, bhttp::status::unauthorized, "This preview link has expired",
                      "Open the preview again from the console to get a fresh link.", false);
    }
    Response response(bhttp::status::see_other, 11);
    std::string cookie = std::string(kPreviewCookie) + "=" + *grant +
                         "; Path=/; HttpOnly; Max-Age=" + std::to_string(settings.grant_ttl_seconds);
    // The console shows the preview in a frame, a cross-site context in which only a SameSite=None
    // cookie is sent. Partitioned (CHIPS) keeps it to frames under the top-level site that opened it
    // (and to the preview's own tab), so another site framing or posting to the preview does not
    // carry it. Where a Secure cookie cannot be set (plain http on a non-local host), Lax keeps the
    // preview working in a tab of its own.
    cookie += secure_context ? "; SameSite=None; Secure; Partitioned" : "; SameSite=Lax";
    response.set(bhttp::field::set_cookie, cookie);
    response.set(bhttp::field::location, next);
    response.set(bhttp::field::cache_control, "no-store");
    response.set("Referrer-Policy", "no-referrer");
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    return response;
  }

  // A file of the directory endpoint. The directory is named relative to the project's workspace and
  // every component of it is walked again without following links on each request, so an app that
  // swapped `dist/` for a symlink (while it still ran) cannot make the proxy serve a file outside.
  Response static_file(const Request& request, const std::string& workspace, const std::string& directory) {
    if (request.method() != bhttp::verb::get && request.method() != bhttp::verb::head) {
      Response response = own_page(request, bhttp::status::method_not_allowed, "Method not allowed",
                                   "A static preview answers GET and HEAD only.", false);
      response.set(bhttp::field::allow, "GET, HEAD");
      return response;
    }
    const std::string_view target(request.target().data(), request.target().size());
    auto path = decoded_path(target);
    if (!path)
      return own_page(request, bhttp::status::bad_request, "Bad path", "The path is malformed.", false);
    // A path that names nothing a workspace may hold ("..", NUL, ...) is not found, never routed to the
    // index.
    if (!path->empty() &&
        !security::normalize_relative_path(path->ends_with("/") ? path->substr(0, path->size() - 1) : *path)
             .ok()) {
      return own_page(request, bhttp::status::not_found, "Not found", "No such file in this preview.", false);
    }
    const std::filesystem::path inside = std::filesystem::path(directory).lexically_relative(workspace);
    std::string prefix;
    if (inside != ".") {
      auto normalized = security::normalize_relative_path(inside.generic_string());
      if (inside.empty() || !normalized.ok()) {
        return own_page(request, bhttp::status::not_found, "Not found", "No such file in this preview.",
                        false);
      }
      prefix = *normalized + "/";
    }
    std::vector<std::string> candidates;
    if (path->empty() || path->ends_with("/")) {
      candidates.push_back(*path + "index.html");
    } else {
      candidates.push_back(*path);
      candidates.push_back(*path + "/index.html");
      // Client-side routes ("/todos/3") of a single-page app: the app's own index.html.
      const auto slash = path->rfind('/');
      if (path->find('.', slash == std::string::npos ? 0 : slash) == std::string::npos) {
        candidates.emplace_back("index.html");
      }
    }
    for (const auto& candidate : candidates) {
      auto normalized = security::normalize_relative_path(prefix + candidate);
      if (!normalized.ok()) continue;
      auto content = security::read_workspace_file(workspace, *normalized, kMaxStaticFile);
      if (!content.ok()) continue;
      Response response(bhttp::status::ok, 11);
      response.set(bhttp::field::content_type, content_type_for(*normalized));
      response.set(bhttp::field::cache_control, "no-cache");
      response.set("X-Content-Type-Options", "nosniff");
      response.body() = request.method() == bhttp::verb::head ? std::string() : std::move(content).value();
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      return response;
    }
    return own_page(request, bhttp::status::not_found, "Not found", "No such file in this preview.", false);
  }

  // Connects `upstream` to the endpoint unless it already is.
  awaitable<beast::error_code> connect(Upstream& upstream, const sdk::PreviewEndpoint& endpoint) {
    if (upstream.matches(endpoint)) co_return beast::error_code{};
    upstream.reset();
    auto executor = co_await asio::this_coro::executor;
    if (endpoint.port != 0) {
      upstream.tcp.emplace(executor);
      upstream.tcp->expires_after(kConnectTimeout);
      auto [ec] = co_await upstream.tcp->async_connect(
          tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), endpoint.port), kTuple);
      if (ec) {
        upstream.reset();
        co_return ec;
      }
      upstream.tcp->socket().set_option(tcp::no_delay(true));
      upstream.port = endpoint.port;
    } else {
      // The socket's directory is writable from inside the sandbox, so the app could swap the socket for
      // a symlink to any socket of the host. Pin the inode without following links, check that it is a
      // socket, and connect through the descriptor's /proc name, so no link is ever followed.
      const int pinned = ::open(endpoint.socket_path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      struct stat info {};
      if (pinned < 0 || ::fstat(pinned, &info) != 0 || !S_ISSOCK(info.st_mode)) {
        if (pinned >= 0) ::close(pinned);
        co_return beast::error_code(asio::error::connection_refused);
      }
      upstream.local.emplace(executor);
      upstream.local->expires_after(kConnectTimeout);
      auto [ec] = co_await upstream.local->async_connect(
          asio::local::stream_protocol::endpoint("/proc/self/fd/" + std::to_string(pinned)), kTuple);
      ::close(pinned);
      if (ec) {
        upstream.reset();
        co_return ec;
      }
      upstream.socket_path = endpoint.socket_path;
    }
    co_return beast::error_code{};
  }

  enum class Relay { kKeepAlive, kClose, kUpstreamFailed, kTimedOut };

  // Forwards one request and streams the answer back. kUpstreamFailed means nothing was sent to the
  // client yet (the caller may retry on a fresh connection or answer 502); kTimedOut that the app took
  // longer than previews.upstream_timeout_ms to answer (504, never retried: it may be working on it).
  // `upstream_reusable` says afterwards whether the app's connection may carry the next request.
  template <typename Stream>
  awaitable<Relay> relay(beast::tcp_stream& client, Stream& up, beast::flat_buffer& up_buffer,
                         std::unique_ptr<char[]>& chunk, Request& request, bool client_keep_alive,
                         bool& upstream_reusable) {
    upstream_reusable = false;
    const unsigned client_version = request.version();
    request.version(11);
    request.keep_alive(true);
    request.prepare_payload();
    up.expires_after(std::chrono::milliseconds(settings.upstream_timeout_ms));
    {
      auto [ec, n] = co_await bhttp::async_write(up, request, kTuple);
      if (ec) co_return Relay::kUpstreamFailed;
    }
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    parser.header_limit(kHeaderLimit);
    if (request.method() == bhttp::verb::head) parser.skip(true);
    {
      auto [ec, n] = co_await bhttp::async_read_header(up, up_buffer, parser, kTuple);
      if (ec == beast::error::timeout) co_return Relay::kTimedOut;
      if (ec) co_return Relay::kUpstreamFailed;
    }
    auto& response = parser.get();
    remove_hop_by_hop(response, false);
    std::vector<std::string> cookies;
    for (const std::string_view value : values_of(response, bhttp::field::set_cookie)) {
      if (auto kept = filter_set_cookie(value)) {
        cookies.push_back(std::move(*kept));
      }
    }
    response.erase(bhttp::field::set_cookie);
    for (const auto& cookie : cookies)
      response.insert(bhttp::field::set_cookie, cookie);
    const bool has_body = !parser.skip() && response.result_int() >= 200 && response.result_int() != 204 &&
                          response.result_int() != 304;
    // A body whose end only the app's close marks is re-framed as chunked, so the client's connection
    // stays open, unless the client speaks HTTP/1.0: then the client's connection ends it too.
    bool keep_client = client_keep_alive;
    const bool close_delimited = has_body && !response.has_content_length() && !response.chunked();
    response.version(11);
    if (close_delimited) {
      if (client_version >= 11) {
        response.chunked(true);
      } else {
        keep_client = false;
      }
    }
    response.keep_alive(keep_client);
    bhttp::serializer<false, bhttp::buffer_body> serializer(response);
    client.expires_after(kKeepAliveTimeout);
    if (!has_body) {
      // HEAD, 204, 304: the head is all there is (a chunked one must not get a last chunk).
      auto [ec, n] = co_await bhttp::async_write_header(client, serializer, kTuple);
      if (ec) co_return Relay::kClose;
      upstream_reusable = parser.is_done() && parser.keep_alive();
      co_return keep_client ? Relay::kKeepAlive : Relay::kClose;
    }
    // The head goes out with the first body bytes when they came with it (a small answer: one write, one
    // segment), alone first only when the body has yet to arrive (a stream may stay silent for long).
    if (!parser.is_done() && up_buffer.size() == 0) {
      auto [ec, n] = co_await bhttp::async_write_header(client, serializer, kTuple);
      if (ec) co_return Relay::kClose;
    }
    if (!chunk) chunk = std::make_unique_for_overwrite<char[]>(kRelayChunk);
    do {
      if (!parser.is_done()) {
        response.body().data = chunk.get();
        response.body().size = kRelayChunk;
        // A streamed body may be silent for long (server-sent events): no deadline while it is open.
        up.expires_never();
        auto [ec, n] = co_await bhttp::async_read_some(up, up_buffer, parser, kTuple);
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) {
          upstream_errors.add();
          co_return Relay::kClose;  // the head is out: all we can do is cut the client off
        }
        response.body().size = kRelayChunk - response.body().size;
        // An empty buffer must be null: a chunked serializer would frame it as a (terminating) empty chunk.
        response.body().data = response.body().size == 0 ? nullptr : chunk.get();
        response.body().more = !parser.is_done();
      } else {
        response.body().data = nullptr;
        response.body().size = 0;
        response.body().more = false;
      }
      client.expires_after(kKeepAliveTimeout);
      auto [ec, n] = co_await bhttp::async_write(client, serializer, kTuple);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) co_return Relay::kClose;
    } while (!parser.is_done() || !serializer.is_done());
    upstream_reusable = parser.keep_alive();
    co_return keep_client ? Relay::kKeepAlive : Relay::kClose;
  }

  // Copies bytes one way until either side ends.
  template <typename From, typename To>
  static awaitable<void> pump(From& from, To& to) {
    std::vector<char> bytes(16 * 1024);
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(bytes), kTuple);
      if (ec || n == 0) co_return;
      auto [wec, written] = co_await asio::async_write(to, asio::buffer(bytes.data(), n), kTuple);
      if (wec) co_return;
    }
  }

  // A WebSocket upgrade: forward the handshake, relay the app's answer, and once it is 101 tunnel bytes
  // both ways until either side closes.
  template <typename Stream>
  awaitable<void> tunnel(beast::tcp_stream& client, beast::flat_buffer& client_buffer, Stream& up,
                         beast::flat_buffer& up_buffer, Request& request) {
    upgrades.add();
    up.expires_after(std::chrono::milliseconds(settings.upstream_timeout_ms));
    {
      auto [ec, n] = co_await bhttp::async_write(up, request, kTuple);
      if (ec) co_return;
    }
    bhttp::response_parser<bhttp::empty_body> parser;
    parser.skip(true);
    {
      auto [ec, n] = co_await bhttp::async_read_header(up, up_buffer, parser, kTuple);
      if (ec) co_return;
    }
    auto& response = parser.get();
    const bool switched = response.result() == bhttp::status::switching_protocols;
    remove_hop_by_hop(response, switched);
    response.version(11);  // an HTTP/1.0 server's 101 (Python's http.server) is still a WebSocket's
    response.erase(bhttp::field::set_cookie);
    client.expires_after(kKeepAliveTimeout);
    {
      bhttp::serializer<false, bhttp::empty_body> head(response);
      auto [ec, n] = co_await bhttp::async_write_header(client, head, kTuple);
      if (ec || !switched) co_return;
    }
    client.expires_never();
    up.expires_never();
    // Bytes that arrived behind the heads belong to the tunnel.
    if (client_buffer.size() != 0) {
      auto [ec, n] = co_await asio::async_write(up.socket(), client_buffer.data(), kTuple);
      if (ec) co_return;
      client_buffer.consume(n);
    }
    if (up_buffer.size() != 0) {
      auto [ec, n] = co_await asio::async_write(client.socket(), up_buffer.data(), kTuple);
      if (ec) co_return;
      up_buffer.consume(n);
    }
    co_await (pump(client.socket(), up.socket()) || pump(up.socket(), client.socket()));
  }

  // One of the proxy's pages as the connection's last answer.
  static awaitable<void> last_page(beast::tcp_stream& client, bhttp::status status, std::string_view title,
                                   std::string_view detail) {
    Request stub;
    stub.version(11);
    Response page = own_page(stub, status, title, detail, false);
    page.keep_alive(false);
    co_await bhttp::async_write(client, page, kTuple);
  }

  awaitable<void> serve(tcp::socket socket) {
    std::string peer;
    {
      beast::error_code ec;
      const auto remote = socket.remote_endpoint(ec);
      if (!ec) peer = remote.address().to_string();
    }
    socket.set_option(tcp::no_delay(true));
    beast::tcp_stream client(std::move(socket));
    beast::flat_buffer buffer;
    Upstream upstream;
    ProvenGrant proven;
    asio::steady_timer pause(client.get_executor());
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(settings.max_body_bytes);
      // The head first: nobody without the preview's cookie gets to send a body.
      client.expires_after(buffer.size() == 0 ? kKeepAliveTimeout : kHeaderTimeout);
      {
        auto [ec, n] = co_await bhttp::async_read_header(client, buffer, parser, kTuple);
        if (ec) {
          if (ec == bhttp::error::header_limit) {
            co_await last_page(client, bhttp::status::request_header_fields_too_large, "Too large",
                               "The request's head is larger than this server accepts.");
          }
          break;
        }
      }
      Request& request = parser.get();
      // Read before admit() strips the client's Connection header.
      const bool client_keep_alive = request.keep_alive();
      const bool client_expects_continue = beast::iequals(request[bhttp::field::expect], "100-continue");
      requests.add();
      Admission admission = admit(request, peer, proven);
      // A request for a preview that is still starting waits for it (no thread is held), so the first
      // page a browser opens shows the app rather than a "starting" page.
      for (auto waited = std::chrono::milliseconds(0); admission.starting && waited < kStartWait;
           waited += kStartPoll) {
        pause.expires_after(kStartPoll);
        co_await pause.async_wait(kTuple);
        admission = admit(request, peer, proven);
      }
      if (!admission.answer && !parser.is_done()) {
        if (client_expects_continue) {
          bhttp::response<bhttp::empty_body> go_on(bhttp::status::continue_, 11);
          auto [wec, written] = co_await bhttp::async_write(client, go_on, kTuple);
          if (wec) break;
        }
        client.expires_after(kBodyTimeout);
        auto [ec, n] = co_await bhttp::async_read(client, buffer, parser, kTuple);
        if (ec) {
          if (ec == bhttp::error::body_limit) {
            co_await last_page(client, bhttp::status::payload_too_large, "Too large",
                               "The request is larger than this server accepts (previews.max_body_bytes).");
          }
          break;
        }
      }
      if (!admission.answer && !admission.endpoint.directory.empty()) {
        admission.answer = static_file(request, admission.workspace, admission.endpoint.directory);
      }
      if (admission.answer) {
        // A body nobody read is still on the connection: close it rather than parse it as a request.
        const bool keep = client_keep_alive && admission.answer->keep_alive() && parser.is_done();
        admission.answer->keep_alive(keep);
        auto [wec, written] = co_await bhttp::async_write(client, *admission.answer, kTuple);
        if (wec || !keep) break;
        continue;
      }
      const bool upgrade = beast::websocket::is_upgrade(request);
      // Only a request that may safely run twice goes again on a fresh connection.
      const auto method = request.method();
      const bool idempotent = method == bhttp::verb::get || method == bhttp::verb::head ||
                              method == bhttp::verb::options || method == bhttp::verb::put ||
                              method == bhttp::verb::delete_;
      Relay outcome = Relay::kUpstreamFailed;
      // A kept-alive upstream connection the app closed meanwhile fails at once: one retry, fresh.
      for (int attempt = 0; attempt < 2 && outcome == Relay::kUpstreamFailed; ++attempt) {
        const bool reused = upstream.matches(admission.endpoint);
        if (auto failed = co_await connect(upstream, admission.endpoint); failed) break;
        if (upgrade) {
          if (upstream.tcp) {
            co_await tunnel(client, buffer, *upstream.tcp, upstream.buffer, request);
          } else {
            co_await tunnel(client, buffer, *upstream.local, upstream.buffer, request);
          }
          co_return;
        }
        // A failed relay sent the client nothing and left the request as it was: it can go again.
        bool reusable = false;
        outcome = upstream.tcp ? co_await relay(client, *upstream.tcp, upstream.buffer, upstream.chunk,
                                                request, client_keep_alive, reusable)
                               : co_await relay(client, *upstream.local, upstream.buffer, upstream.chunk,
                                                request, client_keep_alive, reusable);
        if (!reusable) upstream.reset();
        if (!reused || !idempotent) break;
      }
      if (outcome == Relay::kTimedOut) {
        upstream_errors.add();
        co_await last_page(client, bhttp::status::gateway_timeout, "The preview did not answer in time",
                           "The app took longer than previews.upstream_timeout_ms to start its answer.");
        break;
      }
      if (outcome == Relay::kUpstreamFailed) {
        upstream_errors.add();
        co_await last_page(client, bhttp::status::bad_gateway, "The preview did not answer",
                           "The app did not answer the request; its log may say why.");
        break;
      }
      if (outcome == Relay::kClose) break;
    }
    beast::error_code ignored;
    client.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
};

PreviewProxy::PreviewProxy(Dependencies dependencies)
    : impl_(std::make_unique<Impl>(std::move(dependencies))) {
  impl_->https = impl_->settings.public_url.starts_with("https://");
  impl_->secure_context = impl_->https || is_local_host_url(impl_->settings.public_url);
}

PreviewProxy::~PreviewProxy() {
  stop();
}

sdk::Status PreviewProxy::start() {
  Impl& impl = *impl_;
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl.settings.listen.host, ec);
  if (ec) return sdk::Status::invalid_argument("previews.listen: bad address " + impl.settings.listen.host);
  const tcp::endpoint endpoint(address, impl.any_port ? 0 : impl.settings.listen.port);
  for (std::uint32_t i = 0; i < impl.settings.proxy_threads; ++i) {
    impl.loops.push_back(std::make_unique<asio::io_context>(1));
    impl.keep_running.push_back(asio::make_work_guard(*impl.loops.back()));
  }
  impl.acceptor.emplace(*impl.loops.front());
  impl.acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor->bind(endpoint, ec);
  if (!ec) impl.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    impl.acceptor.reset();
    return sdk::Status::unavailable("previews.listen: cannot listen on " + impl.settings.listen.to_string() +
                                    ": " + ec.message());
  }
  impl.port = impl.acceptor->local_endpoint().port();
  asio::co_spawn(*impl.loops.front(), impl.accept_loop(), asio::detached);
  for (auto& loop : impl.loops) {
    impl.threads.emplace_back([&loop] { loop->run(); });
  }
  core::logger("previews")
      ->info("previews: proxy listening on {}:{}", impl.settings.listen.host, impl.port.load());
  return {};
}

void PreviewProxy::stop() {
  Impl& impl = *impl_;
  if (impl.acceptor) {
    asio::post(*impl.loops.front(), [&impl] {
      beast::error_code ignored;
      impl.acceptor->close(ignored);
    });
  }
  impl.keep_running.clear();
  for (auto& loop : impl.loops)
    loop->stop();
  for (auto& thread : impl.threads)
    thread.join();
  impl.threads.clear();
  impl.acceptor.reset();
  // Connections still open are coroutine frames on their loops; destroying a loop destroys them.
  impl.loops.clear();
}

std::uint16_t PreviewProxy::port() const noexcept {
  return impl_->port.load();
}

}  // namespace samokoder::previews
