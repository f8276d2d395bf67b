// computeDesired (core/reconcile/desired.hpp) at scale: nested auto ranges reduced in one pass (it
// was a pairwise check, quadratic: about 1.5 s per reconcile at 10,000 ranges, found by
// tests/bench scale), checked against the pairwise definition, and 10,000 held ranges.

#include "core/reconcile/desired.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace ipopsec {
namespace {

TEST(DesiredScale, NestedRangesKeepTheOutermostSameAsPairwise) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    Config cfg;  // ranges: auto, IPv4 and IPv6
    cfg.protect.ipv6 = true;
    LinkState tap;
    tap.index = 2;
    tap.name = cfg.ipop.interface;
    tap.up = tap.running = true;
    int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      IpAddress a = IpAddress::v4(10, static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3),
                                  static_cast<std::uint8_t>(1 + rng() % 3));
      int prefix = 8 + static_cast<int>(rng() % 4) * 8;
      if (rng() % 5 == 0) {
        a = *IpAddress::parse("fd50::" + std::to_string(1 + rng() % 3));
        prefix = 48 + static_cast<int>(rng() % 3) * 16;
      }
      tap.addresses.push_back(Cidr{a, prefix});
    }
    NetSnapshot net;
    net.links[2] = tap;
    Desired d = computeDesired(cfg, net, CertFiles{}, {});
    std::vector<Cidr> nets;
    for (const auto& a : tap.addresses) nets.push_back(a.network());
    std::vector<Cidr> want;
    for (const auto& c : nets) {
      bool inner = std::any_of(nets.begin(), nets.end(), [&](const Cidr& o) { return o != c && o.contains(c); });
      if (!inner && std::find(want.begin(), want.end(), c) == want.end()) want.push_back(c);
    }
    std::sort(want.begin(), want.end());
    EXPECT_EQ(d.ranges, want) << "round " << round;
  }
}

TEST(DesiredScale, TenThousandHeldRangesAreComputed) {
  // The held ranges (the tap lost its address) are where many ranges reach this code.
  std::vector<Cidr> held;
  for (int i = 0; i < 10000; ++i)
    held.push_back(*Cidr::parse("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"));
  held.push_back(*Cidr::parse("10.3.0.0/16"));  // contains 256 of them
  Config cfg;
  Desired d = computeDesired(cfg, NetSnapshot{}, CertFiles{}, held);
  EXPECT_TRUE(d.heldRanges);
  EXPECT_EQ(d.ranges.size(), 10000U - 256U + 1U);
  EXPECT_EQ(d.policies.size(), 4 * d.ranges.size());  // R->R and ANY->R, in and out
}

}  // namespace
}  // namespace ipopsec
