// Runs engine benchmarks, in-process (docs/performance.md "Runs"): a real kernel (Application with
// storage.sqlite, auth.local, llm.openai pointed at the scripted model server, and the runs suite's
// fixture agents as its pipeline: planner, then finisher), driven over HTTP as a client would.
//
//   concurrent  --runs runs started at once over HTTP (one client thread each, released together), each
//               making --calls model calls (the planner's one, then the finisher's --calls - 1) to a
//               model that waits --delay-ms before its headers and then streams --deltas deltas. The
//               reference, in the same kernel process just before: the same number of chains of
//               --calls direct calls (DirectClient, model_bench.hpp), one thread per chain, released
//               together; and first one chain and one run alone (no contention). Reported for each: total
//               wall time against the latency bound (calls x delay), per chain (a run: created_at to
//               finished_at as stored) the overhead per call, (wall - calls x delay) / calls, and process
//               CPU time per model call (getrusage over the phase / calls); the runs' created-to-started
//               time (claiming), peak thread count and RSS; /healthz p50/p99/max from one client every
//               --probe-interval-ms, idle, during the direct chains and during the runs.
//   paused      runs.workers warm-up runs whose model calls overlap (every worker thread used once), then
//               two batches of --paused runs that pause in input_required (the planner's "[ask]"),
//               started by 8 client threads: VmRSS of this process before and after each batch
//               (malloc_trim'd, and raw) per run, SQLite's own heap apart; the engine's active_runs() and
//               the thread count after (a paused run holds neither).
//   fanout      --subscribers SSE clients of one run (GET /api/v1/runs/{id}/events), read by
//               --reader-threads epoll threads on non-blocking sockets. The run pauses at its question
//               so every client connects and catches up first; then the answer lets it finish (the
//               planner's call replayed from the record, then the finisher's --fanout-calls model calls of
//               --fanout-deltas deltas each, no delay, every delta a transient llm.delta event). Reported:
//               from the answer to the last client's run.finished, against the same run answered with nobody
//               watching; run.finished's commit (its created_at) to its first and last receipt;
//               commit-to-receipt latency of every committed and transient event at every client; the
//               server's CPU time (the process's, minus the reader threads' own); events each client
//               received.
//
// Every section runs on a fresh kernel and database. The model server runs in a child process forked
// before any thread starts, so this process's CPU time, RSS and threads are the kernel's and the
// clients'. Prints one JSON object on stdout; exit status 1 when a section could not be measured (a
// request failed, a run did not end), 2 when the program could not run. Failed runs are counted in the
// result. Nothing here asserts a figure.
//
//   runs_bench [--runs N] [--calls N] [--delay-ms MS] [--deltas N] [--workers N] [--idle-ms MS]
//              [--probe-interval-ms MS] [--paused N] [--subscribers N] [--reader-threads N]
//              [--fanout-calls N] [--fanout-deltas N] [--sections concurrent,paused,fanout]
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nlohmann/json.hpp>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <samokoder/sdk/storage.hpp>

#include "api/context.hpp"
#include "app/application.hpp"
#include "core/clock.hpp"
#include "core/logging.hpp"
#include "model_bench.hpp"
#include "runs/engine.hpp"
#include "runs/run_record.hpp"
#include "security/random.hpp"

namespace {

using namespace samokoder;
using namespace samokoder::bench;
using boost::beast::http::verb;
using nlohmann::json;
using SystemTime = std::chrono::system_clock::time_point;

constexpr const char* kPassword = "violet-anchor-47-quietly";
constexpr const char* kEndedHelp = "Runs that ended or paused on this node, by outcome";
constexpr const char* kEventsSentHelp = "Run events handed to watchers' streams, transient ones included";

struct Options {
  int runs = 200;
  int calls = 10;  // model calls per run, the planner's included
  int delay_ms = 1000;
  int deltas = 20;
  int workers = 0;  // runs.workers; 0: --runs (every run holds a worker while its model call streams)
  int idle_ms = 2000;
  int probe_interval_ms = 5;
  int paused = 500;
  int subscribers = 1000;
  int reader_threads = 2;
  int fanout_calls = 5;
  int fanout_deltas = 20;
  std::set<std::string> sections = {"concurrent", "paused", "fanout"};
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + arg);
    const std::string value = argv[++i];
    if (arg == "--sections") {
      options.sections.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');) {
        if (item != "concurrent" && item != "paused" && item != "fanout")
          throw std::invalid_argument("unknown section " + item);
        options.sections.insert(item);
      }
      continue;
    }
    const std::pair<const char*, int Options::*> numbers[] = {
        {"--runs", &Options::runs},
        {"--calls", &Options::calls},
        {"--delay-ms", &Options::delay_ms},
        {"--deltas", &Options::deltas},
        {"--workers", &Options::workers},
        {"--idle-ms", &Options::idle_ms},
        {"--probe-interval-ms", &Options::probe_interval_ms},
        {"--paused", &Options::paused},
        {"--subscribers", &Options::subscribers},
        {"--reader-threads", &Options::reader_threads},
        {"--fanout-calls", &Options::fanout_calls},
        {"--fanout-deltas", &Options::fanout_deltas}};
    const auto known = std::find_if(std::begin(numbers), std::end(numbers),
                                    [&](const auto& option) { return arg == option.first; });
    if (known == std::end(numbers)) throw std::invalid_argument("unknown option " + arg);
    const int number = std::stoi(value);
    if (number < 0) throw std::invalid_argument(arg + " must not be negative");
    options.*(known->second) = number;
  }
  options.calls = std::max(1, options.calls);
  options.reader_threads = std::max(1, options.reader_threads);
  if (options.workers == 0) options.workers = std::max(1, options.runs);
  return options;
}

double rusage_cpu_us() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto us = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

double thread_cpu_us(std::thread& thread) {
  clockid_t clock{};
  if (::pthread_getcpuclockid(thread.native_handle(), &clock) != 0) return 0;
  timespec now{};
  ::clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
}

double ms_between(SystemTime from, SystemTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Lets a group of threads start together (the first release) and stay alive until told to go (the
// second), so that their stacks neither appear nor vanish inside a measurement.
class Gate {
 public:
  void wait_open(int phase) {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [&] { return phase_ >= phase; });
  }
  void open(int phase) {
    {
      std::lock_guard lock(mutex_);
      phase_ = phase;
    }
    opened_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  int phase_ = 0;
};

// ---- the kernel ----------------------------------------------------------------------------------

config::PluginEntry plugin(std::string id, std::string file, json config = json::object()) {
  config::PluginEntry entry;
  entry.id = std::move(id);
  entry.file = std::move(file);
  entry.required = true;
  entry.config = std::move(config);
  return entry;
}

class Kernel {
 public:
  Kernel(const std::filesystem::path& dir, const std::string& model_base, int workers) : dir_(dir) {
    std::filesystem::create_directories(dir);
    config::Config config;
    config.server.listen = {"127.0.0.1", 0};
    config.log.level = "warn";
    config.log.access_log = false;
    config.plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
    config.plugins.runtime_dir = dir / "run";
    config.plugins.plugins = {
        plugin("storage.sqlite", "storage_sqlite.so", {{"path", database().string()}}),
        // Cheap password hashing: sign-up is not what is measured.
        plugin("auth.local", "auth_local.so",
               {{"memory_kib", 1024u}, {"iterations", 1u}, {"parallelism", 1u}}),
        plugin("llm.openai", "llm_openai.so"),
        plugin("agent.fixture_planner", std::string(SAMOKODER_RUNS_FIXTURE_DIR) + "/planner.so"),
        plugin("agent.fixture_finisher", std::string(SAMOKODER_RUNS_FIXTURE_DIR) + "/finisher.so")};
    config.security.secret_key = security::random_token(48).value();
    // Hundreds of requests a second from one user and address: the limiter is not what is measured.
    for (const char* group : {"auth", "default", "files"})
      config.security.rate_limits[group] = {1'000'000, 1'000'000};
    config.processes.state_dir = dir / "processes";
    config.workspace_root = dir / "workspaces";
    config.llm.providers["openai"].base_url = model_base;
    config.llm.providers["openai"].api_key = kKey;
    config.llm.roles = {{"default", {std::string("openai/") + kModel}}};
    config.llm.prices[std::string("openai/") + kModel] = {
        .prompt_usd_per_mtok = 1.0, .completion_usd_per_mtok = 4.0, .cached_prompt_usd_per_mtok = 0.5};
    config.runs.pipeline = {"agent.fixture_planner", "agent.fixture_finisher"};
    config.runs.workers = static_cast<std::uint32_t>(workers);
    http_client = config.http_client;
    runs_config = config.runs;
    app = std::make_unique<app::Application>(std::move(config), clock_);
    if (const sdk::Status started = app->start(); !started.ok())
      throw std::runtime_error("the kernel did not start: " + started.to_string());
    client = std::make_unique<testing::HttpClient>("127.0.0.1", app->port(), std::chrono::seconds(60));
    const json credentials = {{"email", "bench@example.com"}, {"password", kPassword}};
    const testing::HeaderList json_type = {{"Content-Type", "application/json"}};
    const auto registered =
        client->request(verb::post, "/api/v1/auth/register", credentials.dump(), json_type);
    if (registered.status != 202) throw std::runtime_error("register: " + registered.body);
    const auto login = client->request(verb::post, "/api/v1/auth/login", credentials.dump(), json_type);
    if (login.status != 200) throw std::runtime_error("login: " + login.body);
    token = login.json().value("access_token", "");
    user_id = login.json()["user"].value("id", "");
  }
  ~Kernel() {
    client.reset();
    app->stop();
  }
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  std::filesystem::path database() const { return dir_ / "samokoder.db"; }
  testing::HeaderList auth() const { return {{"Authorization", "Bearer " + token}}; }
  testing::HeaderList auth_json() const {
    return {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  }

  std::string create_project(testing::HttpClient& http, const std::string& name) {
    const auto response =
        http.request(verb::post, "/api/v1/projects", json{{"name", name}}.dump(), auth_json());
    if (response.status != 201) throw std::runtime_error("create project: " + response.body);
    return response.json().value("id", "");
  }
  // POST /projects/{id}/runs; the run's id, or empty with `failure` set.
  std::string start_run(testing::HttpClient& http, const std::string& project, const std::string& description,
                        std::string& failure) {
    try {
      const auto response = http.request(verb::post, "/api/v1/projects/" + project + "/runs",
                                         json{{"description", description}}.dump(), auth_json());
      if (response.status == 201) return response.json().value("id", "");
      failure = "HTTP " + std::to_string(response.status) + ": " + response.body.substr(0, 200);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    return {};
  }

  // Runs that ended (or paused) on this node with `outcome` since the kernel started.
  double ended(const char* outcome) {
    return app->metrics().counter("samokoder_runs_ended_total", kEndedHelp, {{"outcome", outcome}}).value();
  }
  // The same for every end, from counters looked up once: wait loops read it every few milliseconds.
  double all_ended() {
    if (ended_counters_.empty()) {
      for (const char* outcome : {"succeeded", "failed", "cancelled"})
        ended_counters_.push_back(
            &app->metrics().counter("samokoder_runs_ended_total", kEndedHelp, {{"outcome", outcome}}));
    }
    double sum = 0;
    for (const auto* counter : ended_counters_)
      sum += counter->value();
    return sum;
  }

  sdk::Result<sdk::Run> get_run(const std::string& id) {
    return app->storage().call<sdk::Storage>(
        [&](sdk::Storage& s) { return s.store<sdk::RunStore>().get_run(user_id, id); });
  }
  // Committed events of the run of type `type`.
  std::size_t count_events(const std::string& run_id, const std::string& type) {
    std::size_t n = 0;
    std::int64_t after = 0;
    for (;;) {
      auto events = app->storage().call<sdk::Storage>([&](sdk::Storage& s) {
        return s.store<sdk::RunStore>().list_run_events(user_id, run_id, after, 500);
      });
      if (!events.ok() || events->empty()) return n;
      for (const auto& e : *events)
        n += e.type == type ? 1 : 0;
      after = events->back().seq;
      if (events->size() < 500) return n;
    }
  }

  core::SystemClock clock_;
  std::filesystem::path dir_;
  config::HttpClientConfig http_client;
  config::RunsConfig runs_config;
  std::unique_ptr<app::Application> app;
  std::unique_ptr<testing::HttpClient> client;
  std::string token;
  std::string user_id;

 private:
  std::vector<const metrics::Counter*> ended_counters_;
};

// Waits until `done()` or `timeout`, checking every 5 ms; false on timeout.
template <typename F>
bool wait_until(F&& done, std::chrono::milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  while (!done()) {
    if (Steady::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::string run_description(int calls, int deltas, int delay_ms, const char* extra = "") {
  // The planner makes one call, the finisher [calls=N]; every prompt quotes the description, so the
  // model server reads deltas= and delay_ms= from each.
  return std::string(extra) + "[calls=" + std::to_string(calls - 1) + "] " + prompt(deltas, delay_ms, 0);
}

// ---- concurrent runs against direct chains -------------------------------------------------------

struct Chains {
  double wall_ms = 0;
  double cpu_us = 0;
  std::vector<double> chain_ms;
  long peak_threads = 0;
  long peak_rss_kib = 0;
};

constexpr std::chrono::milliseconds kSamplePeriod{100};

json chain_summary(const Options& o, const Chains& c, double calls) {
  const double bound_ms = static_cast<double>(o.calls) * o.delay_ms;
  std::vector<double> per_call_us;
  for (double ms : c.chain_ms)
    per_call_us.push_back((ms - bound_ms) * 1000.0 / o.calls);
  return {{"wall_ms", c.wall_ms},
          {"wall_vs_bound", c.wall_ms / bound_ms},
          {"chain_ms", latency_summary(c.chain_ms)},
          {"overhead_per_call_us", latency_summary(per_call_us)},
          {"cpu_ms", c.cpu_us / 1000.0},
          {"cpu_us_per_call", c.cpu_us / calls}};
}

// `count` chains of o.calls direct calls at once, one thread per chain.
// Sampled for the peak of threads and RSS when `sample` (in both concurrent phases, so that the sampler's
// own CPU time weighs on both alike).
Chains direct_chains(const Options& o, DirectClient& direct, std::size_t count,
                     std::vector<std::string>& failures, bool sample) {
  Chains out;
  std::mutex failures_mutex;
  Gate gate;
  Steady::time_point released;
  out.chain_ms.assign(count, 0);
  std::atomic<std::size_t> finished{0};
  std::vector<std::thread> chains;
  const std::string text = prompt(o.deltas, o.delay_ms, 0);
  for (std::size_t i = 0; i < count; ++i) {
    chains.emplace_back([&, i] {
      gate.wait_open(1);
      for (int c = 0; c < o.calls; ++c) {
        DeltaSink sink;
        std::string failure = direct.complete(text, sink);
        if (failure.empty() && sink.bytes != answer_bytes(o.deltas)) failure = "an incomplete answer";
        if (!failure.empty()) {
          std::lock_guard lock(failures_mutex);
          failures.push_back(failure);
        }
      }
      out.chain_ms[i] = micros(Steady::now() - released) / 1000.0;
      ++finished;
    });
  }
  std::optional<PeakSampler> sampler;
  if (sample) sampler.emplace(kSamplePeriod);
  const double cpu_before = rusage_cpu_us();
  released = Steady::now();
  gate.open(1);
  // Polled as the runs' end is (start_runs), so that both phases pay for the same wake-ups.
  wait_until([&] { return finished == count; }, std::chrono::hours(1));
  out.wall_ms = micros(Steady::now() - released) / 1000.0;
  out.cpu_us = rusage_cpu_us() - cpu_before;
  for (auto& t : chains)
    t.join();
  if (sampler) {
    out.peak_threads = sampler->peak_threads();
    out.peak_rss_kib = sampler->peak_rss_kib();
  }
  return out;
}

struct RunsPhase {
  Chains chains;  // chain_ms: per run, created_at to finished_at as stored
  std::vector<double> since_release_ms;
  std::vector<double> claim_ms;  // created_at to started_at: waiting to be claimed and loaded
  std::size_t succeeded = 0;
  std::size_t exchanges = 0;
  std::vector<std::string> start_failures;
  json run_failures = json::array();
  bool all_ended = false;
  long threads_before = 0;
  long peak_threads = 0;
  long peak_rss_kib = 0;
};

// `count` runs started at once over HTTP, one client thread each (connected before the release).
RunsPhase start_runs(const Options& o, Kernel& kernel, const std::vector<std::string>& projects,
                     bool sample) {
  RunsPhase out;
  const std::size_t count = projects.size();
  std::vector<std::string> run_ids(count);
  std::atomic<std::size_t> start_failed{0};
  SystemTime released_at;
  const double ended_before = kernel.all_ended();
  {
    std::mutex failures_mutex;
    Gate gate;
    std::vector<std::thread> clients;
    std::atomic<std::size_t> connected{0};
    const std::string description = run_description(o.calls, o.deltas, o.delay_ms);
    for (std::size_t i = 0; i < count; ++i) {
      clients.emplace_back([&, i] {
        testing::HttpClient http("127.0.0.1", kernel.app->port(), std::chrono::seconds(60));
        http.get("/healthz");  // connected before the release
        ++connected;
        gate.wait_open(1);
        std::string failure;
        run_ids[i] = kernel.start_run(http, projects[i], description, failure);
        if (!failure.empty()) {
          std::lock_guard lock(failures_mutex);
          out.start_failures.push_back(failure);
          ++start_failed;
        }
        gate.wait_open(2);
      });
    }
    wait_until([&] { return connected == count; }, std::chrono::seconds(60));
    out.threads_before = PeakSampler::now().second;
    std::optional<PeakSampler> sampler;
    if (sample) sampler.emplace(kSamplePeriod);
    const double cpu_before = rusage_cpu_us();
    const auto released = Steady::now();
    released_at = std::chrono::system_clock::now();
    gate.open(1);
    const auto timeout = std::chrono::milliseconds(static_cast<long>(o.calls) * o.delay_ms * 5 + 120000);
    out.all_ended = wait_until(
        [&] { return kernel.all_ended() - ended_before >= static_cast<double>(count - start_failed); },
        timeout);
    out.chains.wall_ms = micros(Steady::now() - released) / 1000.0;
    out.chains.cpu_us = rusage_cpu_us() - cpu_before;
    if (sampler) {
      out.peak_threads = sampler->peak_threads();
      out.peak_rss_kib = sampler->peak_rss_kib();
    }
    sampler.reset();
    gate.open(2);
    for (auto& t : clients)
      t.join();
  }
  for (const auto& id : run_ids) {
    if (id.empty()) continue;
    auto run = kernel.get_run(id);
    if (!run.ok() || !run->finished_at) continue;
    if (run->state == runs::kSucceeded) {
      ++out.succeeded;
    } else if (out.run_failures.size() < 5) {
      out.run_failures.push_back(run->state + ": " + run->error);
    }
    out.chains.chain_ms.push_back(ms_between(run->created_at, *run->finished_at));
    out.since_release_ms.push_back(ms_between(released_at, *run->finished_at));
    if (run->started_at) out.claim_ms.push_back(ms_between(run->created_at, *run->started_at));
    out.exchanges += kernel.count_events(id, runs::event_type::kLlmExchange);
  }
  return out;
}

json measure_concurrent(const Options& o, const std::string& model_base, const std::filesystem::path& dir) {
  Kernel kernel(dir, model_base, o.workers);
  metrics::Registry direct_metrics;
  DirectClient direct(kernel.http_client, direct_metrics, model_base);
  const auto n = static_cast<std::size_t>(o.runs);
  const double calls = static_cast<double>(o.runs) * o.calls;
  std::vector<std::string> projects;
  for (std::size_t i = 0; i < n; ++i)
    projects.push_back(kernel.create_project(*kernel.client, "bench " + std::to_string(i)));
  const std::vector<std::string> alone_project = {kernel.create_project(*kernel.client, "alone")};
  // One of each, so first-use costs (plugin paths, SQLite statements) fall outside the measurements.
  {
    DeltaSink sink;
    if (auto failed = direct.complete(prompt(o.deltas, 0, 0), sink); !failed.empty())
      throw std::runtime_error("direct warm-up call: " + failed);
    std::string failure;
    const std::string project = kernel.create_project(*kernel.client, "warm-up");
    if (kernel.start_run(*kernel.client, project, run_description(2, o.deltas, 0), failure).empty())
      throw std::runtime_error("warm-up run: " + failure);
    if (!wait_until([&] { return kernel.all_ended() >= 1; }, std::chrono::seconds(60)))
      throw std::runtime_error("the warm-up run did not end");
  }
  const double succeeded_before = kernel.ended("succeeded");
  std::vector<std::string> direct_failures;

  // Alone: what one chain and one run take without the others (no contention for the cores).
  std::cerr << "runs_bench: concurrent: one direct chain alone\n";
  const Chains direct_alone = direct_chains(o, direct, 1, direct_failures, false);
  std::cerr << "runs_bench: concurrent: one run alone\n";
  const RunsPhase run_alone = start_runs(o, kernel, alone_project, false);

  HealthzProbe probe(kernel.app->port(), std::chrono::milliseconds(o.probe_interval_ms), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(o.idle_ms));
  std::cerr << "runs_bench: concurrent: " << n << " direct chains\n";
  probe.set_phase(1);
  const Chains reference = direct_chains(o, direct, n, direct_failures, true);
  probe.set_phase(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(std::min(o.idle_ms, 1000)));
  std::cerr << "runs_bench: concurrent: " << n << " runs\n";
  probe.set_phase(2);
  const RunsPhase measured = start_runs(o, kernel, projects, true);
  probe.stop();
  std::cerr << "runs_bench: concurrent: done\n";

  const auto& f = measured.start_failures;
  json out = {{"runs", o.runs},
              {"calls_per_run", o.calls},
              {"delay_ms", o.delay_ms},
              {"deltas", o.deltas},
              {"bound_ms", static_cast<double>(o.calls) * o.delay_ms},
              {"workers", kernel.runs_config.workers},
              {"job_threads", kernel.runs_config.workers + kernel.runs_config.max_parallel_per_run * 4},
              {"http_client_threads", kernel.http_client.threads},
              {"direct_alone", chain_summary(o, direct_alone, o.calls)},
              {"run_alone", chain_summary(o, run_alone.chains, o.calls)},
              {"direct", chain_summary(o, reference, calls)},
              {"direct_failed", direct_failures.size()},
              {"runs_phase", chain_summary(o, measured.chains, calls)},
              {"run_end_since_release_ms", latency_summary(measured.since_release_ms)},
              {"created_to_started_ms", latency_summary(measured.claim_ms)},
              {"all_ended", measured.all_ended && run_alone.all_ended},
              {"succeeded", measured.succeeded},
              {"succeeded_alone", run_alone.succeeded},
              {"succeeded_counter", kernel.ended("succeeded") - succeeded_before},
              {"start_failures", f.size()},
              {"start_failure_examples",
               json(std::vector<std::string>(
                   f.begin(), f.begin() + static_cast<long>(std::min<std::size_t>(5, f.size()))))},
              {"run_failures", measured.run_failures},
              {"model_calls_recorded", measured.exchanges},
              {"threads_before", measured.threads_before},
              {"peak_threads", measured.peak_threads},
              {"peak_rss_kib", measured.peak_rss_kib},
              {"direct_peak_threads", reference.peak_threads},
              {"direct_peak_rss_kib", reference.peak_rss_kib},
              {"healthz_idle_ms", latency_summary(probe.latencies_ms(0))},
              {"healthz_direct_ms", latency_summary(probe.latencies_ms(1))},
              {"healthz_runs_ms", latency_summary(probe.latencies_ms(2))},
              {"healthz_errors", probe.errors()}};
  const auto p50 = [&](const char* phase) { return out[phase]["overhead_per_call_us"]["p50"].get<double>(); };
  const auto cpu = [&](const char* phase) { return out[phase]["cpu_us_per_call"].get<double>(); };
  out["runs_phase"]["extra_cpu_us_per_call"] = cpu("runs_phase") - cpu("direct");
  out["runs_phase"]["extra_overhead_p50_us"] = p50("runs_phase") - p50("direct");
  out["run_alone"]["extra_cpu_us_per_call"] = cpu("run_alone") - cpu("direct_alone");
  out["run_alone"]["extra_overhead_p50_us"] = p50("run_alone") - p50("direct_alone");
  return out;
}

// ---- paused runs ---------------------------------------------------------------------------------

long rss_kib(bool trim) {
  if (trim) ::malloc_trim(0);
  return PeakSampler::now().first;
}

// SQLite's own heap (its page caches above all), in KiB, from the library storage.sqlite loaded; -1
// when it cannot be read. A growing database fills each connection's page cache up to cache_size
// whatever holds the runs, so it is reported apart from what the engine keeps.
long sqlite_heap_kib() {
  void* library = ::dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_NOLOAD);
  if (library == nullptr) return -1;
  using MemoryUsed = long long (*)();
  const auto used = reinterpret_cast<MemoryUsed>(::dlsym(library, "sqlite3_memory_used"));
  const long kib = used == nullptr ? -1 : static_cast<long>(used() / 1024);
  ::dlclose(library);
  return kib;
}

json measure_paused(const Options& o, const std::string& model_base, const std::filesystem::path& dir) {
  Kernel kernel(dir, model_base, o.workers);
  constexpr std::size_t kClients = 8;
  const auto n = static_cast<std::size_t>(o.paused);
  // Warm-up: as many runs as there are workers, their model calls overlapping (300 ms each), so that
  // every worker thread has run a step (its stack touched, its malloc arena made) and first-use costs
  // are paid before the measured runs; they pause too. Then two measured batches of n: what the second
  // adds is what a paused run keeps once caches (SQLite's page caches above all) have filled.
  const auto warm = static_cast<std::size_t>(o.workers);
  const std::string warm_description = std::string("[ask] ") + prompt(1, 300, 0);
  const std::string description = std::string("[ask] ") + prompt(1, 0, 0);
  const std::size_t firsts[] = {0, warm, warm + n, warm + 2 * n};
  std::vector<std::string> projects;
  for (std::size_t i = 0; i < firsts[3]; ++i)
    projects.push_back(kernel.create_project(*kernel.client, "paused " + std::to_string(i)));

  std::vector<std::string> run_ids(firsts[3]);
  std::atomic<std::size_t> start_failures{0};
  Gate gate;
  std::atomic<std::size_t> connected{0};
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      testing::HttpClient http("127.0.0.1", kernel.app->port(), std::chrono::seconds(60));
      http.get("/healthz");
      ++connected;
      for (int phase = 1; phase <= 3; ++phase) {
        gate.wait_open(phase);
        const auto index = static_cast<std::size_t>(phase - 1);
        for (std::size_t i = firsts[index] + c; i < firsts[index + 1]; i += kClients) {
          std::string failure;
          run_ids[i] =
              kernel.start_run(http, projects[i], phase == 1 ? warm_description : description, failure);
          if (!failure.empty()) ++start_failures;
        }
      }
      gate.wait_open(4);  // alive until measured: a thread's stack must not come or go in between
    });
  }
  wait_until([&] { return connected == kClients; }, std::chrono::seconds(60));
  const auto all_paused = [&](std::size_t runs) {
    return wait_until(
        [&] {
          return kernel.ended("paused") >= static_cast<double>(runs - start_failures) &&
                 kernel.app->runs()->active_runs() == 0;
        },
        std::chrono::seconds(600));
  };
  gate.open(1);
  if (!all_paused(warm) || start_failures > 0) throw std::runtime_error("the warm-up runs did not pause");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  struct Sample {
    long rss = 0;
    long rss_untrimmed = 0;
    long sqlite = 0;
    long threads = 0;
    std::uintmax_t database = 0;
  };
  const auto sample = [&] {
    Sample out;
    out.rss_untrimmed = rss_kib(false);
    out.rss = rss_kib(true);
    out.sqlite = sqlite_heap_kib();
    out.threads = PeakSampler::now().second;
    std::error_code ec;
    out.database = std::filesystem::file_size(kernel.database(), ec);
    return out;
  };
  const Sample before = sample();
  json batches = json::array();
  bool paused = true;
  Sample last = before;
  for (int batch = 2; batch <= 3; ++batch) {
    const auto started = Steady::now();
    gate.open(batch);
    paused = all_paused(firsts[static_cast<std::size_t>(batch)]) && paused;
    const double pause_all_ms = micros(Steady::now() - started) / 1000.0;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const std::size_t active = kernel.app->runs()->active_runs();
    const Sample after = sample();
    const double count = static_cast<double>(std::max<std::size_t>(1, n));
    batches.push_back(
        {{"pause_all_ms", pause_all_ms},
         {"active_runs_after", active},
         {"threads_after", after.threads},
         {"rss_kib_after", after.rss},
         {"kib_per_run", static_cast<double>(after.rss - last.rss) / count},
         {"kib_per_run_untrimmed", static_cast<double>(after.rss_untrimmed - last.rss) / count},
         {"sqlite_heap_kib_after", after.sqlite},
         {"kib_per_run_besides_sqlite",
          last.sqlite < 0
              ? json(nullptr)
              : json(static_cast<double>((after.rss - last.rss) - (after.sqlite - last.sqlite)) / count)},
         {"database_bytes_per_run", static_cast<double>(after.database - last.database) / count}});
    last = after;
  }
  gate.open(4);
  for (auto& t : clients)
    t.join();

  std::size_t waiting = 0;
  for (std::size_t i = warm; i < firsts[3]; ++i) {
    if (run_ids[i].empty()) continue;
    auto run = kernel.get_run(run_ids[i]);
    if (run.ok() && run->state == runs::kInputRequired) ++waiting;
  }
  return {{"runs_per_batch", n},
          {"warm_up_runs", warm},
          {"workers", o.workers},
          {"all_paused", paused},
          {"input_required", waiting},
          {"start_failures", start_failures.load()},
          {"threads_before", before.threads},
          {"rss_kib_before", before.rss},
          {"sqlite_heap_kib_before", before.sqlite},
          {"batches", batches}};
}

// ---- SSE fan-out ---------------------------------------------------------------------------------

// One SSE client on a non-blocking socket: HTTP response head, chunked decoding, SSE blocks.
struct Subscriber {
  int fd = -1;
  std::string in;    // bytes not yet decoded
  std::string body;  // decoded body not yet split into events
  bool head_done = false;
  bool chunked = false;
  bool chunk_crlf = false;  // the CRLF after a chunk's data is next
  std::size_t chunk_left = 0;
  unsigned status = 0;
  bool closed = false;
  bool caught_up = false;  // run.paused received
  bool finished = false;   // run.finished received
  std::int64_t last_seq = 0;
  std::size_t committed_live = 0;  // committed events after run.paused
  std::size_t transient_live = 0;
  Steady::time_point finished_steady;
  SystemTime finished_at;
  std::vector<double> committed_latency_ms;  // receipt - created_at, live events only
  std::vector<double> transient_latency_ms;
};

struct FanoutShared {
  std::atomic<std::size_t> caught_up{0};
  std::atomic<std::size_t> finished{0};
  std::atomic<std::size_t> closed{0};
  std::atomic<bool> stop{false};
};

std::optional<SystemTime> created_at_of(std::string_view data) {
  constexpr std::string_view key = "\"created_at\":\"";
  const auto at = data.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  const auto end = data.find('"', at + key.size());
  if (end == std::string_view::npos) return std::nullopt;
  return api::parse_timestamp(data.substr(at + key.size(), end - at - key.size()));
}

void on_block(Subscriber& s, std::string_view block, SystemTime now, FanoutShared& shared) {
  std::string_view id;
  std::string_view type;
  std::string_view data;
  while (!block.empty()) {
    const auto eol = block.find('\n');
    const std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 1);
    const auto field = [&](std::string_view name) -> std::optional<std::string_view> {
      if (line.substr(0, name.size()) != name) return std::nullopt;
      std::string_view value = line.substr(name.size());
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return value;
    };
    if (auto v = field("id:")) id = *v;
    if (auto v = field("event:")) type = *v;
    if (auto v = field("data:")) data = *v;
  }
  if (type.empty() && data.empty()) return;  // a comment (heartbeat)
  const bool committed = !id.empty();
  if (committed) s.last_seq = std::stoll(std::string(id));
  if (s.caught_up) {
    const auto created = created_at_of(data);
    const double latency = created ? ms_between(*created, now) : -1;
    if (committed) {
      ++s.committed_live;
      s.committed_latency_ms.push_back(latency);
    } else {
      ++s.transient_live;
      s.transient_latency_ms.push_back(latency);
    }
  }
  if (type == runs::event_type::kRunPaused && !s.caught_up) {
    s.caught_up = true;
    ++shared.caught_up;
  } else if (type == runs::event_type::kRunFinished && !s.finished) {
    s.finished = true;
    s.finished_steady = Steady::now();
    s.finished_at = now;
    ++shared.finished;
  }
}

void decode(Subscriber& s, SystemTime now, FanoutShared& shared) {
  if (!s.head_done) {
    const auto end = s.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    std::string head = s.in.substr(0, end);
    s.in.erase(0, end + 4);
    s.head_done = true;
    if (head.size() > 12) s.status = static_cast<unsigned>(std::atoi(head.c_str() + 9));
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    s.chunked = head.find("transfer-encoding: chunked") != std::string::npos;
  }
  if (!s.chunked) {
    s.body += s.in;
    s.in.clear();
  } else {
    std::size_t at = 0;
    for (;;) {
      if (s.chunk_crlf) {
        if (s.in.size() - at < 2) break;
        at += 2;
        s.chunk_crlf = false;
      }
      if (s.chunk_left == 0) {
        const auto eol = s.in.find("\r\n", at);
        if (eol == std::string::npos) break;
        s.chunk_left = std::stoul(s.in.substr(at, eol - at), nullptr, 16);
        at = eol + 2;
        if (s.chunk_left == 0) {  // the last chunk: the stream ended
          s.closed = true;
          break;
        }
      }
      const std::size_t take = std::min(s.chunk_left, s.in.size() - at);
      s.body.append(s.in, at, take);
      at += take;
      s.chunk_left -= take;
      if (s.chunk_left > 0) break;
      s.chunk_crlf = true;
    }
    s.in.erase(0, at);
  }
  std::size_t from = 0;
  for (;;) {
    const auto end = s.body.find("\n\n", from);
    if (end == std::string::npos) break;
    on_block(s, std::string_view(s.body).substr(from, end - from), now, shared);
    from = end + 2;
  }
  s.body.erase(0, from);
}

// One epoll loop over its share of the subscribers.
class Reader {
 public:
  explicit Reader(FanoutShared& shared) : shared_(shared), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Reader() {
    shared_.stop = true;
    if (thread_.joinable()) thread_.join();
    ::close(epoll_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  void add(Subscriber* s) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = s;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, s->fd, &event);
  }
  double cpu_us() { return thread_cpu_us(thread_); }

 private:
  void run() {
    std::array<epoll_event, 256> events{};
    std::array<char, 65536> buffer{};
    while (!shared_.stop) {
      const int ready = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 50);
      if (ready <= 0) continue;
      const SystemTime now = std::chrono::system_clock::now();
      for (int i = 0; i < ready; ++i) {
        auto* s = static_cast<Subscriber*>(events[static_cast<std::size_t>(i)].data.ptr);
        for (;;) {
          const ssize_t got = ::read(s->fd, buffer.data(), buffer.size());
          if (got > 0) {
            s->in.append(buffer.data(), static_cast<std::size_t>(got));
            continue;
          }
          if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            ::epoll_ctl(epoll_, EPOLL_CTL_DEL, s->fd, nullptr);
            if (!s->closed) ++shared_.closed;
            s->closed = true;
          }
          if (got < 0 && errno == EINTR) continue;
          break;
        }
        decode(*s, now, shared_);
      }
    }
  }

  FanoutShared& shared_;
  int epoll_;
  std::thread thread_;
};

int connect_subscriber(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("connect: " + why);
  }
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    throw std::runtime_error("writing the request failed");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// A run that pauses at its question; returns {run id, question id}.
std::pair<std::string, std::string> paused_run(const Options& o, Kernel& kernel, const std::string& name) {
  const std::string project = kernel.create_project(*kernel.client, name);
  std::string failure;
  const double paused_before = kernel.ended("paused");
  const std::string run_id = kernel.start_run(
      *kernel.client, project, run_description(o.fanout_calls + 1, o.fanout_deltas, 0, "[ask] "), failure);
  if (run_id.empty()) throw std::runtime_error("the " + name + " run: " + failure);
  if (!wait_until(
          [&] { return kernel.ended("paused") > paused_before && kernel.app->runs()->active_runs() == 0; },
          std::chrono::seconds(60)))
    throw std::runtime_error("the " + name + " run did not pause");
  const auto paused = kernel.client->get("/api/v1/runs/" + run_id, kernel.auth());
  const std::string question = paused.json()["question"].value("question_id", "");
  if (question.empty()) throw std::runtime_error("the " + name + " run has no open question: " + paused.body);
  return {run_id, question};
}

void answer(Kernel& kernel, const std::string& run_id, const std::string& question) {
  const auto answered =
      kernel.client->request(verb::post, "/api/v1/runs/" + run_id + "/answers",
                             json{{"question_id", question}, {"answer", "blue"}}.dump(), kernel.auth_json());
  if (answered.status != 200) throw std::runtime_error("answer: " + answered.body);
}

json measure_fanout(const Options& o, const std::string& model_base, const std::filesystem::path& dir) {
  Kernel kernel(dir, model_base, o.workers);
  // The reference: the same run, answered with nobody watching.
  double alone_ms = 0;
  double alone_cpu_ms = 0;
  {
    const auto [run_id, question] = paused_run(o, kernel, "alone");
    const double ended_before = kernel.all_ended();
    const double cpu_before = rusage_cpu_us();
    const auto answered_at = std::chrono::system_clock::now();
    answer(kernel, run_id, question);
    if (!wait_until([&] { return kernel.all_ended() > ended_before; }, std::chrono::seconds(60)))
      throw std::runtime_error("the reference run did not end");
    alone_cpu_ms = (rusage_cpu_us() - cpu_before) / 1000.0;
    auto run = kernel.get_run(run_id);
    if (!run.ok() || !run->finished_at || run->state != runs::kSucceeded)
      throw std::runtime_error("the reference run did not succeed");
    alone_ms = ms_between(answered_at, *run->finished_at);
  }
  const auto [run_id, question] = paused_run(o, kernel, "fan-out");

  const auto n = static_cast<std::size_t>(o.subscribers);
  FanoutShared shared;
  std::vector<Subscriber> subscribers(n);
  std::vector<std::unique_ptr<Reader>> readers;
  for (int r = 0; r < o.reader_threads; ++r)
    readers.push_back(std::make_unique<Reader>(shared));
  const std::string request = "GET /api/v1/runs/" + run_id +
                              "/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                              "Authorization: Bearer " +
                              kernel.token + "\r\n\r\n";
  const std::size_t sent_before_connect = static_cast<std::size_t>(
      kernel.app->metrics().counter("samokoder_run_events_sent_total", kEventsSentHelp).value());
  const auto connect_started = Steady::now();
  for (std::size_t i = 0; i < n; ++i) {
    subscribers[i].fd = connect_subscriber(kernel.app->port(), request);
    readers[i % readers.size()]->add(&subscribers[i]);
  }
  const double connect_ms = micros(Steady::now() - connect_started) / 1000.0;
  const bool caught_up = wait_until([&] { return shared.caught_up == n; }, std::chrono::seconds(120));
  const double catch_up_ms = micros(Steady::now() - connect_started) / 1000.0;
  if (!caught_up)
    throw std::runtime_error(std::to_string(shared.caught_up.load()) + " of " + std::to_string(n) +
                             " subscribers caught up (" + std::to_string(shared.closed.load()) + " closed)");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  auto& events_sent = kernel.app->metrics().counter("samokoder_run_events_sent_total", kEventsSentHelp);
  const double sent_before = events_sent.value();
  double readers_cpu_before = 0;
  for (auto& r : readers)
    readers_cpu_before += r->cpu_us();
  const double cpu_before = rusage_cpu_us();
  const auto answered_steady = Steady::now();
  const auto answered_at = std::chrono::system_clock::now();
  answer(kernel, run_id, question);
  const bool all_finished =
      wait_until([&] { return shared.finished + shared.closed >= n; }, std::chrono::seconds(120));
  const double cpu_after = rusage_cpu_us();
  double readers_cpu_after = 0;
  for (auto& r : readers)
    readers_cpu_after += r->cpu_us();
  const double sent = events_sent.value() - sent_before;
  readers.clear();  // joins: the subscribers are read no more

  auto run = kernel.get_run(run_id);
  std::vector<double> committed_ms;
  std::vector<double> transient_ms;
  std::vector<double> finished_after_answer_ms;
  std::vector<double> finished_after_commit_ms;
  std::set<std::size_t> committed_counts;
  std::set<std::size_t> transient_counts;
  std::set<unsigned> statuses;
  std::optional<SystemTime> finished_created;
  {
    // run.finished's commit time: the created_at its payload carries, read back from storage.
    std::int64_t after = 0;
    for (;;) {
      auto events = kernel.app->storage().call<sdk::Storage>([&](sdk::Storage& s) {
        return s.store<sdk::RunStore>().list_run_events(kernel.user_id, run_id, after, 500);
      });
      if (!events.ok() || events->empty()) break;
      for (const auto& e : *events) {
        if (e.type == runs::event_type::kRunFinished) finished_created = e.created_at;
      }
      after = events->back().seq;
      if (events->size() < 500) break;
    }
  }
  for (auto& s : subscribers) {
    statuses.insert(s.status);
    committed_counts.insert(s.committed_live);
    transient_counts.insert(s.transient_live);
    committed_ms.insert(committed_ms.end(), s.committed_latency_ms.begin(), s.committed_latency_ms.end());
    transient_ms.insert(transient_ms.end(), s.transient_latency_ms.begin(), s.transient_latency_ms.end());
    if (s.finished) {
      finished_after_answer_ms.push_back(micros(s.finished_steady - answered_steady) / 1000.0);
      if (finished_created) finished_after_commit_ms.push_back(ms_between(*finished_created, s.finished_at));
    }
    ::close(s.fd);
  }
  const auto spread = [](const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()) - *std::min_element(v.begin(), v.end());
  };
  const double server_cpu_us = (cpu_after - cpu_before) - (readers_cpu_after - readers_cpu_before);
  return {{"subscribers", n},
          {"reader_threads", o.reader_threads},
          {"model_calls", o.fanout_calls},  // after the answer
          {"deltas_per_call", o.fanout_deltas},
          {"run_state", run.ok() ? run->state : std::string("?")},
          {"run_answer_to_end_ms",
           run.ok() && run->finished_at ? ms_between(answered_at, *run->finished_at) : 0.0},
          {"alone_answer_to_end_ms", alone_ms},
          {"alone_process_cpu_ms", alone_cpu_ms},
          {"statuses", statuses},
          {"connect_ms", connect_ms},
          {"catch_up_ms", catch_up_ms},
          {"events_sent_during_catch_up", static_cast<std::size_t>(sent_before) - sent_before_connect},
          {"all_finished", all_finished},
          {"finished", shared.finished.load()},
          {"closed", shared.closed.load()},
          {"committed_per_subscriber", committed_counts},
          {"transient_per_subscriber", transient_counts},
          {"events_sent", sent},
          {"answer_to_last_finished_ms",
           finished_after_answer_ms.empty()
               ? 0.0
               : *std::max_element(finished_after_answer_ms.begin(), finished_after_answer_ms.end())},
          {"answer_to_finished_ms", latency_summary(finished_after_answer_ms)},
          {"finished_commit_to_first_ms",
           finished_after_commit_ms.empty()
               ? 0.0
               : *std::min_element(finished_after_commit_ms.begin(), finished_after_commit_ms.end())},
          {"finished_commit_to_last_ms",
           finished_after_commit_ms.empty()
               ? 0.0
               : *std::max_element(finished_after_commit_ms.begin(), finished_after_commit_ms.end())},
          {"finished_spread_ms", spread(finished_after_commit_ms)},
          {"committed_latency_ms", latency_summary(committed_ms)},
          {"transient_latency_ms", latency_summary(transient_ms)},
          {"process_cpu_ms", (cpu_after - cpu_before) / 1000.0},
          {"readers_cpu_ms", (readers_cpu_after - readers_cpu_before) / 1000.0},
          {"server_cpu_ms", server_cpu_us / 1000.0},
          {"server_cpu_us_per_event_sent", sent > 0 ? server_cpu_us / sent : 0.0}};
}

void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

int run(const Options& options) {
  raise_fd_limit();
  // Before any thread exists: the child gets a clean copy of a single-threaded process.
  std::optional<ModelServerProcess> models;
  try {
    models.emplace();
  } catch (const std::exception& e) {
    std::cerr << "runs_bench: " << e.what() << "\n";
    return 2;
  }
  core::init_logging(config::LogConfig{.level = "warn", .format = "text", .access_log = false});
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("samokoder-runs-bench-" + std::to_string(::getpid()));
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  json result = {{"settings",
                  {{"idle_ms", options.idle_ms},
                   {"probe_interval_ms", options.probe_interval_ms},
                   {"open_files_limit", files.rlim_cur}}}};
  int exit_code = 0;
  const std::pair<const char*, json (*)(const Options&, const std::string&, const std::filesystem::path&)>
      sections[] = {
          {"concurrent", measure_concurrent}, {"paused", measure_paused}, {"fanout", measure_fanout}};
  for (const auto& [name, measure] : sections) {
    if (!options.sections.contains(name)) continue;
    try {
      result[name] = measure(options, models->base_url(), dir / name);
    } catch (const std::exception& e) {
      std::cerr << "runs_bench: " << name << ": " << e.what() << "\n";
      exit_code = 1;
      break;
    }
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
    std::cerr << "runs_bench: " << e.what() << " (see the options at the top of bench/runs_bench.cpp)\n";
    return 2;
  }
  return run(options);
}
