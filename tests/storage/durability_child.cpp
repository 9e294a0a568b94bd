// storage_durability_child: commits transactions until killed, reporting each one after its commit.
//
// Usage: storage_durability_child <plugin.so> <config-json> <count>
// Prints "user <id>" once, then "project <id>" after every committed transaction (a project, a file,
// a run and an event written together), flushing stdout each time. The durability test kills it with
// SIGKILL at a random moment and checks that everything it reported survived.
#include <cstdio>
#include <string>

#include <unistd.h>

#include "plugin_harness.hpp"
#include "test_host.hpp"

namespace {

using samokoder::sdk::Status;

int fail(const std::string& what) {
  std::fprintf(stderr, "storage_durability_child: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return fail("usage: storage_durability_child <plugin.so> <config-json> <count>");
  nlohmann::json config;
  long long count = 0;
  try {
    config = nlohmann::json::parse(argv[2]);
    count = std::stoll(argv[3]);
  } catch (const std::exception& e) {
    return fail(std::string("bad arguments: ") + e.what());
  }
  samokoder::testing::TestHost host("storage.durability_child", config);
  host.set_auto_advance(std::chrono::microseconds(1));
  auto loaded = samokoder::testing::LoadedStorage::load(argv[1], host);
  if (!loaded.ok()) return fail(loaded.status().to_string());
  samokoder::sdk::Storage& storage = (*loaded)->storage();

  const std::string email = "durable-" + std::to_string(::getpid()) + "@example.com";
  auto user = storage.users().create_user(samokoder::sdk::NewUser{email, "", false, "free"});
  if (!user.ok()) return fail(user.status().to_string());
  std::printf("user %s\n", user->id.c_str());
  std::fflush(stdout);

  for (long long i = 0; i < count; ++i) {
    std::string project_id;
    const Status committed = storage.transaction([&](samokoder::sdk::Stores& ops) -> Status {
      auto project =
          ops.projects().create_project(samokoder::sdk::NewProject{user->id, "p" + std::to_string(i), ""});
      if (!project.ok()) return project.status();
      project_id = project->id;
      const nlohmann::json state = {{"i", i}, {"project", project_id}};
      SAMOKODER_RETURN_IF_ERROR(
          ops.files().put_file(user->id, project_id, "state.json", state.dump(), "").status());
      auto run = ops.runs().create_run(user->id, samokoder::sdk::NewRun{project_id, "durability", "queued"});
      if (!run.ok()) return run.status();
      return ops.runs().append_run_event(user->id, run->id, "created", state).status();
    });
    if (!committed.ok()) return fail(committed.to_string());
    std::printf("project %s\n", project_id.c_str());
    std::fflush(stdout);
  }
  return 0;
}
