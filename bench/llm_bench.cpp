// LLM benchmarks, in-process (docs/performance.md "LLM gateway"): what the kernel's way to a model
// costs per completion, and whether the server stays responsive while hundreds of completions are in
// flight.
//
//   overhead    one streamed chat completion to the scripted model server, made directly and through
//               Application::llm()->complete (gateway, llm.openai plugin, outbound HTTP, the storage
//               record and metrics), for each --deltas count. The direct client is the one a plugin
//               author would write on the kernel's own transport: outbound_http's PluginClient::send
//               with the body streamed through on_body, the SSE parser the providers use and one JSON
//               parse per chunk, on a keep-alive connection. Both run in alternating blocks of --block
//               calls in this process, so machine noise hits both alike. Reported: wall time per call
//               (p50, p99) and process CPU time per call (CLOCK_PROCESS_CPUTIME_ID over each block).
//   concurrent  --streams gateway calls at once, one caller thread each (complete() blocks its thread),
//               against a model server that waits --delay-ms before its headers, while one client
//               measures GET /healthz on the running Application over HTTP every --probe-interval-ms;
//               /healthz is measured without that load first, in the same run. Reported: calls that
//               failed, total wall time against one such call alone, /healthz p50/p99/max idle and under
//               load, peak RSS and thread count of this process.
//
// The model server (testing::ScriptedModelServer) runs in a child process forked before any thread
// starts, so this process's CPU time, RSS and threads are the client's and the kernel's alone. Each
// prompt tells it what to answer: "deltas=N delay_ms=M" gives N content deltas of a few tokens each,
// after M ms. Both, the direct client and the measuring helpers are in bench/model_bench.hpp, shared
// with runs_bench.
//
// Prints one JSON object on stdout. Exit status 1 when an overhead call failed or answered wrongly (the
// figures would be meaningless), 2 when the program could not run; failed concurrent streams are counted
// in the result and left to the harness to report.
//
//   llm_bench [--calls N] [--warmup N] [--block N] [--deltas 200,1] [--streams N] [--delay-ms MS]
//             [--stream-deltas N] [--gap-ms MS] [--idle-ms MS] [--probe-interval-ms MS]
//             [--outbound-threads N]
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <samokoder/sdk/storage.hpp>

#include "app/application.hpp"
#include "core/clock.hpp"
#include "core/logging.hpp"
#include "model_bench.hpp"
#include "security/random.hpp"

namespace {

using namespace samokoder;
using nlohmann::json;
using namespace samokoder::bench;

struct Options {
  int calls = 1000;  // per variant and delta count
  int warmup = 50;
  int block = 25;
  std::vector<int> deltas = {200, 1};
  int streams = 500;
  int delay_ms = 1000;
  int stream_deltas = 200;
  // Between two events of a concurrent stream. 0: every stream bursts its events the moment the delay
  // is over, all at once, the worst case for the kernel (a real model paces its tokens).
  int gap_ms = 0;
  int idle_ms = 3000;
  int probe_interval_ms = 5;
  int outbound_threads = 0;  // http_client.threads of the kernel; 0: the config's default
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + arg);
    const std::string value = argv[++i];
    if (arg == "--deltas") {
      options.deltas.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');)
        options.deltas.push_back(std::stoi(item));
      continue;
    }
    const std::pair<const char*, int Options::*> numbers[] = {
        {"--calls", &Options::calls},
        {"--warmup", &Options::warmup},
        {"--block", &Options::block},
        {"--streams", &Options::streams},
        {"--delay-ms", &Options::delay_ms},
        {"--stream-deltas", &Options::stream_deltas},
        {"--gap-ms", &Options::gap_ms},
        {"--idle-ms", &Options::idle_ms},
        {"--probe-interval-ms", &Options::probe_interval_ms},
        {"--outbound-threads", &Options::outbound_threads}};
    const auto known = std::find_if(std::begin(numbers), std::end(numbers),
                                    [&](const auto& option) { return arg == option.first; });
    if (known == std::end(numbers)) throw std::invalid_argument("unknown option " + arg);
    const int number = std::stoi(value);
    if (number < 0) throw std::invalid_argument(arg + " must not be negative");
    options.*(known->second) = number;
  }
  options.block = std::max(1, options.block);
  return options;
}

class Kernel {
 public:
  Kernel(const std::filesystem::path& dir, const std::string& model_base, int outbound_threads) {
    config::Config config;
    if (outbound_threads > 0) config.http_client.threads = static_cast<std::uint32_t>(outbound_threads);
    config.server.listen = {"127.0.0.1", 0};
    config.log.level = "warn";
    config.log.access_log = false;
    config.plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
    config.plugins.runtime_dir = dir / "run";
    config::PluginEntry storage;
    storage.id = "storage.sqlite";
    storage.file = "storage_sqlite.so";
    storage.required = true;
    storage.config = {{"path", (dir / "samokoder.db").string()}};
    config::PluginEntry openai;
    openai.id = "llm.openai";
    openai.file = "llm_openai.so";
    openai.required = true;
    config.plugins.plugins = {storage, openai};
    config.security.secret_key = security::random_token(48).value();
    config.processes.state_dir = dir / "processes";
    config.workspace_root = dir / "workspaces";
    config.llm.providers["openai"].base_url = model_base;
    config.llm.providers["openai"].api_key = kKey;
    config.llm.roles = {{"default", {std::string("openai/") + kModel}}};
    // A price, so every record carries a computed cost as in production.
    config.llm.prices[std::string("openai/") + kModel] = {
        .prompt_usd_per_mtok = 1.0, .completion_usd_per_mtok = 4.0, .cached_prompt_usd_per_mtok = 0.5};
    http_client = config.http_client;
    app = std::make_unique<app::Application>(std::move(config), clock_);
    if (const sdk::Status started = app->start(); !started.ok())
      throw std::runtime_error("the kernel did not start: " + started.to_string());
    auto user = app->storage().call<sdk::Storage>([](sdk::Storage& s) {
      return s.store<sdk::UserStore>().create_user(
          {.email = "bench@example.com", .password_hash = "x", .is_admin = false, .tier = "free"});
    });
    if (!user.ok()) throw std::runtime_error("cannot create the user: " + user.status().to_string());
    user_id = user->id;
  }
  ~Kernel() { app->stop(); }
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // Empty on success, else what went wrong.
  std::string complete(const std::string& text, DeltaSink& sink) {
    llm::LlmCall call;
    call.user_id = user_id;
    call.role = "default";
    call.messages = {{"user", text, false}};
    auto answer = app->llm()->complete(call, &sink, sdk::never_cancelled());
    if (!answer.ok()) return answer.status().to_string();
    return {};
  }

  core::SystemClock clock_;
  config::HttpClientConfig http_client;
  std::unique_ptr<app::Application> app;
  std::string user_id;
};

// ---- measuring -----------------------------------------------------------------------------------

struct Series {
  std::vector<double> wall_us;
  double cpu_us = 0;
};

using Call = std::function<std::string(const std::string&, DeltaSink&)>;

// One call, checked: the whole answer arrived, delta by delta.
void checked(const Call& call, const std::string& text, int deltas, const char* who) {
  DeltaSink sink;
  const std::string failure = call(text, sink);
  if (!failure.empty()) throw std::runtime_error(std::string(who) + ": " + failure);
  if (sink.deltas != static_cast<std::size_t>(deltas) || sink.bytes != answer_bytes(deltas))
    throw std::runtime_error(std::string(who) + ": got " + std::to_string(sink.deltas) + " deltas and " +
                             std::to_string(sink.bytes) + " bytes, expected " + std::to_string(deltas) +
                             " and " + std::to_string(answer_bytes(deltas)));
}

json measure_overhead(const Options& options, int deltas, const Call& direct, const Call& gateway) {
  const std::string text = prompt(deltas, 0, 0);
  const Call* variants[] = {&direct, &gateway};
  const char* names[] = {"direct", "gateway"};
  for (int i = 0; i < options.warmup; ++i) {
    for (int v = 0; v < 2; ++v)
      checked(*variants[v], text, deltas, names[v]);
  }
  Series series[2];
  const int blocks = (options.calls + options.block - 1) / options.block;
  for (int b = 0; b < blocks; ++b) {
    // Alternating which goes first, so neither always follows the other's leftovers.
    for (int turn = 0; turn < 2; ++turn) {
      const int v = (b + turn) % 2;
      const double cpu_before = process_cpu_us();
      for (int i = 0; i < options.block; ++i) {
        const auto started = Steady::now();
        checked(*variants[v], text, deltas, names[v]);
        series[v].wall_us.push_back(micros(Steady::now() - started));
      }
      series[v].cpu_us += process_cpu_us() - cpu_before;
    }
  }
  json out = {
      {"deltas", deltas}, {"answer_bytes", answer_bytes(deltas)}, {"calls", series[0].wall_us.size()}};
  for (int v = 0; v < 2; ++v) {
    const auto& s = series[v];
    double sum = 0;
    for (double w : s.wall_us)
      sum += w;
    out[names[v]] = {{"wall_p50_us", percentile(s.wall_us, 50)},
                     {"wall_p99_us", percentile(s.wall_us, 99)},
                     {"wall_mean_us", sum / static_cast<double>(s.wall_us.size())},
                     {"cpu_us_per_call", s.cpu_us / static_cast<double>(s.wall_us.size())}};
  }
  return out;
}

json measure_concurrent(const Options& options, Kernel& kernel) {
  const std::string text = prompt(options.stream_deltas, options.delay_ms, options.gap_ms);
  // One such call alone: the ideal wall time of all of them at once.
  const auto alone_started = Steady::now();
  checked([&](const std::string& t, DeltaSink& s) { return kernel.complete(t, s); }, text,
          options.stream_deltas, "gateway");
  const double alone_ms = micros(Steady::now() - alone_started) / 1000.0;

  HealthzProbe probe(kernel.app->port(), std::chrono::milliseconds(options.probe_interval_ms));
  std::this_thread::sleep_for(std::chrono::milliseconds(options.idle_ms));
  const auto [rss_before, threads_before] = PeakSampler::now();

  struct Outcome {
    std::string failure;
    double ms = 0;
    double first_delta_ms = 0;  // from the release of all callers
  };
  std::vector<Outcome> outcomes(static_cast<std::size_t>(options.streams));
  std::mutex mutex;
  std::condition_variable go;
  bool released = false;
  Steady::time_point started;
  std::vector<std::thread> callers;
  std::optional<PeakSampler> sampler;
  sampler.emplace();
  probe.set_phase(1);
  for (int i = 0; i < options.streams; ++i) {
    callers.emplace_back([&, i] {
      {
        std::unique_lock lock(mutex);
        go.wait(lock, [&] { return released; });
      }
      DeltaSink sink;
      const auto begun = Steady::now();
      Outcome& outcome = outcomes[static_cast<std::size_t>(i)];
      outcome.failure = kernel.complete(text, sink);
      if (outcome.failure.empty() && sink.bytes != answer_bytes(options.stream_deltas))
        outcome.failure = "an incomplete answer";
      outcome.ms = micros(Steady::now() - begun) / 1000.0;
      outcome.first_delta_ms = micros(sink.first_delta - started) / 1000.0;
    });
  }
  {
    const std::lock_guard lock(mutex);
    released = true;
    started = Steady::now();
  }
  go.notify_all();
  for (auto& caller : callers)
    caller.join();
  const double wall_ms = micros(Steady::now() - started) / 1000.0;
  probe.stop();
  const long peak_rss = sampler->peak_rss_kib();
  const long peak_threads = sampler->peak_threads();
  sampler.reset();

  std::size_t failed = 0;
  json failures = json::array();
  std::vector<double> call_ms;
  std::vector<double> first_delta_ms;
  for (const auto& outcome : outcomes) {
    call_ms.push_back(outcome.ms);
    if (outcome.failure.empty()) first_delta_ms.push_back(outcome.first_delta_ms);
    if (outcome.failure.empty()) continue;
    ++failed;
    if (failures.size() < 5) failures.push_back(outcome.failure);
  }
  return {{"streams", options.streams},
          {"caller_threads", options.streams},
          {"delay_ms", options.delay_ms},
          {"deltas", options.stream_deltas},
          {"gap_ms", options.gap_ms},
          {"failed", failed},
          {"failures", failures},
          {"wall_ms", wall_ms},
          {"one_call_alone_ms", alone_ms},
          {"call_ms", latency_summary(call_ms)},
          {"first_delta_ms", latency_summary(first_delta_ms)},
          {"healthz_idle_ms", latency_summary(probe.latencies_ms(0))},
          {"healthz_load_ms", latency_summary(probe.latencies_ms(1))},
          {"healthz_errors", probe.errors()},
          {"rss_kib_before", rss_before},
          {"threads_before", threads_before},
          {"peak_rss_kib", peak_rss},
          {"peak_threads", peak_threads}};
}

int run(const Options& options) {
  // Before any thread exists: the child gets a clean copy of a single-threaded process.
  std::optional<ModelServerProcess> models;
  try {
    models.emplace();
  } catch (const std::exception& e) {
    std::cerr << "llm_bench: " << e.what() << "\n";
    return 2;
  }
  core::init_logging(config::LogConfig{.level = "warn", .format = "text", .access_log = false});
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("samokoder-llm-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  json result = {{"settings",
                  {{"calls", options.calls},
                   {"warmup", options.warmup},
                   {"block", options.block},
                   {"probe_interval_ms", options.probe_interval_ms},
                   {"idle_ms", options.idle_ms},
                   {"outbound_threads", options.outbound_threads}}}};
  int exit_code = 0;
  try {
    Kernel kernel(dir, models->base_url(), options.outbound_threads);
    metrics::Registry direct_metrics;
    DirectClient direct_client(kernel.http_client, direct_metrics, models->base_url());
    const Call direct = [&](const std::string& text, DeltaSink& sink) {
      return direct_client.complete(text, sink);
    };
    const Call gateway = [&](const std::string& text, DeltaSink& sink) {
      return kernel.complete(text, sink);
    };
    result["overhead"] = json::array();
    for (const int deltas : options.deltas) {
      if (options.calls > 0) result["overhead"].push_back(measure_overhead(options, deltas, direct, gateway));
    }
    if (options.streams > 0) result["concurrent"] = measure_concurrent(options, kernel);
  } catch (const std::exception& e) {
    std::cerr << "llm_bench: " << e.what() << "\n";
    exit_code = 1;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (exit_code == 0) std::cout << result.dump() << std::endl;
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "llm_bench: " << e.what() << " (see the options at the top of bench/llm_bench.cpp)\n";
    return 2;
  }
  return run(options);
}
