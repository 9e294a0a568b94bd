// Plugin: the base of every plugin instance, and SAMOKODER_PLUGIN, the macro that exports one.
//
// A plugin is one class deriving from exactly one kind interface (Agent, LlmProvider, AuthProvider,
// Storage, PreviewRunner), exported with SAMOKODER_PLUGIN in one source file:
//
//   class EchoAgent final : public samokoder::sdk::Agent { ... };
//   SAMOKODER_PLUGIN(EchoAgent, "agent.echo", "1.0.0", "Echoes the task back")
//
// Lifecycle, driven by the kernel: construct (create) -> init(host) -> [self_test()] -> calls ->
// shutdown() -> destroy. init, self_test and shutdown run on the kernel's plugin-manager thread; the
// kind's own methods may be called from many threads at once once init has succeeded, so instances
// must be thread-safe. If init fails, shutdown is still called before destroy.
//
// Ownership: the kernel owns the instance between create and destroy and never deletes it itself.
// Exceptions: a throw out of any method is caught by the kernel and turned into a failed call and a
// log line, but plugins should return Status instead.
//
// Reload safety: the kernel may load a new generation of the same plugin beside the running one and
// unload the old one later, so a plugin keeps no process-global state (no globals with destructors,
// no registered loggers, signal handlers, atexit hooks, detached threads or thread_local objects
// with destructors); threads it starts are joined in shutdown().
#pragma once

#include <new>
#include <type_traits>

#include <samokoder/abi.h>
#include <samokoder/sdk/host.hpp>
#include <samokoder/sdk/status.hpp>

#define SAMOKODER_FP_STR_(x) #x
#define SAMOKODER_FP_STR(x) SAMOKODER_FP_STR_(x)

#if defined(__clang__)
#define SAMOKODER_FP_COMPILER "clang" SAMOKODER_FP_STR(__clang_major__)
#elif defined(__GNUC__)
#define SAMOKODER_FP_COMPILER "gcc" SAMOKODER_FP_STR(__GNUC__)
#else
#error "Samokoder plugins are built with g++ or clang++ against libstdc++"
#endif

// What must match between kernel and plugin for C++ objects to cross the boundary: the compiler
// family, the libstdc++ release and string ABI, the pointer size, and the nlohmann_json version
// (json values cross the boundary). Boost, Poco and spdlog objects never cross, so they are not part
// of it.
#define SAMOKODER_TOOLCHAIN_FINGERPRINT \
  SAMOKODER_FP_COMPILER ";libstdc++" SAMOKODER_FP_STR(_GLIBCXX_RELEASE) ";cxx11abi"           \
  SAMOKODER_FP_STR(_GLIBCXX_USE_CXX11_ABI) ";ptr" SAMOKODER_FP_STR(__SIZEOF_POINTER__) ";json" \
  SAMOKODER_FP_STR(NLOHMANN_JSON_VERSION_MAJOR) "." SAMOKODER_FP_STR(NLOHMANN_JSON_VERSION_MINOR)

namespace samokoder::sdk {

class Plugin {
 public:
  Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;
  virtual ~Plugin() = default;

  // Called once, before any other method. `host` outlives this instance. A failed Status leaves the
  // plugin FAILED with that message; the kernel keeps running.
  virtual Status init(HostServices& host) = 0;

  // Optional warm-up probe, run after init and before the instance receives traffic (on startup and
  // on every reload). A failed Status keeps the previous generation serving.
  virtual Status self_test() { return {}; }

  // Called once before destroy, after the last call has returned: stop and join any threads.
  virtual void shutdown() noexcept {}
};

// Optional: a plugin that keeps state in memory (caches, counters, warm connections' bookkeeping)
// derives from StateTransfer as well as from its kind interface, and a reload hands that state to the
// successor. During a reload the kernel calls export_state() on the running generation and
// import_state() on the new one after the new one's init and self_test, just before the swap; calls
// keep reaching the old generation until the swap, so what they change after the export is not
// carried over (keep anything that must not be lost in storage). A failed export or import cancels
// the reload and the running generation stays. Both run on the plugin-manager thread; export_state
// runs concurrently with the old generation's calls, so it must be thread-safe like every call.
class StateTransfer {
 public:
  virtual ~StateTransfer() = default;
  virtual Result<nlohmann::json> export_state() = 0;
  virtual Status import_state(const nlohmann::json& state) = 0;
};

// The five kind interfaces, each in its own header.
class Agent;
class LlmProvider;
class AuthProvider;
class Storage;
class PreviewRunner;

namespace detail {

template <typename Impl>
constexpr std::uint32_t kind_of_impl() {
  constexpr int matches = int{std::is_base_of_v<Agent, Impl>} + int{std::is_base_of_v<LlmProvider, Impl>} +
                          int{std::is_base_of_v<AuthProvider, Impl>} + int{std::is_base_of_v<Storage, Impl>} +
                          int{std::is_base_of_v<PreviewRunner, Impl>};
  static_assert(matches == 1, "a plugin class derives from exactly one kind interface");
  if constexpr (std::is_base_of_v<Agent, Impl>) return SAMOKODER_KIND_AGENT;
  if constexpr (std::is_base_of_v<LlmProvider, Impl>) return SAMOKODER_KIND_LLM;
  if constexpr (std::is_base_of_v<AuthProvider, Impl>) return SAMOKODER_KIND_AUTH;
  if constexpr (std::is_base_of_v<Storage, Impl>) return SAMOKODER_KIND_STORAGE;
  return SAMOKODER_KIND_PREVIEW;
}

// The void* handed to the kernel always points at the Plugin base subobject, so the kernel can
// static_cast it back without knowing the concrete class.
template <typename Impl>
void* create_instance() noexcept {
  try {
    Plugin* instance = new Impl();
    return instance;
  } catch (...) {
    return nullptr;
  }
}

inline void destroy_instance(void* instance) noexcept {
  delete static_cast<Plugin*>(instance);
}

}  // namespace detail
}  // namespace samokoder::sdk

// Exports `Impl` as the plugin of this shared object. Use once, at namespace scope, in one .cpp file,
// after the kind interface header is included. Id: "<kind>.<name>"; version: "MAJOR.MINOR.PATCH".
#define SAMOKODER_PLUGIN(Impl, Id, Version, Description)                                           \
  static_assert(sizeof(Id) > 1 && sizeof(Version) > 1, "plugin id and version must not be empty"); \
  extern "C" __attribute__((visibility("default"))) const samokoder_plugin_descriptor*             \
  samokoder_plugin_entry(void) {                                                                   \
    static constexpr samokoder_plugin_descriptor kDescriptor = {                                   \
        sizeof(samokoder_plugin_descriptor),                                                       \
        SAMOKODER_ABI_MAJOR,                                                                       \
        SAMOKODER_ABI_MINOR,                                                                       \
        ::samokoder::sdk::detail::kind_of_impl<Impl>(),                                            \
        SAMOKODER_TOOLCHAIN_FINGERPRINT,                                                           \
        Id,                                                                                        \
        Version,                                                                                   \
        Description,                                                                               \
        &::samokoder::sdk::detail::create_instance<Impl>,                                          \
        &::samokoder::sdk::detail::destroy_instance};                                              \
    return &kDescriptor;                                                                           \
  }
