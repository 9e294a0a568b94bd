// Outbound HTTP for plugins: the kernel side of sdk::HttpClient (docs/sdk.md "Outbound HTTP").
//
// Service owns its own Asio event loop (http_client.threads threads, never the HTTP server's), the
// TLS context (the system CA store plus http_client.extra_ca_file), the proxy settings taken from the
// server's environment, and a pool of idle keep-alive connections per origin (and proxy). Each call is
// a coroutine on a strand of that loop: resolve, connect, CONNECT through the proxy, TLS handshake
// with SNI and hostname verification, write, read the head, read the body piece by piece. One timer
// per call bounds whichever phase is running (connect, first_byte, idle) and the total; when it
// fires, or the caller's CancelToken is stopped from any thread, the socket is closed at once and the
// pending operation ends.
//
// client(plugin_id) hands out the per-plugin view that HostServices::http() returns: it labels the
// metrics with the plugin's id and tracks the plugin's calls, so close() (at the plugin's teardown)
// can cancel those still running and wait until their callbacks are gone, before the plugin's code is
// unloaded.
//
// Metrics (docs/ops.md): samokoder_http_client_requests_total{plugin,host,class},
// samokoder_http_client_errors_total{plugin,host,code}, samokoder_http_client_request_seconds{plugin,
// host}, samokoder_http_client_sent_bytes_total / _received_bytes_total{plugin,host} and
// samokoder_http_client_connections_total{plugin,host,reused}.
//
// Ownership: the Application owns the Service; every PluginClient must be closed (or destroyed)
// before it. Thread-safety: every method may be called from any thread, concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <samokoder/sdk/http_client.hpp>

#include "config/config.hpp"
#include "metrics/registry.hpp"
#include "outbound_http/target.hpp"

namespace samokoder::outbound_http {

class PluginClient;

class Service {
 public:
  Service(config::HttpClientConfig config, ProxySettings proxies, metrics::Registry& registry);
  // Cancels every call still running and joins the threads.
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Not OK when the extra CA file could not be loaded; HTTPS calls then fail with this status.
  const sdk::Status& status() const noexcept;

  // The view a plugin uses; its metrics carry `plugin_id`.
  std::unique_ptr<PluginClient> client(std::string plugin_id);

  // Idle connections in the pool right now.
  std::size_t idle_connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

class PluginClient final : public sdk::HttpClient {
 public:
  ~PluginClient() override;
  PluginClient(const PluginClient&) = delete;
  PluginClient& operator=(const PluginClient&) = delete;

  sdk::Result<sdk::HttpResponse> send(const sdk::HttpRequest& request,
                                      sdk::CancelToken cancel) noexcept override;
  void send_async(sdk::HttpRequest request, sdk::CancelToken cancel, Completion done) noexcept override;

  // Refuses new calls (kUnavailable), cancels the running ones and returns once each has finished
  // and dropped the plugin's callbacks. Idempotent.
  void close() noexcept;

  struct Calls;

 private:
  friend class Service;
  PluginClient(std::shared_ptr<Service::Impl> service, std::string plugin_id);

  std::shared_ptr<Service::Impl> service_;
  std::shared_ptr<Calls> calls_;
};

// The client for a host without a Service (offline plugin checks, tests that load plugins without
// one): every call fails with kUnavailable.
sdk::HttpClient& unavailable_client() noexcept;

}  // namespace samokoder::outbound_http
