// Health means a peer can connect: the IKE side, in the pure core with fakes and a fake
// clock. The IKE daemon's unit state (systemd's signals), its trap policies (the kernel's
// foreign policies) and an SA flush by another process are judged, reported in words an
// operator acts on, and repaired by a restart that names its reason, bounded by the
// scheduler's minimum interval and backoff.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/reconcile/ike_health.hpp"
#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

namespace {

Policy trap(const char* local, const char* range) {
  Policy p;
  p.dir = Direction::out;
  p.sel.src = C(local);
  p.sel.dst = C(range);
  p.priority = 366000;  // charon's, not ours
  return p;
}

// A per-SA policy of charon's: host to host.
Policy perSa(const char* a, const char* b) {
  Policy p = trap(a, b);
  p.priority = 180000;
  return p;
}

std::string problems(const NodeStatus& st) {
  std::string s;
  for (const auto& p : st.ikeProblems) s += p + "\n";
  return s;
}

struct IkeHealth : ReconcilerFixture {
  Config swan() {
    Config c = cfg();
    c.ike.backend = IkeBackend::strongswan;
    c.ike.unit = "strongswan.service";
    c.xfrm.protectPriority = Config::Xfrm::kStrongswanProtectPriority;
    c.strongswan.loadCommand = {"/usr/sbin/swanctl", "--load-all"};
    c.ike.quietPeriod = 2s;
    c.ike.minInterval = 10s;
    return c;
  }
  // IPOP up at 172.31.0.16, charon started by the daemon, listening, its trap installed.
  void upAndRunning() {
    unit.reloadable = true;
    unit.unitName = "strongswan.service";
    policies.foreign = std::vector<Policy>{trap("172.31.0.16/32", "172.31.0.0/16"), perSa("172.31.0.16/32", "172.31.0.9/32")};
    make(swan());
    net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
    r->ikeStateChanged("inactive");  // at boot, skipped by its drop-in's condition
    r->reconcile(net);
    runFor(1ms);
    ASSERT_EQ(unit.restarts, 1);
    unit.announce("active");
    r->ikeStateChanged("active");
    unit.complete();
    r->reconcile(net);  // the trap arrives with charon's config (an XFRM event)
    ASSERT_TRUE(r->status().healthy()) << r->statusLine() << "\n" << problems(r->status());
  }
};

TEST(IkeTraps, TheTrapIsTheOutPolicyFromTheNodesAddressToTheRange) {
  Config c;
  c.ike.backend = IkeBackend::strongswan;
  Desired d;
  d.ikeInitiating = {"172.31.0.0/16=172.31.0.16", "fd50::/64=fd50::16"};
  auto want = expectedTraps(c, d);
  ASSERT_EQ(want.size(), 2u);
  EXPECT_EQ(want[0].str(), "out 172.31.0.16/32 -> 172.31.0.0/16");
  EXPECT_EQ(want[1].str(), "out fd50::16/128 -> fd50::/64");
  // A per-SA policy, the reverse direction or our own range-to-range policy is no trap.
  Policy in = trap("172.31.0.16/32", "172.31.0.0/16");
  in.dir = Direction::in;
  std::vector<Policy> foreign{perSa("172.31.0.16/32", "172.31.0.9/32"), in, trap("172.31.0.0/16", "172.31.0.0/16"),
                              trap("fd50::16/128", "fd50::/64")};
  auto there = presentTraps(want, foreign);
  ASSERT_EQ(there.size(), 1u);
  EXPECT_EQ(there[0].range, C("fd50::/64"));
  c.ike.backend = IkeBackend::racoon;
  EXPECT_THAT(expectedTraps(c, d), IsEmpty()) << "racoon installs no traps";
}

TEST_F(IkeHealth, ATrapRemovedByAnotherProcessIsReportedAndRepairedByARestartThatSaysWhy) {
  upAndRunning();
  // `ip xfrm policy flush`: our policies and charon's trap go; the watch reports the flush.
  policies.installed.clear();
  policies.foreign = std::vector<Policy>{};
  r->reconcile(net);
  EXPECT_FALSE(r->status().healthy());
  EXPECT_TRUE(hasEvent("repair", "its trap policies (out 172.31.0.16/32 -> 172.31.0.0/16) were removed by another process"));
  runFor(1ms);  // held by the minimum interval (10 s) since the first start
  runFor(10s);
  ASSERT_EQ(unit.restarts, 2);
  EXPECT_TRUE(hasEvent("restart", "restarting strongswan.service: its trap policies"));
  EXPECT_THAT(r->status().lastActionReason, HasSubstr("were removed by another process"));
  EXPECT_THAT(problems(r->status()), HasSubstr("is being restarted"));
  unit.complete();
  policies.foreign = std::vector<Policy>{trap("172.31.0.16/32", "172.31.0.0/16")};
  r->reconcile(net);
  EXPECT_TRUE(r->status().healthy()) << problems(r->status());
}

TEST_F(IkeHealth, AFlushLongAfterTheLastRestartIsRepairedAtOnce) {
  upAndRunning();
  clock.advance(1h);
  policies.foreign = std::vector<Policy>{};
  r->reconcile(net);
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 2) << "no quiet period for a repair";
}

TEST_F(IkeHealth, ATrapNeverInstalledIsReportedButNotRestartedInALoop) {
  unit.reloadable = true;
  unit.unitName = "strongswan.service";
  policies.foreign = std::vector<Policy>{};  // charon refuses the trap (an IPv6 trap on strongSwan 5.9)
  make(swan());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(1ms);
  unit.complete();
  r->ikeStateChanged("active");
  r->reconcile(net);
  EXPECT_FALSE(r->status().healthy());
  EXPECT_THAT(problems(r->status()), HasSubstr("holds no trap policy for 172.31.0.0/16 (out 172.31.0.16/32 -> "
                                               "172.31.0.0/16): this node cannot start a connection"));
  runFor(30min);
  r->reconcile(net);
  EXPECT_EQ(unit.restarts, 1) << "a trap that never came is no loss to repair";
  EXPECT_THAT(r->shortStatus(), HasSubstr("IKE"));
}

TEST_F(IkeHealth, AStoppedIkeUnitIsRepairedAtOnceAndNeverHealthyMeanwhile) {
  upAndRunning();
  clock.advance(1min);
  unit.announce("deactivating");
  r->ikeStateChanged("deactivating");
  EXPECT_FALSE(r->status().healthy());
  r->ikeStateChanged("inactive");
  EXPECT_FALSE(r->status().healthy());
  EXPECT_THAT(problems(r->status()), HasSubstr("strongswan.service is inactive: no peer can connect"));
  EXPECT_TRUE(hasEvent("repair", "strongswan.service is inactive while IPOP is up"));
  runFor(1ms);
  ASSERT_EQ(unit.restarts, 2);
  EXPECT_THAT(r->status().lastActionReason, HasSubstr("is inactive while IPOP is up"));
  unit.complete();
  r->ikeStateChanged("active");
  r->reconcile(net);
  EXPECT_TRUE(r->status().healthy()) << problems(r->status());
}

// `systemctl stop strongswan`: charon removes its traps while stopping, before systemd's
// signal for the unit arrives. The unit, asked at once, is deactivating: the repair waits for
// the signal and names the stop, not "removed by another process".
TEST_F(IkeHealth, TrapsGoneBecauseTheUnitStopsAreRepairedAsAStop) {
  upAndRunning();
  clock.advance(1min);
  unit.unitState = "deactivating";  // what a read now says; the signal is still on its way
  policies.foreign = std::vector<Policy>{};
  r->reconcile(net);
  EXPECT_FALSE(hasEvent("repair", "removed by another process"));
  EXPECT_FALSE(r->status().healthy());
  r->ikeStateChanged("deactivating");
  r->ikeStateChanged("inactive");
  EXPECT_TRUE(hasEvent("repair", "strongswan.service is inactive while IPOP is up"));
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 2);
  // Read as already stopped: repaired as a stop at once (the signal then changes nothing).
  unit.complete();
  unit.unitState = "active";
  r->ikeStateChanged("active");
  policies.foreign = std::vector<Policy>{trap("172.31.0.16/32", "172.31.0.0/16")};
  r->reconcile(net);
  ASSERT_TRUE(r->status().healthy()) << problems(r->status());
  clock.advance(1min);
  unit.unitState = "failed";
  policies.foreign = std::vector<Policy>{};
  r->reconcile(net);
  r->ikeStateChanged("failed");
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 3);
  EXPECT_THAT(r->status().lastActionReason, HasSubstr("strongswan.service is failed while IPOP is up"));
}

// The restart is done but the IKE daemon does not listen yet (racoon binding late): a stop
// now is a loss like any other, and one not repaired at once (a restart under way) is
// repaired by the next read of the unit's state (the resync's).
TEST_F(IkeHealth, AStopWhileWaitingForItToListenIsRepairedAndTheResyncRepairsWhatWasLeft) {
  upAndRunning();
  clock.advance(1min);
  unit.listening = false;
  r->ikeStatesFlushed("test");
  runFor(1ms);
  ASSERT_EQ(unit.restarts, 2);
  unit.complete();  // its job is done; it does not listen yet
  r->ikeStateChanged("active");
  clock.advance(1min);
  r->ikeStateChanged("inactive");
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 3) << "repaired although the last restart still waits for it to listen";
  // Stopped again while that restart runs: not repaired then (its own job passes through
  // inactive) ...
  r->ikeStateChanged("inactive");
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 3);
  unit.complete();
  // ... but by the next read of the same state (the daemon reads it after every restart
  // result, and at each resync).
  r->ikeStateChanged("inactive");
  runFor(1min);
  EXPECT_EQ(unit.restarts, 4);
}

TEST_F(IkeHealth, IpopComingUpIsTheReasonOfItsStart) {
  upAndRunning();
  clock.advance(1min);
  net.links[7] = link(7, "ipop", false, {"172.31.0.16/16"});
  r->reconcile(net);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(1ms);
  ASSERT_EQ(unit.restarts, 2);
  EXPECT_EQ(r->status().lastActionReason, "IPOP came up at 172.31.0.16");
}

TEST_F(IkeHealth, ItsOwnRestartPassingThroughInactiveIsNoLoss) {
  upAndRunning();
  clock.advance(1min);
  r->ikeStatesFlushed("test");  // starts a restart
  runFor(1ms);
  ASSERT_EQ(unit.restarts, 2);
  r->ikeStateChanged("deactivating");
  r->ikeStateChanged("inactive");
  r->ikeStateChanged("activating");
  unit.complete();
  r->ikeStateChanged("active");
  runFor(1min);
  EXPECT_EQ(unit.restarts, 2);
}

TEST_F(IkeHealth, AnSaFlushByAnotherProcessRestartsTheIkeDaemon) {
  upAndRunning();
  clock.advance(1min);
  r->ikeStatesFlushed("`ip xfrm state flush` or the like");
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 2);
  EXPECT_TRUE(hasEvent("restart", "its SAs were removed from the kernel by another process"));
}

TEST_F(IkeHealth, NothingIsRepairedWhileIpopIsDown) {
  upAndRunning();
  net.links[7] = link(7, "ipop", false, {"172.31.0.16/16"});
  r->reconcile(net);
  clock.advance(1min);
  r->ikeStateChanged("inactive");
  r->ikeStatesFlushed("test");
  runFor(1min);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_THAT(r->status().ikeProblems, IsEmpty()) << "the tap says why, not the IKE side";
  EXPECT_FALSE(r->status().healthy());
}

// A crash that systemd repairs itself (strongswan.service has Restart=on-abnormal): the
// unit is failed, then activating and active again before the daemon's repair (held by
// the minimum interval) runs. That repair is dropped: it would only tear down the new SAs.
TEST_F(IkeHealth, AUnitThatComesBackByItselfIsNotRestartedAgain) {
  upAndRunning();
  r->ikeStateChanged("failed");  // SIGKILL, 0 s after the last restart: held by min_interval
  EXPECT_TRUE(hasEvent("repair", "is failed while IPOP is up"));
  r->ikeStateChanged("activating");
  r->ikeStateChanged("active");
  EXPECT_TRUE(hasEvent("repair", "active again by itself: no restart needed"));
  runFor(1min);
  EXPECT_EQ(unit.restarts, 1);
  r->reconcile(net);
  EXPECT_TRUE(r->status().healthy()) << problems(r->status());
  // A trap loss is not undone by the unit being active.
  clock.advance(1min);
  policies.foreign = std::vector<Policy>{};
  r->reconcile(net);
  r->ikeStateChanged("reloading");
  r->ikeStateChanged("active");
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 2);
}

// ipop-ipsecd restarted (an upgrade) and adopted the running charon, whose traps someone
// flushed while no daemon watched: missing at the first check, they are repaired once.
TEST_F(IkeHealth, AnAdoptedIkeDaemonWithoutItsTrapsIsRepairedOnce) {
  unit.reloadable = true;
  unit.unitName = "strongswan.service";
  policies.foreign = std::vector<Policy>{};
  make(swan());
  // What the state file says the running charon was started with: this config's inputs.
  {
    Reconciler probe(swan(), policies, files, certs, unit, clock, nullptr);
    net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
    probe.reconcile(net);
    r->assumeIkeStarted(probe.status().desired.ikeInputs);
  }
  r->ikeStateChanged("active");
  r->reconcile(net);
  EXPECT_TRUE(hasEvent("repair", "are missing (removed while no ipop-ipsecd was watching)"));
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 1);
  unit.complete();
  r->reconcile(net);  // charon refuses the trap again: reported, not repaired again
  runFor(10min);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_FALSE(r->status().healthy());
}

TEST_F(IkeHealth, AStopRightAfterARestartWaitsForTheMinimumInterval) {
  upAndRunning();
  r->ikeStateChanged("failed");
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 1) << "10 s minimum interval between restarts";
  runFor(10s);
  EXPECT_EQ(unit.restarts, 2);
}

}  // namespace
