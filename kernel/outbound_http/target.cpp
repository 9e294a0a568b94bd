#include "outbound_http/target.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include <samokoder/sdk/redact.hpp>

namespace samokoder::outbound_http {
namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0)
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0)
    text.remove_suffix(1);
  return text;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Splits "host[:port]" / "[v6][:port]" into host and port text.
bool split_host_port(std::string_view authority, std::string_view& host, std::string_view& port) {
  port = {};
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
    return true;
  }
  const std::size_t colon = authority.rfind(':');
  host = authority.substr(0, colon);
  if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  return true;
}

std::string percent_decode(std::string_view text) {
  return sdk::redact_detail::percent_decoded(text);
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : bytes) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(kAlphabet[(bits >> count) & 0x3f]);
    }
  }
  if (count > 0) out.push_back(kAlphabet[(bits << (6 - count)) & 0x3f]);
  while (out.size() % 4 != 0)
    out.push_back('=');
  return out;
}

// Parses an absolute URL; `userinfo` receives the part before '@' (the caller decides whether it is
// allowed).
sdk::Result<Url> parse(std::string_view text, std::string& userinfo) {
  text = trim(text);
  const std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return sdk::Status::invalid_argument("URL must start with http:// or https://");
  }
  const std::string scheme = lowercase(text.substr(0, scheme_end));
  Url url;
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return sdk::Status::invalid_argument("URL scheme must be http or https, found \"" +
                                         sdk::redact_credentials(scheme.substr(0, 16)) + "\"");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  const std::size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (const std::size_t hash = target.find('#'); hash != std::string_view::npos)
    target = target.substr(0, hash);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  std::string_view host;
  std::string_view port;
  if (!split_host_port(authority, host, port) || host.empty()) {
    return sdk::Status::invalid_argument(scheme + " URL has no valid host");
  }
  for (char c : host) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-' && c != '_' && c != ':') {
      return sdk::Status::invalid_argument(scheme + " URL has a character not allowed in a host name");
    }
  }
  url.host = lowercase(host);
  if (port.empty()) {
    url.port = url.tls ? 443 : 80;
  } else if (auto parsed = parse_port(port)) {
    url.port = *parsed;
  } else {
    return sdk::Status::invalid_argument(scheme + " URL has an invalid port");
  }
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return sdk::Status::invalid_argument(scheme + " URL has a space or control character in its path");
    }
  }
  if (target.empty() || target.front() == '?') url.target.push_back('/');
  url.target.append(target);
  return url;
}

}  // namespace

std::string Url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::origin() const {
  return (tls ? "https://" : "http://") + authority();
}

sdk::Result<Url> parse_url(std::string_view text) {
  std::string userinfo;
  auto url = parse(text, userinfo);
  if (url.ok() && !userinfo.empty()) {
    return sdk::Status::invalid_argument(
        "URL carries credentials; send them in an Authorization header marked secret instead");
  }
  return url;
}

ProxySettings ProxySettings::from_environment(const std::map<std::string, std::string>& environment,
                                              std::vector<std::string>& errors) {
  auto variable = [&](const char* lower, const char* upper) -> std::optional<std::string> {
    for (const char* name : {lower, upper}) {
      if (const auto it = environment.find(name); it != environment.end() && !trim(it->second).empty()) {
        return it->second;
      }
    }
    return std::nullopt;
  };
  auto proxy = [&](const char* lower, const char* upper) -> std::optional<Proxy> {
    const auto value = variable(lower, upper);
    if (!value) return std::nullopt;
    // curl reads a proxy without a scheme as http://.
    const std::string text = value->find("://") == std::string::npos ? "http://" + *value : *value;
    std::string userinfo;
    auto url = parse(text, userinfo);
    if (!url.ok() || url->tls) {
      errors.push_back(std::string(upper) + " is ignored: " +
                       (url.ok() ? "only http:// proxies are supported" : url.status().message()) + " (" +
                       sdk::redact_credentials(text) + ")");
      return std::nullopt;
    }
    Proxy out{std::move(url).value(), {}};
    if (!userinfo.empty()) {
      const std::size_t colon = userinfo.find(':');
      const std::string user = percent_decode(userinfo.substr(0, colon));
      const std::string password = colon == std::string::npos
                                       ? std::string()
                                       : percent_decode(std::string_view(userinfo).substr(colon + 1));
      out.authorization = "Basic " + base64(user + ":" + password);
    }
    return out;
  };
  ProxySettings settings;
  settings.http_ = proxy("http_proxy", "HTTP_PROXY");
  settings.https_ = proxy("https_proxy", "HTTPS_PROXY");
  if (const auto no_proxy = variable("no_proxy", "NO_PROXY")) {
    std::string_view rest = *no_proxy;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      std::string_view entry = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (entry.empty()) continue;
      std::string_view host = entry;
      std::string_view port;
      // "host:port" and "[v6]:port" name a port; a bare IPv6 address has several colons and none.
      if (entry.front() == '[' || std::count(entry.begin(), entry.end(), ':') == 1) {
        split_host_port(entry, host, port);
      }
      while (!host.empty() && (host.front() == '.' || host.front() == '*') && host != "*")
        host.remove_prefix(1);
      Exclusion exclusion{lowercase(host), parse_port(port)};
      if (!exclusion.host.empty()) settings.no_proxy_.push_back(std::move(exclusion));
    }
  }
  return settings;
}

std::map<std::string, std::string> ProxySettings::process_environment() {
  std::map<std::string, std::string> out;
  for (const char* name :
       {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"}) {
    if (const char* value = std::getenv(name)) out.emplace(name, value);  // NOLINT(concurrency-mt-unsafe)
  }
  return out;
}

bool ProxySettings::excluded(const Url& url) const noexcept {
  for (const Exclusion& e : no_proxy_) {
    if (e.port && *e.port != url.port) continue;
    if (e.host == "*" || e.host == url.host) return true;
    if (url.host.size() > e.host.size() && url.host.ends_with(e.host) &&
        url.host[url.host.size() - e.host.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

const Proxy* ProxySettings::proxy_for(const Url& url) const noexcept {
  const std::optional<Proxy>& proxy = url.tls ? https_ : http_;
  if (!proxy || excluded(url)) return nullptr;
  return &*proxy;
}

}  // namespace samokoder::outbound_http
