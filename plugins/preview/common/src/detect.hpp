// How to run a workspace: the engine's plan for one launch of a preview (what to install, what to
// start, with which environment), made from the files of the workspace or the project's own command.
//
// Ownership: plain values. Thread-safety: detect() only reads files; call it from any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <samokoder/preview_common/runner.hpp>
#include <samokoder/sdk/preview.hpp>
#include <samokoder/sdk/status.hpp>

namespace samokoder::preview_common::internal {

struct Plan {
  std::string description;                        // "npm run dev (package.json)", for logs and detail
  std::vector<std::vector<std::string>> install;  // argv of each install step, in order; often none
  // Written after every install step succeeded, so an unchanged manifest is not installed again.
  std::string stamp_path;
  std::string stamp;                      // of the manifests as they were when the plan was made
  std::vector<std::string> stamp_inputs;  // the manifests, read again when the stamp is written
  std::vector<std::string> app;           // argv of the app
  std::vector<std::pair<std::string, std::string>> environment;  // complete, for install and app
  bool reloads_itself = false;  // a dev server that watches the files (files_changed does nothing)
};

// kNotFound when the workspace holds nothing this engine runs (the message lists what it looked
// for), kInvalidArgument for a manifest it cannot read. `force_install` re-runs the install even
// when the stamp matches (the manifest was among the changed paths).
sdk::Result<Plan> detect(const sdk::PreviewSpec& spec, const RunnerOptions& options, bool force_install);

// True when a command line starts a server that reloads itself on file changes.
bool mentions_watcher(std::string_view command);

// Writes plan.stamp to plan.stamp_path; false when it could not (the next start installs again).
bool write_stamp(const Plan& plan);

}  // namespace samokoder::preview_common::internal
