// Issue "Fail closed under every condition": the core's rules, with fakes. A conflict may
// stop a range from being added; it never takes away protection in force. What is logged
// and reported is what the kernel holds after the call.

#include <gtest/gtest.h>

#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;

namespace {

struct FailClosedTest : ReconcilerFixture {};

// 1a: another interface gets an address inside the protected range (docker0).
TEST_F(FailClosedTest, AnotherInterfaceInsideAProtectedAutoRangeKeepsItsPolicies) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  ASSERT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
  std::size_t before = policies.protectCount();
  policies.minCount = SIZE_MAX;
  net.links[9] = link(9, "docker0", true, {"172.31.200.1/24"});
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_GE(policies.minCount, before) << "protection dipped during the conflict";
  ASSERT_EQ(r->status().desired.conflicts.size(), 1u);
  EXPECT_NE(r->status().desired.conflicts[0].find("covers 172.31.200.1/24 on 'docker0'"), std::string::npos);
  EXPECT_TRUE(hasEvent(Severity::warning, "still protected"));
  EXPECT_NE(r->statusLine().find("CONFLICT"), std::string::npos);
  EXPECT_FALSE(r->status().healthy());
  EXPECT_FALSE(anyEvent("no longer protecting"));
  // The conflict goes away: healthy again, still protected.
  net.links.erase(9);
  r->reconcile(net);
  EXPECT_TRUE(r->status().desired.conflicts.empty());
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
}

TEST_F(FailClosedTest, AnotherInterfaceInsideAConfiguredRangeKeepsItsPolicies) {
  auto c = cfg();
  c.protect.autoRanges = false;
  c.protect.ranges = {C("172.31.0.0/16")};
  make(c);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  net.links[9] = link(9, "docker0", true, {"172.31.200.1/24"});
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_FALSE(r->status().desired.conflicts.empty());
}

// A range that is not yet protected is still refused (the guard's purpose).
TEST_F(FailClosedTest, ANewRangeCoveringTheLanIsStillRefused) {
  auto c = cfg();
  c.protect.autoRanges = false;
  c.protect.ranges = {C("192.168.0.0/16")};
  make(c);
  r->reconcile(net);
  EXPECT_TRUE(policies.all().empty());
  EXPECT_EQ(r->status().desired.refused.size(), 1u);
}

// 1b: the tap is renamed while it holds its address: the range is held, not refused.
TEST_F(FailClosedTest, RenamedTapKeepsTheHeldRange) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"10.50.0.16/16"});
  r->reconcile(net);
  ASSERT_EQ(inKernel(), std::vector<Cidr>{C("10.50.0.0/16")});
  policies.minCount = SIZE_MAX;
  net.links[7].up = false;
  r->reconcile(net);
  net.links[7].name = "ipop-old";
  r->reconcile(net);
  net.links[7].up = true;
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.50.0.0/16")});
  EXPECT_TRUE(r->status().desired.refused.empty());
  EXPECT_FALSE(anyEvent("no longer protecting"));
  // A new tap in another range replaces it make-before-break.
  net.links[8] = link(8, "ipop", true, {"10.60.0.16/16"});
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.60.0.0/16")});
  EXPECT_GE(policies.minCount, 2u);
}

// 1c: a valid config whose range the guard refuses at run time keeps the range in force.
TEST_F(FailClosedTest, ReloadToARefusedRangeKeepsTheRangeInForce) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  ASSERT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
  policies.minCount = SIZE_MAX;
  auto c = cfg();
  c.protect.autoRanges = false;
  c.protect.ranges = {C("0.0.0.0/0")};
  r->setConfig(c);
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_FALSE(r->status().desired.refused.empty());
  EXPECT_FALSE(r->status().desired.conflicts.empty());
  EXPECT_GE(policies.minCount, 2u);
  // A valid config that no longer lists it: removed, but only after the new range is in.
  c.protect.ranges = {C("10.9.0.0/16")};
  r->setConfig(c);
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.9.0.0/16")});
  EXPECT_GE(policies.minCount, 2u);
}

// Auto: the address moves into a refused range: the old range stays.
TEST_F(FailClosedTest, AddressMovedIntoARefusedRangeKeepsTheOldOne) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  net.links[7].addresses = {C("192.168.1.77/16")};  // covers eth0's LAN
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_FALSE(r->status().desired.refused.empty());
}

// 3: the kernel refuses: the log and the status say so, with the conflicting policy.
TEST_F(FailClosedTest, ARefusedInstallIsNeverReportedAsProtection) {
  make(cfg());
  Policy foreign;
  foreign.dir = Direction::out;
  foreign.sel.src = foreign.sel.dst = C("172.31.0.0/16");
  foreign.priority = 250000;
  policies.refuse = [](const Policy& p) { return p.sel.dst == C("172.31.0.0/16"); };
  policies.conflict = foreign;
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  EXPECT_TRUE(inKernel().empty());
  EXPECT_FALSE(anyEvent("now protecting"));
  EXPECT_TRUE(hasEvent(Severity::error, "0 of 4 installed"));
  EXPECT_TRUE(hasEvent(Severity::error, "NOT protecting 172.31.0.0/16"));
  EXPECT_TRUE(hasEvent(Severity::error, "prio 250000"));
  EXPECT_TRUE(hasEvent(Severity::error, "ip xfrm policy delete dir out src 172.31.0.0/16 dst 172.31.0.0/16"));
  std::string line = r->statusLine();
  EXPECT_EQ(line.find("; protecting"), std::string::npos) << line;
  EXPECT_NE(line.find("NOT protecting 172.31.0.0/16"), std::string::npos) << line;
  EXPECT_FALSE(r->status().healthy());
  EXPECT_TRUE(r->status().protectedRanges.empty());
}

// 3b: the advice for a refused install says when the foreign policy's priority is some
// backend's default (PolicyOwnership::isBackendDefault): probably this daemon's own, left
// under a configuration whose state is lost; for any other priority it does not.
TEST_F(FailClosedTest, TheAdviceNamesABackendDefaultPriorityOnly) {
  for (std::uint32_t prio : {500000u, 123456u}) {
    SCOPED_TRACE(prio);
    events.clear();
    make(cfg());
    Policy foreign;
    foreign.dir = Direction::out;
    foreign.sel.src = foreign.sel.dst = C("172.31.0.0/16");
    foreign.priority = prio;
    policies.refuse = [](const Policy& p) { return p.sel.dst == C("172.31.0.0/16"); };
    policies.conflict = foreign;
    net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
    r->reconcile(net);
    ASSERT_TRUE(hasEvent(Severity::error, "prio " + std::to_string(prio)));
    EXPECT_EQ(anyEvent("its priority is a default of ipop-ipsecd"), prio == 500000u);
  }
}

// 2: a policy removed behind the daemon's back is put back at the next reconcile (which
// the XFRM event triggers) with a warning naming it.
TEST_F(FailClosedTest, PolicyRemovedBehindTheDaemonsBackIsRestoredWithAWarning) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  auto all = policies.all();
  policies.installed.clear();  // ip xfrm policy flush
  events.clear();
  r->reconcile(net);
  EXPECT_EQ(policies.all(), all);
  EXPECT_TRUE(hasEvent(Severity::warning, "removed from the kernel by another process"));
  // No warning for the daemon's own make-before-break removals.
  events.clear();
  net.links[7].addresses = {C("10.254.0.16/16")};
  r->reconcile(net);
  r->reconcile(net);
  EXPECT_FALSE(anyEvent("by another process"));
}

}  // namespace

namespace {

// Found by tests/integration/hunt_test.cpp (seed 4): a range kept in a conflict, then its
// policies flushed behind the daemon's back, was refused as if it were new.
TEST_F(FailClosedTest, AFlushedRangeInConflictIsRestoredNotRefused) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"10.50.0.16/16"});
  r->reconcile(net);
  net.links[9] = link(9, "docker0", true, {"10.50.200.1/24"});
  r->reconcile(net);
  policies.installed.clear();  // ip xfrm policy flush
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.50.0.0/16")});
  EXPECT_TRUE(r->status().desired.refused.empty());
}

// The same after a daemon restart: the state file's ranges are in force.
TEST_F(FailClosedTest, RangesProtectedBeforeARestartAreInForce) {
  make(cfg());
  r->assumeProtected({C("10.50.0.0/16")});
  net.links[7] = link(7, "ipop", true, {"10.50.0.16/16"});
  net.links[9] = link(9, "docker0", true, {"10.50.200.1/24"});
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.50.0.0/16")});
}

}  // namespace

namespace {

// `ranges: auto` leak-free restart: the ranges the tap gave before are held from the start.
TEST_F(FailClosedTest, RememberedAutoRangeIsInstalledBeforeTheTapExistsAndRewrittenWhenConfirmed) {
  auto c = cfg();
  c.daemon.rememberDir = "/lib";
  make(c);
  r->assumeRemembered({C("10.50.0.0/16")});
  r->reconcile(net);  // no tap yet
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.50.0.0/16")});
  EXPECT_TRUE(r->status().desired.heldRanges);
  EXPECT_EQ(files.files.count("/lib/auto-ranges"), 0u) << "nothing confirmed yet";
  auto log = policies.log.size();
  net.links[7] = link(7, "ipop", true, {"10.50.0.16/16"});
  r->reconcile(net);
  EXPECT_EQ(policies.log.size(), log) << "the tap came back in the remembered range: no policy change";
  EXPECT_EQ(files.files.count("/lib/auto-ranges"), 0u) << "written once stable, not in the reaction";
  ASSERT_TRUE(r->deadline());
  clock.advance(2s);
  r->onTimer(net);
  ASSERT_EQ(files.files.count("/lib/auto-ranges"), 1u);
  EXPECT_NE(files.files["/lib/auto-ranges"].find("\n10.50.0.0/16\n"), std::string::npos);
  // Moved: the new range replaces it, make-before-break, and is remembered.
  net.links[7].addresses = {C("10.60.0.16/16")};
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.60.0.0/16")});
  clock.advance(2s);
  r->onTimer(net);
  EXPECT_NE(files.files["/lib/auto-ranges"].find("\n10.60.0.0/16\n"), std::string::npos);
  // A flapping tap: nothing written while it flaps, the last range once it settles.
  int writes = files.writes;
  for (int i = 0; i < 20; ++i) {
    net.links[7].addresses = {C(i % 2 ? "10.60.0.16/16" : "10.70.0.16/16")};
    r->reconcile(net);
    clock.advance(100ms);
    r->onTimer(net);
  }
  int flapWrites = files.writes - writes;
  clock.advance(2s);
  r->onTimer(net);
  EXPECT_NE(files.files["/lib/auto-ranges"].find("\n10.60.0.0/16\n"), std::string::npos);
  EXPECT_LE(files.writes - writes, flapWrites + 1);
}

// A node rebooted into a LAN that overlaps the remembered range: the LAN wins (the range was
// never confirmed on this boot), unlike a range in force.
TEST_F(FailClosedTest, ARememberedRangeYieldsToAnUnderlayConflict) {
  make(cfg());
  r->assumeRemembered({C("192.168.0.0/16")});  // eth0 is 192.168.1.5/24
  r->reconcile(net);
  EXPECT_TRUE(policies.all().empty());
  EXPECT_FALSE(r->status().desired.refused.empty());
}

TEST_F(FailClosedTest, NothingIsRememberedWithExplicitRangesOrWhenOff) {
  auto c = cfg();
  c.daemon.rememberDir = "";
  make(c);
  net.links[7] = link(7, "ipop", true, {"10.50.0.16/16"});
  r->reconcile(net);
  for (const auto& [path, content] : files.files) EXPECT_EQ(path.find("auto-ranges"), std::string::npos) << path;
  c.daemon.rememberDir = "/lib";
  c.protect.autoRanges = false;
  c.protect.ranges = {C("10.50.0.0/16")};
  r->setConfig(c);
  r->reconcile(net);
  EXPECT_EQ(files.files.count("/lib/auto-ranges"), 0u);
}

}  // namespace

namespace {

// Found by FaultSigkillTest (kill at random points): a remembered range the tap never
// confirmed was held again, together with the real one, while the tap's address moved.
TEST_F(FailClosedTest, ARememberedRangeTheTapDidNotConfirmIsNotHeldLater) {
  make(cfg());
  r->assumeRemembered({C("10.77.0.0/16")});
  net.links[7] = link(7, "ipop", true, {"10.254.0.16/16"});
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.254.0.0/16")});
  net.links[7].addresses.clear();  // the move: old address gone, new not yet there
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.254.0.0/16")}) << "only what the tap gave is held";
}

}  // namespace

namespace {

// A daemon restart (not a reboot) with the tap gone: the remembered range's policies are
// still in the kernel, so it is protection in force and a conflict does not remove it.
TEST_F(FailClosedTest, ARememberedRangeAlreadyInTheKernelAtStartIsInForce) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"10.50.0.16/16"});
  r->reconcile(net);
  ASSERT_EQ(inKernel(), std::vector<Cidr>{C("10.50.0.0/16")});
  net.links.erase(7);  // tap gone
  net.links[9] = link(9, "docker0", true, {"10.50.200.1/24"});  // and a conflict
  make(cfg());  // the daemon restarts
  r->assumeRemembered({C("10.50.0.0/16")});
  r->reconcile(net);
  r->reconcile(net);
  EXPECT_EQ(inKernel(), std::vector<Cidr>{C("10.50.0.0/16")});
  EXPECT_FALSE(r->status().desired.conflicts.empty());
}

// A reboot: the remembered range was installed by this run; the LAN that comes up later
// inside it wins (it was never confirmed on this boot).
TEST_F(FailClosedTest, ARememberedRangeInstalledByThisRunYieldsToALanThatAppearsLater) {
  make(cfg());
  net.links.erase(2);  // eth0 has no address yet (early boot)
  r->assumeRemembered({C("192.168.0.0/16")});
  r->reconcile(net);
  ASSERT_EQ(inKernel(), std::vector<Cidr>{C("192.168.0.0/16")});
  net.links[2] = link(2, "eth0", true, {"192.168.1.5/24"});  // DHCP on the LAN
  r->reconcile(net);
  EXPECT_TRUE(policies.all().empty()) << "the LAN must not be cut off by a range never confirmed";
}

}  // namespace
