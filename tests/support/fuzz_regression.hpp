#pragma once
// A fuzz regression input, tests/fuzz/regressions/<name> in the source tree (the gtest
// executables get IPOPSEC_SOURCE_DIR from tests/CMakeLists.txt).

#include <filesystem>
#include <string>

#include "support/read_file.hpp"

namespace ipopsec::test {

inline std::string readFuzzRegression(const std::string& name) {
  return readFile(std::filesystem::path(IPOPSEC_SOURCE_DIR) / "tests/fuzz/regressions" / name);
}

}  // namespace ipopsec::test
