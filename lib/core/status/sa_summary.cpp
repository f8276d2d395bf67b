#include "core/status/sa_summary.hpp"

#include <algorithm>

namespace ipopsec {

SaSummary summarizeSas(const std::vector<SaFact>& sas, const std::vector<Cidr>& ranges,
                       const std::vector<IpAddress>& local) {
  SaSummary s;
  auto isLocal = [&](const IpAddress& a) { return std::find(local.begin(), local.end(), a) != local.end(); };
  for (const auto& sa : sas) {
    if (!sa.esp) continue;
    bool inside = std::any_of(ranges.begin(), ranges.end(),
                              [&](const Cidr& r) { return r.contains(sa.src) && r.contains(sa.dst); });
    if (!inside) continue;
    if (sa.larval) {
      ++s.larval;
      continue;
    }
    ++s.esp;
    if (!isLocal(sa.src)) s.peers.push_back(sa.src);
    if (!isLocal(sa.dst)) s.peers.push_back(sa.dst);
  }
  std::sort(s.peers.begin(), s.peers.end());
  s.peers.erase(std::unique(s.peers.begin(), s.peers.end()), s.peers.end());
  return s;
}

std::string SaSummary::str() const {
  std::string out;
  if (esp == 0) {
    out = "no ESP SA";
  } else {
    out = std::to_string(esp) + " ESP SA" + (esp == 1 ? "" : "s") + " with " + std::to_string(peers.size()) + " peer" +
          (peers.size() == 1 ? "" : "s");
    if (!peers.empty()) {
      out += " (";
      for (std::size_t i = 0; i < peers.size(); ++i) out += (i ? ", " : "") + peers[i].str();
      out += ")";
    }
  }
  if (larval) out += "; " + std::to_string(larval) + " larval (negotiation pending)";
  return out;
}

}  // namespace ipopsec
