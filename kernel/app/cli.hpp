// The `samokoder` command line: serve, config check, plugin check, version.
//
// Each subcommand is a function from arguments and output streams to an exit code, so tests run
// them in-process. Exit codes: 0 success, 1 the checked thing is bad or the command failed, 2 usage.
//
// Thread-safety: run_cli is called once from main; subcommands other than serve are single-threaded.
#pragma once

#include <iosfwd>
#include <span>
#include <string_view>

namespace samokoder::app {

int run_cli(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace samokoder::app
