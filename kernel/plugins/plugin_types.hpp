// The vocabulary of the plugin manager: lifecycle states, failure reasons and kind names, as they
// appear in the API, in metrics and in log lines.
//
// The spelled-out names are part of the operator interface (dashboards and alerts match on them),
// so they only ever gain values. Thread-safety: constants and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace samokoder::plugins {

// docs/ops.md "Plugin states", plus DISABLED for a plugin that is configured but switched off.
enum class PluginState : std::uint8_t {
  kDiscovered,  // configured; nothing checked yet
  kValidated,   // the file is an ELF shared object of this machine exporting the entry symbol
  kLoaded,      // mapped, handshake passed, instance created; init not finished
  kActive,      // serving calls
  kDraining,    // replaced or being unloaded; calls in flight still finish on it
  kUnloaded,    // torn down and verified unmapped
  kFailed,      // could not be loaded; see the failure reason
  kPinned,      // torn down as far as possible but the library stays mapped (or a call never returned)
  kDisabled,    // "enabled": false in the config
};
inline constexpr PluginState kAllPluginStates[] = {
    PluginState::kDiscovered, PluginState::kValidated, PluginState::kLoaded,
    PluginState::kActive,     PluginState::kDraining,  PluginState::kUnloaded,
    PluginState::kFailed,     PluginState::kPinned,    PluginState::kDisabled};

std::string_view state_name(PluginState state) noexcept;

// Why a load failed; the label of samokoder_plugin_load_failures_total.
enum class FailureReason : std::uint8_t {
  kNone,
  kFileNotFound,         // the configured file does not exist
  kNotElf,               // not an ELF shared object for this machine
  kNoEntrySymbol,        // does not export samokoder_plugin_entry
  kStagingFailed,        // the private copy could not be written
  kDlopenFailed,         // the dynamic loader refused it (missing dependency, bad relocation, ...)
  kBadDescriptor,        // null descriptor, null fields, malformed id or version, unknown kind
  kAbiMajor,             // built against another major version of the SDK
  kAbiMinor,             // built against a newer minor version of the SDK than this kernel's
  kFingerprint,          // built with another toolchain
  kIdMismatch,           // the descriptor's id is not the id it was configured under
  kDuplicateId,          // another plugin with the same id is already loaded
  kCreateFailed,         // create() returned null or the instance is not of its declared kind
  kInitFailed,           // init() returned an error or threw
  kSelfTestFailed,       // self_test() returned an error or threw
  kStateTransferFailed,  // a reload's export_state()/import_state() failed or threw
};
inline constexpr FailureReason kAllFailureReasons[] = {
    FailureReason::kFileNotFound,  FailureReason::kNotElf,         FailureReason::kNoEntrySymbol,
    FailureReason::kStagingFailed, FailureReason::kDlopenFailed,   FailureReason::kBadDescriptor,
    FailureReason::kAbiMajor,      FailureReason::kAbiMinor,       FailureReason::kFingerprint,
    FailureReason::kIdMismatch,    FailureReason::kDuplicateId,    FailureReason::kCreateFailed,
    FailureReason::kInitFailed,    FailureReason::kSelfTestFailed, FailureReason::kStateTransferFailed};

std::string_view reason_name(FailureReason reason) noexcept;

// "agent", "llm", "auth", "storage", "preview"; "unknown" for anything else.
std::string_view kind_name(std::uint32_t kind) noexcept;
std::optional<std::uint32_t> kind_from_name(std::string_view name) noexcept;

}  // namespace samokoder::plugins
