// Router: maps (method, path) to a route: its handler, dispatch mode, body limit and group.
//
// Patterns are absolute paths of "/"-separated segments, each one of
//   literal    "plugins"       matches that segment exactly (after percent-decoding the request's)
//   parameter  "{id}"          matches one non-empty segment
//   tail       "{path...}"     last segment only: matches the rest of the path, slashes included;
//                              never empty, so "/files/" does not match "/files/{path...}"
// Precedence at each segment: literal, then parameter, then tail, with backtracking, so a literal
// route wins over a parameter route and a dead end on a literal still finds a parameter route. Matching
// is by method too: GET /a/b can fall through to GET /a/{x} when /a/b only has POST. A trailing slash
// is a different path ("/plugins/" does not match "/plugins"). Parameter values are percent-decoded;
// an encoded "/" (%2F) stays inside its parameter. A tail value is decoded but not normalized: it may
// contain "..", and handlers serving files must confine it themselves.
//
// HEAD is served by a route's GET handler unless a HEAD route exists (the server drops the body), and
// the Allow of a GET route includes HEAD. OPTIONS is answered by the server (see server.hpp) unless an
// OPTIONS route exists.
//
// Ownership: the Router owns its routes; Route pointers and pattern strings stay valid for its lifetime.
// Thread-safety: build it on one thread, then share it as std::shared_ptr<const Router>; const methods
// are safe to call concurrently.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>

#include "http/request.hpp"
#include "http/response.hpp"

namespace samokoder::http {

// Where a handler runs. kInline: cheap, never blocks (healthz, metrics), on the I/O thread. kRequest:
// request work that may block briefly (storage, hashing), on the request pool. kPluginCall: long calls
// into plugins (agents, LLM providers, previews, plugin reloads), on the plugin pool, so a slow or stuck
// plugin cannot starve request work. Both pools are bounded: a full queue is answered 503 with
// Retry-After, a call past its pool's call_timeout_ms 504 (see http/work_pool.hpp).
enum class Dispatch { kInline, kRequest, kPluginCall };

struct RouteOptions {
  Dispatch dispatch = Dispatch::kRequest;
  // Overrides ServerConfig::max_body_bytes for this route (auth 1 KiB, file uploads 10 MiB).
  std::optional<std::size_t> max_body_bytes;
  // A free-form name for policy that applies to several routes (rate limits, auth); not used here.
  std::string group = "default";

  // Shorthands: g++ 12 -Wextra warns on designated initializers that leave members out.
  static RouteOptions inline_handler() {
    RouteOptions o;
    o.dispatch = Dispatch::kInline;
    return o;
  }
  static RouteOptions plugin_call() {
    RouteOptions o;
    o.dispatch = Dispatch::kPluginCall;
    return o;
  }
  static RouteOptions body_limit(std::size_t bytes) {
    RouteOptions o;
    o.max_body_bytes = bytes;
    return o;
  }
};

// Runs once per request. An exception becomes a 500 problem+json and an error log line.
using Handler = std::function<Response(Request&)>;

struct Route {
  boost::beast::http::verb method;
  std::string pattern;
  Handler handler;
  RouteOptions options;
  std::size_t pattern_id = 0;            // index into Router::patterns()
  std::vector<std::string> param_names;  // in path order
};

struct RouteMatch {
  enum class Outcome { kFound, kNotFound, kMethodNotAllowed };
  Outcome outcome = Outcome::kNotFound;
  const Route* route = nullptr;  // kFound only
  // Bit i set for verb i: the methods routes on the matched path accept (HEAD when GET). Zero when the
  // path matched nothing.
  std::uint64_t allowed_methods = 0;
  // The pattern of the route that matched, or of the first route on the path for kMethodNotAllowed.
  std::string_view pattern;
  std::size_t pattern_id = 0;
};

class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Throws std::invalid_argument for a malformed pattern, an empty handler, or a second route for the
  // same method on the same path shape ("/a/{x}" and "/a/{y}" are the same shape).
  Router& add(boost::beast::http::verb method, std::string pattern, Handler handler,
              RouteOptions options = {});

  // Every route in the order added (for the OpenAPI consistency check and metrics).
  const std::deque<Route>& routes() const noexcept { return routes_; }
  // Distinct pattern strings, indexed by Route::pattern_id.
  const std::vector<std::string>& patterns() const noexcept { return patterns_; }

  // Matches `method` and the request's decoded path segments; on kFound fills the request's path
  // parameters, route and route pattern; on kMethodNotAllowed sets the route pattern.
  RouteMatch match(boost::beast::http::verb method, Request& request) const;

  // "GET, HEAD, POST" for a method bit set, in verb order.
  static std::string format_methods(std::uint64_t methods);
  static constexpr std::uint64_t method_bit(boost::beast::http::verb v) noexcept {
    return std::uint64_t{1} << static_cast<unsigned>(v);
  }

 private:
  struct Node;
  struct MatchState;
  static bool visit(const Node& node, std::size_t index, MatchState& state);
  static bool visit_terminal(const Node& node, MatchState& state);

  std::unique_ptr<Node> root_;
  std::deque<Route> routes_;
  std::vector<std::string> patterns_;
};

}  // namespace samokoder::http
