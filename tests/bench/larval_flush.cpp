// The mesh benchmark's "ideal in order" anchor, second half (tests/system/uml/mesh_nodes.sh):
// what ipop-ipsecd does once the IKE daemon it (re)started listens, with the daemon's own
// code (XfrmPolicyTable::flushLarval): the larval ESP states within RANGEs (a kernel ACQUIRE
// that nobody answered, left by a packet sent before charon listened) are removed, so that
// the next packet asks charon again instead of waiting for the larval state to expire. An
// ideal without it is not the best possible: its pairs whose first packet raced charon's
// start wait for a retransmit or the expiry. Prints how many states it removed.
//   ipopsec_larval_flush RANGE...
// Exits 2 on a usage error, 1 when the kernel refused.
#include <cstdio>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"
#include "os/netlink/xfrm.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ipopsec_larval_flush RANGE...\n");
    return 2;
  }
  std::vector<ipopsec::Cidr> ranges;
  for (int i = 1; i < argc; ++i) {
    auto c = ipopsec::Cidr::parse(argv[i]);
    if (!c) {
      std::fprintf(stderr, "ipopsec_larval_flush: '%s' is not a CIDR range\n", argv[i]);
      return 2;
    }
    ranges.push_back(c->network());
  }
  try {
    // The priorities do not matter here: only states are touched.
    ipopsec::XfrmPolicyTable table(250000, 1000);
    std::size_t removed = 0;
    if (auto ec = table.flushLarval(ranges, &removed)) {
      std::fprintf(stderr, "ipopsec_larval_flush: %s\n", ec.message().c_str());
      return 1;
    }
    std::printf("removed %zu larval states\n", removed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipopsec_larval_flush: %s\n", e.what());
    return 1;
  }
  return 0;
}
