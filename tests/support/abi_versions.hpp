// The refusal texts the loader gives the ABI fixtures, which are built one major (or one minor) past
// the SDK. Tests compare against these instead of spelling a version the next ABI bump would make
// stale.
#pragma once

#include <string>

#include <samokoder/abi.h>

namespace samokoder::testing {

inline std::string abi_version(int major, int minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// What fixture_abi_major's failure message contains.
inline std::string next_major_refusal() {
  return "built against SDK ABI " + abi_version(SAMOKODER_ABI_MAJOR + 1, 0) + ", this kernel speaks ABI " +
         std::to_string(SAMOKODER_ABI_MAJOR) + ".x";
}

// What fixture_abi_minor's failure message contains.
inline std::string next_minor_refusal() {
  return "built against SDK ABI " + abi_version(SAMOKODER_ABI_MAJOR, SAMOKODER_ABI_MINOR + 1) +
         ", newer than this kernel's " + abi_version(SAMOKODER_ABI_MAJOR, SAMOKODER_ABI_MINOR);
}

}  // namespace samokoder::testing
