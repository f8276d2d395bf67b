#pragma once
// What the daemon observes of the node's network: every link and its addresses.
// Filled by the LinkMonitor adapter (rtnetlink), read by the pure core.

#include <map>
#include <string>
#include <vector>

#include "core/cidr.hpp"

namespace ipopsec {

struct LinkState {
  int index = 0;
  std::string name;
  bool up = false;                   // IFF_UP (administratively up)
  bool running = false;              // IFF_RUNNING / IFF_LOWER_UP (carrier)
  std::vector<Cidr> addresses;       // address with its prefix, e.g. 172.31.0.16/16; sorted, unique

  bool operator==(const LinkState&) const = default;
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
