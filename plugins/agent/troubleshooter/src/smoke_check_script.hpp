// The smoke check script (check/smoke_check.py, compiled into the plugin by samokoder_agent_embed_folder),
// run as `python3 -c <script>` through the run's command service.
#pragma once

#include <span>
#include <string_view>

#include <samokoder/agent_common/prompt_book.hpp>

namespace samokoder::agent_common {
// The files of check/ (generated).
std::span<const EmbeddedFile> troubleshooter_check_files() noexcept;
}  // namespace samokoder::agent_common

namespace samokoder::troubleshooter {

// The script's text; empty only if the build lost check/smoke_check.py.
inline std::string_view smoke_check_script() noexcept {
  for (const auto& file : agent_common::troubleshooter_check_files())
    if (file.name == "smoke_check.py") return file.content;
  return {};
}

}  // namespace samokoder::troubleshooter
