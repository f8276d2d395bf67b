// The strongSwan backend in the pure core: what computeDesired renders for it, and the
// cheap "reload" step (swanctl --load-all) next to the IKE daemon's restart in the
// Reconciler, with fakes and a fake clock (the IkeScheduler's own tests:
// ike_scheduler_test.cpp). The racoon behaviour (every change restarts) is covered by
// reconciler_test.cpp and must not move.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/render/render_swanctl.hpp"
#include "reconciler_fixture.hpp"
#include "strongswan_fixtures.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// --- computeDesired with backend strongswan ---------------------------------------------
const RenderedFile* fileAt(const Desired& d, const std::string& path) {
  for (const auto& f : d.files)
    if (f.path == path) return &f;
  return nullptr;
}

TEST(StrongswanDesired, RendersTheMeshAndCopiesTheCertificates) {
  NetSnapshot net;
  net.links[2] = link(2, "eth0", true, {"192.168.1.5/24"});
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16", "fe80::1/64"});
  Desired d = computeDesired(swanConfig(), net, goodCerts(), {});
  ASSERT_TRUE(d.ipopUp);
  const RenderedFile* conf = fileAt(d, "/etc/swanctl/conf.d/ipop-ipsec.conf");
  ASSERT_TRUE(conf);
  EXPECT_THAT(conf->content, HasSubstr("local_addrs = 172.31.0.16\n"));
  EXPECT_THAT(conf->content, HasSubstr("remote_addrs = 172.31.0.0/16\n"));
  ASSERT_TRUE(fileAt(d, "/etc/swanctl/x509ca/ipop-ipsec-ca.pem"));
  EXPECT_EQ(fileAt(d, "/etc/swanctl/x509ca/ipop-ipsec-ca.pem")->content, "CA");
  ASSERT_TRUE(fileAt(d, "/etc/swanctl/private/ipop-ipsec-host.pem"));
  EXPECT_EQ(fileAt(d, "/etc/swanctl/private/ipop-ipsec-host.pem")->mode, 0600u);
  EXPECT_FALSE(fileAt(d, "/etc/racoon/racoon.conf")) << "no racoon files with strongswan";
  ASSERT_TRUE(d.ikeRestartInputs);
  // The protect policies carry the strongSwan priority (under charon's).
  for (const auto& p : d.policies) {
    if (p.action == PolicyAction::protect) {
      EXPECT_EQ(p.priority, Config::Xfrm::kStrongswanProtectPriority);
    }
  }
}

TEST(StrongswanDesired, ANewAddressChangesOnlyTheReloadablePartNewCertificatesTheRestartPart) {
  NetSnapshot net;
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  Desired a = computeDesired(swanConfig(), net, goodCerts(), {});
  net.links[7] = link(7, "ipop", true, {"172.31.0.99/16"});
  Desired b = computeDesired(swanConfig(), net, goodCerts(), {});
  EXPECT_NE(a.ikeInputs, b.ikeInputs);
  EXPECT_EQ(a.ikeRestartInputs, b.ikeRestartInputs);
  CertFiles renewed = goodCerts();
  renewed.cert = "CERT2";
  Desired c = computeDesired(swanConfig(), net, renewed, {});
  EXPECT_NE(b.ikeRestartInputs, c.ikeRestartInputs);
  // racoon: no reloadable part.
  Config rc = swanConfig();
  rc.ike.backend = IkeBackend::racoon;
  EXPECT_FALSE(computeDesired(rc, net, goodCerts(), {}).ikeRestartInputs);
}

TEST(StrongswanDesired, UnusableCertificatesAreNotCopiedAndTapDownTrapsNothing) {
  NetSnapshot net;
  net.links[7] = link(7, "ipop", false, {"172.31.0.16/16"});
  CertFiles bad = goodCerts();
  bad.problems.push_back("/certs/host-key.pem: does not exist");
  Desired d = computeDesired(swanConfig(), net, bad, {});
  ASSERT_EQ(d.files.size(), 1u) << "only the configuration";
  EXPECT_THAT(d.files[0].content, Not(HasSubstr("start_action = trap")));
  EXPECT_THAT(d.files[0].content, HasSubstr("local_addrs = 172.31.0.0/16\n")) << "responder only";
}

// Two ranges, the tap in one: it traps there and only answers in the other; a move swaps
// them (one file change, one reload), and a move inside a range changes only local_addrs/_ts.
TEST(StrongswanDesired, EveryRangeHasAConnectionTheTapsOneTraps) {
  Config cfg = swanConfig();
  cfg.protect.autoRanges = false;
  cfg.protect.ranges = {*Cidr::parse("172.31.0.0/16"), *Cidr::parse("10.253.0.0/16")};
  NetSnapshot net;
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  const std::string a = fileAt(computeDesired(cfg, net, goodCerts(), {}), "/etc/swanctl/conf.d/ipop-ipsec.conf")->content;
  EXPECT_THAT(a, HasSubstr("local_addrs = 172.31.0.16\n"));
  EXPECT_THAT(a, HasSubstr("local_addrs = 10.253.0.0/16\n"));
  EXPECT_THAT(a, HasSubstr("local_ts = 172.31.0.16/32\n"));
  EXPECT_THAT(a, Not(HasSubstr("local_ts = 10.253")));
  net.links[7] = link(7, "ipop", true, {"10.253.0.16/16"});
  const std::string b = fileAt(computeDesired(cfg, net, goodCerts(), {}), "/etc/swanctl/conf.d/ipop-ipsec.conf")->content;
  EXPECT_THAT(b, HasSubstr("local_addrs = 172.31.0.0/16\n"));
  EXPECT_THAT(b, HasSubstr("local_ts = 10.253.0.16/32\n"));
  EXPECT_THAT(b, Not(HasSubstr("local_ts = 172.31")));
}

// --- Reconciler: reload or restart through the one IKE controller ------------------------
// The shared Reconciler fixture (reconciler_fixture.hpp) with backend strongswan and an IKE
// controller that can reload (`swanctl --load-all`).
struct ReloadTest : ReconcilerFixture {
  void SetUp() override {
    ReconcilerFixture::SetUp();
    make(swanConfig());
    unit.reloadable = true;  // strongswan.load_command
  }
  // The tap up at 172.31.0.16: charon started (the first restart), done.
  void charonStarted() {
    net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
    r->reconcile(net);
    runFor(3s);
    EXPECT_EQ(unit.restarts, 1) << "the first start";
    unit.complete();
  }
};

TEST_F(ReloadTest, FirstStartRestartsThenAReaddressedTapIsAReload) {
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  ASSERT_EQ(unit.restarts, 1) << "charon is not running yet: restart (start) it";
  EXPECT_EQ(unit.reloads, 0);
  unit.complete();

  // IPOP's DHCP moves the node inside the range: the swanctl config changes.
  net.links[7] = link(7, "ipop", true, {"172.31.0.99/16"});
  r->reconcile(net);
  EXPECT_THAT(files.files["/etc/swanctl/conf.d/ipop-ipsec.conf"], HasSubstr("local_addrs = 172.31.0.99"));
  runFor(3s);  // the quiet period, well within min_interval (10 s) of the restart
  ASSERT_EQ(unit.reloads, 1) << "only the configuration changed: swanctl --load-all";
  EXPECT_EQ(unit.restarts, 1) << "charon keeps running";
  unit.complete();
  EXPECT_EQ(r->status().reloads, 1);
  EXPECT_TRUE(hasEvent("reload", "IKE configuration loaded"));
  EXPECT_EQ(policies.larvalFlushes.size(), 2u) << "stale larval states dropped after the restart and the reload";
  runFor(60s);
  EXPECT_EQ(unit.restarts + unit.reloads, 2) << "nothing more to do";
}

// The tap's second address (a second range; an IPv6 address after duplicate address
// detection) comes a moment after IPOP came up, while charon starts. The node can initiate in
// that range only once charon has the new file: the reload follows the start at once, not a
// quiet period later. Losing an address gives charon nothing to do at once: coalesced.
TEST_F(ReloadTest, AnAddressInANewRangeIsLoadedAsSoonAsTheStepBeforeIsDone) {
  Config cfg = swanConfig();
  cfg.protect.autoRanges = false;
  cfg.protect.ranges = {*Cidr::parse("172.31.0.0/16"), *Cidr::parse("10.253.0.0/16")};
  cfg.strongswan.loadCommand = {"/usr/sbin/swanctl", "--load-all"};
  make(cfg);
  unit.reloadable = true;
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(10ms);
  ASSERT_EQ(unit.restarts, 1) << "IPOP came up: charon is started at once";
  runFor(500ms);
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16", "10.253.0.16/16"});
  r->reconcile(net);
  EXPECT_THAT(files.files["/etc/swanctl/conf.d/ipop-ipsec.conf"], HasSubstr("local_ts = 10.253.0.16/32"));
  runFor(500ms);
  EXPECT_EQ(unit.reloads, 0) << "never while charon starts";
  unit.complete();
  runFor(10ms);
  ASSERT_EQ(unit.reloads, 1) << "the new range's initiator is loaded as soon as charon is up, not 2 s later";
  unit.complete();

  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(1900ms);
  EXPECT_EQ(unit.reloads, 1) << "an address gone: the quiet period coalesces";
  runFor(200ms);
  EXPECT_EQ(unit.reloads, 2);
  EXPECT_EQ(unit.restarts, 1);
}

TEST_F(ReloadTest, RenewedCertificatesRestartCharon) {
  charonStarted();
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/host-cert.pem"] = "RENEWED";
  r->reconcile(net);
  EXPECT_EQ(files.files["/etc/swanctl/x509/ipop-ipsec-host.pem"], "RENEWED");
  runFor(30s);
  EXPECT_EQ(unit.restarts, 2);
  EXPECT_EQ(unit.reloads, 0);
}

TEST_F(ReloadTest, AFailedReloadFallsBackToARestart) {
  charonStarted();
  net.links[7] = link(7, "ipop", true, {"172.31.0.99/16"});
  r->reconcile(net);
  runFor(3s);
  ASSERT_EQ(unit.reloads, 1);
  unit.complete(std::make_error_code(std::errc::connection_refused), "connecting to vici failed");
  EXPECT_TRUE(hasEvent("reload", "connecting to vici failed"));
  EXPECT_THAT(r->statusLine(), HasSubstr("reload failed"));
  runFor(30s);
  ASSERT_EQ(unit.restarts, 2) << "charon may be down: restart it";
  unit.complete();
  EXPECT_EQ(r->status().restartFailures, 0);
}

TEST_F(ReloadTest, WithoutAReloaderEveryChangeRestarts) {
  unit.reloadable = false;  // no strongswan.load_command
  charonStarted();
  net.links[7] = link(7, "ipop", true, {"172.31.0.99/16"});
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 2);
  EXPECT_EQ(unit.reloads, 0);
}

TEST_F(ReloadTest, NothingIsLoadedOrStartedWhileIpopIsDown) {
  charonStarted();
  net.links[7] = link(7, "ipop", false, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(unit.reloads, 0);
  // The daemon's policies stay (fail closed) while the tap is down.
  EXPECT_EQ(rangesOf(policies.all()), std::vector<Cidr>{C("172.31.0.0/16")});
}

}  // namespace
