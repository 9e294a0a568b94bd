// LlmRequestStore: LLM requests as made (provider, model, tokens, latency, outcome) and usage totals over
// them (created_at = now()).
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

struct LlmRequest {
  std::string id;
  std::string user_id;
  std::string project_id;  // empty when not made for a project (or the project was deleted)
  std::string run_id;      // empty when not made for a run (or the run was deleted)
  std::string provider;
  std::string model;
  std::string agent;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t latency_ms = 0;
  std::string status;  // "ok", "error", "timeout", "cancelled"
  std::string error;
  Timestamp created_at;
};

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
  std::string status = "ok";           // required
  std::string error;
};

// Totals for one (provider, model) of one user.
struct UsageTotal {
  std::string provider;
  std::string model;
  std::int64_t requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
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
};

}  // namespace samokoder::sdk
