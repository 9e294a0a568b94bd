// PreviewProxy: the preview origin. A listener of its own (previews.listen), never the API's, serving
// each project's preview at its own host name p-<project id>.<domain> (previews.public_url), so a
// generated app's scripts run on an origin that holds none of the console's cookies or tokens and
// cannot read another preview's.
//
// A request reaches the app only with the preview cookie of that host: the browser gets it from
// /__samokoder/grant?grant=<grant>&next=<path> (a grant the API minted for the owner, grant.hpp), which
// sets it (HttpOnly) and redirects to `next`. The proxy then forwards to the endpoint the runner gave
// (a loopback port or a Unix socket), after removing Authorization, Proxy-Authorization and every
// samokoder_* cookie and the hop-by-hop headers, with X-Forwarded-For/-Host/-Proto added. Responses are
// relayed as they arrive (chunked, server-sent events and long downloads stream; a close-delimited
// body is re-framed as chunked so the browser's connection stays open), minus hop-by-hop headers,
// samokoder_* cookies and the Domain of every other cookie (an app cannot plant a cookie on the API's
// host). WebSocket upgrades (dev servers' hot reload) become a byte tunnel once the app answers 101.
// A runner that serves files (PreviewEndpoint::directory) is served here directly, confined to that
// directory (symlinks refused), with a fallback to index.html for client-side routes.
//
// A preview still starting after that gets 503 with a page that reloads itself; an unknown or stopped
// preview is 404/503 with the reason; a request without a valid cookie is 401.
//
// A request for a preview that is still starting waits for it (up to 30 s, holding no thread), so the
// link a user opens right after starting shows the app.
//
// Threads: previews.proxy_threads each run a loop of their own; a connection is a coroutine on one loop
// and keeps its upstream connection alive between requests. Nothing on them blocks: the grant check is
// one HMAC (once per connection while its cookie stays the same), PreviewManager::route() one short
// lock, and a static file is read from the page cache.
//
// Ownership: the Application owns the proxy and stops it before the PreviewManager it uses.
// Thread-safety: start() and stop() from the controlling thread; port() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <samokoder/sdk/status.hpp>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "previews/manager.hpp"

namespace samokoder::previews {

// The path on every preview host that turns a grant into the preview cookie.
inline constexpr std::string_view kGrantPath = "/__samokoder/grant";
// The cookie that carries the grant on a preview host.
inline constexpr std::string_view kPreviewCookie = "samokoder_preview";

class PreviewProxy {
 public:
  struct Dependencies {
    const config::PreviewsConfig* settings = nullptr;
    PreviewManager* manager = nullptr;
    std::string grant_key;
    const core::Clock* clock = nullptr;
    metrics::Registry* metrics = nullptr;
    // A server on a free port (tests, embedded use) puts its preview origin on a free port too, so two
    // such servers on one machine never fight over previews.listen.
    bool any_port = false;
  };

  explicit PreviewProxy(Dependencies dependencies);
  ~PreviewProxy();  // stop()
  PreviewProxy(const PreviewProxy&) = delete;
  PreviewProxy& operator=(const PreviewProxy&) = delete;

  // Binds previews.listen and starts serving; kUnavailable when the address cannot be bound.
  sdk::Status start();
  // Closes the listener and every connection (streams and tunnels included) and joins the threads.
  void stop();
  std::uint16_t port() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace samokoder::previews
