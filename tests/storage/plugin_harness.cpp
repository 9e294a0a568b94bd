#include "plugin_harness.hpp"

#include <cstring>

#include <dlfcn.h>

#include <samokoder/sdk/plugin.hpp>

namespace samokoder::testing {

namespace {

std::string str(const char* s) {
  return s == nullptr ? std::string("(null)") : std::string(s);
}

}  // namespace

sdk::Result<std::unique_ptr<LoadedStorage>> LoadedStorage::load(const std::filesystem::path& plugin,
                                                                sdk::HostServices& host) {
  std::unique_ptr<LoadedStorage> loaded(new LoadedStorage());
  loaded->library_ = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (loaded->library_ == nullptr) {
    return sdk::Status::failed_precondition("dlopen " + plugin.string() + ": " + str(dlerror()));
  }
  auto* entry =
      reinterpret_cast<samokoder_plugin_entry_fn>(dlsym(loaded->library_, SAMOKODER_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr)
    return sdk::Status::failed_precondition(plugin.string() + " exports no samokoder_plugin_entry");
  const samokoder_plugin_descriptor* d = entry();
  if (d == nullptr)
    return sdk::Status::failed_precondition(plugin.string() + ": entry returned no descriptor");
  if (d->struct_size < sizeof(samokoder_plugin_descriptor)) {
    return sdk::Status::failed_precondition(plugin.string() + ": descriptor too small");
  }
  if (d->abi_major != SAMOKODER_ABI_MAJOR || d->abi_minor > SAMOKODER_ABI_MINOR) {
    return sdk::Status::failed_precondition(plugin.string() + ": ABI " + std::to_string(d->abi_major) + "." +
                                            std::to_string(d->abi_minor) + " does not match the SDK's");
  }
  if (d->kind != SAMOKODER_KIND_STORAGE) {
    return sdk::Status::failed_precondition(plugin.string() + " is not a storage plugin");
  }
  if (std::strcmp(str(d->fingerprint).c_str(), SAMOKODER_TOOLCHAIN_FINGERPRINT) != 0) {
    return sdk::Status::failed_precondition(plugin.string() + ": toolchain fingerprint " +
                                            str(d->fingerprint) + " differs from " +
                                            SAMOKODER_TOOLCHAIN_FINGERPRINT);
  }
  if (d->id == nullptr || d->create == nullptr || d->destroy == nullptr) {
    return sdk::Status::failed_precondition(plugin.string() + ": incomplete descriptor");
  }
  loaded->descriptor_ = d;
  loaded->instance_ = d->create();
  if (loaded->instance_ == nullptr)
    return sdk::Status::internal(plugin.string() + ": create() returned null");
  auto* base = static_cast<sdk::Plugin*>(loaded->instance_);
  loaded->storage_ = dynamic_cast<sdk::Storage*>(base);
  if (loaded->storage_ == nullptr)
    return sdk::Status::failed_precondition(plugin.string() + ": not an sdk::Storage");
  sdk::Status status;
  try {
    status = loaded->storage_->init(host);
  } catch (const std::exception& e) {
    status = sdk::Status::internal(std::string("init threw: ") + e.what());
  }
  if (!status.ok()) return status;
  return loaded;
}

LoadedStorage::~LoadedStorage() {
  if (instance_ != nullptr) {
    static_cast<sdk::Plugin*>(instance_)->shutdown();
    descriptor_->destroy(instance_);
  }
  if (library_ != nullptr) dlclose(library_);
}

}  // namespace samokoder::testing
