#pragma once
// What the kernel's SAD says about the protected ranges: how many ESP SAs between two
// addresses of a range, with which peers. "Protected" (the policies) and "encrypted with N
// peers" (the SAs an IKE daemon negotiated) are different facts; `status` shows both.

#include <cstddef>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"

namespace ipopsec {

// One SA as the kernel holds it (the XFRM adapter's read-out, reduced to plain facts).
struct SaFact {
  IpAddress src, dst;
  bool esp = false;     // IPPROTO_ESP
  bool larval = false;  // made by an ACQUIRE, no keys yet
};

struct SaSummary {
  std::size_t esp = 0;            // keyed ESP SAs inside the ranges (each direction counts)
  std::size_t larval = 0;         // larval ones: an IKE negotiation pending or stalled
  std::vector<IpAddress> peers;   // the far ends of the keyed ones, sorted, unique
  // "4 ESP SAs with 2 peers (10.254.0.17, 10.254.0.18)"; "no ESP SA" when none; larval ones
  // appended ("; 1 larval (negotiation pending)").
  std::string str() const;
};

// The SAs whose both ends are in one of `ranges`; the peer of each is the end that is not
// one of `local` (the node's own addresses).
SaSummary summarizeSas(const std::vector<SaFact>& sas, const std::vector<Cidr>& ranges,
                       const std::vector<IpAddress>& local);

}  // namespace ipopsec
