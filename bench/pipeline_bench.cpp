// The agent pipeline end to end, in-process (docs/performance.md "Pipeline"): a real kernel
// (Application with storage.sqlite, auth.local, llm.openai pointed at the scripted model server, and
// the default pipeline's eleven agent plugins from the build's plugin directory) runs whole runs of a
// generated app whose size is chosen: T tasks each writing F files (tests/e2e/scaled_app_script.hpp),
// one `node --check` per task, the troubleshooter's smoke check of the app after each task. The model
// answers at once, so what is left of a run's wall time besides its commands and model calls is the
// kernel's and the agents' own work. Driven over HTTP as a client would: the run started with POST, the
// spec writer's question (with --ask-spec, the default) and the troubleshooter's review at the end of
// the epic answered with POST /answers ("works").
//
// For each (T, F) of --grid, --repeat runs (the cases interleaved), each in a new project, after one
// unmeasured warm-up run of the first case. Per run, from the run's record and its events:
//   wall_ms           created_at to finished_at as stored
//   user_wait_ms      each run.paused to its question.answered: the client's think time, not the kernel's
//   steps             step.committed events; model_calls (llm.exchange), commands (command.finished)
//   command_wall_ms   the commands' wall_ms (command.finished), each ending at its event's created_at
//   model_wall_ms     the model calls' latency_ms (the request records the exchanges name: whole
//                     milliseconds, truncated), each ending at its record's created_at
//   busy_ms           the union of those intervals (fan-out branches overlap)
//   kernel_ms         wall - user_wait - busy: the kernel's and the agents' own time; per step too
//   cpu_ms            getrusage(RUSAGE_SELF) from the POST to the end: every thread of this process (the
//                     kernel, its plugins, the bench's one client thread); the commands and the app are
//                     children (not counted), the model server another process; per step too
//   agents            per agent: steps, attempts (a step that asked ran twice), and the kernel time inside
//                     its attempts (step.started to step.committed or run.paused, minus the busy intervals
//                     inside); between_steps_ms: the rest of the kernel time (claiming, choosing the next
//                     agent, resuming after an answer)
// Per case the median of the repeats, and the ratios of kernel time and CPU per step to the first case.
//
// runs.command_containment: --containment none,preview.sandbox (default: both; a mode whose warm-up run
// fails, the sandbox where bubblewrap cannot run, is reported as not measured with the reason).
// Previews: --previews off (default: previews.runners empty, the troubleshooter's start_preview answers
// that the server runs none) or on (preview.sandbox; each run's preview stopped after it).
//
// The model server runs in a child process forked before any thread starts, so this process's CPU is
// the kernel's. Prints one JSON object on stdout; exit status 1 when a run failed or could not be
// measured, 2 when the program could not run. Nothing here asserts a figure.
//
//   pipeline_bench [--grid 1x1,2x4,4x4,4x16,8x8] [--repeat N] [--containment none,preview.sandbox]
//                  [--previews off|on] [--ask-spec 1|0] [--timeout-s S] [--keep 1]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <samokoder/sdk/storage.hpp>

#include "app/application.hpp"
#include "core/clock.hpp"
#include "core/logging.hpp"
#include "model_bench.hpp"
#include "runs/run_record.hpp"
#include "scaled_app_script.hpp"
#include "security/random.hpp"

namespace {

using namespace samokoder;
using namespace samokoder::bench;
using boost::beast::http::verb;
using nlohmann::json;
using SystemTime = std::chrono::system_clock::time_point;

constexpr const char* kPassword = "violet-anchor-47-quietly";
constexpr const char* kEndedHelp = "Runs that ended or paused on this node, by outcome";
constexpr const char* kAgents[] = {"error_handler", "spec_writer",    "architect", "bootstrap",
                                   "tech_lead",     "tech_writer",    "task_completer", "developer",
                                   "code_monkey",   "executor",       "troubleshooter"};

struct Case {
  int tasks = 1;
  int files = 1;
};

struct Options {
  std::vector<Case> grid = {{1, 1}, {2, 4}, {4, 4}, {4, 16}, {8, 8}};
  int repeat = 3;
  std::vector<std::string> containment = {"none", "preview.sandbox"};
  bool previews = false;
  bool ask_spec = true;
  int timeout_s = 600;
  bool keep = false;  // keep the databases and workspaces (their folder is printed on stderr)
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream list(text);
  for (std::string item; std::getline(list, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + arg);
    const std::string value = argv[++i];
    if (arg == "--grid") {
      o.grid.clear();
      for (const auto& item : split(value)) {
        const auto x = item.find('x');
        if (x == std::string::npos) throw std::invalid_argument("a grid entry is TxF, not " + item);
        const Case c{std::stoi(item.substr(0, x)), std::stoi(item.substr(x + 1))};
        if (c.tasks < 1 || c.tasks > 12 || c.files < 1 || c.files > 64)
          throw std::invalid_argument("tasks 1..12 (the tech lead's max_tasks) and files 1..64: " + item);
        o.grid.push_back(c);
      }
      if (o.grid.empty()) throw std::invalid_argument("an empty grid");
    } else if (arg == "--repeat") {
      o.repeat = std::max(1, std::stoi(value));
    } else if (arg == "--containment") {
      o.containment = split(value);
      for (const auto& mode : o.containment)
        if (mode != "none" && mode != "preview.sandbox")
          throw std::invalid_argument("containment is none or preview.sandbox, not " + mode);
    } else if (arg == "--previews") {
      if (value != "on" && value != "off") throw std::invalid_argument("--previews on|off");
      o.previews = value == "on";
    } else if (arg == "--ask-spec") {
      o.ask_spec = value != "0";
    } else if (arg == "--keep") {
      o.keep = value != "0";
    } else if (arg == "--timeout-s") {
      o.timeout_s = std::max(1, std::stoi(value));
    } else {
      throw std::invalid_argument("unknown option " + arg);
    }
  }
  return o;
}

double rusage_cpu_us() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto us = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

double ms_between(SystemTime from, SystemTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

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
  Kernel(const std::filesystem::path& dir, const std::string& model_base, const std::string& containment,
         bool previews)
      : dir_(dir), socket_dir_("/tmp/skpb-" + std::to_string(::getpid())) {
    std::filesystem::create_directories(dir);
    config::Config config;
    config.server.listen = {"127.0.0.1", 0};
    config.log.level = "warn";
    config.log.access_log = false;
    config.plugins.plugin_dir = SAMOKODER_PLUGIN_DIR;
    config.plugins.runtime_dir = dir / "run";
    config.plugins.plugins = {
        plugin("storage.sqlite", "storage_sqlite.so", {{"path", (dir / "samokoder.db").string()}}),
        // Cheap password hashing: sign-up is not what is measured.
        plugin("auth.local", "auth_local.so", {{"memory_kib", 1024u}, {"iterations", 1u}, {"parallelism", 1u}}),
        plugin("llm.openai", "llm_openai.so")};
    if (containment != "none" || previews) {
      // Unix socket paths are at most 107 bytes: the sandbox's socket directory stays near the root.
      config.plugins.plugins.push_back(
          plugin("preview.sandbox", "preview_sandbox.so", {{"socket_dir", socket_dir_.string()}}));
    }
    for (const char* agent : kAgents) {
      const std::string id = std::string("agent.") + agent;
      config.plugins.plugins.push_back(plugin(id, std::string("agent_") + agent + ".so"));
      config.runs.pipeline.push_back(id);
    }
    config.runs.command_containment = containment;
    config.previews.runners = previews ? std::vector<std::string>{"preview.sandbox"} : std::vector<std::string>{};
    config.previews.listen = {"127.0.0.1", 0};
    config.security.secret_key = security::random_token(48).value();
    for (const char* group : {"auth", "default", "files"})
      config.security.rate_limits[group] = {1'000'000, 1'000'000};
    config.housekeeping.enabled = false;
    config.processes.state_dir = dir / "processes";
    config.workspace_root = dir / "workspaces";
    config.llm.providers["openai"].base_url = model_base;
    config.llm.providers["openai"].api_key = kKey;
    config.llm.roles = {{"default", {std::string("openai/") + kModel}}};
    runs_config = config.runs;
    app = std::make_unique<app::Application>(std::move(config), clock_);
    if (const sdk::Status started = app->start(); !started.ok())
      throw std::runtime_error("the kernel did not start: " + started.to_string());
    client = std::make_unique<testing::HttpClient>("127.0.0.1", app->port(), std::chrono::seconds(60));
    const json credentials = {{"email", "bench@example.com"}, {"password", kPassword}};
    const testing::HeaderList json_type = {{"Content-Type", "application/json"}};
    const auto registered = client->request(verb::post, "/api/v1/auth/register", credentials.dump(), json_type);
    if (registered.status != 202) throw std::runtime_error("register: " + registered.body);
    const auto login = client->request(verb::post, "/api/v1/auth/login", credentials.dump(), json_type);
    if (login.status != 200) throw std::runtime_error("login: " + login.body);
    token = login.json().value("access_token", "");
    user_id = login.json()["user"].value("id", "");
  }
  ~Kernel() {
    client.reset();
    app->stop();
    std::error_code ignored;
    std::filesystem::remove_all(socket_dir_, ignored);
  }
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  testing::HeaderList auth() const { return {{"Authorization", "Bearer " + token}}; }
  testing::HeaderList auth_json() const {
    return {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  }

  testing::ClientResponse call(verb method, const std::string& target, const json& body = nullptr) {
    return client->request(method, target, body.is_null() ? "" : body.dump(), body.is_null() ? auth() : auth_json());
  }

  double ended(const char* outcome) {
    return app->metrics().counter("samokoder_runs_ended_total", kEndedHelp, {{"outcome", outcome}}).value();
  }

  std::vector<sdk::RunEvent> events(const std::string& run_id) {
    std::vector<sdk::RunEvent> out;
    std::int64_t after = 0;
    for (;;) {
      auto page = app->storage().call<sdk::Storage>([&](sdk::Storage& s) {
        return s.store<sdk::RunStore>().list_run_events(user_id, run_id, after, 500);
      });
      if (!page.ok()) throw std::runtime_error("list_run_events: " + page.status().to_string());
      if (page->empty()) return out;
      after = page->back().seq;
      const bool last = page->size() < 500;
      out.insert(out.end(), std::make_move_iterator(page->begin()), std::make_move_iterator(page->end()));
      if (last) return out;
    }
  }

  // The model request records by id (the user's, newest first, until `since`).
  std::map<std::string, sdk::LlmRequest> requests(SystemTime since) {
    std::map<std::string, sdk::LlmRequest> out;
    sdk::PageRequest page{.limit = 500, .cursor = ""};
    for (;;) {
      auto listed = app->storage().call<sdk::Storage>(
          [&](sdk::Storage& s) { return s.store<sdk::LlmRequestStore>().list_llm_requests(user_id, page); });
      if (!listed.ok()) throw std::runtime_error("list_llm_requests: " + listed.status().to_string());
      bool older = false;
      for (auto& r : listed->items) {
        older = older || r.created_at < since;
        out.emplace(r.id, std::move(r));
      }
      if (older || listed->next_cursor.empty()) return out;
      page.cursor = listed->next_cursor;
    }
  }

  sdk::Result<sdk::Run> get_run(const std::string& id) {
    return app->storage().call<sdk::Storage>(
        [&](sdk::Storage& s) { return s.store<sdk::RunStore>().get_run(user_id, id); });
  }

  core::SystemClock clock_;
  std::filesystem::path dir_;
  std::filesystem::path socket_dir_;
  config::RunsConfig runs_config;
  std::unique_ptr<app::Application> app;
  std::unique_ptr<testing::HttpClient> client;
  std::string token;
  std::string user_id;
};

template <typename F>
bool wait_until(F&& done, std::chrono::milliseconds timeout, std::chrono::milliseconds period) {
  const auto deadline = Steady::now() + timeout;
  while (!done()) {
    if (Steady::now() > deadline) return false;
    std::this_thread::sleep_for(period);
  }
  return true;
}

// ---- one run -------------------------------------------------------------------------------------

struct Interval {
  SystemTime from;
  SystemTime to;
};

// The total length of the union of `intervals`, in ms; of their parts inside `within` when given.
double union_ms(std::vector<Interval> intervals, const Interval* within = nullptr) {
  if (within != nullptr) {
    for (auto& i : intervals) {
      i.from = std::max(i.from, within->from);
      i.to = std::min(i.to, within->to);
    }
  }
  std::erase_if(intervals, [](const Interval& i) { return i.to <= i.from; });
  if (intervals.empty()) return 0;
  std::sort(intervals.begin(), intervals.end(), [](const Interval& a, const Interval& b) { return a.from < b.from; });
  double total = 0;
  Interval open = intervals.front();
  for (const auto& i : intervals) {
    if (i.from <= open.to) {
      open.to = std::max(open.to, i.to);
      continue;
    }
    total += ms_between(open.from, open.to);
    open = i;
  }
  return total + ms_between(open.from, open.to);
}

std::chrono::microseconds from_ms(double ms) {
  return std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000.0));
}

// Answers the run's open question: the spec writer's with a preference, a review with "works".
std::string answer_question(Kernel& kernel, const std::string& run_id) {
  const auto got = kernel.call(verb::get, "/api/v1/runs/" + run_id);
  if (got.status != 200) throw std::runtime_error("GET run: " + got.body);
  const json document = got.json();
  const json question = document.is_object() ? document.value("question", json()) : json();
  if (!question.is_object()) return {};  // answered meanwhile (not expected: one client)
  const std::string id = question.value("question_id", "");
  const std::string text = id.find("review.") != std::string::npos ? "works" : "Plain files are fine, keep it simple";
  const auto answered = kernel.call(verb::post, "/api/v1/runs/" + run_id + "/answers",
                                    {{"question_id", id}, {"answer", text}});
  if (answered.status != 200) throw std::runtime_error("POST answer: " + answered.body);
  return id;
}

json measure_run(const Options& o, Kernel& kernel, const Case& c, const std::string& label) {
  const auto created = kernel.call(verb::post, "/api/v1/projects", {{"name", label}});
  if (created.status != 201) throw std::runtime_error("create project: " + created.body);
  const std::string project = created.json().value("id", "");
  const std::string description = testing::ScaledAppScript::description(c.tasks, c.files, o.ask_spec);

  const double ended_before = kernel.ended("succeeded") + kernel.ended("failed") + kernel.ended("cancelled");
  double paused_before = kernel.ended("paused");
  const SystemTime posted_at = std::chrono::system_clock::now();
  const double cpu_before = rusage_cpu_us();
  const auto started = Steady::now();
  const auto posted = kernel.call(verb::post, "/api/v1/projects/" + project + "/runs", {{"description", description}});
  if (posted.status != 201) throw std::runtime_error("start run: " + posted.body);
  const std::string run_id = posted.json().value("id", "");
  std::vector<std::string> questions;
  bool ended = false;
  const auto deadline = Steady::now() + std::chrono::seconds(o.timeout_s);
  while (!ended && Steady::now() < deadline) {
    wait_until(
        [&] {
          ended = kernel.ended("succeeded") + kernel.ended("failed") + kernel.ended("cancelled") > ended_before;
          return ended || kernel.ended("paused") > paused_before;
        },
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()), std::chrono::milliseconds(1));
    if (!ended && kernel.ended("paused") > paused_before) {
      paused_before = kernel.ended("paused");
      questions.push_back(answer_question(kernel, run_id));
    }
  }
  const double cpu_ms = (rusage_cpu_us() - cpu_before) / 1000.0;
  const double client_wall_ms = micros(Steady::now() - started) / 1000.0;
  if (!ended) throw std::runtime_error("run " + run_id + " did not end within " + std::to_string(o.timeout_s) + " s");
  auto run = kernel.get_run(run_id);
  if (!run.ok() || !run->finished_at) throw std::runtime_error("run " + run_id + " has no finished_at");

  const auto events = kernel.events(run_id);
  const auto records = kernel.requests(posted_at);
  std::vector<Interval> commands;
  std::vector<Interval> models;
  std::vector<Interval> waits;  // run.paused to question.answered
  double command_ms = 0;
  double model_ms = 0;
  std::size_t steps = 0;
  std::size_t files_written = 0;
  std::size_t fan_out_steps = 0;
  std::size_t missing_records = 0;
  // The epoch stands for "none" below: g++ 12 sees std::optional<time_point> as maybe uninitialized.
  const SystemTime none{};
  SystemTime paused_at = none;
  std::vector<double> resume_ms;  // question.answered to the run's next run.resumed (claimed again)
  SystemTime answered_at = none;
  std::map<std::string, json> agents;
  // Each attempt of a step: step.started to its step.committed, or to the run.paused of a step that
  // asked (it runs again from its start once answered, replaying what it recorded).
  struct Attempt {
    std::string agent;
    Interval span;
  };
  std::vector<Attempt> attempts;
  std::string open_agent;
  SystemTime open_from = none;
  std::int64_t open_branches = 0;  // a fan-out's branches still to commit in the open attempt
  const auto close_attempt = [&](SystemTime at) {
    if (open_from != none) attempts.push_back({open_agent, {open_from, at}});
    open_from = none;
  };
  const json no_payload = json::object();
  for (const auto& e : events) {
    const json& p = e.payload.is_object() ? e.payload : no_payload;
    if (e.type == runs::event_type::kCommandFinished) {
      const double wall = p.value("wall_ms", 0.0);
      command_ms += wall;
      commands.push_back({e.created_at - from_ms(wall), e.created_at});
    } else if (e.type == runs::event_type::kLlmExchange) {
      const auto it = records.find(p.value("request_id", ""));
      if (it == records.end()) {
        ++missing_records;
        continue;
      }
      const double latency = static_cast<double>(it->second.latency_ms);
      model_ms += latency;
      models.push_back({it->second.created_at - from_ms(latency), it->second.created_at});
    } else if (e.type == runs::event_type::kRunPaused) {
      paused_at = e.created_at;
      close_attempt(e.created_at);
    } else if (e.type == runs::event_type::kQuestionAnswered) {
      if (paused_at != none) waits.push_back({paused_at, e.created_at});
      paused_at = none;
      answered_at = e.created_at;
    } else if (e.type == runs::event_type::kRunResumed && answered_at != none) {
      resume_ms.push_back(ms_between(answered_at, e.created_at));
      answered_at = none;
    } else if (e.type == runs::event_type::kStepStarted) {
      close_attempt(e.created_at);
      open_agent = p.value("agent", "");
      open_from = e.created_at;
      open_branches = p.value("branches", std::int64_t{0});
      if (open_branches > 0) ++fan_out_steps;
    } else if (e.type == runs::event_type::kStepCommitted) {
      ++steps;
      // A fan-out's branches commit one by one within the attempt that started them.
      if (open_branches <= 1) close_attempt(e.created_at);
      open_branches = std::max<std::int64_t>(0, open_branches - 1);
      json& a = agents[p.value("agent", "")];
      if (!a.is_object()) a = json::object();
      a["steps"] = a.value("steps", 0) + 1;
    } else if (e.type == runs::event_type::kRunFailed || e.type == runs::event_type::kRunFinished) {
      close_attempt(e.created_at);
    } else if (e.type == runs::event_type::kFileWritten) {
      ++files_written;
    }
  }
  std::vector<Interval> busy = commands;
  busy.insert(busy.end(), models.begin(), models.end());
  double in_steps_ms = 0;  // the kernel time inside the agents' attempts
  for (const auto& attempt : attempts) {
    json& a = agents[attempt.agent];
    if (!a.is_object()) a = json::object();
    const double inside = ms_between(attempt.span.from, attempt.span.to);
    const double own = std::max(0.0, inside - union_ms(busy, &attempt.span) - union_ms(waits, &attempt.span));
    a["attempts"] = a.value("attempts", 0) + 1;
    a["step_wall_ms"] = a.value("step_wall_ms", 0.0) + inside;
    a["kernel_ms"] = a.value("kernel_ms", 0.0) + own;
    in_steps_ms += own;
  }
  const double wall_ms = ms_between(run->created_at, *run->finished_at);
  const double user_wait_ms = union_ms(waits);
  const double busy_ms = union_ms(busy);
  const double kernel_ms = wall_ms - user_wait_ms - busy_ms;
  const double step_count = static_cast<double>(std::max<std::size_t>(1, steps));
  std::size_t exchanges = 0;
  std::size_t finished_commands = 0;
  for (const auto& e : events) {
    exchanges += e.type == runs::event_type::kLlmExchange ? 1 : 0;
    finished_commands += e.type == runs::event_type::kCommandFinished ? 1 : 0;
  }
  std::size_t failed_commands = 0;
  for (const auto& e : events)
    if (e.type == runs::event_type::kCommandFinished &&
        (!e.payload.is_object() || e.payload.value("exit_code", json()) != json(0)))
      ++failed_commands;
  json out = {{"tasks", c.tasks},
              {"files", c.files},
              {"run_id", run_id},
              {"state", run->state},
              {"error", run->error},
              {"wall_ms", wall_ms},
              {"client_wall_ms", client_wall_ms},
              {"user_wait_ms", user_wait_ms},
              {"questions", questions},
              {"resume_ms", resume_ms},
              {"steps", steps},
              {"fan_out_steps", fan_out_steps},
              {"model_calls", exchanges},
              {"model_records_missing", missing_records},
              {"commands", finished_commands},
              {"failed_commands", failed_commands},
              {"files_written", files_written},
              {"events", events.size()},
              {"command_wall_ms", command_ms},
              {"model_wall_ms", model_ms},
              {"busy_ms", busy_ms},
              {"kernel_ms", kernel_ms},
              {"kernel_ms_per_step", kernel_ms / step_count},
              {"kernel_with_models_ms_per_step", (kernel_ms + union_ms(busy) - union_ms(commands)) / step_count},
              {"in_steps_ms", in_steps_ms},
              // The rest of the kernel time: claiming and loading the run, choosing the next agent,
              // committing outside an attempt, resuming after an answer.
              {"between_steps_ms", kernel_ms - in_steps_ms},
              {"cpu_ms", cpu_ms},
              {"cpu_ms_per_step", cpu_ms / step_count},
              {"agents", agents}};
  if (kernel.app->previews() != nullptr && !kernel.app->config().previews.runners.empty()) {
    // Stopped so that the next runs' previews stay within previews.max_per_user.
    kernel.call(verb::delete_, "/api/v1/projects/" + project + "/preview");
  }
  return out;
}

// ---- a containment mode --------------------------------------------------------------------------

json summarize(const std::vector<json>& runs) {
  json out = json::object();
  for (const char* key : {"wall_ms", "user_wait_ms", "steps", "model_calls", "commands", "files_written", "events",
                          "command_wall_ms", "model_wall_ms", "busy_ms", "kernel_ms", "kernel_ms_per_step",
                          "kernel_with_models_ms_per_step", "in_steps_ms", "between_steps_ms", "cpu_ms", "cpu_ms_per_step",
                          "fan_out_steps"}) {
    std::vector<double> values;
    for (const auto& r : runs)
      values.push_back(r.value(key, 0.0));
    out[key] = {{"median", median(values)},
                {"min", *std::min_element(values.begin(), values.end())},
                {"max", *std::max_element(values.begin(), values.end())}};
  }
  // Per agent: the medians of its steps and its kernel time inside them.
  json agents = json::object();
  for (const auto& r : runs)
    for (const auto& [name, value] : r["agents"].items())
      agents[name] = json::object();
  for (auto& [name, value] : agents.items()) {
    for (const char* key : {"steps", "attempts", "step_wall_ms", "kernel_ms"}) {
      std::vector<double> values;
      for (const auto& r : runs)
        values.push_back(r["agents"].contains(name) ? r["agents"][name].value(key, 0.0) : 0.0);
      value[key] = median(values);
    }
  }
  out["agents"] = agents;
  return out;
}

json measure_mode(const Options& o, const std::string& model_base, const std::filesystem::path& dir,
                  const std::string& containment) {
  Kernel kernel(dir, model_base, containment, o.previews);
  json out = {{"containment", containment},
              {"previews", o.previews ? "on (preview.sandbox)" : "off (previews.runners empty)"},
              {"ask_spec", o.ask_spec},
              {"workers", kernel.runs_config.workers},
              {"max_parallel_per_run", kernel.runs_config.max_parallel_per_run}};
  std::cerr << "pipeline_bench: " << containment << ": warm-up run " << o.grid[0].tasks << "x" << o.grid[0].files
            << "\n";
  const json warm = measure_run(o, kernel, o.grid[0], "warm-up");
  out["warm_up"] = warm;
  if (warm["state"] != "succeeded") {
    out["not_measured"] = "the warm-up run " + warm.value("state", std::string("?")) + ": " +
                          warm.value("error", std::string());
    return out;
  }
  std::vector<std::vector<json>> runs(o.grid.size());
  for (int r = 0; r < o.repeat; ++r) {
    for (std::size_t i = 0; i < o.grid.size(); ++i) {
      const Case& c = o.grid[i];
      std::cerr << "pipeline_bench: " << containment << ": " << c.tasks << "x" << c.files << " run " << r + 1 << "/"
                << o.repeat << "\n";
      runs[i].push_back(measure_run(o, kernel, c, std::to_string(c.tasks) + "x" + std::to_string(c.files)));
      const json& last = runs[i].back();
      std::cerr << "pipeline_bench:   " << last["state"].get<std::string>() << ", " << last["steps"] << " steps, "
                << static_cast<long>(last["wall_ms"].get<double>()) << " ms wall, kernel "
                << last["kernel_ms_per_step"].get<double>() << " ms/step, CPU " << last["cpu_ms_per_step"].get<double>()
                << " ms/step\n";
    }
  }
  json cases = json::array();
  for (std::size_t i = 0; i < o.grid.size(); ++i) {
    json entry = {{"tasks", o.grid[i].tasks}, {"files", o.grid[i].files}, {"runs", runs[i]}};
    std::size_t succeeded = 0;
    for (const auto& r : runs[i])
      succeeded += r["state"] == "succeeded" ? 1 : 0;
    entry["succeeded"] = succeeded;
    entry["summary"] = summarize(runs[i]);
    cases.push_back(std::move(entry));
  }
  // Growth: each case's median per-step figures against the first case's.
  const auto per_step = [&](std::size_t i, const char* key) {
    return cases[i]["summary"][key]["median"].get<double>();
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    for (const char* key : {"kernel_ms_per_step", "cpu_ms_per_step", "kernel_ms", "cpu_ms", "steps"}) {
      const double base = per_step(0, key);
      cases[i]["ratio_to_first"][key] = base > 0 ? per_step(i, key) / base : 0.0;
    }
  }
  out["cases"] = cases;
  // What a fork() of this process copies for every command (page tables of its mappings, its threads'
  // stacks): the kernel's size after the runs.
  const auto [rss, threads] = PeakSampler::now();
  out["rss_kib_after"] = rss;
  out["threads_after"] = threads;
  return out;
}

int run(const Options& options) {
  // Before any thread exists: the child gets a clean copy of a single-threaded process.
  std::optional<ModelServerProcess> models;
  try {
    models.emplace([](const testing::ModelCall& call) { return testing::ScaledAppScript().answer(call); });
  } catch (const std::exception& e) {
    std::cerr << "pipeline_bench: " << e.what() << "\n";
    return 2;
  }
  core::init_logging(config::LogConfig{.level = "warn", .format = "text", .access_log = false});
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("samokoder-pipeline-bench-" + std::to_string(::getpid()));
  json grid = json::array();
  for (const auto& c : options.grid)
    grid.push_back({c.tasks, c.files});
  json result = {{"settings",
                  {{"grid", grid},
                   {"repeat", options.repeat},
                   {"previews", options.previews},
                   {"ask_spec", options.ask_spec},
                   {"containment", options.containment}}},
                 {"modes", json::array()}};
  int exit_code = 0;
  for (const auto& mode : options.containment) {
    try {
      json measured = measure_mode(options, models->base_url(), dir / mode, mode);
      for (const auto& c : measured.value("cases", json::array()))
        if (c["succeeded"].get<std::size_t>() != c["runs"].size()) exit_code = 1;
      if (measured.contains("not_measured")) {
        std::cerr << "pipeline_bench: " << mode << ": not measured: " << measured["not_measured"].get<std::string>()
                  << "\n";
        if (mode == "none") exit_code = 1;  // no excuse without a sandbox
      }
      result["modes"].push_back(std::move(measured));
    } catch (const std::exception& e) {
      std::cerr << "pipeline_bench: " << mode << ": " << e.what() << "\n";
      exit_code = 1;
      break;
    }
  }
  std::error_code ignored;
  if (options.keep) {
    std::cerr << "pipeline_bench: kept " << dir.string() << "\n";
  } else {
    std::filesystem::remove_all(dir, ignored);
  }
  std::cout << result.dump() << std::endl;
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "pipeline_bench: " << e.what() << " (see the options at the top of bench/pipeline_bench.cpp)\n";
    return 2;
  }
  return run(options);
}
