// LoadedStorage: loads a storage plugin .so the way the kernel does, for tests and benchmarks.
//
// dlopen(RTLD_NOW | RTLD_LOCAL), samokoder_plugin_entry, a descriptor check (struct size, ABI major
// and minor, kind STORAGE, toolchain fingerprint), create(), static_cast of the void* to
// sdk::Plugin*, dynamic_cast to sdk::Storage*, init(host). The kernel's own plugin manager
// (kernel/plugins) does more (private copies, generations, leases); this is the minimum a backend
// conformance test needs and keeps the suite independent of it.
//
// Ownership: owns the library handle and the instance; the destructor runs shutdown(), destroy()
// and dlclose(), in that order. The host passed to load() must outlive the LoadedStorage.
// Thread-safety: load() may run concurrently for different files; storage() is as thread-safe as
// the plugin (all Storage methods are).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <samokoder/abi.h>
#include <samokoder/sdk/storage.hpp>

namespace samokoder::testing {

class LoadedStorage {
 public:
  // Fails with the plugin's own init Status when init fails (after shutdown and destroy ran).
  static sdk::Result<std::unique_ptr<LoadedStorage>> load(const std::filesystem::path& plugin,
                                                          sdk::HostServices& host);

  LoadedStorage(const LoadedStorage&) = delete;
  LoadedStorage& operator=(const LoadedStorage&) = delete;
  ~LoadedStorage();

  sdk::Storage& storage() noexcept { return *storage_; }
  const samokoder_plugin_descriptor& descriptor() const noexcept { return *descriptor_; }

 private:
  LoadedStorage() = default;

  void* library_ = nullptr;
  const samokoder_plugin_descriptor* descriptor_ = nullptr;
  void* instance_ = nullptr;
  sdk::Storage* storage_ = nullptr;
};

}  // namespace samokoder::testing
