// RangeMemory (core/reconcile/range_memory.hpp): the remembered auto-ranges file both ways
// (a bad line named with its line number and skipped, IPv6 skipped when protect.ipv6 is
// off), and the rules of the remembered ranges: provisional until a tap address confirms
// them, in force = the kernel's ranges + committed - provisional, the first comparison with
// the kernel, what is committed after an apply and what the file should hold.

#include "core/reconcile/range_memory.hpp"
#include "support/policy_builders.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ipopsec {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using test::C;

// --- the file ----------------------------------------------------------------------------

TEST(RememberedRangesFile, ABadLineIsNamedWithItsLineNumberAndSkipped) {
  const auto r = parseRememberedRanges("# comment\n10.50.0.0/16\nnot-a-range\n\n10.60.0.0/33\n10.70.0.0/16\n",
                                       "/var/lib/ipop-ipsec/auto-ranges", false);
  EXPECT_THAT(r.ranges, ElementsAre(C("10.50.0.0/16"), C("10.70.0.0/16")));
  ASSERT_EQ(r.problems.size(), 2u);
  EXPECT_THAT(r.problems[0], ::testing::StartsWith("/var/lib/ipop-ipsec/auto-ranges:3: not a range ("));
  EXPECT_THAT(r.problems[0], ::testing::EndsWith("); ignored"));
  EXPECT_THAT(r.problems[1], ::testing::StartsWith("/var/lib/ipop-ipsec/auto-ranges:5: not a range ("));
  EXPECT_THAT(r.problems[1], ::testing::HasSubstr("33"));
}

TEST(RememberedRangesFile, Ipv6IsSkippedWhenProtectIpv6IsOffAndKeptWhenOn) {
  const std::string text = "10.50.0.0/16\nfd00:50::/64\n";
  auto off = parseRememberedRanges(text, "f", false);
  EXPECT_THAT(off.ranges, ElementsAre(C("10.50.0.0/16")));
  EXPECT_THAT(off.problems, IsEmpty()) << "a config change, not a bad line";
  auto on = parseRememberedRanges(text, "f", true);
  EXPECT_THAT(on.ranges, ElementsAre(C("10.50.0.0/16"), C("fd00:50::/64")));
}

TEST(RememberedRangesFile, RangesAreNetworksSortedOnceEachAndTheLastLineNeedsNoNewline) {
  const auto r = parseRememberedRanges("10.70.0.9/16\n10.50.0.0/16\n10.70.0.0/16", "f", false);
  EXPECT_THAT(r.ranges, ElementsAre(C("10.50.0.0/16"), C("10.70.0.0/16")));
  EXPECT_THAT(r.problems, IsEmpty());
}

TEST(RememberedRangesFile, WhatIsRenderedParsesBackToTheSameRanges) {
  const std::vector<Cidr> ranges{C("10.50.0.0/16"), C("fd00:50::/64")};
  const std::string text = renderRememberedRanges(ranges);
  EXPECT_EQ(text.front(), '#') << "it says what it is";
  EXPECT_NE(text.find("\n10.50.0.0/16\nfd00:50::/64\n"), std::string::npos) << text;
  const auto back = parseRememberedRanges(text, "f", true);
  EXPECT_EQ(back.ranges, ranges);
  EXPECT_THAT(back.problems, IsEmpty());
}

// --- the rules ---------------------------------------------------------------------------

TEST(RangeMemory, ARememberedRangeIsProvisionalAndNotInForceUntilConfirmed) {
  RangeMemory m;
  m.assumeRemembered({C("10.50.0.0/16")});
  EXPECT_THAT(m.inForce({}), IsEmpty());
  EXPECT_THAT(m.provisional(), ElementsAre(C("10.50.0.0/16")));
  m.confirm({C("10.60.0.16/16")});
  EXPECT_THAT(m.provisional(), ElementsAre(C("10.50.0.0/16"))) << "an address outside it confirms nothing";
  m.confirm({C("10.50.0.16/16")});
  EXPECT_THAT(m.provisional(), IsEmpty());
  EXPECT_THAT(m.inForce({C("10.50.0.0/16")}), ElementsAre(C("10.50.0.0/16")));
}

TEST(RangeMemory, ARememberedRangeTheKernelHeldAtTheFirstLookIsInForce) {
  RangeMemory m;
  m.assumeRemembered({C("10.50.0.0/16"), C("10.60.0.0/16")});
  // A daemon restart: the kernel still holds 10.50's policies; 10.60 this run installs.
  EXPECT_THAT(m.inForce({C("10.50.0.0/16")}), ElementsAre(C("10.50.0.0/16")));
  EXPECT_THAT(m.provisional(), ElementsAre(C("10.60.0.0/16")));
  // Only the first look decides: 10.60 installed from the file later stays provisional.
  EXPECT_THAT(m.inForce({C("10.50.0.0/16"), C("10.60.0.0/16")}), ElementsAre(C("10.50.0.0/16")));
  EXPECT_THAT(m.provisional(), ElementsAre(C("10.60.0.0/16")));
}

TEST(RangeMemory, InForceIsTheKernelsAndTheCommittedLessTheProvisional) {
  RangeMemory m;
  m.assumeCommitted({C("10.70.0.0/16"), C("10.50.0.0/16"), C("10.70.0.0/16")});
  EXPECT_THAT(m.committed(), ElementsAre(C("10.50.0.0/16"), C("10.70.0.0/16")));
  (void)m.inForce({});  // the first look
  m.assumeRemembered({C("10.60.0.0/16")});
  EXPECT_THAT(m.inForce({C("10.80.0.0/16"), C("10.60.0.0/16"), C("10.50.0.0/16")}),
              ElementsAre(C("10.50.0.0/16"), C("10.70.0.0/16"), C("10.80.0.0/16")));
}

TEST(RangeMemory, CommitKeepsWhatIsWantedAndWasCommittedOrIsProtectedNotTheProvisional) {
  RangeMemory m;
  m.assumeCommitted({C("10.50.0.0/16"), C("10.90.0.0/16")});
  m.assumeRemembered({C("10.60.0.0/16")});
  // 10.50 committed and wanted (its policies flushed: still in force); 10.70 newly
  // protected; 10.60 protected but provisional; 10.90 no longer wanted; 10.80 wanted, not
  // protected and never committed.
  m.commit({C("10.50.0.0/16"), C("10.60.0.0/16"), C("10.70.0.0/16"), C("10.80.0.0/16")},
           {C("10.60.0.0/16"), C("10.70.0.0/16"), C("10.90.0.0/16")});
  EXPECT_THAT(m.committed(), ElementsAre(C("10.50.0.0/16"), C("10.70.0.0/16")));
}

TEST(RangeMemory, DropProvisionalEndsEveryRememberedRange) {
  RangeMemory m;
  m.assumeRemembered({C("10.50.0.0/16")});
  m.dropProvisional();
  EXPECT_THAT(m.provisional(), IsEmpty());
  EXPECT_THAT(m.inForce({C("10.50.0.0/16")}), ElementsAre(C("10.50.0.0/16")));
}

TEST(RangeMemory, WhatIsRememberedIsTheWantedRangesTheKernelProtects) {
  EXPECT_THAT(RangeMemory::toRemember({C("10.50.0.0/16"), C("10.60.0.0/16")}, {C("10.50.0.0/16"), C("10.70.0.0/16")}),
              ElementsAre(C("10.50.0.0/16")));
  EXPECT_THAT(RangeMemory::toRemember({C("10.50.0.0/16")}, {}), IsEmpty());
}

}  // namespace
}  // namespace ipopsec
