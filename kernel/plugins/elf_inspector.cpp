#include "plugins/elf_inspector.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include <elf.h>

#include "core/file_util.hpp"

namespace samokoder::plugins {
namespace {

using sdk::Result;
using sdk::Status;

#if defined(__x86_64__)
constexpr std::uint16_t kThisMachine = EM_X86_64;
constexpr const char* kThisMachineName = "x86-64";
#elif defined(__aarch64__)
constexpr std::uint16_t kThisMachine = EM_AARCH64;
constexpr const char* kThisMachineName = "AArch64";
#else
#error "add this machine's ELF e_machine value"
#endif

static_assert(sizeof(void*) == 8, "the inspector reads 64-bit ELF only");

// Copies a T out of the image at `offset` if it lies wholly inside; the image may be unaligned.
template <typename T>
std::optional<T> read_at(std::string_view image, std::uint64_t offset) {
  if (offset > image.size() || image.size() - offset < sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

// True when [offset, offset + size) lies inside the image, without overflow.
bool in_bounds(std::string_view image, std::uint64_t offset, std::uint64_t size) {
  return offset <= image.size() && size <= image.size() - offset;
}

Status invalid(std::string message) {
  return Status::invalid_argument(std::move(message));
}

}  // namespace

bool ElfInfo::exports(std::string_view name) const noexcept {
  return std::any_of(exported.begin(), exported.end(), [&](const ElfSymbol& s) { return s.name == name; });
}

Result<ElfInfo> inspect_elf_image(std::string_view image) {
  if (image.size() < EI_NIDENT || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0) {
    return invalid("not an ELF file (no ELF magic number)");
  }
  if (image[EI_CLASS] != ELFCLASS64) {
    return invalid(std::string("ELF class is ") + (image[EI_CLASS] == ELFCLASS32 ? "32-bit" : "unknown") +
                   ", this machine needs 64-bit");
  }
  if (image[EI_DATA] != ELFDATA2LSB) return invalid("ELF data is not little-endian, this machine is");
  const auto header = read_at<Elf64_Ehdr>(image, 0);
  if (!header) return invalid("truncated ELF header");
  if (header->e_type != ET_DYN) {
    return invalid(header->e_type == ET_EXEC
                       ? "an executable, not a shared object"
                       : "not a shared object (ELF type " + std::to_string(header->e_type) + ")");
  }
  if (header->e_machine != kThisMachine) {
    return invalid("built for ELF machine " + std::to_string(header->e_machine) + ", this machine is " +
                   kThisMachineName);
  }
  if (header->e_shoff == 0) return invalid("has no section headers, so its exports cannot be verified");
  if (header->e_shentsize != sizeof(Elf64_Shdr)) return invalid("unexpected ELF section header size");

  std::uint64_t section_count = header->e_shnum;
  if (section_count == 0) {  // extended numbering: the real count lives in section 0
    const auto first = read_at<Elf64_Shdr>(image, header->e_shoff);
    if (!first) return invalid("section header table lies outside the file");
    section_count = first->sh_size;
  }
  if (section_count > image.size() / sizeof(Elf64_Shdr) ||
      !in_bounds(image, header->e_shoff, section_count * sizeof(Elf64_Shdr))) {
    return invalid("section header table lies outside the file");
  }
  auto section = [&](std::uint64_t index) {
    return read_at<Elf64_Shdr>(image, header->e_shoff + index * sizeof(Elf64_Shdr));
  };

  std::optional<Elf64_Shdr> dynsym;
  for (std::uint64_t i = 0; i < section_count; ++i) {
    const auto candidate = section(i);
    if (candidate && candidate->sh_type == SHT_DYNSYM) {
      dynsym = candidate;
      break;
    }
  }
  ElfInfo info;
  if (!dynsym) return info;  // nothing exported at all
  if (dynsym->sh_entsize != sizeof(Elf64_Sym) || !in_bounds(image, dynsym->sh_offset, dynsym->sh_size)) {
    return invalid("malformed dynamic symbol table");
  }
  if (dynsym->sh_link >= section_count) return invalid("dynamic symbol table has no string table");
  const auto strtab = section(dynsym->sh_link);
  if (!strtab || strtab->sh_type != SHT_STRTAB || !in_bounds(image, strtab->sh_offset, strtab->sh_size)) {
    return invalid("malformed dynamic string table");
  }
  const std::string_view strings = image.substr(strtab->sh_offset, strtab->sh_size);

  const std::uint64_t symbol_count = dynsym->sh_size / sizeof(Elf64_Sym);
  for (std::uint64_t i = 1; i < symbol_count; ++i) {  // entry 0 is the reserved null symbol
    const auto symbol = read_at<Elf64_Sym>(image, dynsym->sh_offset + i * sizeof(Elf64_Sym));
    if (!symbol) return invalid("malformed dynamic symbol table");
    if (symbol->st_name >= strings.size()) return invalid("dynamic symbol name lies outside its table");
    const std::string_view rest = strings.substr(symbol->st_name);
    const std::size_t end = rest.find('\0');
    if (end == std::string_view::npos) return invalid("unterminated dynamic symbol name");
    const std::string name(rest.substr(0, end));

    const unsigned binding = ELF64_ST_BIND(symbol->st_info);
    const unsigned visibility = ELF64_ST_VISIBILITY(symbol->st_other);
    const bool unique = binding == STB_GNU_UNIQUE;
    if (unique) info.unique_symbols.push_back(name);
    const bool defined = symbol->st_shndx != SHN_UNDEF;
    const bool visible = visibility == STV_DEFAULT || visibility == STV_PROTECTED;
    if (defined && binding != STB_LOCAL && visible) info.exported.push_back({name, unique});
  }
  return info;
}

Result<ElfInfo> inspect_elf_file(const std::filesystem::path& path) {
  auto bytes = core::read_file(path);
  if (!bytes.ok()) return bytes.status();
  auto info = inspect_elf_image(*bytes);
  if (!info.ok()) return Status(info.status().code(), path.string() + ": " + info.status().message());
  return info;
}

}  // namespace samokoder::plugins
