// FUZZ_CHECK: an invariant a fuzz target asserts. A failure aborts, which libFuzzer reports as a crash
// and saves as an artifact; the message says which invariant broke. Used by one fuzzer process at a time.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)
