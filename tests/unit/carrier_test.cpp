// Issue 22 (3): "IPOP is up" needs the tap administratively up WITH carrier. A tap that is
// up but has NO-CARRIER (IPOP's controller does not hold it open) keeps its policies (fail
// closed) but is reported, gets no ipop-up flag, and starts no IKE daemon; carrier coming
// back is IPOP coming up. The core, with fakes and a fake clock.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/status/metrics.hpp"
#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

constexpr const char* kFlag = "/run/ipop-ipsec/ipop-up";

LinkState noCarrier(int idx, const char* addr) {
  LinkState l = link(idx, "ipop", true, {addr});
  l.running = false;  // `ip tuntap add` + `ip link set up`, nobody holds it: NO-CARRIER
  return l;
}

struct CarrierTest : ReconcilerFixture {
  std::string metrics() { return renderMetrics(r->status(), r->config(), MetricsCounters{}); }
};

TEST_F(CarrierTest, UpTapWithAnAddressButNoCarrierIsNotIpopUp) {
  make(cfg());
  net.links[7] = noCarrier(7, "172.31.0.16/16");
  r->reconcile(net);
  runFor(60s);
  const auto& st = r->status();
  EXPECT_FALSE(st.desired.ipopUp);
  EXPECT_EQ(st.desired.tapState, TapState::noCarrier);
  EXPECT_STREQ(toString(st.desired.tapState), "no carrier");
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")}) << "the range's policies are in: fail closed";
  EXPECT_EQ(unit.restarts, 0) << "no IKE daemon for a tap without carrier";
  EXPECT_FALSE(files.files.count(kFlag)) << "no ipop-up flag: the IKE unit's condition stays false";
  EXPECT_FALSE(st.healthy());
  EXPECT_THAT(r->statusLine(), HasSubstr("'ipop' has no carrier (IPOP's controller is not connected"));
  EXPECT_THAT(r->statusLine(), HasSubstr("protecting 172.31.0.0/16"));
  EXPECT_THAT(r->shortStatus(), HasSubstr("'ipop' has no carrier"));
  EXPECT_THAT(metrics(), HasSubstr("\nipop_ipsec_ipop_up 0\n"));
  EXPECT_THAT(metrics(), HasSubstr("\nipop_ipsec_healthy 0\n"));

  // The controller opens the tap: carrier, IPOP is up, the IKE daemon starts at once.
  net.links[7].running = true;
  r->reconcile(net);
  runFor(1ms);
  EXPECT_TRUE(r->status().desired.ipopUp);
  EXPECT_EQ(r->status().desired.tapState, TapState::up);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(files.files[kFlag], "172.31.0.16\n");
  EXPECT_THAT(metrics(), HasSubstr("\nipop_ipsec_ipop_up 1\n"));
}

TEST_F(CarrierTest, CarrierLostKeepsThePoliciesAndDoesNotRestartTheIkeDaemon) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(1s);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  ASSERT_TRUE(files.files.count(kFlag));
  auto before = policies.all();

  net.links[7].running = false;  // IPOP's controller stopped: the tap stays, up, addressed
  r->reconcile(net);
  runFor(120s);
  EXPECT_EQ(r->status().desired.tapState, TapState::noCarrier);
  EXPECT_FALSE(r->status().desired.ipopUp);
  EXPECT_EQ(policies.all(), before) << "policies unchanged: fail closed";
  EXPECT_EQ(unit.restarts, 1) << "not restarted for a tap without carrier";
  EXPECT_FALSE(files.files.count(kFlag)) << "the flag goes with the carrier";
  EXPECT_THAT(r->statusLine(), HasSubstr("has no carrier"));
  EXPECT_THAT(metrics(), HasSubstr("\nipop_ipsec_ipop_up 0\n"));

  // Carrier back: IPOP came up again, the IKE daemon is restarted at once.
  net.links[7].running = true;
  r->reconcile(net);
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 2) << "carrier coming back is IPOP coming up";
  EXPECT_TRUE(files.files.count(kFlag));
  EXPECT_EQ(policies.all(), before);
  unit.complete();

  // Lost and back within one batch of events: the snapshot looks as before, but the
  // monitor counted the link coming up (with carrier) again.
  ++net.links[7].upCount;
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 3);
}

TEST_F(CarrierTest, DaemonStartingBesideATapWithoutCarrierWaitsForIt) {
  make(cfg());
  net.links[7] = noCarrier(7, "172.31.0.16/16");
  r->reconcile(net);  // the first observation
  net.links[7].addresses.push_back(C("172.31.0.17/16"));
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 0);
  net.links[7].up = false;  // down and up again, still without carrier
  r->reconcile(net);
  net.links[7].up = true;
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 0) << "IFF_UP alone is not IPOP coming up";
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
}

// strongSwan: a tap without carrier renders like a down tap: responder only, no trap.
TEST(CarrierDesired, StrongswanInitiatesOnlyFromATapWithCarrier) {
  Config c;
  c.sourceFile = "/etc/ipop-ipsec/ipop-ipsecd.yaml";
  c.ike.backend = IkeBackend::strongswan;
  c.ike.unit = "strongswan.service";
  c.xfrm.protectPriority = Config::Xfrm::kStrongswanProtectPriority;
  CertFiles certs;
  certs.ca = "CA";
  certs.cert = "CERT";
  certs.key = "KEY";
  NetSnapshot net;
  net.links[7] = noCarrier(7, "172.31.0.16/16");
  Desired without = computeDesired(c, net, certs, {});
  EXPECT_FALSE(without.ipopUp);
  EXPECT_TRUE(without.ikeInitiating.empty());
  EXPECT_EQ(without.ranges, std::vector<Cidr>{C("172.31.0.0/16")});
  net.links[7].running = true;
  Desired with = computeDesired(c, net, certs, {});
  EXPECT_TRUE(with.ipopUp);
  EXPECT_EQ(with.ikeInitiating, std::vector<std::string>{"172.31.0.0/16=172.31.0.16"});
  EXPECT_EQ(with.policies, without.policies) << "the same protection either way";
  EXPECT_NE(with.ikeInputs, without.ikeInputs);
}

}  // namespace
