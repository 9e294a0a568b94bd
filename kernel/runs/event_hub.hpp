// RunEventHub: delivers a run's events to the clients watching it (SSE responses and WebSockets).
//
// Storage is the source of truth: a run's events are committed first (RunStore::append_run_event) and
// the hub reads them back after each watcher's cursor, so a client that connects late, reconnects
// with Last-Event-ID or watches a run another node executes gets every committed event once, in seq
// order. A local commit wakes the run's feed at once (committed()); every other change is found by a
// poll of the runs that have watchers. One read serves all watchers of a run, so fan-out to many
// watchers costs one storage read and one formatting of each event per format.
//
// Transient events (model text deltas, command output lines) are not stored: transient() queues them
// for the run's watchers on this node, sent without an id by the hub's thread (never on the thread
// that produced them, which for model text is the outbound HTTP service's event loop); a client that
// was away misses them and sees the committed result instead (the recorded model answer, the
// command's result).
//
// Why a thread of its own: reads block on storage and must never run on an HTTP I/O thread, and a
// watcher's send() never blocks (a slow client's bounded queue closes it; it resumes from its cursor).
//
// Ownership: the Application owns the hub; watchers hold a weak reference to its state, so a stream
// that outlives the hub just stops receiving. Thread-safety: every method may be called from any
// thread; StreamHandler callbacks run on I/O threads and only take a short lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <samokoder/sdk/status.hpp>
#include <samokoder/sdk/storage/run_store.hpp>

#include "core/clock.hpp"
#include "http/stream.hpp"
#include "metrics/registry.hpp"

namespace samokoder::runs {

// How a watcher gets events: SSE blocks ("id:", "event:", "data:") or WebSocket text messages. Both
// carry the same JSON document, event_document().
enum class WatchFormat { kServerSentEvents, kWebSocket };

// {"seq": 7, "type": "step.committed", "run_id": "...", "created_at": "...", "payload": {...}}; seq is
// null for a transient event.
nlohmann::json event_document(const sdk::RunEvent& event, bool transient);

class RunEventHub {
 public:
  // Reads committed events of a run after `after_seq`, ascending, at most `limit`.
  using ReadEvents = std::function<sdk::Result<std::vector<sdk::RunEvent>>(
      const std::string& owner_id, const std::string& run_id, std::int64_t after_seq, std::uint32_t limit)>;

  // `clock` dates credential expiry (the kernel's clock, which issued the tokens); it must outlive the hub.
  RunEventHub(ReadEvents read, const core::Clock& clock, metrics::Registry& metrics,
              std::chrono::milliseconds poll_interval);
  ~RunEventHub();  // stop()
  RunEventHub(const RunEventHub&) = delete;
  RunEventHub& operator=(const RunEventHub&) = delete;

  void start();
  // Ends the reader thread; open streams stay open but receive nothing more (the server closes them).
  void stop();

  // The stream handler of a new watcher of `run_id`, which the caller has checked `owner_id` owns; it
  // gets every committed event with seq > after_seq, then the live ones. The stream is closed once
  // `credential_expires` passes (the access token it was opened with), so a logout or a disabled user
  // is shut out within one token lifetime; the client reconnects with a fresh token and Last-Event-ID.
  std::shared_ptr<http::StreamHandler> watch(
      std::string owner_id, std::string run_id, std::int64_t after_seq, WatchFormat format,
      std::optional<std::chrono::system_clock::time_point> credential_expires);

  // Events of `run_id` were committed on this node: wake its feed now instead of at the next poll.
  void committed(const std::string& run_id);
  // A transient event for the run's current watchers on this node (see the header comment).
  void transient(const std::string& run_id, std::string_view type, const nlohmann::json& payload);

  // Watchers open now, over all runs.
  std::size_t watchers() const;

  struct State;  // shared with the watchers (event_hub.cpp)

 private:
  std::shared_ptr<State> state_;
};

}  // namespace samokoder::runs
