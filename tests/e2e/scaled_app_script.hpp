// ScaledAppScript: a scripted model for the pipeline bench (bench/pipeline_bench.cpp) that plays every
// agent's model for a generated app of a chosen size, answering at once. The description carries the
// size, "bench_tasks=T bench_files=F", and every prompt that needs it quotes the description or the spec written
// from it, so one stateless script serves runs of any size side by side:
//   - spec_review: clear, no question; with "[ask]" in the description, one question instead (answered
//     by the bench over the API);
//   - architecture: Node.js with node:http; template_choice: the node_http template;
//   - task_plan: T tasks, each named "[bench task k]" in its description;
//   - task_steps for task k: F save_file steps public/gk/mJ.js (J = 1..F), then one command
//     `node --check public/gk/m1.js`;
//   - file_content: a few lines of valid JavaScript naming its file ("gk-mJ");
//   - app_check: `node server.js`, GET /api/health (the template's) and GET /gk/m1.js, both passing;
//   - readme: a short README; file_review: approved.
// Nothing fails, so the error handler never runs; a call the script has no answer for (fix_plan,
// iteration_steps, user_report and anything unknown) gets a 500 naming it, which fails the run loudly.
//
// Ownership: plain value. Thread-safety: answer() is a pure function of the request; call it from any
// thread.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model_server.hpp"

namespace samokoder::testing {

class ScaledAppScript {
 public:
  // The description of a run of `tasks` tasks writing `files` files each; `ask` makes the spec writer
  // ask one question first.
  static std::string description(int tasks, int files, bool ask);
  static constexpr const char* kSpecQuestion = "Should the modules be loaded by the page?";
  // What the app's files start with: a file's content names it "g<task>-m<file>".
  static std::string file_content(int task, int file);

  ModelReply answer(const ModelCall& call) const;
  // The JSON answer for the output `name` given the prompt's text; null when the script has none.
  static nlohmann::json answer_json(const std::string& name, const std::string& prompt);
};

}  // namespace samokoder::testing
