#include "runs/event_hub.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/context.hpp"
#include "core/logging.hpp"
#include "http/response.hpp"

namespace samokoder::runs {

namespace {

// Events read per storage round trip; a watcher far behind is caught up in several.
constexpr std::uint32_t kReadBatch = 500;
// Transient events waiting for the hub's thread; past this they are dropped (counted), since a reader
// that far behind would be disconnected as too slow anyway.
constexpr std::size_t kMaxQueuedTransients = 65536;

}  // namespace

nlohmann::json event_document(const sdk::RunEvent& event, bool transient) {
  return {{"seq", transient ? nlohmann::json(nullptr) : nlohmann::json(event.seq)},
          {"type", event.type},
          {"run_id", event.run_id},
          {"created_at", api::format_timestamp(event.created_at)},
          {"payload", event.payload}};
}

namespace {

std::string render(const sdk::RunEvent& event, bool transient, WatchFormat format) {
  const std::string data = http::dump_json(event_document(event, transient));
  if (format == WatchFormat::kWebSocket) return data;
  return http::format_sse_event(transient ? std::string() : std::to_string(event.seq), event.type, data);
}

}  // namespace

// One open stream. Lives as long as the server's stream does; the hub lists it while it is open.
class Watcher;

struct RunEventHub::State {
  ReadEvents read;
  const core::Clock& clock;
  std::chrono::milliseconds poll_interval;
  metrics::Gauge& open_watchers;
  metrics::Counter& events_sent;
  metrics::Counter& transients_dropped;
  std::shared_ptr<spdlog::logger> log;

  mutable std::mutex mutex;
  std::condition_variable wake;
  struct Feed {
    std::string owner_id;
    std::vector<std::shared_ptr<Watcher>> watchers;
  };
  std::map<std::string, Feed, std::less<>> feeds;  // by run id
  std::deque<std::string> due;                     // runs whose feed should read now
  std::set<std::string, std::less<>> queued;       // the same, for de-duplication
  std::deque<sdk::RunEvent> transients;            // to hand to watchers, oldest first
  bool stopping = false;
  std::thread reader;

  State(ReadEvents read_in, const core::Clock& clock_in, metrics::Registry& metrics,
        std::chrono::milliseconds poll)
      : read(std::move(read_in)),
        clock(clock_in),
        poll_interval(poll),
        open_watchers(metrics.gauge("samokoder_run_watchers", "Clients watching a run's events now")),
        events_sent(metrics.counter("samokoder_run_events_sent_total",
                                    "Run events handed to watchers' streams, transient ones included")),
        transients_dropped(
            metrics.counter("samokoder_run_transient_events_dropped_total",
                            "Transient run events (model text, command output) dropped because "
                            "the hub's queue was full")),
        log(core::logger("runs")) {}

  void mark_due_locked(const std::string& run_id) {
    if (queued.insert(run_id).second) due.push_back(run_id);
  }
  void attach(const std::shared_ptr<Watcher>& watcher);
  void detach(const Watcher* watcher);
  void run_reader();
  void deliver_transient(const sdk::RunEvent& event);
  void deliver(const std::string& run_id);
};

class Watcher final : public http::StreamHandler, public std::enable_shared_from_this<Watcher> {
 public:
  Watcher(std::weak_ptr<RunEventHub::State> hub, std::string owner_id, std::string run_id,
          std::int64_t after_seq, WatchFormat format,
          std::optional<std::chrono::system_clock::time_point> expires)
      : hub_(std::move(hub)),
        owner_id_(std::move(owner_id)),
        run_id_(std::move(run_id)),
        format_(format),
        expires_(expires),
        cursor_(after_seq) {}

  void on_open(std::shared_ptr<http::StreamChannel> channel) override {
    {
      std::lock_guard lock(mutex_);
      channel_ = std::move(channel);
    }
    if (auto hub = hub_.lock()) hub->attach(shared_from_this());
  }
  void on_close() override {
    {
      std::lock_guard lock(mutex_);
      channel_.reset();
    }
    if (auto hub = hub_.lock()) hub->detach(this);
  }

  const std::string& owner_id() const noexcept { return owner_id_; }
  const std::string& run_id() const noexcept { return run_id_; }
  WatchFormat format() const noexcept { return format_; }
  // Touched by the hub's reader thread only.
  std::int64_t cursor() const noexcept { return cursor_; }
  void advance(std::int64_t seq) noexcept { cursor_ = seq; }

  bool expired(std::chrono::system_clock::time_point now) const noexcept {
    return expires_ && now >= *expires_;
  }
  void close_expired() {
    std::shared_ptr<http::StreamChannel> channel;
    {
      std::lock_guard lock(mutex_);
      channel = channel_;
    }
    if (channel != nullptr)
      channel->close(http::kClosePolicy, "credentials expired; reconnect with a fresh token");
  }

  // false when the stream is gone or refused the message (too slow a reader: it closed).
  bool send(std::string message) {
    std::shared_ptr<http::StreamChannel> channel;
    {
      std::lock_guard lock(mutex_);
      channel = channel_;
    }
    return channel != nullptr && channel->send(std::move(message));
  }

 private:
  const std::weak_ptr<RunEventHub::State> hub_;
  const std::string owner_id_;
  const std::string run_id_;
  const WatchFormat format_;
  const std::optional<std::chrono::system_clock::time_point> expires_;
  std::int64_t cursor_;
  std::mutex mutex_;
  std::shared_ptr<http::StreamChannel> channel_;
};

void RunEventHub::State::attach(const std::shared_ptr<Watcher>& watcher) {
  std::lock_guard lock(mutex);
  auto& feed = feeds[watcher->run_id()];
  if (feed.owner_id.empty()) feed.owner_id = watcher->owner_id();
  feed.watchers.push_back(watcher);
  open_watchers.add(1);
  mark_due_locked(watcher->run_id());
  wake.notify_one();
}

void RunEventHub::State::detach(const Watcher* watcher) {
  std::lock_guard lock(mutex);
  const auto it = feeds.find(watcher->run_id());
  if (it == feeds.end()) return;
  auto& list = it->second.watchers;
  const auto gone = std::find_if(list.begin(), list.end(), [&](const auto& w) { return w.get() == watcher; });
  if (gone == list.end()) return;
  list.erase(gone);
  open_watchers.add(-1);
  if (list.empty()) feeds.erase(it);
}

void RunEventHub::State::run_reader() {
  auto next_poll = std::chrono::steady_clock::now() + poll_interval;
  std::unique_lock lock(mutex);
  while (!stopping) {
    if (due.empty() && transients.empty())
      wake.wait_until(lock, next_poll, [&] { return stopping || !due.empty() || !transients.empty(); });
    if (stopping) break;
    if (!transients.empty()) {
      // Live text first: it is what a watcher is waiting to see, and it costs no storage read.
      std::deque<sdk::RunEvent> batch;
      batch.swap(transients);
      lock.unlock();
      for (const auto& event : batch)
        deliver_transient(event);
      lock.lock();
      continue;
    }
    if (std::chrono::steady_clock::now() >= next_poll) {
      // The poll: runs executed by another node (or changed by it) have no local commit to wake them.
      // It also ends the streams whose credentials expired.
      std::vector<std::shared_ptr<Watcher>> expired;
      const auto now = clock.now();
      for (const auto& [run_id, feed] : feeds) {
        mark_due_locked(run_id);
        for (const auto& watcher : feed.watchers) {
          if (watcher->expired(now)) expired.push_back(watcher);
        }
      }
      next_poll = std::chrono::steady_clock::now() + poll_interval;
      if (!expired.empty()) {
        lock.unlock();
        for (const auto& watcher : expired)
          watcher->close_expired();
        lock.lock();
      }
      continue;
    }
    if (due.empty()) continue;
    std::string run_id = std::move(due.front());
    due.pop_front();
    queued.erase(run_id);
    lock.unlock();
    deliver(run_id);
    lock.lock();
  }
}

void RunEventHub::State::deliver(const std::string& run_id) {
  std::string owner_id;
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    std::lock_guard lock(mutex);
    const auto it = feeds.find(run_id);
    if (it == feeds.end()) return;
    owner_id = it->second.owner_id;
    watchers = it->second.watchers;
  }
  std::int64_t from = watchers.front()->cursor();
  for (const auto& w : watchers)
    from = std::min(from, w->cursor());
  for (;;) {
    auto events = read(owner_id, run_id, from, kReadBatch);
    if (!events.ok()) {
      log->warn("run {}: reading events for its watchers failed: {}", run_id, events.status().to_string());
      return;  // the next poll tries again
    }
    if (events->empty()) return;
    std::string rendered[2];
    for (const auto& event : *events) {
      rendered[0].clear();
      rendered[1].clear();
      for (const auto& watcher : watchers) {
        if (event.seq <= watcher->cursor()) continue;
        std::string& text = rendered[watcher->format() == WatchFormat::kWebSocket ? 1 : 0];
        if (text.empty()) text = render(event, false, watcher->format());
        // A refused send closed the stream; the client resumes from its last id.
        if (watcher->send(text)) events_sent.add(1);
        watcher->advance(event.seq);
      }
    }
    from = events->back().seq;
    if (events->size() < kReadBatch) return;
  }
}

RunEventHub::RunEventHub(ReadEvents read, const core::Clock& clock, metrics::Registry& metrics,
                         std::chrono::milliseconds poll_interval)
    : state_(std::make_shared<State>(std::move(read), clock, metrics, poll_interval)) {}

RunEventHub::~RunEventHub() {
  stop();
}

void RunEventHub::start() {
  std::lock_guard lock(state_->mutex);
  if (state_->reader.joinable() || state_->stopping) return;
  state_->reader = std::thread([state = state_] { state->run_reader(); });
}

void RunEventHub::stop() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  if (state_->reader.joinable()) state_->reader.join();
}

std::shared_ptr<http::StreamHandler> RunEventHub::watch(
    std::string owner_id, std::string run_id, std::int64_t after_seq, WatchFormat format,
    std::optional<std::chrono::system_clock::time_point> credential_expires) {
  return std::make_shared<Watcher>(state_, std::move(owner_id), std::move(run_id), after_seq, format,
                                   credential_expires);
}

void RunEventHub::committed(const std::string& run_id) {
  std::lock_guard lock(state_->mutex);
  if (!state_->feeds.contains(run_id)) return;
  state_->mark_due_locked(run_id);
  state_->wake.notify_one();
}

void RunEventHub::State::deliver_transient(const sdk::RunEvent& event) {
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    std::lock_guard lock(mutex);
    const auto it = feeds.find(event.run_id);
    if (it == feeds.end()) return;
    watchers = it->second.watchers;
  }
  std::string rendered[2];
  for (const auto& watcher : watchers) {
    std::string& text = rendered[watcher->format() == WatchFormat::kWebSocket ? 1 : 0];
    if (text.empty()) text = render(event, true, watcher->format());
    if (watcher->send(text)) events_sent.add(1);
  }
}

void RunEventHub::transient(const std::string& run_id, std::string_view type, const nlohmann::json& payload) {
  // Called on the thread that produced the text (the outbound HTTP service's event loop for a model's
  // deltas): it only queues, so a run with many watchers never holds up other model streams.
  std::lock_guard lock(state_->mutex);
  if (!state_->feeds.contains(run_id)) return;
  if (state_->transients.size() >= kMaxQueuedTransients) {
    state_->transients_dropped.add(1);  // lossy by nature: the committed record follows
    return;
  }
  sdk::RunEvent event;
  event.run_id = run_id;
  event.type = std::string(type);
  event.payload = payload;
  event.created_at = state_->clock.now();
  state_->transients.push_back(std::move(event));
  state_->wake.notify_one();
}

std::size_t RunEventHub::watchers() const {
  std::lock_guard lock(state_->mutex);
  std::size_t n = 0;
  for (const auto& [run_id, feed] : state_->feeds)
    n += feed.watchers.size();
  return n;
}

}  // namespace samokoder::runs
