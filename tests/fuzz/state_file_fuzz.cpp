// Fuzz target: the state file parser (daemon/state_file.cpp parseState), read by the
// daemon at start and by `ipop-ipsecd status`. Contract: a SavedState or nullopt with a
// reason; never a crash or an escaping exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/state_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1U << 20)) return 0;
  std::string text(reinterpret_cast<const char*>(data), size), err;
  auto s = ipopsec::parseState(text, &err);
  if (!s && err.empty()) std::abort();
  return 0;
}
