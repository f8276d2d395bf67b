#pragma once
// What the daemon observes of the node's network: every link and its addresses.
// Filled by the LinkMonitor adapter (rtnetlink), read by the pure core.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"

namespace ipopsec {

struct LinkState {
  int index = 0;
  std::string name;
  bool up = false;                   // IFF_UP (administratively up)
  // IFF_RUNNING / IFF_LOWER_UP: carrier. A tap has it while a process holds it open (IPOP's
  // controller); the kernel reports such a tap's operstate as UNKNOWN, with IFF_RUNNING set.
  bool running = false;
  std::vector<Cidr> addresses;       // address with its prefix, e.g. 172.31.0.16/16; sorted, unique
  // How often the monitor saw the link come up (administratively up with carrier, from not):
  // a down and up, or a carrier lost and back, that reach the daemon in one batch of events
  // (one snapshot) still count as IPOP coming up again.
  std::uint64_t upCount = 0;
  bool upWithCarrier() const { return up && running; }

  // The same state now (the count is history, not state: a snapshot equals the kernel's).
  bool operator==(const LinkState& o) const {
    return index == o.index && name == o.name && up == o.up && running == o.running && addresses == o.addresses;
  }
};

struct NetSnapshot {
  std::map<int, LinkState> links;    // by ifindex

  const LinkState* byName(const std::string& name) const {
    for (const auto& [i, l] : links)
      if (l.name == name) return &l;
    return nullptr;
  }
  bool operator==(const NetSnapshot&) const = default;
};

}  // namespace ipopsec
