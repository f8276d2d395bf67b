// summarizeSas: which SAs of the kernel's SAD count for the protected ranges, and with whom.

#include <gtest/gtest.h>

#include "core/status/sa_summary.hpp"
#include "support/policy_builders.hpp"

namespace ipopsec {
namespace {

IpAddress A(const char* s) { return *IpAddress::parse(s); }
using test::C;

TEST(SaSummary, CountsKeyedEspSasInsideTheRangesAndNamesThePeers) {
  std::vector<SaFact> sas = {
      {A("10.254.0.16"), A("10.254.0.17"), true, false},  // out to .17
      {A("10.254.0.17"), A("10.254.0.16"), true, false},  // in from .17
      {A("10.254.0.18"), A("10.254.0.16"), true, false},  // in from .18
      {A("10.254.0.16"), A("192.168.1.9"), true, false},  // one end outside the range
      {A("192.168.1.5"), A("192.168.1.9"), true, false},  // the underlay
      {A("10.254.0.16"), A("10.254.0.19"), false, false},  // AH, not ESP
      {A("10.254.0.16"), A("10.254.0.20"), true, true},   // larval
  };
  auto s = summarizeSas(sas, {C("10.254.0.0/16")}, {A("10.254.0.16")});
  EXPECT_EQ(s.esp, 3u);
  EXPECT_EQ(s.larval, 1u);
  EXPECT_EQ(s.peers, (std::vector<IpAddress>{A("10.254.0.17"), A("10.254.0.18")}));
  EXPECT_EQ(s.str(), "3 ESP SAs with 2 peers (10.254.0.17, 10.254.0.18); 1 larval (negotiation pending)");
}

TEST(SaSummary, NothingIsSaidAsNothing) {
  auto s = summarizeSas({}, {C("10.254.0.0/16")}, {A("10.254.0.16")});
  EXPECT_EQ(s.esp, 0u);
  EXPECT_EQ(s.str(), "no ESP SA");
  // No range protected: no SA counts, whatever the SAD holds.
  s = summarizeSas({{A("10.254.0.16"), A("10.254.0.17"), true, false}}, {}, {A("10.254.0.16")});
  EXPECT_EQ(s.esp, 0u);
}

TEST(SaSummary, IPv6AndSeveralRangesAndAForwardedSaNamesBothEnds) {
  std::vector<SaFact> sas = {
      {A("fd00::1"), A("fd00::2"), true, false},
      {A("10.1.0.5"), A("10.1.0.6"), true, false},  // neither end is this node (a router's fwd SA)
  };
  auto s = summarizeSas(sas, {C("fd00::/64"), C("10.1.0.0/16")}, {A("fd00::1")});
  EXPECT_EQ(s.esp, 2u);
  EXPECT_EQ(s.peers, (std::vector<IpAddress>{A("10.1.0.5"), A("10.1.0.6"), A("fd00::2")}));
  EXPECT_EQ(s.str(), "2 ESP SAs with 3 peers (10.1.0.5, 10.1.0.6, fd00::2)");
}

}  // namespace
}  // namespace ipopsec
