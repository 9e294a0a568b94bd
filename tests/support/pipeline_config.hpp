// The config of `samokoder serve` running the default agent pipeline against the scripted model
// server, for the tests that run the whole product as a child process (tests/e2e, tests/browser).
//
// Thread-safety: a pure function.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace samokoder::testing {

// storage.sqlite in `dir`, auth.local with cheap hashing, llm.openai at `model_base_url` (the role
// "default" on openai/test-model, retries without real backoff), preview.sandbox, and the eleven agents
// of the default pipeline in their order; workspaces and runtime files in `dir`, housekeeping off, runs
// polled every 100 ms. Every plugin is required. Callers add what their test needs (a key variable,
// rate limits, another agent in "/runs/pipeline").
nlohmann::json pipeline_serve_config(const std::filesystem::path& dir, const std::string& plugin_dir,
                                     const std::string& model_base_url);

}  // namespace samokoder::testing
