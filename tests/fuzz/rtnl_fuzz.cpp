// Fuzz target: the rtnetlink parser (rtnl::applyMessages). The input is split into
// datagrams at a 0xFF 0xFE 0xFD 0xFC marker, applied one after another to the same
// snapshot, as the monitor does. Contract: never reads outside the buffer, bounded
// allocation (kMaxLinks, kMaxAddressesPerLink), addresses sorted and unique.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "os/netlink/rtnetlink_parse.hpp"

using namespace ipopsec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::uint8_t kMarker[] = {0xFF, 0xFE, 0xFD, 0xFC};
  NetSnapshot snap;
  std::size_t start = 0;
  while (start <= size) {
    const std::uint8_t* end = std::search(data + start, data + size, std::begin(kMarker), std::end(kMarker));
    std::size_t len = static_cast<std::size_t>(end - (data + start));
    // A copy of exactly the datagram: ASan then catches any read past its end.
    std::vector<std::uint8_t> dgram(data + start, data + start + len);
    auto r = rtnl::applyMessages(std::span<const std::uint8_t>(dgram.data(), dgram.size()), snap);
    if (r.skipped.size() > r.messages + 1 && r.skipped.size() > 4096) std::abort();
    if (end == data + size) break;
    start += len + sizeof kMarker;
  }
  if (snap.links.size() > rtnl::kMaxLinks) std::abort();
  for (const auto& [index, link] : snap.links) {
    if (link.addresses.size() > rtnl::kMaxAddressesPerLink) std::abort();
    if (!std::is_sorted(link.addresses.begin(), link.addresses.end())) std::abort();
    if (std::adjacent_find(link.addresses.begin(), link.addresses.end()) != link.addresses.end()) std::abort();
  }
  return 0;
}
