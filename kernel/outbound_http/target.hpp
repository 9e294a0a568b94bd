// Where an outbound request goes: the parsed URL, and the proxy (if any) it goes through.
//
// parse_url accepts only absolute http:// and https:// URLs without userinfo (credentials belong in
// a header the caller can mark secret, never in a URL that ends up in messages). ProxySettings reads
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY the way curl does: lowercase names win over uppercase ones,
// NO_PROXY is a comma-separated list of host names (matching the host and its subdomains, with or
// without a leading dot), IP addresses, optional ":port" suffixes, or "*" for every host.
//
// Ownership: plain values. Thread-safety: immutable after construction; share by const reference.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/status.hpp>

namespace samokoder::outbound_http {

struct Url {
  bool tls = false;        // https
  std::string host;        // lowercase; an IPv6 literal without its brackets
  std::uint16_t port = 0;  // the default port when the URL names none
  std::string target;      // path and query, at least "/"
  // "host:port" (IPv6 in brackets): the Host header, the CONNECT target and the metrics label.
  std::string authority() const;
  // "https://host:port", the most of a URL a message or log line ever shows (paths and queries can
  // carry tokens).
  std::string origin() const;
};

// Fails with kInvalidArgument, naming what is wrong but quoting no more than the scheme.
sdk::Result<Url> parse_url(std::string_view text);

struct Proxy {
  Url url;                    // http:// only: the CONNECT tunnel carries TLS itself
  std::string authorization;  // "Basic ..." from the proxy URL's userinfo, or empty
};

class ProxySettings {
 public:
  ProxySettings() = default;
  // From HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lowercase forms) in `environment`. A proxy
  // URL that does not parse is reported in `errors` (without its credentials) and ignored.
  static ProxySettings from_environment(const std::map<std::string, std::string>& environment,
                                        std::vector<std::string>& errors);
  // The variables of the running process that from_environment reads.
  static std::map<std::string, std::string> process_environment();

  // The proxy for `url`, or nullptr when it goes direct.
  const Proxy* proxy_for(const Url& url) const noexcept;

 private:
  struct Exclusion {
    std::string host;  // lowercase, no leading dot; "*" matches everything
    std::optional<std::uint16_t> port;
  };
  bool excluded(const Url& url) const noexcept;

  std::optional<Proxy> http_;
  std::optional<Proxy> https_;
  std::vector<Exclusion> no_proxy_;
};

}  // namespace samokoder::outbound_http
