// Fuzz target: the XFRMNLGRP_POLICY event walker (xfrm::countPolicyEvents), which reads
// every datagram the kernel multicasts to the daemon's XfrmPolicyWatch.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "os/xfrm_watch.hpp"

using namespace ipopsec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  std::uint32_t own = static_cast<std::uint32_t>(data[0]) | (static_cast<std::uint32_t>(data[1]) << 8);
  std::vector<std::uint8_t> buf(data + 4, data + size);
  xfrm::PolicyEvents e;
  xfrm::countPolicyEvents(std::span<const std::uint8_t>(buf.data(), buf.size()), own, e);
  // Each counted event is one netlink header of at least 16 bytes.
  if ((e.foreign + e.own) * 16 > buf.size()) std::abort();
  if (e.malformed > 1) std::abort();  // the walk stops at the first malformed message
  return 0;
}
