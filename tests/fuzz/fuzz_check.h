// What the fuzz targets share: a property check that stops the run with a
// message, so that libFuzzer saves the input as a crash.
#ifndef HPCS_FUZZ_CHECK_H_
#define HPCS_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                               \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: property violated: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   what);                                                                    \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace hpcs::fuzz {

inline std::string_view AsText(const unsigned char* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace hpcs::fuzz

#endif  // HPCS_FUZZ_CHECK_H_
