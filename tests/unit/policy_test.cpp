// The policy model: buildPolicies (what the daemon wants in the kernel) and diffPolicies
// (how to get there). Config structs are built directly (their defaults are the member
// initialisers in core/config/config.hpp); no YAML here.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/policy/policy.hpp"
#include "support/policy_builders.hpp"

namespace ipopsec {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using test::C;

Policy P(Direction dir, const char* src, const char* dst, PolicyAction action, std::uint32_t prio,
         PolicyLevel level = PolicyLevel::require) {
  Policy p = test::policy(dir, src, dst, action, prio);
  p.level = level;
  return p;
}

Policy Nd(Direction dir, const char* range, std::uint8_t type, std::uint32_t prio = 1000) {
  Policy p = P(dir, range, range, PolicyAction::bypass, prio);
  p.sel.proto = 58;
  p.sel.hasIcmpType = true;
  p.sel.icmpType = type;
  return p;
}

constexpr auto kProtect = PolicyAction::protect;
constexpr auto kBypass = PolicyAction::bypass;
constexpr auto kIn = Direction::in;
constexpr auto kOut = Direction::out;
constexpr auto kFwd = Direction::fwd;

bool isSorted(const std::vector<Policy>& v) {
  return std::is_sorted(v.begin(), v.end()) && std::adjacent_find(v.begin(), v.end()) == v.end();
}

// --- toString / str ---------------------------------------------------------------

TEST(PolicyStr, NamesDirections) {
  EXPECT_STREQ(toString(Direction::in), "in");
  EXPECT_STREQ(toString(Direction::out), "out");
  EXPECT_STREQ(toString(Direction::fwd), "fwd");
  EXPECT_STREQ(toString(static_cast<Direction>(77)), "?");
}

TEST(PolicyStr, ProtectBypassAndIcmp) {
  EXPECT_EQ(P(kOut, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000).str(),
            "out 172.31.0.0/16 -> 172.31.0.0/16 esp/transport/require prio 250000");
  EXPECT_EQ(P(kIn, "172.31.0.0/16", "172.31.0.0/16", kProtect, 7, PolicyLevel::use).str(),
            "in 172.31.0.0/16 -> 172.31.0.0/16 esp/transport/use prio 7");
  EXPECT_EQ(P(kOut, "172.31.0.0/16", "172.31.0.1/32", kBypass, 1000).str(),
            "out 172.31.0.0/16 -> 172.31.0.1/32 bypass prio 1000");
  EXPECT_EQ(Nd(kIn, "fd50::/64", 135).str(), "in fd50::/64 -> fd50::/64 proto 58 type 135 bypass prio 1000");
  Policy tcp = P(kFwd, "10.0.0.0/8", "10.0.0.0/8", kBypass, 1);
  tcp.sel.proto = 6;
  EXPECT_EQ(tcp.str(), "fwd 10.0.0.0/8 -> 10.0.0.0/8 proto 6 bypass prio 1");
}

// --- buildPolicies ----------------------------------------------------------------

TEST(BuildPolicies, NoRangesNoPolicies) {
  Config cfg;
  cfg.protect.exclude = {C("172.31.0.1/32")};
  EXPECT_THAT(buildPolicies({}, cfg), IsEmpty());
}

TEST(BuildPolicies, OneRangeDefaults) {
  Config cfg;
  auto got = buildPolicies({C("172.31.0.0/16")}, cfg);
  // R->R for the range's own traffic, ANY->R so that a protected address is reachable only
  // over ESP whatever the other end's source (a link-local or out-of-range source).
  EXPECT_THAT(got, ElementsAre(P(kIn, "0.0.0.0/0", "172.31.0.0/16", kProtect, 250000),
                               P(kIn, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000),
                               P(kOut, "0.0.0.0/0", "172.31.0.0/16", kProtect, 250000),
                               P(kOut, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000)));
}

TEST(BuildPolicies, PrioritiesAndLevelFromConfig) {
  Config cfg;
  cfg.xfrm.protectPriority = 4242;
  cfg.xfrm.bypassPriority = 17;
  cfg.protect.level = PolicyLevel::use;
  cfg.protect.exclude = {C("10.254.0.1/32")};
  auto got = buildPolicies({C("10.254.0.0/16")}, cfg);
  ASSERT_EQ(got.size(), 7u);  // 4 protect + 3 bypass
  for (const auto& p : got) {
    if (p.action == kProtect) {
      EXPECT_EQ(p.priority, 4242u) << p.str();
      EXPECT_EQ(p.level, PolicyLevel::use) << p.str();
    } else {
      EXPECT_EQ(p.priority, 17u) << p.str();
    }
  }
}

TEST(BuildPolicies, SeveralRangesSortedWhateverTheInputOrder) {
  Config cfg;
  auto a = buildPolicies({C("172.31.0.0/16"), C("10.254.0.0/16")}, cfg);
  auto b = buildPolicies({C("10.254.0.0/16"), C("172.31.0.0/16")}, cfg);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(isSorted(a));
  EXPECT_THAT(a, ElementsAre(P(kIn, "0.0.0.0/0", "10.254.0.0/16", kProtect, 250000),
                             P(kIn, "0.0.0.0/0", "172.31.0.0/16", kProtect, 250000),
                             P(kIn, "10.254.0.0/16", "10.254.0.0/16", kProtect, 250000),
                             P(kIn, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000),
                             P(kOut, "0.0.0.0/0", "10.254.0.0/16", kProtect, 250000),
                             P(kOut, "0.0.0.0/0", "172.31.0.0/16", kProtect, 250000),
                             P(kOut, "10.254.0.0/16", "10.254.0.0/16", kProtect, 250000),
                             P(kOut, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000)));
}

TEST(BuildPolicies, DuplicateRangesGiveUniquePolicies) {
  Config cfg;
  auto got = buildPolicies({C("172.31.0.0/16"), C("172.31.0.0/16")}, cfg);
  EXPECT_EQ(got.size(), 4u);
}

TEST(BuildPolicies, HostBitsInARangeAreMaskedOff) {
  Config cfg;
  EXPECT_EQ(buildPolicies({C("172.31.0.16/16")}, cfg), buildPolicies({C("172.31.0.0/16")}, cfg));
}

TEST(BuildPolicies, ExclusionsInsideTheRange) {
  Config cfg;
  cfg.protect.exclude = {C("172.31.0.1/32"), C("172.31.255.255/32")};
  auto got = buildPolicies({C("172.31.0.0/16")}, cfg);
  EXPECT_TRUE(isSorted(got));
  EXPECT_THAT(got, ElementsAre(P(kIn, "0.0.0.0/0", "172.31.0.0/16", kProtect, 250000),
                               P(kIn, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000),
                               P(kIn, "172.31.0.1/32", "172.31.0.0/16", kBypass, 1000),
                               P(kIn, "172.31.255.255/32", "172.31.0.0/16", kBypass, 1000),
                               P(kOut, "0.0.0.0/0", "172.31.0.0/16", kProtect, 250000),
                               P(kOut, "0.0.0.0/0", "172.31.0.1/32", kBypass, 1000),
                               P(kOut, "0.0.0.0/0", "172.31.255.255/32", kBypass, 1000),
                               P(kOut, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000),
                               P(kOut, "172.31.0.0/16", "172.31.0.1/32", kBypass, 1000),
                               P(kOut, "172.31.0.0/16", "172.31.255.255/32", kBypass, 1000)));
}

TEST(BuildPolicies, ExclusionOutsideEveryRangeIsSkipped) {
  Config cfg;
  cfg.protect.exclude = {C("192.168.1.1/32"), C("10.254.0.0/24"), C("fd50::1/128")};
  auto got = buildPolicies({C("172.31.0.0/16")}, cfg);
  EXPECT_EQ(got.size(), 4u);
  for (const auto& p : got) EXPECT_EQ(p.action, kProtect) << p.str();
}

TEST(BuildPolicies, ExclusionGoesOnlyToTheRangeThatHoldsIt) {
  Config cfg;
  cfg.protect.exclude = {C("10.254.0.0/24")};  // a subnet exclusion
  auto got = buildPolicies({C("172.31.0.0/16"), C("10.254.0.0/16")}, cfg);
  std::vector<Policy> bypass;
  for (const auto& p : got)
    if (p.action == kBypass) bypass.push_back(p);
  EXPECT_THAT(bypass, ElementsAre(P(kIn, "10.254.0.0/24", "10.254.0.0/16", kBypass, 1000),
                                  P(kOut, "0.0.0.0/0", "10.254.0.0/24", kBypass, 1000),
                                  P(kOut, "10.254.0.0/16", "10.254.0.0/24", kBypass, 1000)));
}

TEST(BuildPolicies, ForwardAddsFwdProtectAndBothWayBypass) {
  Config cfg;
  cfg.protect.forward = true;
  cfg.protect.exclude = {C("172.31.0.1/32")};
  auto got = buildPolicies({C("172.31.0.0/16")}, cfg);
  std::vector<Policy> fwd;
  for (const auto& p : got)
    if (p.dir == kFwd) fwd.push_back(p);
  EXPECT_THAT(fwd, ElementsAre(P(kFwd, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000),
                               P(kFwd, "172.31.0.0/16", "172.31.0.1/32", kBypass, 1000),
                               P(kFwd, "172.31.0.1/32", "172.31.0.0/16", kBypass, 1000)));
  EXPECT_EQ(got.size(), 10u);  // 4 in/out protect + fwd protect + 3 in/out bypass + 2 fwd bypass
}

TEST(BuildPolicies, NoFwdWithoutForward) {
  Config cfg;
  cfg.protect.exclude = {C("172.31.0.1/32")};
  for (const auto& p : buildPolicies({C("172.31.0.0/16")}, cfg)) EXPECT_NE(p.dir, kFwd) << p.str();
}

TEST(BuildPolicies, Ipv6RangeGetsNeighbourDiscoveryBypass) {
  Config cfg;
  auto got = buildPolicies({C("fd50::/64")}, cfg);
  EXPECT_TRUE(isSorted(got));
  std::vector<Policy> want = {P(kIn, "fd50::/64", "fd50::/64", kProtect, 250000),
                              P(kOut, "fd50::/64", "fd50::/64", kProtect, 250000),
                              P(kIn, "::/0", "fd50::/64", kProtect, 250000),
                              P(kOut, "::/0", "fd50::/64", kProtect, 250000)};
  // ND from any source (link-local NS/NA included) to a range address stays in the clear.
  for (std::uint8_t t : {133, 134, 135, 136}) {
    for (auto d : {kIn, kOut}) {
      Policy nd = Nd(d, "fd50::/64", t);
      nd.sel.src = C("::/0");
      want.push_back(nd);
    }
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST(BuildPolicies, NdBypassBeatsProtectAndIsNotForwarded) {
  Config cfg;
  cfg.protect.forward = true;
  auto got = buildPolicies({C("fd50::/64")}, cfg);
  for (const auto& p : got) {
    if (p.sel.proto == 58) {
      EXPECT_NE(p.dir, kFwd) << p.str();
      EXPECT_LT(p.priority, cfg.xfrm.protectPriority) << p.str();
    }
  }
}

TEST(BuildPolicies, NoNdBypassForIpv4) {
  Config cfg;
  for (const auto& p : buildPolicies({C("172.31.0.0/16")}, cfg)) EXPECT_EQ(p.sel.proto, 0) << p.str();
}

TEST(BuildPolicies, DualStackKeepsFamiliesApart) {
  Config cfg;
  cfg.protect.exclude = {C("172.31.0.1/32"), C("fd50::1/128")};
  auto got = buildPolicies({C("fd50::/64"), C("172.31.0.0/16")}, cfg);
  EXPECT_TRUE(isSorted(got));
  for (const auto& p : got) EXPECT_EQ(p.sel.src.family(), p.sel.dst.family()) << p.str();
  // 4 protect + 3 bypass per family, + 8 ND bypass for the IPv6 range.
  EXPECT_EQ(got.size(), 4u + 3u + 4u + 3u + 8u);
}

// --- diffPolicies -----------------------------------------------------------------

TEST(DiffPolicies, EmptyToSetAddsEverything) {
  Config cfg;
  auto want = buildPolicies({C("172.31.0.0/16")}, cfg);
  auto d = diffPolicies({}, want);
  EXPECT_EQ(d.add, want);
  EXPECT_THAT(d.remove, IsEmpty());
  EXPECT_FALSE(d.empty());
}

TEST(DiffPolicies, SameSetIsEmpty) {
  Config cfg;
  cfg.protect.exclude = {C("172.31.0.1/32")};
  auto want = buildPolicies({C("172.31.0.0/16"), C("fd50::/64")}, cfg);
  auto shuffled = want;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  EXPECT_TRUE(diffPolicies(shuffled, want).empty());
  EXPECT_TRUE(diffPolicies(want, shuffled).empty());
}

TEST(DiffPolicies, SetToEmptyRemovesEverything) {
  Config cfg;
  auto cur = buildPolicies({C("172.31.0.0/16")}, cfg);
  auto d = diffPolicies(cur, {});
  EXPECT_THAT(d.add, IsEmpty());
  EXPECT_EQ(d.remove, cur);
}

TEST(DiffPolicies, RangeMovedAddsNewRemovesOld) {
  Config cfg;
  auto cur = buildPolicies({C("172.31.0.0/16")}, cfg);
  auto want = buildPolicies({C("10.254.0.0/16")}, cfg);
  auto d = diffPolicies(cur, want);
  EXPECT_EQ(d.add, want);
  EXPECT_EQ(d.remove, cur);
}

TEST(DiffPolicies, RangeAddedKeepsTheOldOnes) {
  Config cfg;
  auto cur = buildPolicies({C("172.31.0.0/16")}, cfg);
  auto want = buildPolicies({C("172.31.0.0/16"), C("10.254.0.0/16")}, cfg);
  auto d = diffPolicies(cur, want);
  EXPECT_EQ(d.add, buildPolicies({C("10.254.0.0/16")}, cfg));
  EXPECT_THAT(d.remove, IsEmpty());
}

TEST(DiffPolicies, AttributeChangeIsAnUpdateInAdd) {
  Config cfg;
  auto cur = buildPolicies({C("172.31.0.0/16")}, cfg);
  Config useCfg = cfg;
  useCfg.protect.level = PolicyLevel::use;
  auto want = buildPolicies({C("172.31.0.0/16")}, useCfg);
  auto d = diffPolicies(cur, want);
  EXPECT_EQ(d.add, want);            // same ids, new level: replaced in place
  EXPECT_THAT(d.remove, IsEmpty());  // never removed: no gap between remove and add
}

TEST(DiffPolicies, PriorityAndActionChangesAreUpdates) {
  Policy cur = P(kOut, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000);
  Policy prio = cur;
  prio.priority = 1;
  Policy act = cur;
  act.action = kBypass;
  for (const Policy& want : {prio, act}) {
    auto d = diffPolicies({cur}, {want});
    EXPECT_THAT(d.add, ElementsAre(want));
    EXPECT_THAT(d.remove, IsEmpty());
  }
}

TEST(DiffPolicies, SelectorOrDirectionChangeIsANewId) {
  Policy cur = P(kOut, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000);
  Policy dir = cur;
  dir.dir = kIn;
  Policy nd = cur;
  nd.sel.proto = 58;
  for (const Policy& want : {dir, nd}) {
    auto d = diffPolicies({cur}, {want});
    EXPECT_THAT(d.add, ElementsAre(want));
    EXPECT_THAT(d.remove, ElementsAre(cur));
  }
}

TEST(DiffPolicies, DuplicatesInInputsAreHarmless) {
  Policy a = P(kOut, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000);
  Policy b = P(kIn, "172.31.0.0/16", "172.31.0.0/16", kProtect, 250000);
  auto d = diffPolicies({a, a, b}, {b, b});
  EXPECT_THAT(d.add, IsEmpty());
  EXPECT_THAT(d.remove, ElementsAre(a));
}

TEST(DiffPolicies, DeterministicWhateverTheInputOrder) {
  Config cfg;
  cfg.protect.exclude = {C("172.31.0.1/32"), C("10.254.0.9/32")};
  auto cur = buildPolicies({C("172.31.0.0/16"), C("fd50::/64")}, cfg);
  cfg.protect.level = PolicyLevel::use;
  auto want = buildPolicies({C("10.254.0.0/16"), C("fd50::/64")}, cfg);
  auto ref = diffPolicies(cur, want);
  EXPECT_TRUE(isSorted(ref.add));
  EXPECT_TRUE(isSorted(ref.remove));
  std::mt19937 rng(12345);
  for (int i = 0; i < 20; ++i) {
    auto c = cur, w = want;
    std::shuffle(c.begin(), c.end(), rng);
    std::shuffle(w.begin(), w.end(), rng);
    auto d = diffPolicies(c, w);
    EXPECT_EQ(d.add, ref.add);
    EXPECT_EQ(d.remove, ref.remove);
  }
}

TEST(DiffPolicies, ApplyingTheDiffReachesDesired) {
  // Model of the kernel: a map id -> policy; install replaces, remove deletes by id.
  Config cfg;
  cfg.protect.exclude = {C("172.31.0.1/32")};
  auto cur = buildPolicies({C("172.31.0.0/16"), C("fd50::/64")}, cfg);
  Config next = cfg;
  next.protect.level = PolicyLevel::use;
  next.protect.forward = true;
  auto want = buildPolicies({C("10.254.0.0/16"), C("fd50::/64")}, next);

  std::vector<Policy> kernel = cur;
  auto d = diffPolicies(kernel, want);
  for (const auto& p : d.add) {
    auto it = std::find_if(kernel.begin(), kernel.end(), [&](const Policy& k) { return k.key() == p.key(); });
    if (it != kernel.end()) *it = p; else kernel.push_back(p);
  }
  for (const auto& p : d.remove)
    kernel.erase(std::remove_if(kernel.begin(), kernel.end(), [&](const Policy& k) { return k.key() == p.key(); }),
                 kernel.end());
  std::sort(kernel.begin(), kernel.end());
  EXPECT_EQ(kernel, want);
  EXPECT_TRUE(diffPolicies(kernel, want).empty());
}

}  // namespace
}  // namespace ipopsec
