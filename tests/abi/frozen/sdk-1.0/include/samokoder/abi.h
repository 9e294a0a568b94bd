/*
 * Samokoder plugin ABI: the C handshake between the kernel and a plugin shared object.
 *
 * A plugin exports exactly one symbol, `samokoder_plugin_entry`, which returns a pointer to a static,
 * immutable descriptor. The kernel reads and checks every field of the descriptor (struct size, ABI
 * major and minor, toolchain fingerprint, id, version, kind) before it runs any other plugin code, so
 * a mismatched plugin is rejected with a precise reason instead of crashing the server.
 *
 * Ownership: the descriptor and every string it points to belong to the plugin and live as long as
 * the library is mapped; the kernel copies what it keeps. `create` returns a new instance owned by the
 * kernel, which gives it back through `destroy` of the same descriptor exactly once.
 *
 * Thread-safety: `samokoder_plugin_entry` must be callable from any thread and return the same
 * pointer every time; it must not allocate, throw, or have side effects.
 *
 * Compatibility: the leading fields (`struct_size`, `abi_major`, `abi_minor`) never move. Fields are
 * only ever appended, and `struct_size` tells the kernel which ones a plugin knows. A plugin built
 * against SDK 1.x loads in every 1.y kernel with y >= x.
 */
#ifndef SAMOKODER_ABI_H_
#define SAMOKODER_ABI_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The SDK release these headers are. 1.0 is frozen (docs/sdk.md, "Compatibility"): later releases only
   add, and each addition raises SAMOKODER_ABI_MINOR; ABI 5.0 is SDK 1.0. */
#define SAMOKODER_SDK_VERSION_MAJOR 1
#define SAMOKODER_SDK_VERSION_MINOR 0

#define SAMOKODER_ABI_MAJOR 5
#define SAMOKODER_ABI_MINOR 0

/* The one symbol a plugin exports. */
#define SAMOKODER_PLUGIN_ENTRY_SYMBOL "samokoder_plugin_entry"

/* What a plugin provides. The numeric values are part of the ABI. */
typedef enum samokoder_plugin_kind {
  SAMOKODER_KIND_AGENT = 1,
  SAMOKODER_KIND_LLM = 2,
  SAMOKODER_KIND_AUTH = 3,
  SAMOKODER_KIND_STORAGE = 4,
  SAMOKODER_KIND_PREVIEW = 5
} samokoder_plugin_kind;

typedef struct samokoder_plugin_descriptor {
  /* sizeof(samokoder_plugin_descriptor) as the plugin was compiled. */
  uint32_t struct_size;
  /* Must equal the kernel's SAMOKODER_ABI_MAJOR. */
  uint32_t abi_major;
  /* Must be <= the kernel's SAMOKODER_ABI_MINOR. */
  uint32_t abi_minor;
  /* One of samokoder_plugin_kind. */
  uint32_t kind;
  /* Compiler, C++ runtime and boundary-library versions the plugin was built with; must equal the
   * kernel's (see samokoder/sdk/plugin.hpp, SAMOKODER_TOOLCHAIN_FINGERPRINT). */
  const char* fingerprint;
  /* Stable identifier, "<kind>.<name>", lowercase: "storage.sqlite", "agent.code_monkey". */
  const char* id;
  /* Semantic version of the plugin, "MAJOR.MINOR.PATCH". */
  const char* version;
  /* One line for operators. */
  const char* description;
  /* Creates the plugin instance: a samokoder::sdk::Plugin* of the declared kind, or NULL on failure.
   * Never throws. */
  void* (*create)(void);
  /* Destroys an instance returned by create. Never throws. */
  void (*destroy)(void* instance);
} samokoder_plugin_descriptor;

typedef const samokoder_plugin_descriptor* (*samokoder_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SAMOKODER_ABI_H_ */
