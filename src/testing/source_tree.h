// Files of the source tree that unit tests read (examples/, tests/tpm/):
// hpcs_tests is built with HPCS_SOURCE_DIR, the top of the checkout
// (CMakeLists.txt), so a test finds them from any working directory.
#ifndef HPCS_TESTING_SOURCE_TREE_H_
#define HPCS_TESTING_SOURCE_TREE_H_

#include <string>
#include <string_view>

#ifndef HPCS_SOURCE_DIR
#error "HPCS_SOURCE_DIR must name the top of the source tree (CMakeLists.txt defines it)"
#endif

namespace hpcs::testing {

// SourcePath("examples/hpcs-for-luks.ini"): the file in this checkout.
inline std::string SourcePath(std::string_view relative) {
  return std::string(HPCS_SOURCE_DIR) + "/" + std::string(relative);
}

}  // namespace hpcs::testing

#endif  // HPCS_TESTING_SOURCE_TREE_H_
