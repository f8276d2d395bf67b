#include "core/reconcile/ike_health.hpp"

#include <algorithm>

#include "core/reconcile/desired.hpp"

namespace ipopsec {

std::string IkeTrap::str() const { return "out " + Cidr::host(local).str() + " -> " + range.str(); }

bool holds(const std::vector<IkeTrap>& traps, const IkeTrap& t) {
  return std::find(traps.begin(), traps.end(), t) != traps.end();
}

std::vector<IkeTrap> expectedTraps(const Config& cfg, const Desired& d) {
  std::vector<IkeTrap> out;
  if (cfg.ike.backend != IkeBackend::strongswan) return out;
  for (const auto& entry : d.ikeInitiating) {  // "range=address", as the renderer gave it
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    auto range = Cidr::parse(std::string_view(entry).substr(0, eq));
    auto local = IpAddress::parse(std::string_view(entry).substr(eq + 1));
    if (range && local) out.push_back(IkeTrap{*range, *local});
  }
  return out;
}

namespace {
bool matches(const Policy& p, const IkeTrap& t) {
  return p.dir == Direction::out && p.sel.dst == t.range && p.sel.src == Cidr::host(t.local);
}
}  // namespace

std::vector<IkeTrap> presentTraps(const std::vector<IkeTrap>& expected, const std::vector<Policy>& foreign) {
  std::vector<IkeTrap> out;
  for (const auto& t : expected)
    if (std::any_of(foreign.begin(), foreign.end(), [&](const Policy& p) { return matches(p, t); })) out.push_back(t);
  return out;
}

bool isTrapOf(const Policy& p, const std::vector<IkeTrap>& traps) {
  return std::any_of(traps.begin(), traps.end(), [&](const IkeTrap& t) { return matches(p, t); });
}

IkeRunState runStateOf(const std::string& s) {
  if (s == "active" || s == "reloading") return IkeRunState::running;
  if (s == "activating" || s == "deactivating") return IkeRunState::transition;
  if (s == "inactive" || s == "failed" || s == "not-found" || s == "masked") return IkeRunState::stopped;
  return IkeRunState::unknown;
}

}  // namespace ipopsec
