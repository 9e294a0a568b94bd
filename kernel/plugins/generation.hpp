// Generation: one loaded copy of a plugin (its private library file, its instance and its host
// services), and the loader that produces it (docs/architecture.md "The plugin boundary").
//
// load_generation runs the whole admission sequence: file exists, ELF pre-validation, private byte
// copy, dlopen (RTLD_NOW | RTLD_LOCAL) through Boost.DLL, handshake on the descriptor, create, kind
// check, init with host services, self-test. Every step that can fail says which step, what was
// expected and what was found, and carries a FailureReason for metrics. No plugin code runs before
// the ELF checks pass; every call into plugin code is guarded, so a throw becomes a failure.
//
// teardown() is the reverse: close the scheduler view (timers and tasks stop), shutdown, close the
// HTTP and process views (their callbacks end), destroy, unload, and the residency check (dlopen with
// RTLD_NOLOAD) that tells whether the library really left the address space.
//
// Ownership: a Generation owns its instance, host, library handle and private copy.
// Thread-safety: the accessors are safe to call concurrently once loaded; teardown() must not run
// while any call into the instance is in flight (the plugin manager's leases guarantee that).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/dll/shared_library.hpp>
#include <nlohmann/json.hpp>

#include <samokoder/abi.h>
#include <samokoder/sdk/plugin.hpp>

#include "core/clock.hpp"
#include "metrics/registry.hpp"
#include "plugins/plugin_host.hpp"
#include "plugins/plugin_types.hpp"

namespace samokoder::plugins {

// The descriptor fields, copied out of the library so they stay readable after it is unloaded.
struct DescriptorInfo {
  std::uint32_t struct_size = 0;
  std::uint32_t abi_major = 0;
  std::uint32_t abi_minor = 0;
  std::uint32_t kind = 0;
  std::string fingerprint;
  std::string id;
  std::string version;
  std::string description;
};

struct LoadRequest {
  // The id the plugin is configured under; empty accepts whatever id the descriptor declares
  // (plugin check of a bare file).
  std::string expected_id;
  std::filesystem::path file;         // absolute or relative to the working directory
  std::filesystem::path runtime_dir;  // where the private copy goes
  std::uint64_t generation = 1;
  nlohmann::json config = nlohmann::json::object();
  bool run_self_test = true;
};

// A failed admission: which step failed and the sentence for operators. When the failure came after
// the descriptor was read, `descriptor` holds it so reports can still name the plugin.
struct LoadFailure {
  FailureReason reason = FailureReason::kNone;
  std::string message;
  std::optional<DescriptorInfo> descriptor;
  std::string sha256;
  bool pinned = false;  // the rejected library could not be unmapped
};

class Generation {
 public:
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;
  // Tears down if teardown() was not called.
  ~Generation();

  const DescriptorInfo& descriptor() const noexcept { return descriptor_; }
  std::uint64_t number() const noexcept { return number_; }
  const std::filesystem::path& source_file() const noexcept { return source_file_; }
  const std::filesystem::path& private_copy() const noexcept { return private_copy_; }
  const std::string& sha256() const noexcept { return sha256_; }
  const std::vector<std::string>& unique_symbols() const noexcept { return unique_symbols_; }
  std::chrono::system_clock::time_point loaded_at() const noexcept { return loaded_at_; }

  sdk::Plugin& instance() const noexcept { return *instance_; }
  // The instance as its kind interface (sdk::Storage*, sdk::Agent*, ...), checked by dynamic_cast at
  // load time; cast with the type matching descriptor().kind.
  void* kind_interface() const noexcept { return kind_interface_; }
  // The instance's sdk::StateTransfer side, or nullptr when it keeps no state to hand over.
  sdk::StateTransfer* state_transfer() const noexcept { return state_transfer_; }

  // shutdown -> destroy -> unload -> residency check. Returns true when the library is verifiably
  // unmapped; false means it stays resident (PINNED). Idempotent.
  bool teardown() noexcept;

 private:
  friend class Loader;
  Generation() = default;

  DescriptorInfo descriptor_;
  std::uint64_t number_ = 0;
  std::filesystem::path source_file_;
  std::filesystem::path private_copy_;
  std::string sha256_;
  std::vector<std::string> unique_symbols_;
  std::chrono::system_clock::time_point loaded_at_;

  boost::dll::shared_library library_;
  const samokoder_plugin_descriptor* raw_descriptor_ = nullptr;
  std::unique_ptr<PluginHost> host_;
  sdk::Plugin* instance_ = nullptr;
  void* kind_interface_ = nullptr;
  sdk::StateTransfer* state_transfer_ = nullptr;
  bool initialized_ = false;  // init was called (shutdown is owed even if it failed)
  bool torn_down_ = false;
  bool unmapped_ = false;
};

// Loads generations; holds what every load shares.
class Loader {
 public:
  Loader(metrics::Registry& registry, const core::Clock& clock, KernelServices services = {})
      : registry_(registry), clock_(clock), services_(services) {}

  // Told when the load reaches VALIDATED (ELF checks passed) and LOADED (handshake passed, instance
  // created), so the manager can show progress while init runs.
  using ProgressFn = std::function<void(PluginState)>;

  // On success the generation is ready to serve (init and self-test passed).
  std::variant<std::unique_ptr<Generation>, LoadFailure> load(const LoadRequest& request,
                                                              const ProgressFn& progress = {}) const;

 private:
  metrics::Registry& registry_;
  const core::Clock& clock_;
  const KernelServices services_;
};

// Checks a descriptor against this kernel (docs/sdk.md "Compatibility"). Returns the failure or kNone.
LoadFailure check_descriptor(const samokoder_plugin_descriptor* descriptor, const std::string& expected_id,
                             const std::string& file_name);

// "MAJOR.MINOR.PATCH" with optional "-prerelease" / "+build" suffixes.
bool is_semver(std::string_view version) noexcept;

// True when a library loaded from `path` is still mapped in this process.
bool is_resident(const std::filesystem::path& path) noexcept;

}  // namespace samokoder::plugins
