// LlmGateway: the one way agents reach models. For one logical call it picks the models of the agent's
// role, resolves the API key, calls the LlmProvider plugins with retries and fallback, checks a JSON
// answer against its schema (re-asking with the error), enforces budgets, records every attempt in
// storage and counts it in metrics. Providers only translate (sdk/llm.hpp); every policy is here.
//
// Routing: the role's chain from config llm.roles ("default" for a role without one), each entry
// "provider/model"; a call's model override is tried first, then the chain.
//
// Keys: the user's own stored key (ProviderKeyStore, opened with api::open_provider_key for the call
// only, never kept or logged), else the provider's server-wide key (llm.providers.*.api_key_env), else,
// when the provider needs one, kFailedPrecondition saying how to add it. The gateway never moves to
// another provider silently because of a key: when the first entry it would try has no key, the call
// fails with that error; a fallback entry without a key is skipped, and the final error says so.
//
// Failures: kResourceExhausted, kDeadlineExceeded and kUnavailable are retried on the same entry with
// exponential backoff and full jitter, waiting at least the provider's Retry-After, capped by
// llm.retry.max_backoff_ms and by what is left of llm.timeouts.total_ms; the wait ends at once when the
// call is cancelled. kUnavailable with another entry left moves to that entry at once (a down endpoint
// is not worth waiting for); so do exhausted retries. kInvalidArgument, kUnauthenticated,
// kPermissionDenied and kCancelled end the call. Nothing is retried or re-asked once a delta reached the
// caller's observer: the caller would see the text twice.
//
// JSON answers: the answer is parsed and validated (JsonSchema); an invalid one is asked again, quoting
// the error, up to llm.json_reasks times, then the call fails kInternal. Deltas of a JSON call are not
// passed to the caller's observer (only a validated whole answer is usable), so re-asks stay possible.
//
// Accounting: every attempt, failed or not, is stored with LlmRequestStore::record_llm_request before
// complete() returns; a call whose record cannot be stored fails, since budgets rely on the records.
// Budgets (llm.budgets) are checked before the call from usage_of_user since 00:00 UTC and usage_of_run.
//
// Models and keys (for GET /api/v1/models and PUT /api/v1/keys/{provider} with verify): models() asks
// each configured provider's endpoint for its list with the caller's key (resolved as for a call) and
// keeps a live list for llm.models_cache_seconds per provider, endpoint and key (the key is kept only as
// an HMAC with a per-process secret, so the cache holds no key). verify_key() asks the endpoint whether
// it accepts a key before it is stored.
//
// Ownership: the gateway keeps references to the plugin manager, key ring, metrics registry and clock,
// which must outlive it; it copies the llm config (a restart applies a change). Thread-safety:
// complete() is called concurrently from worker threads (it blocks: never call it on an I/O thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/cancel.hpp>
#include <samokoder/sdk/llm.hpp>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_manager.hpp"
#include "security/aead.hpp"

namespace samokoder::llm {

struct LlmCall {
  std::string user_id;     // required: whose key, budget and records
  std::string project_id;  // optional
  std::string run_id;      // optional; the run budget applies when set
  std::string step_id;     // optional
  std::string role;        // the agent role ("architect", ...); empty or unknown: "default"
  std::string system;
  std::vector<sdk::ChatMessage> messages;
  std::optional<sdk::JsonOutput> json_output;
  std::uint32_t max_tokens = 4096;
  std::optional<double> temperature;
  std::optional<std::string> model;  // "provider/model", tried before the role's chain
};

struct LlmAnswer {
  sdk::Completion completion;
  std::string provider;
  std::string model;  // the chain entry's model (completion.model is what the endpoint named)
  std::optional<nlohmann::json> json;  // the parsed, validated answer when json_output was asked
  std::uint32_t attempts = 0;          // requests made for this call, re-asks and fallbacks included
  std::string request_id;              // the stored record of the attempt that answered
  std::int64_t cost_micro_usd = 0;     // what the answering attempt cost, by the config's prices
  // The waits before each retry, in order, as decided (Retry-After, backoff, caps), for callers that
  // report them.
  std::vector<std::chrono::milliseconds> backoffs;
};

// One configured provider's models, as GET /api/v1/models shows them.
struct ProviderModels {
  std::string provider;
  // The endpoint's own list (GET /models) when it answered; else the models the config names for the
  // provider (role chains, prices) and `error` says why the live list is missing.
  bool live = false;
  std::string error;
  std::vector<sdk::ModelInfo> models;
  std::vector<std::string> configured;  // the models of this provider the config names, sorted
};

class LlmGateway {
 public:
  struct Dependencies {
    config::LlmConfig config;
    plugins::PluginManager& plugins;  // the provider plugins and the active storage
    const security::KeyRing& secret_ring;
    metrics::Registry& metrics;
    const core::Clock& clock;
  };

  explicit LlmGateway(Dependencies dependencies);
  ~LlmGateway();
  LlmGateway(const LlmGateway&) = delete;
  LlmGateway& operator=(const LlmGateway&) = delete;

  // Blocks until the call is answered, fails or `cancel` is stopped (kCancelled). See the header
  // comment for what it does; `observer` (may be null) gets the answer's deltas as they arrive.
  sdk::Result<LlmAnswer> complete(const LlmCall& call, sdk::CompletionObserver* observer,
                                  sdk::CancelToken cancel);

  // Every configured provider's models for `user_id` (see the header comment), in provider order.
  // Blocks on the endpoints it has to ask; an endpoint that fails costs only its own entry.
  std::vector<ProviderModels> models(const std::string& user_id, sdk::CancelToken cancel);

  // Asks the endpoint of the configured `provider` whether it accepts `api_key` by asking for its model
  // list, which costs nothing. OK when accepted; kUnauthenticated or kPermissionDenied when refused;
  // kUnavailable or kDeadlineExceeded when the endpoint could not say; kNotFound for a provider the
  // config does not name; kFailedPrecondition for an endpoint without a model list. Messages never
  // quote the key.
  sdk::Status verify_key(const std::string& provider, const std::string& api_key, sdk::CancelToken cancel);

  // The llm section the gateway was built with (roles, prices and budgets, for the routes that show them).
  const config::LlmConfig& config() const noexcept { return config_; }

 private:
  struct ModelMetrics;
  struct ProviderMetrics;
  struct Attempt;

  sdk::Status check_budgets(const LlmCall& call) const;
  // The key for one provider, or why there is none (see the header comment).
  struct Key {
    std::string value;
    std::string source;  // how a refusal names it: "your stored key" or "the server's OPENAI_API_KEY"
  };
  sdk::Result<Key> resolve_key(const std::string& user_id, const std::string& provider) const;
  sdk::Status record(const LlmCall& call, const Attempt& attempt, std::string* id) const;
  std::int64_t cost_micro_usd(const std::string& entry, const sdk::TokenUsage& usage) const;
  ModelMetrics& model_metrics(const std::string& provider, const std::string& model);
  ProviderMetrics& provider_metrics(const std::string& provider);
  std::chrono::milliseconds backoff(std::uint32_t retry, std::chrono::milliseconds retry_after,
                                    std::chrono::milliseconds remaining) const;
  // The models the config names for `provider` (role chains and prices), sorted and unique.
  std::vector<std::string> configured_models(const std::string& provider) const;
  // The cached listing (models()) and the uncached one (verify_key(), which must ask about a new key).
  sdk::Result<std::vector<sdk::ModelInfo>> list_models(const std::string& provider,
                                                       const std::string& api_key, sdk::CancelToken cancel);
  sdk::Result<std::vector<sdk::ModelInfo>> ask_for_models(const config::LlmProviderConfig& settings,
                                                          const std::string& api_key,
                                                          sdk::CancelToken cancel);

  const config::LlmConfig config_;
  plugins::PluginManager& plugins_;
  const security::KeyRing& secret_ring_;
  metrics::Registry& metrics_;
  const core::Clock& clock_;
  // Metric handles by "provider/model" and provider: those of the configured chains are resolved at
  // construction, an override's on its first use; entries are never removed, so references stay valid.
  std::mutex metrics_mutex_;
  std::map<std::string, std::unique_ptr<ModelMetrics>, std::less<>> model_metrics_;
  std::map<std::string, std::unique_ptr<ProviderMetrics>, std::less<>> provider_metrics_;
  // Live model lists by provider and key HMAC; failures are kept briefly too, so a down endpoint is
  // not asked on every page view.
  struct CachedModels {
    std::chrono::steady_clock::time_point until;
    sdk::Result<std::vector<sdk::ModelInfo>> models;
  };
  const std::string cache_secret_;  // random per process: the HMAC key of the cache's key names
  std::mutex models_mutex_;
  std::map<std::string, CachedModels, std::less<>> models_cache_;
};

}  // namespace samokoder::llm
