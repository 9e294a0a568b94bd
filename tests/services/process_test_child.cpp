// A child program for the process tests, for what /bin/sh cannot do: `alloc <MiB>` allocates and
// touches that much memory and exits 0, or exits 3 when the allocation is refused (an address-space
// limit). Built without sanitizers: their shadow memory would not fit under the limit under test.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "alloc") {
    const std::size_t bytes = std::strtoull(argv[2], nullptr, 10) * 1024 * 1024;
    void* memory = std::malloc(bytes);
    if (memory == nullptr) {
      std::puts("allocation refused");
      return 3;
    }
    std::memset(memory, 1, bytes);
    std::puts("allocated");
    std::free(memory);
    return 0;
  }
  std::fputs("usage: process_test_child alloc <MiB>\n", stderr);
  return 2;
}
