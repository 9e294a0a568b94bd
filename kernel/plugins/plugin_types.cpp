#include "plugins/plugin_types.hpp"

#include <samokoder/abi.h>

namespace samokoder::plugins {

std::string_view state_name(PluginState state) noexcept {
  switch (state) {
    case PluginState::kDiscovered:
      return "DISCOVERED";
    case PluginState::kValidated:
      return "VALIDATED";
    case PluginState::kLoaded:
      return "LOADED";
    case PluginState::kActive:
      return "ACTIVE";
    case PluginState::kDraining:
      return "DRAINING";
    case PluginState::kUnloaded:
      return "UNLOADED";
    case PluginState::kFailed:
      return "FAILED";
    case PluginState::kPinned:
      return "PINNED";
    case PluginState::kDisabled:
      return "DISABLED";
  }
  return "UNKNOWN";
}

std::string_view reason_name(FailureReason reason) noexcept {
  switch (reason) {
    case FailureReason::kNone:
      return "none";
    case FailureReason::kFileNotFound:
      return "file_not_found";
    case FailureReason::kNotElf:
      return "not_elf";
    case FailureReason::kNoEntrySymbol:
      return "no_entry_symbol";
    case FailureReason::kStagingFailed:
      return "staging_failed";
    case FailureReason::kDlopenFailed:
      return "dlopen_failed";
    case FailureReason::kBadDescriptor:
      return "bad_descriptor";
    case FailureReason::kAbiMajor:
      return "abi_major";
    case FailureReason::kAbiMinor:
      return "abi_minor";
    case FailureReason::kFingerprint:
      return "fingerprint";
    case FailureReason::kIdMismatch:
      return "id_mismatch";
    case FailureReason::kDuplicateId:
      return "duplicate_id";
    case FailureReason::kCreateFailed:
      return "create_failed";
    case FailureReason::kInitFailed:
      return "init_failed";
    case FailureReason::kSelfTestFailed:
      return "self_test_failed";
    case FailureReason::kStateTransferFailed:
      return "state_transfer_failed";
  }
  return "unknown";
}

std::string_view kind_name(std::uint32_t kind) noexcept {
  switch (kind) {
    case SAMOKODER_KIND_AGENT:
      return "agent";
    case SAMOKODER_KIND_LLM:
      return "llm";
    case SAMOKODER_KIND_AUTH:
      return "auth";
    case SAMOKODER_KIND_STORAGE:
      return "storage";
    case SAMOKODER_KIND_PREVIEW:
      return "preview";
    default:
      return "unknown";
  }
}

std::optional<std::uint32_t> kind_from_name(std::string_view name) noexcept {
  for (std::uint32_t kind = SAMOKODER_KIND_AGENT; kind <= SAMOKODER_KIND_PREVIEW; ++kind) {
    if (kind_name(kind) == name) return kind;
  }
  return std::nullopt;
}

}  // namespace samokoder::plugins
