// scripted_model_server: the ScriptedModelServer (model_server.hpp) as a program, for tests that run
// the model API in another process (the browser test, a server killed mid-run) and for trying the
// kernel by hand without a provider account.
//
//   scripted_model_server [--script FILE] [--key KEY] [--models a,b] [--models-page-size N] [--port-file
//   FILE]
//
// FILE holds a JSON array of replies (the fields of ModelReply, see model_reply_from_json); more can be
// appended at run time with POST /__script, and GET /__calls lists the requests received. It prints
// "listening <base url>" on stdout once it accepts connections and serves until SIGTERM or SIGINT.
#include <charconv>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>

#include "model_server.hpp"

namespace {

int usage() {
  std::cerr << "usage: scripted_model_server [--script FILE] [--key KEY] [--models a,b] [--models-page-size "
               "N] [--port-file FILE]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using samokoder::testing::ScriptedModelServer;
  ScriptedModelServer::Options options;
  std::string script_file;
  std::string port_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string value = argv[++i];
    if (arg == "--script") {
      script_file = value;
    } else if (arg == "--key") {
      options.expected_key = value;
    } else if (arg == "--models") {
      options.models.clear();
      std::stringstream list(value);
      for (std::string model; std::getline(list, model, ',');)
        if (!model.empty()) options.models.push_back(model);
    } else if (arg == "--models-page-size") {
      const auto [end, error] =
          std::from_chars(value.data(), value.data() + value.size(), options.models_page_size);
      if (error != std::errc() || end != value.data() + value.size()) return usage();
    } else if (arg == "--port-file") {
      port_file = value;
    } else {
      return usage();
    }
  }
  std::vector<samokoder::testing::ModelReply> replies;
  if (!script_file.empty()) {
    std::ifstream in(script_file);
    const auto script = nlohmann::json::parse(in, nullptr, false);
    if (!in || script.is_discarded() || !script.is_array()) {
      std::cerr << "scripted_model_server: " << script_file << " is not a JSON array of replies\n";
      return 2;
    }
    try {
      for (const auto& reply : script)
        replies.push_back(samokoder::testing::model_reply_from_json(reply));
    } catch (const std::exception& e) {
      std::cerr << "scripted_model_server: " << script_file << ": " << e.what() << "\n";
      return 2;
    }
  }

  // Block the stop signals before any thread starts, then wait for one of them on this thread.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  ScriptedModelServer server(options);
  server.script(std::move(replies));
  if (!port_file.empty()) std::ofstream(port_file) << server.port() << "\n";
  std::cout << "listening " << server.url("") << std::endl;
  int signal = 0;
  sigwait(&stop, &signal);
  return 0;
}
