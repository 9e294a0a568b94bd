// ElfInspector: reads a plugin file's ELF header and dynamic symbol table without loading it.
//
// The kernel runs this before dlopen, because dlopen already executes the library's constructors:
// a file that is not a shared object for this machine, or that does not export the entry symbol, is
// rejected here with a precise reason and none of its code ever runs. The same table feeds the
// symbol gate (exactly one exported symbol, no STB_GNU_UNIQUE symbol) in `plugin check` and tests.
//
// Every offset and size read from the file is bounds-checked: the input is untrusted.
// Thread-safety: free functions, reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <samokoder/sdk/status.hpp>

namespace samokoder::plugins {

struct ElfSymbol {
  std::string name;
  bool unique = false;  // STB_GNU_UNIQUE: pins the library in memory after dlclose
};

struct ElfInfo {
  // Defined, non-local dynamic symbols with default or protected visibility: what the library exports.
  std::vector<ElfSymbol> exported;
  // Every STB_GNU_UNIQUE dynamic symbol, exported or not.
  std::vector<std::string> unique_symbols;

  bool exports(std::string_view name) const noexcept;
};

// Parses an in-memory image. Fails with kInvalidArgument and a sentence saying what is wrong
// ("not an ELF file", "ELF class 32-bit, this machine needs 64-bit", "not a shared object", ...).
sdk::Result<ElfInfo> inspect_elf_image(std::string_view image);

// Reads `path` and inspects it; kNotFound when the file does not exist.
sdk::Result<ElfInfo> inspect_elf_file(const std::filesystem::path& path);

}  // namespace samokoder::plugins
