#include "pipeline_config.hpp"

namespace samokoder::testing {

nlohmann::json pipeline_serve_config(const std::filesystem::path& dir, const std::string& plugin_dir,
                                     const std::string& model_base_url) {
  using nlohmann::json;
  json plugins = json::array();
  plugins.push_back({{"id", "storage.sqlite"},
                     {"file", "storage_sqlite.so"},
                     {"required", true},
                     {"config", {{"path", (dir / "samokoder.db").string()}}}});
  plugins.push_back({{"id", "auth.local"},
                     {"file", "auth_local.so"},
                     {"required", true},
                     {"config", {{"memory_kib", 1024}, {"iterations", 1}, {"parallelism", 1}}}});
  plugins.push_back({{"id", "llm.openai"}, {"file", "llm_openai.so"}, {"required", true}});
  plugins.push_back({{"id", "preview.sandbox"}, {"file", "preview_sandbox.so"}, {"required", true}});
  json pipeline = json::array();
  for (const char* agent :
       {"error_handler", "spec_writer", "architect", "bootstrap", "tech_lead", "tech_writer",
        "task_completer", "developer", "code_monkey", "executor", "troubleshooter"}) {
    const std::string id = std::string("agent.") + agent;
    plugins.push_back({{"id", id}, {"file", std::string("agent_") + agent + ".so"}, {"required", true}});
    pipeline.push_back(id);
  }
  return {{"log", {{"level", "info"}, {"access_log", false}}},
          {"plugin_dir", plugin_dir},
          {"runtime_dir", (dir / "run").string()},
          {"workspace_root", (dir / "workspaces").string()},
          {"housekeeping", {{"enabled", false}}},
          {"plugins", plugins},
          {"llm",
           {{"providers", {{"openai", {{"base_url", model_base_url}}}}},
            {"roles", {{"default", {"openai/test-model"}}}},
            {"retry", {{"initial_backoff_ms", 1}, {"max_backoff_ms", 5}}}}},
          {"runs", {{"pipeline", pipeline}, {"poll_interval_ms", 100}}},
          {"previews", {{"runners", {"preview.sandbox"}}}}};
}

}  // namespace samokoder::testing
