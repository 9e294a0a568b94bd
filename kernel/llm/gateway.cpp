#include "llm/gateway.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <random>
#include <string_view>
#include <utility>

#include <samokoder/sdk/storage.hpp>

#include "api/provider_key_crypto.hpp"
#include "core/logging.hpp"
#include "llm/json_schema.hpp"
#include "security/jwt.hpp"
#include "security/random.hpp"

namespace samokoder::llm {

namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

// What a re-ask quotes of the validation errors: enough to fix the answer, bounded so a wildly wrong
// answer does not grow the conversation without limit.
constexpr std::size_t kMaxQuotedErrors = 5;
constexpr std::size_t kMaxQuotedBytes = 1000;

// The outcome label and stored status of an attempt.
std::string_view outcome_of(sdk::StatusCode code) {
  switch (code) {
    case sdk::StatusCode::kOk:
      return "ok";
    case sdk::StatusCode::kDeadlineExceeded:
      return "timeout";
    case sdk::StatusCode::kCancelled:
      return "cancelled";
    default:
      return "error";
  }
}

constexpr std::array<std::string_view, 4> kOutcomes = {"ok", "error", "timeout", "cancelled"};

bool retryable(sdk::StatusCode code) {
  return code == sdk::StatusCode::kResourceExhausted || code == sdk::StatusCode::kUnavailable ||
         code == sdk::StatusCode::kDeadlineExceeded;
}

// Replaces every occurrence of the key in a message: providers promise never to quote it, and this
// keeps a broken one from leaking it through the gateway's errors and records.
std::string scrub(std::string text, const std::string& key) {
  if (key.empty()) return text;
  for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + 3))
    text.replace(at, key.size(), "***");
  return text;
}

std::string usd(std::int64_t micro_usd) {
  std::array<char, 48> text{};
  std::snprintf(text.data(), text.size(), "$%.6f", static_cast<double>(micro_usd) / 1e6);
  return text.data();
}

// Sits between a provider and the caller's observer for one attempt: it learns what the gateway needs
// (first delta, usage, Retry-After) and whether any text reached the caller, which forbids a retry.
class AttemptObserver final : public sdk::CompletionObserver {
 public:
  AttemptObserver(sdk::CompletionObserver* caller, bool forward_deltas, Steady::time_point started)
      : caller_(caller), forward_deltas_(forward_deltas && caller != nullptr), started_(started) {}

  bool on_delta(std::string_view text) override {
    {
      const std::lock_guard lock(mutex_);
      if (!first_delta_) first_delta_ = Steady::now();
      if (forward_deltas_) delivered_ = true;
    }
    return forward_deltas_ ? caller_->on_delta(text) : true;
  }
  void on_retry_after(milliseconds delay) override {
    {
      const std::lock_guard lock(mutex_);
      retry_after_ = delay;
    }
    if (caller_ != nullptr) caller_->on_retry_after(delay);
  }
  void on_usage(const sdk::TokenUsage& usage) override {
    {
      const std::lock_guard lock(mutex_);
      usage_ = usage;
    }
    if (caller_ != nullptr) caller_->on_usage(usage);
  }

  bool delivered() const {
    const std::lock_guard lock(mutex_);
    return delivered_;
  }
  milliseconds retry_after() const {
    const std::lock_guard lock(mutex_);
    return retry_after_;
  }
  std::optional<sdk::TokenUsage> usage() const {
    const std::lock_guard lock(mutex_);
    return usage_;
  }
  std::int64_t time_to_first_token_ms() const {
    const std::lock_guard lock(mutex_);
    if (!first_delta_) return -1;
    return std::chrono::duration_cast<milliseconds>(*first_delta_ - started_).count();
  }

 private:
  sdk::CompletionObserver* caller_;
  const bool forward_deltas_;
  const Steady::time_point started_;
  mutable std::mutex mutex_;
  bool delivered_ = false;
  milliseconds retry_after_{0};
  std::optional<sdk::TokenUsage> usage_;
  std::optional<Steady::time_point> first_delta_;
};

// Sleeps for `delay` unless `cancel` is stopped first; false when it was.
bool wait_or_cancel(milliseconds delay, const sdk::CancelToken& cancel) {
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  wake.wait_for(lock, cancel, delay, [] { return false; });
  return !cancel.stop_requested();
}

// The validation errors of a JSON answer, or none.
std::vector<std::string> json_errors(const std::string& content, const sdk::JsonOutput& output,
                                     std::optional<nlohmann::json>& parsed) {
  try {
    parsed = nlohmann::json::parse(content);
  } catch (const nlohmann::json::parse_error& e) {
    parsed.reset();
    return {std::string("not valid JSON: ") + e.what()};
  }
  auto errors = JsonSchema(output.schema).validate(*parsed);
  if (!errors.empty()) parsed.reset();
  return errors;
}

std::string quote_errors(const std::vector<std::string>& errors) {
  std::string out;
  for (std::size_t i = 0; i < errors.size() && i < kMaxQuotedErrors; ++i)
    out += (out.empty() ? "" : "; ") + errors[i];
  if (errors.size() > kMaxQuotedErrors)
    out += "; and " + std::to_string(errors.size() - kMaxQuotedErrors) + " more";
  if (out.size() > kMaxQuotedBytes) out = out.substr(0, kMaxQuotedBytes) + "...";
  return out;
}

}  // namespace

struct LlmGateway::ModelMetrics {
  std::array<metrics::Counter*, kOutcomes.size()> requests{};
  metrics::Counter* prompt_tokens = nullptr;
  metrics::Counter* completion_tokens = nullptr;
  metrics::Counter* cached_tokens = nullptr;
};

struct LlmGateway::ProviderMetrics {
  metrics::Counter* rate_limited = nullptr;
  metrics::Counter* unavailable = nullptr;
  metrics::Counter* timeout = nullptr;
  metrics::Histogram* time_to_first_token = nullptr;
};

// One request to a provider as it is recorded.
struct LlmGateway::Attempt {
  std::string provider;
  std::string model;
  sdk::TokenUsage usage;
  std::int64_t latency_ms = 0;
  sdk::StatusCode code = sdk::StatusCode::kOk;
  std::string error;
  std::int64_t time_to_first_token_ms = -1;
  std::uint32_t number = 1;
};

LlmGateway::LlmGateway(Dependencies dependencies)
    : config_(std::move(dependencies.config)),
      plugins_(dependencies.plugins),
      secret_ring_(dependencies.secret_ring),
      metrics_(dependencies.metrics),
      clock_(dependencies.clock),
      cache_secret_(security::random_bytes(32).value_or(std::string(32, '\0'))) {
  for (const auto& [role, chain] : config_.roles) {
    for (const auto& entry : chain) {
      const auto slash = entry.find('/');
      provider_metrics(entry.substr(0, slash));
      model_metrics(entry.substr(0, slash), entry.substr(slash + 1));
    }
  }
}

LlmGateway::~LlmGateway() = default;

LlmGateway::ModelMetrics& LlmGateway::model_metrics(const std::string& provider, const std::string& model) {
  const std::string key = provider + "/" + model;
  const std::lock_guard lock(metrics_mutex_);
  auto& slot = model_metrics_[key];
  if (slot) return *slot;
  slot = std::make_unique<ModelMetrics>();
  for (std::size_t i = 0; i < kOutcomes.size(); ++i) {
    slot->requests[i] =
        &metrics_.counter("samokoder_llm_requests_total", "LLM requests by outcome",
                          {{"provider", provider}, {"model", model}, {"outcome", std::string(kOutcomes[i])}});
  }
  const auto tokens = [&](const char* kind) {
    return &metrics_.counter("samokoder_llm_tokens_total", "LLM tokens",
                             {{"provider", provider}, {"model", model}, {"kind", kind}});
  };
  slot->prompt_tokens = tokens("prompt");
  slot->completion_tokens = tokens("completion");
  slot->cached_tokens = tokens("cached");
  return *slot;
}

LlmGateway::ProviderMetrics& LlmGateway::provider_metrics(const std::string& provider) {
  const std::lock_guard lock(metrics_mutex_);
  auto& slot = provider_metrics_[provider];
  if (slot) return *slot;
  slot = std::make_unique<ProviderMetrics>();
  const auto retries = [&](const char* reason) {
    return &metrics_.counter("samokoder_llm_retries_total", "LLM requests retried",
                             {{"provider", provider}, {"reason", reason}});
  };
  slot->rate_limited = retries("rate_limited");
  slot->unavailable = retries("unavailable");
  slot->timeout = retries("timeout");
  slot->time_to_first_token =
      &metrics_.histogram("samokoder_llm_time_to_first_token_seconds",
                          "From an LLM request sent to its first delta", {{"provider", provider}});
  return *slot;
}

sdk::Status LlmGateway::check_budgets(const LlmCall& call) const {
  const auto over = [](std::string_view which, std::uint64_t limit_tokens, double limit_usd,
                       const sdk::UsageSum& used) -> std::optional<std::string> {
    const auto tokens = static_cast<std::uint64_t>(used.prompt_tokens + used.completion_tokens);
    if (limit_tokens > 0 && tokens >= limit_tokens) {
      return "the " + std::string(which) + " token budget is used up: limit " + std::to_string(limit_tokens) +
             " tokens, used " + std::to_string(tokens);
    }
    const auto limit_micro = static_cast<std::int64_t>(std::llround(limit_usd * 1e6));
    if (limit_micro > 0 && used.cost_micro_usd >= limit_micro) {
      return "the " + std::string(which) + " cost budget is used up: limit " + usd(limit_micro) + ", used " +
             usd(used.cost_micro_usd);
    }
    return std::nullopt;
  };
  if (config_.user_daily_tokens > 0 || config_.user_daily_cost_usd > 0) {
    const auto day_start = std::chrono::floor<std::chrono::days>(clock_.now());
    auto used = plugins_.acquire_storage().call<sdk::Storage>([&](sdk::Storage& storage) {
      return storage.store<sdk::LlmRequestStore>().usage_of_user(call.user_id, day_start);
    });
    if (!used.ok()) return used.status();
    if (auto message = over("daily (UTC)", config_.user_daily_tokens, config_.user_daily_cost_usd, *used)) {
      return sdk::Status::resource_exhausted(*message);
    }
  }
  if (!call.run_id.empty() && (config_.run_tokens > 0 || config_.run_cost_usd > 0)) {
    auto used = plugins_.acquire_storage().call<sdk::Storage>([&](sdk::Storage& storage) {
      return storage.store<sdk::LlmRequestStore>().usage_of_run(call.run_id);
    });
    if (!used.ok()) return used.status();
    if (auto message = over("run", config_.run_tokens, config_.run_cost_usd, *used)) {
      return sdk::Status::resource_exhausted(*message);
    }
  }
  return {};
}

sdk::Result<LlmGateway::Key> LlmGateway::resolve_key(const std::string& user_id,
                                                     const std::string& provider) const {
  const config::LlmProviderConfig& settings = config_.providers.at(provider);
  auto stored = plugins_.acquire_storage().call<sdk::Storage>([&](sdk::Storage& storage) {
    return storage.store<sdk::ProviderKeyStore>().get_provider_key(user_id, provider);
  });
  if (stored.ok()) {
    auto opened = api::open_provider_key(secret_ring_, *stored);
    if (!opened.ok()) {
      return sdk::Status(opened.status().code(), "your stored " + provider + " key cannot be opened (" +
                                                     opened.status().message() +
                                                     "); store it again with PUT /api/v1/keys/" + provider);
    }
    return Key{std::move(opened).value(), "your stored " + provider + " key"};
  }
  if (stored.status().code() != sdk::StatusCode::kNotFound) return stored.status();
  if (!settings.api_key.empty()) return Key{settings.api_key, "the server's " + settings.api_key_env};
  if (!settings.key_required)
    return Key{"", "the request without a key (llm.providers." + provider + ".key_required is false)"};
  std::string fix = "store a key with PUT /api/v1/keys/" + provider;
  if (!settings.api_key_env.empty()) fix += " or set " + settings.api_key_env + " on the server";
  return sdk::Status::failed_precondition("no API key for provider " + provider + ": " + fix);
}

std::int64_t LlmGateway::cost_micro_usd(const std::string& entry, const sdk::TokenUsage& usage) const {
  const auto it = config_.prices.find(entry);
  if (it == config_.prices.end()) return 0;
  const auto& price = it->second;
  const auto cached = std::min(usage.cached_prompt_tokens, usage.prompt_tokens);
  // USD per million tokens is micro-USD per token.
  const double micro = static_cast<double>(usage.prompt_tokens - cached) * price.prompt_usd_per_mtok +
                       static_cast<double>(cached) * price.cached_prompt_usd_per_mtok +
                       static_cast<double>(usage.completion_tokens) * price.completion_usd_per_mtok;
  return std::llround(micro);
}

sdk::Status LlmGateway::record(const LlmCall& call, const Attempt& attempt, std::string* id) const {
  sdk::NewLlmRequest row;
  row.user_id = call.user_id;
  row.project_id = call.project_id;
  row.run_id = call.run_id;
  row.provider = attempt.provider;
  row.model = attempt.model;
  row.agent = call.role;
  row.prompt_tokens = static_cast<std::int64_t>(attempt.usage.prompt_tokens);
  row.completion_tokens = static_cast<std::int64_t>(attempt.usage.completion_tokens);
  row.latency_ms = attempt.latency_ms;
  row.status = std::string(outcome_of(attempt.code));
  row.error = attempt.error;
  row.step_id = call.step_id;
  row.cached_prompt_tokens =
      static_cast<std::int64_t>(std::min(attempt.usage.cached_prompt_tokens, attempt.usage.prompt_tokens));
  row.cache_write_tokens = static_cast<std::int64_t>(attempt.usage.cache_write_tokens);
  row.usage_estimated = attempt.usage.estimated;
  row.time_to_first_token_ms = attempt.time_to_first_token_ms;
  row.cost_micro_usd = cost_micro_usd(attempt.provider + "/" + attempt.model, attempt.usage);
  row.attempt = static_cast<std::int32_t>(attempt.number);
  auto stored = plugins_.acquire_storage().call<sdk::Storage>(
      [&](sdk::Storage& storage) { return storage.store<sdk::LlmRequestStore>().record_llm_request(row); });
  if (!stored.ok()) {
    return sdk::Status(stored.status().code(),
                       "the LLM request could not be recorded: " + stored.status().message());
  }
  if (id != nullptr) *id = stored->id;
  return {};
}

milliseconds LlmGateway::backoff(std::uint32_t retry, milliseconds retry_after,
                                 milliseconds remaining) const {
  // Full jitter: a uniform wait up to the exponential bound, so clients that failed together spread out.
  const double bound = std::min(static_cast<double>(config_.retry_max_backoff_ms),
                                static_cast<double>(config_.retry_initial_backoff_ms) * std::exp2(retry - 1));
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> jitter(0, static_cast<std::int64_t>(bound));
  milliseconds delay{jitter(random)};
  delay = std::max(delay, retry_after);
  delay = std::min(delay, milliseconds(config_.retry_max_backoff_ms));
  return std::min(delay, remaining);
}

sdk::Result<LlmAnswer> LlmGateway::complete(const LlmCall& call, sdk::CompletionObserver* observer,
                                            sdk::CancelToken cancel) {
  const auto started = clock_.monotonic_now();
  const auto deadline = started + milliseconds(config_.total_timeout_ms);
  if (auto budget = check_budgets(call); !budget.ok()) return budget;

  std::vector<std::string> chain;
  if (call.model) {
    const auto slash = call.model->find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == call.model->size() ||
        !config_.providers.contains(call.model->substr(0, slash))) {
      return sdk::Status::invalid_argument("model \"" + *call.model +
                                           "\" is not \"provider/model\" of a configured provider");
    }
    chain.push_back(*call.model);
  }
  const auto role = config_.roles.find(call.role);
  for (const auto& entry : (role != config_.roles.end() ? role->second : config_.roles.at("default"))) {
    if (std::find(chain.begin(), chain.end(), entry) == chain.end()) chain.push_back(entry);
  }

  LlmAnswer answer;
  std::vector<sdk::ChatMessage> messages = call.messages;
  std::uint32_t reasks_left = config_.json_reasks;
  std::optional<sdk::Status> last_error;
  std::string skipped;  // fallback entries without a key

  for (std::size_t index = 0; index < chain.size(); ++index) {
    const std::string& entry = chain[index];
    const auto slash = entry.find('/');
    const std::string provider = entry.substr(0, slash);
    const std::string model = entry.substr(slash + 1);
    auto key = resolve_key(call.user_id, provider);
    if (!key.ok()) {
      // The first entry is the model the call is meant for: without its key the call fails rather than
      // move silently to a provider the user did not choose. A fallback is only a fallback.
      if (index == 0 || key.status().code() != sdk::StatusCode::kFailedPrecondition) return key.status();
      skipped += (skipped.empty() ? "" : ", ") + entry;
      continue;
    }
    ModelMetrics& counters = model_metrics(provider, model);
    ProviderMetrics& per_provider = provider_metrics(provider);
    const std::string& plugin_id = config_.providers.at(provider).plugin;

    for (std::uint32_t transient = 1;;) {
      const auto now = clock_.monotonic_now();
      if (now >= deadline) {
        return sdk::Status::deadline_exceeded("the LLM call took longer than llm.timeouts.total_ms (" +
                                              std::to_string(config_.total_timeout_ms) + " ms)");
      }
      sdk::CompletionRequest request;
      request.model = model;
      request.system = call.system;
      request.messages = messages;
      request.temperature = call.temperature;
      request.max_tokens = call.max_tokens;
      request.json_output = call.json_output;
      request.api_key = key->value;
      request.base_url = config_.providers.at(provider).base_url;
      request.timeouts = {milliseconds(config_.connect_timeout_ms),
                          milliseconds(config_.first_token_timeout_ms), milliseconds(config_.idle_timeout_ms),
                          std::chrono::duration_cast<milliseconds>(deadline - now)};
      AttemptObserver attempt_observer(observer, !call.json_output.has_value(), Steady::now());
      auto result = plugins_.acquire(plugin_id).call<sdk::LlmProvider>(
          [&](sdk::LlmProvider& llm) { return llm.complete(request, &attempt_observer, cancel); });
      Attempt attempt;
      attempt.provider = provider;
      attempt.model = model;
      attempt.number = ++answer.attempts;
      attempt.latency_ms = std::chrono::duration_cast<milliseconds>(clock_.monotonic_now() - now).count();
      attempt.time_to_first_token_ms = attempt_observer.time_to_first_token_ms();
      if (result.ok()) {
        attempt.usage = result->usage;
      } else {
        attempt.code = result.status().code();
        attempt.error = scrub(result.status().message(), key->value);
        if (auto usage = attempt_observer.usage()) attempt.usage = *usage;
      }
      counters
          .requests[static_cast<std::size_t>(
              std::find(kOutcomes.begin(), kOutcomes.end(), outcome_of(attempt.code)) - kOutcomes.begin())]
          ->add();
      counters.prompt_tokens->add(static_cast<double>(attempt.usage.prompt_tokens));
      counters.completion_tokens->add(static_cast<double>(attempt.usage.completion_tokens));
      counters.cached_tokens->add(static_cast<double>(attempt.usage.cached_prompt_tokens));
      if (attempt.time_to_first_token_ms >= 0) {
        per_provider.time_to_first_token->observe(static_cast<double>(attempt.time_to_first_token_ms) /
                                                  1000.0);
      }

      std::string request_id;
      if (auto recorded = record(call, attempt, &request_id); !recorded.ok()) return recorded;

      if (result.ok()) {
        if (call.json_output) {
          std::optional<nlohmann::json> parsed;
          const auto errors = json_errors(result->content, *call.json_output, parsed);
          if (!errors.empty()) {
            const std::string quoted = quote_errors(errors);
            if (reasks_left == 0) {
              return sdk::Status::internal(entry + " answered JSON that does not match \"" +
                                           call.json_output->name + "\" after " +
                                           std::to_string(config_.json_reasks + 1) + " asks: " + quoted);
            }
            --reasks_left;
            messages.push_back({"assistant", result->content, false});
            messages.push_back({"user",
                                "Your answer is not the JSON value the schema \"" + call.json_output->name +
                                    "\" asks for: " + quoted +
                                    ". Answer again with only the corrected JSON value, nothing else.",
                                false});
            continue;
          }
          answer.json = std::move(parsed);
        }
        answer.completion = std::move(result).value();
        answer.provider = provider;
        answer.model = model;
        answer.request_id = std::move(request_id);
        answer.cost_micro_usd = cost_micro_usd(entry, answer.completion.usage);
        return answer;
      }

      const sdk::StatusCode code = attempt.code;
      last_error = sdk::Status(code, entry + ": " + attempt.error);
      if (code == sdk::StatusCode::kUnauthenticated) {
        return sdk::Status::unauthenticated(provider + " refused " + key->source + " (" + attempt.error +
                                            "); replace it with PUT /api/v1/keys/" + provider);
      }
      if (code == sdk::StatusCode::kCancelled || code == sdk::StatusCode::kInvalidArgument ||
          code == sdk::StatusCode::kPermissionDenied || attempt_observer.delivered()) {
        return *last_error;
      }
      if (!retryable(code)) break;
      // Another provider is a better bet than waiting for one that says it is down.
      if (code == sdk::StatusCode::kUnavailable && index + 1 < chain.size()) break;
      if (transient >= config_.retry_max_attempts) break;
      const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - clock_.monotonic_now());
      const milliseconds delay = backoff(transient, attempt_observer.retry_after(), remaining);
      if (delay >= remaining) break;  // no time left for another try
      (code == sdk::StatusCode::kResourceExhausted  ? per_provider.rate_limited
       : code == sdk::StatusCode::kDeadlineExceeded ? per_provider.timeout
                                                    : per_provider.unavailable)
          ->add();
      answer.backoffs.push_back(delay);
      core::logger("llm")->info("{} failed ({}), retry {} in {} ms", entry, sdk::status_code_name(code),
                                transient, delay.count());
      if (!wait_or_cancel(delay, cancel)) return sdk::Status::cancelled("the LLM call was cancelled");
      ++transient;
    }
    if (index + 1 < chain.size()) {
      core::logger("llm")->warn("{} failed ({}), falling back to the next model of the role", entry,
                                last_error ? sdk::status_code_name(last_error->code()) : "no answer");
    }
  }
  std::string message = last_error ? last_error->message() : std::string("no model could be tried");
  if (!skipped.empty()) message += " (skipped for want of a key: " + skipped + ")";
  return sdk::Status(last_error ? last_error->code() : sdk::StatusCode::kFailedPrecondition, message);
}

std::vector<std::string> LlmGateway::configured_models(const std::string& provider) const {
  std::vector<std::string> models;
  const auto add = [&](const std::string& entry) {
    if (entry.size() > provider.size() && entry.starts_with(provider) && entry[provider.size()] == '/')
      models.push_back(entry.substr(provider.size() + 1));
  };
  for (const auto& [role, chain] : config_.roles)
    std::for_each(chain.begin(), chain.end(), add);
  for (const auto& [entry, price] : config_.prices)
    add(entry);
  std::sort(models.begin(), models.end());
  models.erase(std::unique(models.begin(), models.end()), models.end());
  return models;
}

sdk::Result<std::vector<sdk::ModelInfo>> LlmGateway::ask_for_models(const config::LlmProviderConfig& settings,
                                                                    const std::string& api_key,
                                                                    sdk::CancelToken cancel) {
  // Someone waits on the answer (the models page, a key being stored): a listing gets seconds, not the
  // minutes a completion may take.
  constexpr milliseconds kListingTotal{20000};
  sdk::ModelListRequest request{.api_key = api_key, .base_url = settings.base_url, .timeouts = {}};
  request.timeouts.connect = std::min(milliseconds(config_.connect_timeout_ms), kListingTotal);
  request.timeouts.first_token = kListingTotal;
  request.timeouts.idle = kListingTotal;
  request.timeouts.total = kListingTotal;
  return plugins_.acquire(settings.plugin).call<sdk::LlmProvider>([&](sdk::LlmProvider& llm) {
    return llm.list_models(request, cancel);
  });
}

sdk::Result<std::vector<sdk::ModelInfo>> LlmGateway::list_models(const std::string& provider,
                                                                 const std::string& api_key,
                                                                 sdk::CancelToken cancel) {
  const config::LlmProviderConfig& settings = config_.providers.at(provider);
  auto name = security::hmac_sha256(cache_secret_, provider + '\n' + settings.base_url + '\n' + api_key);
  if (!name.ok()) return name.status();
  const auto now = Steady::now();
  {
    const std::lock_guard lock(models_mutex_);
    if (const auto it = models_cache_.find(*name); it != models_cache_.end() && it->second.until > now)
      return it->second.models;
  }
  auto models = ask_for_models(settings, api_key, cancel);
  if (!models.ok()) models = sdk::Status(models.status().code(), scrub(models.status().message(), api_key));
  // A refusal or an endpoint down is kept for a short while only: the user may be fixing it.
  constexpr std::chrono::seconds kFailureTtl{30};
  const std::chrono::seconds ttl{config_.models_cache_seconds};
  if (models.status().code() != sdk::StatusCode::kCancelled) {
    const std::lock_guard lock(models_mutex_);
    models_cache_.insert_or_assign(
        *name, CachedModels{now + (models.ok() ? ttl : std::min(ttl, kFailureTtl)), models});
  }
  return models;
}

std::vector<ProviderModels> LlmGateway::models(const std::string& user_id, sdk::CancelToken cancel) {
  std::vector<ProviderModels> out;
  for (const auto& [provider, settings] : config_.providers) {
    ProviderModels entry;
    entry.provider = provider;
    entry.configured = configured_models(provider);
    auto key = resolve_key(user_id, provider);
    if (!key.ok()) {
      entry.error = key.status().message();
    } else if (auto listed = list_models(provider, key->value, cancel); listed.ok()) {
      entry.live = true;
      entry.models = std::move(listed).value();
    } else {
      entry.error =
          listed.status().code() == sdk::StatusCode::kUnimplemented
              ? "the endpoint has no model list"
              : std::string(sdk::status_code_name(listed.status().code())) + ": " + listed.status().message();
    }
    if (!entry.live) {
      for (const auto& model : entry.configured)
        entry.models.push_back({.id = model, .owned_by = ""});
    }
    out.push_back(std::move(entry));
  }
  return out;
}

sdk::Status LlmGateway::verify_key(const std::string& provider, const std::string& api_key,
                                   sdk::CancelToken cancel) {
  const auto it = config_.providers.find(provider);
  if (it == config_.providers.end()) {
    return sdk::Status::not_found("provider " + provider +
                                  " is not configured on this server (llm.providers)");
  }
  const config::LlmProviderConfig& settings = it->second;
  auto listed = ask_for_models(settings, api_key, cancel);
  if (listed.ok()) return {};
  if (listed.status().code() == sdk::StatusCode::kUnimplemented) {
    // A one-token completion would tell, but it is a billed model call outside any user's accounting.
    return sdk::Status::failed_precondition("the " + provider +
                                            " endpoint has no model list, so the key cannot be verified; "
                                            "store it without \"verify\"");
  }
  return sdk::Status(listed.status().code(), scrub(listed.status().message(), api_key));
}

}  // namespace samokoder::llm
