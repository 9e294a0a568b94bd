// WorkspaceView: the project's files as a prompt shows them to the model. The pipeline's agents that
// write code (developer, code monkey, troubleshooter, tech writer) put the workspace into their prompts;
// what is generated or installed (node_modules, virtual environments, lock files, build output) and
// binary files are left out, and the total is bounded so a large project does not exceed the model's
// context.
//
// Thread-safety: uses only the context it is given (one thread at a time, as the SDK says).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/agent.hpp>

namespace samokoder::agent_common {

// A file path an agent may write: relative, no "." or ".." or empty segment, no backslash or NUL, not a
// folder; a leading "./" (models write it often, it names the same file) is dropped. "" when the path
// is not one.
std::string workspace_path(std::string path);

// Whether a path is the project's own source (not installed, generated or a lock file).
bool is_source_path(std::string_view path);

// The source paths of the workspace, sorted.
sdk::Result<std::vector<std::string>> source_files(sdk::AgentContext& context);

// The source files with their contents, each as "--- <path> ---\n<content>\n" in path order while
// they fit in `max_bytes`; the files that do not fit are listed by name at the end. "(the workspace is
// empty)" for none.
sdk::Result<std::string> describe_workspace(sdk::AgentContext& context, std::size_t max_bytes = 48 * 1024);

}  // namespace samokoder::agent_common
