// Stands in for a server that dies with kill -9 while a plugin's child runs: it starts one long child
// through a real ProcessService recording into argv[1], prints "child <pid>" and "grandchild <pid>"
// (its background job), and then waits to be killed.
#include <cstdio>
#include <string>

#include <unistd.h>

#include "metrics/registry.hpp"
#include "processes/process_service.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  samokoder::config::ProcessesConfig config;
  config.state_dir = argv[1];
  samokoder::metrics::Registry registry;
  auto* service = new samokoder::processes::ProcessService(config, registry);  // never destroyed: kill -9
  samokoder::sdk::ProcessSpec spec;
  spec.argv = {"sleep 120 & echo $!; exec sleep 120"};
  spec.shell = true;
  spec.timeout = std::chrono::minutes(5);
  std::string grandchild;
  spec.on_line = [&grandchild](samokoder::sdk::OutputStream, std::string_view line) {
    if (grandchild.empty()) {
      grandchild = line;
      std::printf("grandchild %s\n", grandchild.c_str());
      std::fflush(stdout);
    }
  };
  auto child = service->start({"agent.tracker", 1}, spec);
  if (!child.ok()) {
    std::fprintf(stderr, "%s\n", child.status().to_string().c_str());
    return 1;
  }
  std::printf("child %d\n", (*child)->pid());
  std::fflush(stdout);
  static_cast<void>(
      child->release());  // the handle must not end the child: only the kill -9 ends this process
  for (;;)
    ::pause();
}
