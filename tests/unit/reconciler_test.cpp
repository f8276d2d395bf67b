// The reconciliation core with fakes and a fake clock: desired state, make-before-break,
// fail closed, and the coalescing of IKE restarts.

#include "core/reconcile/reconciler.hpp"

#include <gtest/gtest.h>

#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;

namespace {

struct ReconcilerTest : ReconcilerFixture {};

TEST_F(ReconcilerTest, ConfiguredRangeIsProtectedBeforeIpopIsUpButIkeIsNotStarted) {
  auto c = cfg();
  c.protect.autoRanges = false;
  c.protect.ranges = {C("172.31.0.0/16")};
  make(c);
  r->reconcile(net);
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_FALSE(r->status().desired.ipopUp);
  EXPECT_EQ(r->status().desired.tapState, TapState::absent);
  EXPECT_TRUE(r->status().policiesExact);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 0);
  EXPECT_NE(r->statusLine().find("waiting for 'ipop'"), std::string::npos);
  // The racoon files are written even before IPOP is up.
  EXPECT_TRUE(files.files.count("/etc/racoon/racoon.conf"));
  EXPECT_TRUE(files.files.count("/etc/ipsec-tools.conf"));
}

// Issue 11: the first start after IPOP comes up happens at once; the quiet period only
// coalesces later changes.
TEST_F(ReconcilerTest, TapWithAddressStartsIkeAtOnceAndOnlyOnce) {
  make(cfg());
  r->reconcile(net);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_TRUE(r->status().desired.ipopUp);
  ASSERT_TRUE(r->deadline());
  EXPECT_EQ(*r->deadline(), clock.now()) << "no quiet period before the first start";
  EXPECT_EQ(files.files["/run/ipop-ipsec/ipop-up"], "172.31.0.16\n") << "the IKE unit's start condition";
  r->onTimer(net);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  ASSERT_EQ(policies.larvalFlushes.size(), 1u);
  EXPECT_EQ(policies.larvalFlushes[0], std::vector<Cidr>{C("172.31.0.0/16")});
  // Duplicate events: the same picture again and again changes nothing.
  for (int i = 0; i < 10; ++i) r->reconcile(net);
  runFor(120s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_NE(r->statusLine().find("restarted"), std::string::npos);
}

TEST_F(ReconcilerTest, NeverStartsIkeWhileIpopIsDown) {
  make(cfg());
  net.links[7] = link(7, "ipop", false, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 0);
  EXPECT_EQ(r->status().desired.tapState, TapState::down);
  EXPECT_FALSE(files.files.count("/run/ipop-ipsec/ipop-up"));
  // Up (with carrier): started at once. Down again: never restarted while down.
  net.links[7].up = net.links[7].running = true;
  r->reconcile(net);
  runFor(1s);
  EXPECT_TRUE(files.files.count("/run/ipop-ipsec/ipop-up"));
  EXPECT_EQ(unit.restarts, 1);
  unit.complete();
  net.links[7].up = false;
  r->reconcile(net);
  EXPECT_FALSE(files.files.count("/run/ipop-ipsec/ipop-up")) << "removed when IPOP goes down";
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
}

// Issue 11: racoon learns policies over PF_KEY and addresses over netlink: a range change
// whose racoon.conf is byte-identical needs no restart (the restart would tear down the SAs
// racoon already made for the new range). With listen_on_tap the file changes: restart.
TEST_F(ReconcilerTest, AddressMovedToAnotherRangeIsMakeBeforeBreakAndNeedsNoRestartIfRacoonConfIsUnchanged) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(5s);
  unit.complete();
  policies.minCount = SIZE_MAX;
  policies.log.clear();
  net.links[7].addresses = {C("10.254.0.16/16")};
  r->reconcile(net);
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("10.254.0.0/16")});
  EXPECT_GE(policies.minCount, 2u) << "there must never be a moment without policies";
  // Every install comes before every remove.
  auto firstRemove = std::find_if(policies.log.begin(), policies.log.end(),
                                  [](const std::string& s) { return s.rfind("remove", 0) == 0; });
  auto lastInstall = std::find_if(policies.log.rbegin(), policies.log.rend(),
                                  [](const std::string& s) { return s.rfind("install", 0) == 0; });
  ASSERT_NE(firstRemove, policies.log.end());
  EXPECT_LT(std::distance(policies.log.begin(), lastInstall.base()), std::distance(policies.log.begin(), firstRemove) + 1);
  runFor(15s);
  EXPECT_EQ(unit.restarts, 1) << "racoon.conf did not change";
}

TEST_F(ReconcilerTest, AddressMovedWithListenOnTapRestartsOnceMore) {
  auto c = cfg();
  c.racoon.listenOnTap = true;
  make(c);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(5s);
  unit.complete();
  net.links[7].addresses = {C("10.254.0.16/16")};
  r->reconcile(net);
  runFor(1s);
  EXPECT_EQ(unit.restarts, 1) << "later changes wait for the quiet period";
  runFor(15s);
  EXPECT_EQ(unit.restarts, 2);
}

TEST_F(ReconcilerTest, AutoRangesAreHeldWhenTheTapGoesAway) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  net.links.erase(7);
  r->reconcile(net);
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("172.31.0.0/16")}) << "fail closed: keep the policies";
  EXPECT_TRUE(r->status().desired.heldRanges);
  EXPECT_FALSE(r->status().desired.ipopUp);
  // A daemon restart (a new reconciler over the same kernel) keeps them as well.
  make(cfg());
  r->reconcile(net);
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("172.31.0.0/16")});
}

TEST_F(ReconcilerTest, FlappingTapGivesBoundedRestarts) {
  auto c = cfg();
  c.racoon.listenOnTap = true;  // every address change changes racoon.conf
  make(c);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(1ms);
  ASSERT_EQ(unit.restarts, 1) << "the first start is at once";
  unit.complete();
  // 60 s of flapping addresses, a change every 300 ms, restarts completing at once.
  for (int i = 0; i < 200; ++i) {
    net.links[7].addresses = {C(i % 2 ? "10.254.0.16/16" : "172.31.0.16/16")};
    r->reconcile(net);
    runFor(300ms);
    while (!unit.pending.empty()) unit.complete();
  }
  // The quiet period (2 s) never elapses while flapping every 300 ms.
  EXPECT_EQ(unit.restarts, 1);
  runFor(3s);
  while (!unit.pending.empty()) unit.complete();
  EXPECT_EQ(unit.restarts, 2);
}

TEST_F(ReconcilerTest, TapGoingUpAndDownIsBoundedByTheMinimumInterval) {
  make(cfg());  // min interval 10 s
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  for (int i = 0; i < 120; ++i) {  // up/down every 500 ms for a minute: IPOP "comes up" 60 times
    net.links[7].up = i % 2 == 0;
    r->reconcile(net);
    runFor(500ms);
    while (!unit.pending.empty()) unit.complete();
  }
  EXPECT_GE(unit.restarts, 5);
  EXPECT_LE(unit.restarts, 7);  // 60 s / 10 s (+1)
}

TEST_F(ReconcilerTest, SlowFlappingIsLimitedByMinInterval) {
  auto c = cfg();
  c.racoon.listenOnTap = true;
  c.ike.quietPeriod = 100ms;
  c.ike.minInterval = 10s;
  make(c);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  for (int i = 0; i < 60; ++i) {  // a change every second for a minute
    net.links[7].addresses = {C(i % 2 ? "10.254.0.16/16" : "172.31.0.16/16")};
    r->reconcile(net);
    runFor(1s);
    while (!unit.pending.empty()) unit.complete();
  }
  EXPECT_GE(unit.restarts, 5);
  EXPECT_LE(unit.restarts, 7);  // 60 s / 10 s min interval (+1)
}

TEST_F(ReconcilerTest, FailedRestartIsRetriedWithBackoffNotInATightLoop) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete(std::make_error_code(std::errc::io_error), "job failed: result 'failed'");
  EXPECT_EQ(r->status().restartFailures, 1);
  EXPECT_FALSE(r->status().healthy());
  ASSERT_TRUE(r->deadline());
  EXPECT_GE(*r->deadline() - clock.now(), 1s);
  runFor(1s);
  EXPECT_EQ(unit.restarts, 1);
  // Keep failing for 10 minutes: the gaps grow, so only a handful of attempts.
  for (int i = 0; i < 600; ++i) {
    runFor(1s);
    while (!unit.pending.empty()) unit.complete(std::make_error_code(std::errc::io_error), "failed");
  }
  EXPECT_LE(unit.restarts, 10);
  EXPECT_GE(unit.restarts, 4);
  EXPECT_TRUE(hasEvent("restart", "retrying with backoff"));
  // Then it works: one more restart, healthy again.
  runFor(301s);
  while (!unit.pending.empty()) unit.complete();
  EXPECT_EQ(r->status().restartFailures, 0);
  EXPECT_TRUE(r->status().healthy());
}

TEST_F(ReconcilerTest, ChangeDuringRestartGivesOneMoreRestartAfterIt) {
  auto c = cfg();
  c.racoon.listenOnTap = true;  // the new local address is in racoon.conf
  make(c);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  ASSERT_EQ(unit.restarts, 1);
  net.links[7].addresses = {C("172.31.0.17/16")};  // same range, new local address
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 1) << "one restart in flight at a time";
  unit.complete();
  runFor(30s);
  EXPECT_EQ(unit.restarts, 2);
}

TEST_F(ReconcilerTest, RangeCoveringTheLanIsRefusedUnlessAllowed) {
  auto c = cfg();
  c.protect.autoRanges = false;
  c.protect.ranges = {C("192.168.0.0/16")};  // the seed's range; the LAN is 192.168.1.0/24
  make(c);
  net.links[7] = link(7, "ipop", true, {"192.168.5.16/16"});
  r->reconcile(net);
  EXPECT_TRUE(policies.all().empty());
  ASSERT_EQ(r->status().desired.refused.size(), 1u);
  EXPECT_NE(r->status().desired.refused[0].find("192.168.0.0/16 covers 192.168.1.5/24 on 'eth0'"), std::string::npos);
  EXPECT_NE(r->statusLine().find("REFUSED"), std::string::npos);
  EXPECT_TRUE(hasEvent("refuse", "allow_underlay_overlap"));
  runFor(60s);
  EXPECT_EQ(unit.restarts, 0);
  c.protect.allowUnderlayOverlap = true;
  r->setConfig(c);
  r->reconcile(net);
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("192.168.0.0/16")});
}

TEST_F(ReconcilerTest, KernelRefusingAPolicyKeepsTheOldOnesAndRetries) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  unit.complete();
  policies.refuse = [](const Policy& p) { return p.sel.src == C("10.254.0.0/16"); };
  net.links[7].addresses = {C("10.254.0.16/16")};
  r->reconcile(net);
  auto ranges = protectedRanges();
  EXPECT_TRUE(std::count(ranges.begin(), ranges.end(), C("172.31.0.0/16")))
      << "old policies stay when the new ones could not go in";
  EXPECT_NE(r->status().lastError.find("kernel refused policy"), std::string::npos);
  EXPECT_FALSE(r->status().healthy());
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1) << "no IKE restart onto a half-applied policy set";
  policies.refuse = nullptr;
  runFor(60s);  // the retry timer reconciles again
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("10.254.0.0/16")});
  EXPECT_TRUE(r->status().lastError.empty());
}

TEST_F(ReconcilerTest, UnreadableKernelPolicyTableChangesNothing) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  auto before = policies.all();
  policies.failList = std::make_error_code(std::errc::no_buffer_space);
  net.links[7].addresses = {C("10.254.0.16/16")};
  r->reconcile(net);
  EXPECT_EQ(policies.all(), before);
  EXPECT_NE(r->status().lastError.find("cannot read the kernel's policies"), std::string::npos);
  ASSERT_TRUE(r->deadline());
}

TEST_F(ReconcilerTest, FileWriteFailureBlocksTheRestartAndIsRetried) {
  make(cfg());
  files.failWrite = std::make_error_code(std::errc::read_only_file_system);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  EXPECT_EQ(protectedRanges(), std::vector<Cidr>{C("172.31.0.0/16")}) << "policies do not wait for files";
  EXPECT_NE(r->status().lastError.find("Read-only file system"), std::string::npos);
  runFor(10s);
  EXPECT_EQ(unit.restarts, 0);
  files.failWrite = {};
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
}

TEST_F(ReconcilerTest, FilesAreWrittenOnlyWhenTheirBytesChange) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  int writes = files.writes;
  EXPECT_EQ(writes, 4);  // ipsec-tools.conf, racoon.conf, racoon's CA hash copy, the ipop-up flag
  runFor(2s);  // the remembered auto range: written once the range was stable for a second
  EXPECT_EQ(files.writes, writes + 1);
  for (int i = 0; i < 5; ++i) r->reconcile(net);
  runFor(2s);
  EXPECT_EQ(files.writes, writes + 1);
}

TEST_F(ReconcilerTest, MissingCertificatesHoldTheIkeDaemonBackUntilTheyArrive) {
  files.files.erase("/certs/host-key.pem");
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 0);
  EXPECT_TRUE(hasEvent("certificates", "/certs/host-key.pem"));
  EXPECT_NE(r->statusLine().find("not starting racoon.service"), std::string::npos);
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/host-key.pem"] = "KEY";
  r->reconcile(net);
  runFor(5s);
  EXPECT_EQ(unit.restarts, 1);
  // A renewed certificate restarts the IKE daemon once more.
  unit.complete();
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/host-cert.pem"] = "CERT2";
  r->reconcile(net);
  runFor(15s);
  EXPECT_EQ(unit.restarts, 2);
}

TEST_F(ReconcilerTest, RememberedIkeInputsAvoidARestartAfterADaemonRestart) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  unit.complete();
  auto inputs = *r->scheduler().startedInputs();
  make(cfg());
  r->assumeIkeStarted(inputs);
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
}

}  // namespace

namespace {

// The reaction to an address event must not wait for OpenSSL: the certificates are
// inspected again only when they changed (inotify), at a resync, or with a new config.
TEST_F(ReconcilerTest, CertificatesAreInspectedOnlyWhenTheyMayHaveChanged) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  int after = certs.inspections;
  EXPECT_EQ(after, 1);
  for (int i = 0; i < 20; ++i) {
    net.links[7].addresses = {C(i % 2 ? "10.254.0.16/16" : "172.31.0.16/16")};
    r->reconcile(net);
  }
  EXPECT_EQ(certs.inspections, after) << "address events reuse the last inspection";
  r->certificatesChanged();
  r->reconcile(net);
  EXPECT_EQ(certs.inspections, after + 1);
  r->setConfig(cfg());
  r->reconcile(net);
  EXPECT_EQ(certs.inspections, after + 2);
}

}  // namespace

namespace {

// Issue 11: a DHCP renewal (the address dropped, then another one added on a tap that stays
// up) is an address change, not IPOP coming up; the tap going down and up, or re-created, is.
TEST_F(ReconcilerTest, AddressDroppedAndReaddedOnAnUpTapIsNotIpopComingUp) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(1s);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  net.links[7].addresses.clear();
  r->reconcile(net);
  net.links[7].addresses = {C("172.31.0.33/16")};
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 1) << "racoon.conf unchanged, the link stayed up";
  net.links[7].up = false;
  r->reconcile(net);
  net.links[7].up = true;
  r->reconcile(net);
  runFor(1ms);
  EXPECT_EQ(unit.restarts, 2) << "the tap came back up: restarted at once";
  unit.complete();
  net.links.erase(7);
  r->reconcile(net);
  net.links[8] = link(8, "ipop", true, {"172.31.0.33/16"});
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 3) << "a re-created tap is IPOP coming up";
  unit.complete();
  // Down and up within one batch of events: the snapshot shows the tap up as before, but
  // the monitor counted the link coming up again.
  ++net.links[8].upCount;
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 4) << "a down and up seen in one batch is IPOP coming up too";
}

}  // namespace

namespace {

// Issue 12: STATUS= is one short line; the details stay in statusLine() / status.
TEST_F(ReconcilerTest, ShortStatusFitsSystemdsStatusLineAndNamesEachProblem) {
  auto c = cfg();
  c.protect.autoRanges = false;
  for (int i = 0; i < 40; ++i) c.protect.ranges.push_back(C(("10." + std::to_string(i) + ".0.0/16").c_str()));
  c.protect.ranges.push_back(C("192.168.0.0/16"));  // refused: covers eth0
  make(c);
  net.links[7] = link(7, "ipop", true, {"10.1.0.16/16"});
  r->reconcile(net);  // protected, then a conflict on 10.2.0.0/16
  net.links[9] = link(9, "docker0", true, {"10.2.200.1/24"});
  r->reconcile(net);
  std::string s = r->shortStatus("RELOAD REFUSED: /etc/ipop-ipsec/ipop-ipsecd.yaml:13:1: bogus_key: unknown key");
  EXPECT_LE(s.size(), Reconciler::kShortStatusMax) << s;
  EXPECT_NE(s.find("protecting 40 ranges"), std::string::npos) << s;
  EXPECT_NE(s.find("RELOAD REFUSED: /etc/ipop-ipsec/ipop-ipsecd.yaml:13:1: bogus_key"), std::string::npos) << s;
  EXPECT_GT(r->statusLine().size(), s.size());
  std::string plain = r->shortStatus();
  EXPECT_NE(plain.find("REFUSED"), std::string::npos) << plain;
  EXPECT_NE(plain.find("(ipop-ipsecd status)"), std::string::npos) << plain;
  EXPECT_LE(plain.size(), Reconciler::kShortStatusMax);
}

}  // namespace

namespace {

// Issue 11: a range that stops being protected leaves no SA behind; a range that stays
// keeps its SAs.
TEST_F(ReconcilerTest, SasOfARangeNoLongerProtectedAreRemovedOthersKept) {
  make(cfg());
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16", "10.254.0.16/16"});
  r->reconcile(net);
  EXPECT_TRUE(policies.stateRemovals.empty());
  net.links[7].addresses = {C("10.254.0.16/16")};
  r->reconcile(net);
  ASSERT_EQ(policies.stateRemovals.size(), 1u);
  EXPECT_EQ(policies.stateRemovals[0], std::vector<Cidr>{C("172.31.0.0/16")});
  EXPECT_TRUE(hasEvent("policies", "removed 1 SA(s)"));
  r->reconcile(net);
  EXPECT_EQ(policies.stateRemovals.size(), 1u) << "nothing lost, nothing removed";
}

}  // namespace

namespace {

// Issue 12: "previous file kept" only when there was a previous file.
TEST_F(ReconcilerTest, AFailedFirstWriteDoesNotClaimAPreviousFileWasKept) {
  make(cfg());
  files.failWrite = std::make_error_code(std::errc::read_only_file_system);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  EXPECT_TRUE(hasEvent("write", "(no previous file; nothing written)"));
  EXPECT_FALSE(hasEvent("write", "previous file kept"));
  files.failWrite = {};
  r->reconcile(net);
  files.failWrite = std::make_error_code(std::errc::read_only_file_system);
  net.links[7].addresses = {C("10.254.0.16/16")};  // ipsec-tools.conf changes
  events.clear();
  r->reconcile(net);
  EXPECT_TRUE(hasEvent("write", "(previous file kept)"));
}

}  // namespace
