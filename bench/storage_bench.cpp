// Storage micro-benchmarks through the plugin boundary, as the kernel calls them: insert and read a
// project, append a run event, read a page of 50 events. Each backend is registered by name in main()
// (sqlite: a fresh WAL database in a temp directory, synchronous=normal; postgres, when built: a
// throwaway PostgreSQL 15 server on this machine, fsync on, reached over 127.0.0.1); another backend
// adds a BenchDatabase factory and one register_backend() call.
//
//   build-bench/bin/storage_bench --benchmark_min_time=2
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <benchmark/benchmark.h>

#include "plugin_harness.hpp"
#include "postgres_server.hpp"
#include "temp_dir.hpp"
#include "test_host.hpp"

namespace {

using samokoder::sdk::Storage;
using samokoder::testing::LoadedStorage;
using samokoder::testing::TempDir;
using samokoder::testing::TestHost;

// One loaded backend with a user, a project and a run that already has 1000 events.
class BenchDatabase {
 public:
  BenchDatabase(const std::filesystem::path& plugin, const std::string& plugin_id, nlohmann::json config,
                std::unique_ptr<TempDir> dir = nullptr)
      : dir_(std::move(dir)), host_(plugin_id, std::move(config)) {
    auto loaded = LoadedStorage::load(plugin, host_);
    if (!loaded.ok()) throw std::runtime_error(loaded.status().to_string());
    loaded_ = std::move(*loaded);
    user_id_ = storage().users().create_user({"bench@example.com", "", false, "free"}).value().id;
    project_id_ = storage().projects().create_project({user_id_, "bench", ""}).value().id;
    run_id_ = storage().runs().create_run(user_id_, {project_id_, "bench", "running"}).value().id;
    for (int i = 0; i < 1000; ++i) {
      (void)storage()
          .runs()
          .append_run_event(user_id_, run_id_, "log", {{"line", i}, {"text", "npm install"}})
          .value();
    }
  }

  Storage& storage() { return loaded_->storage(); }
  const std::string& user_id() const { return user_id_; }
  const std::string& project_id() const { return project_id_; }
  const std::string& run_id() const { return run_id_; }

 private:
  std::unique_ptr<TempDir> dir_;
  TestHost host_;
  std::unique_ptr<LoadedStorage> loaded_;
  std::string user_id_;
  std::string project_id_;
  std::string run_id_;
};

std::unique_ptr<BenchDatabase> sqlite_database() {
  auto dir = std::make_unique<TempDir>("storage-bench");
  nlohmann::json config = {{"path", (dir->path() / "bench.db").string()}, {"synchronous", "normal"}};
  return std::make_unique<BenchDatabase>(SAMOKODER_STORAGE_SQLITE_PLUGIN, "storage.sqlite", std::move(config),
                                         std::move(dir));
}

#ifdef SAMOKODER_STORAGE_POSTGRES_PLUGIN
std::unique_ptr<BenchDatabase> postgres_database(samokoder::testing::PostgresServer& server) {
  nlohmann::json config = {{"url", server.url()}, {"pool_size", 8}};
  return std::make_unique<BenchDatabase>(SAMOKODER_STORAGE_POSTGRES_PLUGIN, "storage.postgres",
                                         std::move(config));
}
#endif

void create_project(benchmark::State& state, BenchDatabase* db) {
  for (auto _ : state) {
    auto project = db->storage().projects().create_project({db->user_id(), "p", "a project"});
    if (!project.ok()) state.SkipWithError(project.status().to_string().c_str());
  }
}

void get_project(benchmark::State& state, BenchDatabase* db) {
  for (auto _ : state) {
    auto project = db->storage().projects().get_project(db->user_id(), db->project_id());
    if (!project.ok()) state.SkipWithError(project.status().to_string().c_str());
    benchmark::DoNotOptimize(project);
  }
}

void append_run_event(benchmark::State& state, BenchDatabase* db) {
  for (auto _ : state) {
    auto event = db->storage().runs().append_run_event(db->user_id(), db->run_id(), "log",
                                                       {{"line", 1}, {"text", "ok"}});
    if (!event.ok()) state.SkipWithError(event.status().to_string().c_str());
  }
}

void read_event_page_50(benchmark::State& state, BenchDatabase* db) {
  for (auto _ : state) {
    auto events = db->storage().runs().list_run_events(db->user_id(), db->run_id(), 500, 50);
    if (!events.ok() || events->size() != 50) state.SkipWithError("expected a page of 50 events");
    benchmark::DoNotOptimize(events);
  }
}

void register_backend(const std::string& name, BenchDatabase* db) {
  benchmark::RegisterBenchmark((name + "/create_project").c_str(), create_project, db);
  benchmark::RegisterBenchmark((name + "/get_project").c_str(), get_project, db)->Threads(1)->Threads(4);
  benchmark::RegisterBenchmark((name + "/append_run_event").c_str(), append_run_event, db);
  benchmark::RegisterBenchmark((name + "/read_event_page_50").c_str(), read_event_page_50, db)
      ->Threads(1)
      ->Threads(4);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::unique_ptr<BenchDatabase> sqlite = sqlite_database();
  register_backend("sqlite", sqlite.get());
#ifdef SAMOKODER_STORAGE_POSTGRES_PLUGIN
  samokoder::testing::PostgresServer server;
  const std::unique_ptr<BenchDatabase> postgres = postgres_database(server);
  register_backend("postgres", postgres.get());
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
