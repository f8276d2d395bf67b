#pragma once
// Test support: "is this range protected?" asked of the policies the kernel holds, written
// out here by hand from what a protected range has (lib/core/policy/policy.cpp's comment), not
// computed by the product's buildPolicies, so that a daemon that drops one of them fails:
//   protect (ESP transport, `require`, the protect priority): out R->R, in R->R,
//     out ANY->R, in ANY->R, and fwd R->R with protect.forward;
//   per exclusion X inside R (bypass, the bypass priority): out R->X, in X->R, out ANY->X,
//     and fwd R->X, X->R with protect.forward;
//   IPv6: bypass of ICMPv6 neighbour discovery (types 133..136) out and in, ANY->R.
// Policies compare by Policy::str() (direction, selector, action, level, priority).

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"
#include "core/policy/policy.hpp"

namespace ipopsec::test {

struct Protection {
  std::vector<Cidr> exclude;  // protect.exclude
  bool forward = false;       // protect.forward
  std::uint32_t protectPriority = 250000, bypassPriority = 1000;
};

// Every policy range `r` has when the daemon protects it, as Policy::str() gives them.
inline std::set<std::string> policiesOfRange(const Cidr& range, const Protection& o = {}) {
  const Cidr r = range.network();
  const std::string R = r.str(), any = r.family() == Family::v4 ? "0.0.0.0/0" : "::/0";
  const std::string protect = " esp/transport/require prio " + std::to_string(o.protectPriority);
  const std::string bypass = " bypass prio " + std::to_string(o.bypassPriority);
  std::set<std::string> s = {"out " + R + " -> " + R + protect, "in " + R + " -> " + R + protect,
                             "out " + any + " -> " + R + protect, "in " + any + " -> " + R + protect};
  if (o.forward) s.insert("fwd " + R + " -> " + R + protect);
  for (const auto& ex : o.exclude) {
    if (!r.contains(ex)) continue;
    const std::string X = ex.network().str();
    s.insert("out " + R + " -> " + X + bypass);
    s.insert("in " + X + " -> " + R + bypass);
    s.insert("out " + any + " -> " + X + bypass);
    if (o.forward) {
      s.insert("fwd " + R + " -> " + X + bypass);
      s.insert("fwd " + X + " -> " + R + bypass);
    }
  }
  if (r.family() == Family::v6)
    for (int type : {133, 134, 135, 136})
      for (const char* d : {"out ", "in "}) s.insert(d + any + " -> " + R + " proto 58 type " + std::to_string(type) + bypass);
  return s;
}

inline std::set<std::string> strs(const std::vector<Policy>& policies) {
  std::set<std::string> s;
  for (const auto& p : policies) s.insert(p.str());
  return s;
}

// The policies of `range` that `kernel` lacks (empty: the range is protected).
inline std::vector<std::string> missingPolicies(const std::vector<Policy>& kernel, const Cidr& range,
                                                const Protection& o = {}) {
  const auto have = strs(kernel);
  std::vector<std::string> missing;
  for (const auto& p : policiesOfRange(range, o))
    if (!have.count(p)) missing.push_back(p);
  return missing;
}

// The ranges R of the protect policies out R->R in `kernel`, sorted.
inline std::vector<Cidr> outRanges(const std::vector<Policy>& kernel) {
  std::vector<Cidr> out;
  for (const auto& p : kernel)
    if (p.action == PolicyAction::protect && p.dir == Direction::out && p.sel.src == p.sel.dst && !p.sel.proto)
      out.push_back(p.sel.src);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The ranges (R of a protect out R->R) whose every policy `kernel` holds, sorted.
inline std::vector<Cidr> fullyProtectedRanges(const std::vector<Policy>& kernel, const Protection& o = {}) {
  std::vector<Cidr> out = outRanges(kernel);
  std::erase_if(out, [&](const Cidr& r) { return !missingPolicies(kernel, r, o).empty(); });
  return out;
}

// Every policy of `ranges` (the daemon's whole set when it protects exactly these).
inline std::set<std::string> policiesOfRanges(const std::vector<Cidr>& ranges, const Protection& o = {}) {
  std::set<std::string> s;
  for (const auto& r : ranges) {
    auto one = policiesOfRange(r, o);
    s.insert(one.begin(), one.end());
  }
  return s;
}

}  // namespace ipopsec::test
