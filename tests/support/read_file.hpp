#pragma once
// The tests' one way to read a whole file: its bytes as they are (binary, no newline
// translation). A file that cannot be opened reads as "" (a log that is not written yet, a
// process gone from /proc); a test that needs the file says so (ASSERT on the result).

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace ipopsec::test {

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace ipopsec::test
