#include "core/policy/policy.hpp"

#include <algorithm>
#include <map>

namespace ipopsec {
namespace {

constexpr std::uint8_t kIcmpV6 = 58;
// Neighbour discovery: router solicitation/advertisement, neighbour solicitation/advertisement.
constexpr std::uint8_t kNdTypes[] = {133, 134, 135, 136};

Policy makePolicy(Direction dir, const Cidr& src, const Cidr& dst, PolicyAction action,
                  PolicyLevel level, std::uint32_t priority) {
  Policy p;
  p.dir = dir;
  p.sel.src = src;
  p.sel.dst = dst;
  p.action = action;
  // A bypass policy has no level; keep the field at its default so that two bypass
  // policies never differ by a field that means nothing for them.
  p.level = action == PolicyAction::protect ? level : PolicyLevel::require;
  p.priority = priority;
  return p;
}

}  // namespace

const char* toString(Direction d) {
  switch (d) {
    case Direction::in: return "in";
    case Direction::out: return "out";
    case Direction::fwd: return "fwd";
  }
  return "?";
}

std::string Policy::str() const {
  std::string s = toString(dir);
  s += ' ';
  s += sel.src.str();
  s += " -> ";
  s += sel.dst.str();
  if (sel.proto != 0) {
    s += " proto " + std::to_string(sel.proto);
    if (sel.hasIcmpType) s += " type " + std::to_string(sel.icmpType);
  }
  if (action == PolicyAction::protect)
    s += level == PolicyLevel::require ? " esp/transport/require" : " esp/transport/use";
  else
    s += " bypass";
  s += " prio " + std::to_string(priority);
  return s;
}

// For each range R (the caller guarantees they don't overlap):
//  - protect: out R->R and in R->R (and fwd R->R with protect.forward), ESP transport at
//    protect.level, priority xfrm.protectPriority;
//  - exclusions X inside R: bypass out R->X and in X->R (and fwd both ways with forward) at
//    xfrm.bypassPriority (lower value wins in XFRM, so the bypass beats the protect policy).
//    Deliberately not more: traffic *from* X outbound (out X->R) would only matter on the
//    node whose own address is X, and such a node (a gateway, a DHCP/DNS address, the
//    broadcast address) does not run this daemon; on every other node these two policies
//    are exactly "talk to X in the clear, accept X's clear traffic".
//    Exclusions that lie in none of the ranges are skipped: with `ranges: auto` the ranges
//    are only known at run time, so an exclusion may apply to a range that isn't up yet.
//  - protect also out ANY->R and in ANY->R (ANY = 0.0.0.0/0 or ::/0): a protected address is
//    reachable only over ESP whatever the other end's source. Without them, traffic with
//    one end outside the range bypasses R->R: every IPv6 interface has a link-local fe80::
//    address, and while a new address is tentative (DAD) the kernel sends to peers' range
//    addresses from it, in the clear; a peer that pings a protected address from its
//    link-local (or, IPv4, any out-of-range) source gets a plaintext reply. R->R stays: it
//    is the selector the IKE daemons negotiate for the range's normal traffic.
//    Exclusions get out ANY->X bypass as well, so they stay reachable in the clear.
//  - IPv6 ranges: bypass ICMPv6 neighbour discovery (types 133..136) out and in, ANY->R, so
//    NS/NA (neighbour unreachability detection, also from link-local sources) to range
//    addresses is not caught by the ESP policy before an SA exists. ND to multicast and
//    link-local destinations never matches these policies anyway. No fwd: ND is link-local
//    and never forwarded.
std::vector<Policy> buildPolicies(const std::vector<Cidr>& ranges, const Config& cfg) {
  const auto level = cfg.protect.level;
  const auto protectPrio = cfg.xfrm.protectPriority;
  const auto bypassPrio = cfg.xfrm.bypassPriority;
  const bool forward = cfg.protect.forward;

  std::vector<Policy> out;
  for (const Cidr& given : ranges) {
    const Cidr r = given.network();
    out.push_back(makePolicy(Direction::out, r, r, PolicyAction::protect, level, protectPrio));
    out.push_back(makePolicy(Direction::in, r, r, PolicyAction::protect, level, protectPrio));
    const Cidr any = Cidr::any(r.family());
    out.push_back(makePolicy(Direction::out, any, r, PolicyAction::protect, level, protectPrio));
    out.push_back(makePolicy(Direction::in, any, r, PolicyAction::protect, level, protectPrio));
    if (forward) out.push_back(makePolicy(Direction::fwd, r, r, PolicyAction::protect, level, protectPrio));

    for (const Cidr& ex : cfg.protect.exclude) {
      if (!r.contains(ex)) continue;
      const Cidr x = ex.network();
      out.push_back(makePolicy(Direction::out, r, x, PolicyAction::bypass, level, bypassPrio));
      out.push_back(makePolicy(Direction::in, x, r, PolicyAction::bypass, level, bypassPrio));
      out.push_back(makePolicy(Direction::out, any, x, PolicyAction::bypass, level, bypassPrio));
      if (forward) {
        out.push_back(makePolicy(Direction::fwd, r, x, PolicyAction::bypass, level, bypassPrio));
        out.push_back(makePolicy(Direction::fwd, x, r, PolicyAction::bypass, level, bypassPrio));
      }
    }

    if (r.family() == Family::v6) {
      for (std::uint8_t type : kNdTypes) {
        for (Direction d : {Direction::out, Direction::in}) {
          Policy p = makePolicy(d, any, r, PolicyAction::bypass, level, bypassPrio);
          p.sel.proto = kIcmpV6;
          p.sel.hasIcmpType = true;
          p.sel.icmpType = type;
          out.push_back(p);
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Keyed by Policy::key() (direction + selector, the identity in the kernel):
//  - desired, and no current policy with that key is identical -> add (a new id, or an
//    update in place: installing a policy with an existing id replaces it);
//  - current, and its key is not desired at all -> remove.
// Both lists come out sorted by Policy::operator<, whatever order the inputs had.
PolicyDiff diffPolicies(const std::vector<Policy>& current, const std::vector<Policy>& desired) {
  std::vector<Policy> cur = current;
  std::vector<Policy> want = desired;
  std::sort(cur.begin(), cur.end());
  cur.erase(std::unique(cur.begin(), cur.end()), cur.end());
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());

  auto keyLess = [](const Policy& a, const Policy& b) { return a.key() < b.key(); };

  PolicyDiff diff;
  for (const Policy& d : want) {
    // cur is sorted by operator<, whose leading fields are exactly key(): the policies
    // with d's key form one contiguous run.
    auto [lo, hi] = std::equal_range(cur.begin(), cur.end(), d, keyLess);
    if (std::find(lo, hi, d) == hi) diff.add.push_back(d);
  }
  for (const Policy& c : cur) {
    if (!std::binary_search(want.begin(), want.end(), c, keyLess)) diff.remove.push_back(c);
  }
  return diff;
}

}  // namespace ipopsec
