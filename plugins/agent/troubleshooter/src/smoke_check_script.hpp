// The smoke check script (src/smoke_check.py), compiled into the plugin by cmake/embed_script.cmake and
// run as `python3 -c <script>` through the run's command service.
#pragma once

#include <string_view>

namespace samokoder::troubleshooter {

std::string_view smoke_check_script() noexcept;

}  // namespace samokoder::troubleshooter
