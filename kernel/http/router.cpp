#include "http/router.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace samokoder::http {

namespace bhttp = boost::beast::http;

static_assert(static_cast<unsigned>(bhttp::verb::unlink) < 64, "method bit sets need one bit per verb");

struct Router::Node {
  // Sorted by segment text, for binary search.
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> literals;
  std::unique_ptr<Node> param;
  std::unique_ptr<Node> tail;
  std::vector<const Route*> routes;  // routes ending here, at most one per method
  std::uint64_t methods = 0;

  const Route* route_for(bhttp::verb method) const noexcept {
    for (const Route* r : routes) {
      if (r->method == method) return r;
    }
    return nullptr;
  }
};

struct Router::MatchState {
  bhttp::verb method;
  const Request& request;
  boost::container::small_vector<Request::Span, 8> captures;
  const Route* found = nullptr;
  const Node* first_path_node = nullptr;
  std::uint64_t allowed = 0;
};

namespace {

bool is_identifier(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

[[noreturn]] void bad_pattern(std::string_view pattern, std::string_view why) {
  throw std::invalid_argument("route pattern '" + std::string(pattern) + "': " + std::string(why));
}

}  // namespace

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

Router& Router::add(bhttp::verb method, std::string pattern, Handler handler, RouteOptions options) {
  if (!handler) bad_pattern(pattern, "the handler is empty");
  if (method == bhttp::verb::unknown) bad_pattern(pattern, "the method is unknown");
  if (pattern.empty() || pattern.front() != '/') bad_pattern(pattern, "must start with '/'");

  Node* node = root_.get();
  std::vector<std::string> param_names;
  if (pattern != "/") {
    std::size_t pos = 1;
    for (;;) {
      const std::size_t slash = pattern.find('/', pos);
      const std::string_view segment =
          std::string_view(pattern).substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      const bool last = slash == std::string::npos;
      if (segment.empty()) bad_pattern(pattern, "empty segment (a trailing or doubled '/')");
      if (segment.front() == '{') {
        if (segment.back() != '}') bad_pattern(pattern, "a parameter must be a whole segment: {name}");
        std::string_view name = segment.substr(1, segment.size() - 2);
        const bool tail = name.ends_with("...");
        if (tail) name.remove_suffix(3);
        if (!is_identifier(name))
          bad_pattern(pattern, "parameter names are identifiers: [A-Za-z_][A-Za-z0-9_]*");
        if (std::find(param_names.begin(), param_names.end(), name) != param_names.end()) {
          bad_pattern(pattern, "duplicate parameter name '" + std::string(name) + "'");
        }
        if (tail && !last) bad_pattern(pattern, "a {name...} tail must be the last segment");
        param_names.emplace_back(name);
        std::unique_ptr<Node>& child = tail ? node->tail : node->param;
        if (!child) child = std::make_unique<Node>();
        node = child.get();
      } else {
        if (segment.find_first_of("{}%?#") != std::string_view::npos) {
          bad_pattern(pattern, "literal segments may not contain '{', '}', '%', '?' or '#'");
        }
        auto it = std::lower_bound(node->literals.begin(), node->literals.end(), segment,
                                   [](const auto& entry, std::string_view s) { return entry.first < s; });
        if (it == node->literals.end() || it->first != segment) {
          it = node->literals.emplace(it, std::string(segment), std::make_unique<Node>());
        }
        node = it->second.get();
      }
      if (last) break;
      pos = slash + 1;
    }
  }
  if (node->route_for(method) != nullptr) {
    bad_pattern(pattern, "a " + std::string(bhttp::to_string(method)) +
                             " route with this path shape exists: '" + node->route_for(method)->pattern +
                             "'");
  }

  std::size_t pattern_id = 0;
  const auto existing = std::find(patterns_.begin(), patterns_.end(), pattern);
  if (existing == patterns_.end()) {
    pattern_id = patterns_.size();
    patterns_.push_back(pattern);
  } else {
    pattern_id = static_cast<std::size_t>(existing - patterns_.begin());
  }
  Route& route = routes_.emplace_back(Route{method, std::move(pattern), std::move(handler),
                                            std::move(options), pattern_id, std::move(param_names)});
  node->routes.push_back(&route);
  node->methods |= method_bit(method);
  if (method == bhttp::verb::get) node->methods |= method_bit(bhttp::verb::head);
  return *this;
}

bool Router::visit_terminal(const Node& node, MatchState& state) {
  if (node.routes.empty()) return false;
  if (state.first_path_node == nullptr) state.first_path_node = &node;
  state.allowed |= node.methods;
  const Route* route = node.route_for(state.method);
  if (route == nullptr && state.method == bhttp::verb::head) route = node.route_for(bhttp::verb::get);
  if (route == nullptr) return false;
  state.found = route;
  return true;
}

bool Router::visit(const Node& node, std::size_t index, MatchState& state) {
  const auto& segments = state.request.segments_;
  if (index == segments.size()) return visit_terminal(node, state);
  const Request::Span segment = segments[index];
  const std::string_view text = state.request.span(segment);

  const auto it = std::lower_bound(node.literals.begin(), node.literals.end(), text,
                                   [](const auto& entry, std::string_view s) { return entry.first < s; });
  if (it != node.literals.end() && it->first == text && visit(*it->second, index + 1, state)) return true;

  if (node.param && segment.size > 0) {
    state.captures.push_back(segment);
    if (visit(*node.param, index + 1, state)) return true;
    state.captures.pop_back();
  }
  if (node.tail) {
    const auto rest = static_cast<std::uint32_t>(state.request.path_.size() - segment.offset);
    if (rest > 0) {
      state.captures.push_back({segment.offset, rest});
      if (visit_terminal(*node.tail, state)) return true;
      state.captures.pop_back();
    }
  }
  return false;
}

RouteMatch Router::match(bhttp::verb method, Request& request) const {
  MatchState state{method, request, {}, nullptr, nullptr, 0};
  RouteMatch result;
  request.params_.clear();
  if (visit(*root_, 0, state)) {
    const Route& route = *state.found;
    for (std::size_t i = 0; i < route.param_names.size() && i < state.captures.size(); ++i) {
      request.params_.push_back({route.param_names[i], state.captures[i]});
    }
    request.route_ = &route;
    request.route_pattern_ = route.pattern;
    result.outcome = RouteMatch::Outcome::kFound;
    result.route = &route;
    result.pattern = route.pattern;
    result.pattern_id = route.pattern_id;
  } else if (state.first_path_node != nullptr) {
    const Route& first = *state.first_path_node->routes.front();
    request.route_ = nullptr;
    request.route_pattern_ = first.pattern;
    result.outcome = RouteMatch::Outcome::kMethodNotAllowed;
    result.pattern = first.pattern;
    result.pattern_id = first.pattern_id;
  }
  result.allowed_methods = state.allowed;
  return result;
}

std::string Router::format_methods(std::uint64_t methods) {
  std::string out;
  for (unsigned v = 1; v <= static_cast<unsigned>(bhttp::verb::unlink); ++v) {
    if ((methods & (std::uint64_t{1} << v)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += bhttp::to_string(static_cast<bhttp::verb>(v));
  }
  return out;
}

}  // namespace samokoder::http
