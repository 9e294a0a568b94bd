#include <iostream>
#include <string_view>
#include <vector>

#include <malloc.h>

#include "app/cli.hpp"

int main(int argc, char** argv) {
  // Blocks of 1 MiB and more (an Argon2id hash's 19 MiB, large bodies and files) always come from mmap
  // and go back to the system when freed. Left alone, glibc raises this threshold after the first such
  // block is freed and from then on keeps each one in the heap or in a worker thread's arena: tens of
  // MiB held by an idle server after a few sign-ins.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::vector<std::string_view> args(argv + 1, argv + argc);
  return samokoder::app::run_cli(args, std::cout, std::cerr);
}
