// Fuzz target: the XFRM state dump decoder (xfrm::decodeStateDump), used by listStates,
// flushLarval and removeStates.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "os/netlink/xfrm_codec.hpp"

using namespace ipopsec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint32_t seq = data[0] & 1 ? 0 : 7;
  std::vector<std::uint8_t> buf(data + 1, data + size);
  auto r = xfrm::decodeStateDump(std::span<const std::uint8_t>(buf.data(), buf.size()), seq);
  if (r.states.size() > xfrm::kMaxEntries) std::abort();
  if (r.skipped.size() > xfrm::kMaxSkipped) std::abort();
  for (const auto& s : r.states) {
    if (s.larval() && s.keyed) std::abort();  // larval means no keys
    (void)s.acquirePending();
    (void)xfrm::describe(s);
    if (s.src.family != s.dst.family) std::abort();
  }
  return 0;
}
