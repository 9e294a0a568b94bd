// What the benchmarks that call models share (llm_bench, runs_bench, pipeline_bench): the scripted model server in a
// child process, the direct client that is their reference, and the measuring helpers.
//
//   ModelServerProcess  testing::ScriptedModelServer in a process forked before any thread starts, so
//                       the benchmark's CPU time, RSS and threads are the client's and the kernel's
//                       alone. By default each prompt says what to answer: "deltas=N delay_ms=M
//                       gap_ms=G" gives N content deltas of a few tokens each, after M ms, G ms apart;
//                       pipeline_bench passes its own responder (the scaled app's script).
//   DirectClient        a streamed chat completion straight to the endpoint on the kernel's outbound
//                       HTTP transport: what a plugin author would write, the reference the kernel's
//                       paths are measured against.
//   PeakSampler, HealthzProbe, percentile, latency_summary, process_cpu_us: measuring.
//
// Header-only: each benchmark is one program. Thread-safety: as each class says.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <samokoder/llm_common/sse.hpp>
#include <samokoder/sdk/llm.hpp>

#include "http_client.hpp"
#include "metrics/registry.hpp"
#include "model_server.hpp"
#include "outbound_http/service.hpp"

namespace samokoder::bench {

using Steady = std::chrono::steady_clock;

inline constexpr const char* kModel = "bench-model";
inline constexpr const char* kKey = "sk-bench-0123456789abcdef";

// ---- the model server, in a child process --------------------------------------------------------

inline std::string prompt(int deltas, int delay_ms, int gap_ms) {
  return "deltas=" + std::to_string(deltas) + " delay_ms=" + std::to_string(delay_ms) +
         " gap_ms=" + std::to_string(gap_ms);
}

// One piece of the streamed answer: a few tokens, as models stream them.
inline std::string piece(int index) {
  return " token" + std::to_string(index % 100) + " of the answer";
}

inline std::size_t answer_bytes(int deltas) {
  std::size_t bytes = 0;
  for (int i = 0; i < deltas; ++i)
    bytes += piece(i).size();
  return bytes;
}

inline testing::ModelReply reply_for(const testing::ModelCall& call) {
  const std::string text = call.prompt_text();
  const auto number_after = [&](std::string_view name) {
    const auto at = text.find(name);
    return at == std::string::npos ? 0 : std::stoi(text.substr(at + name.size()));
  };
  testing::ModelReply reply;
  const int deltas = number_after("deltas=");
  reply.deltas.clear();
  for (int i = 0; i < deltas; ++i)
    reply.deltas.push_back(piece(i));
  reply.delay_before_headers = std::chrono::milliseconds(number_after("delay_ms="));
  reply.delay_between_events = std::chrono::milliseconds(number_after("gap_ms="));
  reply.usage = testing::ScriptedUsage{.prompt_tokens = 40,
                                       .completion_tokens = static_cast<std::uint64_t>(4 * deltas)};
  return reply;
}

// Serves until the parent closes its end of `control` (or dies), then exits.
[[noreturn]] inline void serve_models(int port_out, int control, const testing::ScriptedModelServer::Responder& responder) {
  {
    testing::ScriptedModelServer server({.tls = nullptr, .expected_key = kKey, .models = {kModel}});
    server.respond_with(responder);
    const std::uint16_t port = server.port();
    if (::write(port_out, &port, sizeof port) != sizeof port) ::_exit(2);
    ::close(port_out);
    char byte = 0;
    while (::read(control, &byte, 1) != 0 && errno == EINTR) {
    }
  }
  ::_exit(0);
}

// Construct before any thread starts: the child gets a clean copy of a single-threaded process. The
// child answers every call with `responder` (by default reply_for: what the prompt's "deltas=..." says).
class ModelServerProcess {
 public:
  explicit ModelServerProcess(testing::ScriptedModelServer::Responder responder = reply_for) {
    int port_pipe[2];
    int control_pipe[2];
    if (::pipe(port_pipe) != 0 || ::pipe(control_pipe) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(port_pipe[0]);
      ::close(control_pipe[1]);
      serve_models(port_pipe[1], control_pipe[0], responder);
    }
    ::close(port_pipe[1]);
    ::close(control_pipe[0]);
    control_ = control_pipe[1];
    if (::read(port_pipe[0], &port_, sizeof port_) != sizeof port_)
      throw std::runtime_error("the model server process did not start");
    ::close(port_pipe[0]);
  }
  ~ModelServerProcess() {
    ::close(control_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  ModelServerProcess(const ModelServerProcess&) = delete;
  ModelServerProcess& operator=(const ModelServerProcess&) = delete;

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  pid_t pid_ = -1;
  int control_ = -1;
  std::uint16_t port_ = 0;
};

// ---- the direct client ---------------------------------------------------------------------------

// Where a client hands the answer's text, as a caller that shows it would.
class DeltaSink final : public sdk::CompletionObserver {
 public:
  bool on_delta(std::string_view text) override {
    if (deltas == 0) first_delta = Steady::now();
    ++deltas;
    bytes += text.size();
    return true;
  }
  std::size_t deltas = 0;
  std::size_t bytes = 0;
  Steady::time_point first_delta;
};

// A streamed chat completion straight to the endpoint on the kernel's outbound HTTP transport: the
// body streamed through on_body, the SSE parser the providers use and one JSON parse per chunk, on
// keep-alive connections. Thread-safety: complete() may be called from many threads at once.
class DirectClient {
 public:
  DirectClient(const config::HttpClientConfig& config, metrics::Registry& registry, const std::string& base)
      : service_(config, outbound_http::ProxySettings(), registry),
        client_(service_.client("bench.direct")),
        url_(base + "/chat/completions") {}

  // Empty on success, else what went wrong.
  std::string complete(const std::string& text, DeltaSink& sink) {
    using nlohmann::json;
    const json body = {{"model", kModel},
                       {"messages", json::array({{{"role", "user"}, {"content", text}}})},
                       {"max_tokens", 4096},
                       {"stream", true},
                       {"stream_options", {{"include_usage", true}}}};
    sdk::HttpRequest request;
    request.method = "POST";
    request.url = url_;
    request.headers = {{"Authorization", std::string("Bearer ") + kKey, true},
                       {"Content-Type", "application/json", false},
                       {"Accept", "text/event-stream", false}};
    request.body = body.dump();
    llm_common::SseParser parser;
    std::string content;
    bool done = false;
    bool usage = false;
    std::string failure;
    request.on_headers = [&](const sdk::HttpResponseHead& head) {
      if (head.status != 200) failure = "HTTP " + std::to_string(head.status);
      return head.status == 200;
    };
    request.on_body = [&](std::string_view bytes) {
      const auto fed = parser.feed(bytes, [&](const llm_common::SseEvent& event) {
        if (event.data == "[DONE]") return done = true;
        const json chunk = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
        if (!chunk.is_object()) {
          failure = "a chunk that is not a JSON object";
          return false;
        }
        if (const auto found = chunk.find("usage"); found != chunk.end() && found->is_object()) usage = true;
        const auto choices = chunk.find("choices");
        if (choices == chunk.end() || !choices->is_array() || choices->empty()) return true;
        const auto delta = (*choices)[0].find("delta");
        if (delta == (*choices)[0].end() || !delta->is_object()) return true;
        const auto piece_text = delta->find("content");
        if (piece_text != delta->end() && piece_text->is_string()) {
          const auto& text_ref = piece_text->get_ref<const std::string&>();
          // The first chunk names the role with empty content: no delta, as the providers count them.
          if (text_ref.empty()) return true;
          content += text_ref;
          sink.on_delta(text_ref);
        }
        return true;
      });
      return fed == llm_common::SseParser::Feed::kMore;
    };
    auto response = client_->send(request, sdk::never_cancelled());
    if (!response.ok()) return response.status().to_string();
    if (!failure.empty()) return failure;
    if (!done || !usage) return "the stream ended early";
    return {};
  }

 private:
  outbound_http::Service service_;
  std::unique_ptr<outbound_http::PluginClient> client_;
  std::string url_;
};

// ---- measuring -----------------------------------------------------------------------------------

inline double micros(Steady::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

inline double process_cpu_us() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
}

inline double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

inline nlohmann::json latency_summary(const std::vector<double>& values) {
  return {{"count", values.size()},
          {"p50", percentile(values, 50)},
          {"p99", percentile(values, 99)},
          {"max", values.empty() ? 0.0 : *std::max_element(values.begin(), values.end())}};
}

// Peak RSS and thread count of this process, sampled every `period` while it runs (a sample reads
// /proc/self/status: tens of microseconds with hundreds of threads).
class PeakSampler {
 public:
  explicit PeakSampler(std::chrono::milliseconds period = std::chrono::milliseconds(10))
      : period_(period), thread_([this] { run(); }) {}
  ~PeakSampler() {
    stop_ = true;
    thread_.join();
  }
  PeakSampler(const PeakSampler&) = delete;
  PeakSampler& operator=(const PeakSampler&) = delete;
  long peak_rss_kib() const { return rss_.load(); }
  long peak_threads() const { return threads_.load(); }

  // {VmRSS in KiB, threads} of this process now.
  static std::pair<long, long> now() {
    std::ifstream status("/proc/self/status");
    long rss = 0;
    long threads = 0;
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmRSS:", 0) == 0) rss = std::stol(line.substr(6));
      if (line.rfind("Threads:", 0) == 0) threads = std::stol(line.substr(8));
    }
    return {rss, threads};
  }

 private:
  void run() {
    while (!stop_) {
      const auto [rss, threads] = now();
      rss_ = std::max(rss_.load(), rss);
      threads_ = std::max(threads_.load(), threads);
      std::this_thread::sleep_for(period_);
    }
  }
  const std::chrono::milliseconds period_;
  std::atomic<bool> stop_{false};
  std::atomic<long> rss_{0};
  std::atomic<long> threads_{0};
  std::thread thread_;
};

// GET /healthz over one keep-alive connection, every `interval` (0: back to back), each latency filed
// under the phase it started in (set_phase, 0 .. phases - 1). The latencies are read after stop().
class HealthzProbe {
 public:
  HealthzProbe(std::uint16_t port, std::chrono::milliseconds interval, int phases = 2)
      : client_("127.0.0.1", port),
        interval_(interval),
        latencies_(static_cast<std::size_t>(phases)),
        thread_([this] { run(); }) {}
  ~HealthzProbe() { stop(); }
  HealthzProbe(const HealthzProbe&) = delete;
  HealthzProbe& operator=(const HealthzProbe&) = delete;

  void set_phase(int phase) { phase_ = phase; }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const std::vector<double>& latencies_ms(int phase) const {
    return latencies_[static_cast<std::size_t>(phase)];
  }
  std::size_t errors() const { return errors_; }

 private:
  void run() {
    while (!stop_) {
      const int phase = phase_;
      const auto started = Steady::now();
      try {
        if (client_.get("/healthz").status != 200) ++errors_;
      } catch (const std::exception&) {
        ++errors_;
      }
      latencies_[static_cast<std::size_t>(phase)].push_back(micros(Steady::now() - started) / 1000.0);
      if (interval_.count() > 0) std::this_thread::sleep_for(interval_);
    }
  }
  testing::HttpClient client_;
  const std::chrono::milliseconds interval_;
  std::atomic<int> phase_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::vector<double>> latencies_;
  std::atomic<std::size_t> errors_{0};
  std::thread thread_;
};

}  // namespace samokoder::bench
