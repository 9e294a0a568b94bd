// LlmRequestStore: LLM requests as made (provider, model, tokens, cache use, cost, latency, outcome)
// and usage totals over them (created_at = now()): per model, per UTC day, per run and per user. The
// kernel's LLM gateway records every model request before its answer is used, and reads the totals to
// enforce per-user and per-run budgets and to show usage (GET /api/v1/usage).
//
// One store of the storage port (storage.hpp): a storage plugin hands it out through
// Stores::llm_requests(), and a transaction hands out the same store bound to that transaction. The
// conventions every store shares (ids, time, bytes, errors, lists, owner scoping, deletion
// cascades) are in storage/common.hpp.
//
// Ownership: records are plain values owned by the caller; arguments only need to live for the
// call. The store object belongs to the backend (see Stores).
// Thread-safety: see Stores: any thread, concurrently, never an HTTP I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/common.hpp>

namespace samokoder::sdk {

// One model request as the gateway made it. The fields after created_at came later, for accounting:
// records stored before them read back with the defaults below.
struct LlmRequest {
  std::string id;
  std::string user_id;
  std::string project_id;  // empty when not made for a project (or the project was deleted)
  std::string run_id;      // empty when not made for a run (or the run was deleted)
  std::string provider;
  std::string model;
  std::string agent;  // the agent role the call served ("architect", ...); may be empty
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t latency_ms = 0;
  std::string status;  // "ok", "error", "timeout", "cancelled"
  std::string error;
  Timestamp created_at;
  std::string step_id{};  // the run engine's step this call served; empty when none (see NewLlmRequest)
  std::int64_t cached_prompt_tokens = 0;  // of prompt_tokens, read from the provider's prompt cache
  std::int64_t cache_write_tokens = 0;    // written to the provider's prompt cache
  bool usage_estimated = false;  // the provider plugin counted the tokens: the endpoint reported none
  std::int64_t time_to_first_token_ms = -1;  // -1: no token arrived (or the call was not streamed)
  std::int64_t cost_micro_usd = 0;           // from the operator's price table, in 1e-6 USD
  std::int32_t attempt = 1;                  // the gateway's try number for one logical call
};

// What record_llm_request() stores; every rule not met is kInvalidArgument unless it says kNotFound.
struct NewLlmRequest {
  std::string user_id;     // kNotFound if the user does not exist
  std::string project_id;  // optional; kNotFound if set and not a project of the user
  std::string run_id;      // optional; kNotFound if set and not a run of the user
  std::string provider;    // required
  std::string model;       // required
  std::string agent;
  std::int64_t prompt_tokens = 0;      // >= 0
  std::int64_t completion_tokens = 0;  // >= 0
  std::int64_t latency_ms = 0;         // >= 0
  std::string status = "ok";           // "ok", "error", "timeout" or "cancelled"
  std::string error;
  // Brace-initialised so that aggregate initialisations listing only the fields before it (written
  // before it existed) stay clear of -Wmissing-field-initializers.
  std::string step_id{};                     // optional, opaque: never checked against run steps
  std::int64_t cached_prompt_tokens = 0;     // 0..prompt_tokens: cache reads are part of the prompt
  std::int64_t cache_write_tokens = 0;       // >= 0
  bool usage_estimated = false;              // the provider plugin counted, the endpoint reported none
  std::int64_t time_to_first_token_ms = -1;  // -1: no token arrived (or not streamed); else >= 0
  std::int64_t cost_micro_usd = 0;           // >= 0, from the operator's price table
  std::int32_t attempt = 1;                  // >= 1: the gateway's try number for one logical call
};

// Totals for one (provider, model) of one user.
struct UsageTotal {
  std::string provider;
  std::string model;
  std::int64_t requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_prompt_tokens = 0;
  std::int64_t cost_micro_usd = 0;
};

// Totals for one (user, UTC day, provider, model).
struct DailyUsage {
  std::string user_id;
  std::string day;  // "YYYY-MM-DD", UTC, of created_at
  std::string provider;
  std::string model;
  std::int64_t requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cached_prompt_tokens = 0;
  std::int64_t cost_micro_usd = 0;
};

// Totals of a run or a user across every provider and model: what a budget is checked against.
struct UsageSum {
  std::int64_t requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t cost_micro_usd = 0;
};

class LlmRequestStore {
 public:
  LlmRequestStore() = default;
  LlmRequestStore(const LlmRequestStore&) = delete;
  LlmRequestStore& operator=(const LlmRequestStore&) = delete;
  virtual ~LlmRequestStore() = default;

  virtual Result<LlmRequest> record_llm_request(const NewLlmRequest& request) = 0;
  // Order: created_at descending, then id descending.
  virtual Result<Page<LlmRequest>> list_llm_requests(std::string_view user_id, const PageRequest& page) = 0;
  // Totals per (provider, model) over requests with since <= created_at < until (each bound
  // optional). Order: provider, then model, ascending.
  virtual Result<std::vector<UsageTotal>> usage_by_model(std::string_view user_id,
                                                         std::optional<Timestamp> since,
                                                         std::optional<Timestamp> until) = 0;
  // Totals per (user, UTC day, provider, model) over requests with since <= created_at < until (each
  // bound optional). user_id nullopt: every user (for admins). Order: day, user_id, provider, model,
  // ascending. Days are whole UTC days on every backend, whatever the server's time zone.
  virtual Result<std::vector<DailyUsage>> usage_by_day(std::optional<std::string_view> user_id,
                                                       std::optional<Timestamp> since,
                                                       std::optional<Timestamp> until) = 0;
  // Totals of one run's requests, whoever made them (a run that has none, or does not exist, or was
  // deleted: all zero, as deletion empties run_id). The caller checks the run is the user's.
  virtual Result<UsageSum> usage_of_run(std::string_view run_id) = 0;
  // Totals of one user's requests with created_at >= since (nullopt: all time); all zero for a user
  // that has none or does not exist.
  virtual Result<UsageSum> usage_of_user(std::string_view user_id, std::optional<Timestamp> since) = 0;
};

}  // namespace samokoder::sdk
