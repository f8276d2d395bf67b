// The strongSwan backend in the pure core: what computeDesired renders for it, and the
// cheap "reload" step (swanctl --load-all) next to the IKE daemon's restart, in the
// RestartScheduler and the Reconciler, with fakes and a fake clock. The racoon
// behaviour (every change restarts) is covered by reconciler_test.cpp and must not move.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/reconciler.hpp"
#include "core/render_swanctl.hpp"
#include "fakes.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

Cidr C(const char* s) { return *Cidr::parse(s); }

using TP = RestartScheduler::time_point;
TP at(std::chrono::milliseconds ms) { return TP(std::chrono::seconds(1000)) + ms; }

// --- RestartScheduler ------------------------------------------------------------------
TEST(RestartSchedulerReload, OnlyTheReloadablePartChangedGivesAReloadWithoutTheMinInterval) {
  RestartScheduler s(2s, 10s);
  s.observe(true, "certs1|conf1", "certs1", at(0ms));
  ASSERT_TRUE(s.pending());
  EXPECT_EQ(s.pendingAction(), IkeAction::restart) << "nothing runs yet: the first step is a restart";
  ASSERT_TRUE(s.due(at(2000ms)));
  s.begin(at(2000ms));
  EXPECT_EQ(s.inFlightAction(), IkeAction::restart);
  s.finished(true, at(3000ms));

  // The configuration changes 1 s later: a reload, after the quiet period only (not at
  // lastStart + min_interval = 12 s).
  s.observe(true, "certs1|conf2", "certs1", at(4000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::reload);
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(6000ms));
  s.begin(at(6000ms));
  EXPECT_EQ(s.inFlightAction(), IkeAction::reload);
  s.finished(true, at(6100ms));
  EXPECT_EQ(s.startedInputs(), std::optional<std::string>("certs1|conf2"));
  EXPECT_FALSE(s.pending());
  // The same inputs again: nothing to do.
  s.observe(true, "certs1|conf2", "certs1", at(7000ms));
  EXPECT_FALSE(s.pending());
}

TEST(RestartSchedulerReload, CertificatesChangedGivesARestartWithTheMinInterval) {
  RestartScheduler s(2s, 10s);
  s.observe(true, "certs1|conf1", "certs1", at(0ms));
  s.begin(at(2000ms));
  s.finished(true, at(2500ms));
  s.observe(true, "certs2|conf1", "certs2", at(3000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::restart);
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), at(12000ms)) << "restarts keep their minimum interval";
}

TEST(RestartSchedulerReload, AFailedReloadIsRetriedAsARestart) {
  RestartScheduler s(2s, 10s);
  s.observe(true, "c|a", "c", at(0ms));
  s.begin(at(2000ms));
  s.finished(true, at(2100ms));
  s.observe(true, "c|b", "c", at(3000ms));
  ASSERT_EQ(s.pendingAction(), IkeAction::reload);
  s.begin(at(5000ms));
  s.finished(false, at(5100ms));  // swanctl could not reach charon: it may not run
  ASSERT_TRUE(s.pending());
  EXPECT_EQ(s.pendingAction(), IkeAction::restart);
  EXPECT_EQ(s.consecutiveFailures(), 1);
  ASSERT_TRUE(s.deadline());
  s.begin(*s.deadline());
  EXPECT_EQ(s.inFlightAction(), IkeAction::restart);
  s.finished(true, *s.deadline() + 1s);
  // Back to normal: the next configuration change is a reload again.
  s.observe(true, "c|d", "c", at(60000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::reload);
}

TEST(RestartSchedulerReload, FlappingConfigurationGivesOneReload) {
  RestartScheduler s(2s, 10s);
  s.observe(true, "c|a", "c", at(0ms));
  s.begin(at(2000ms));
  s.finished(true, at(2100ms));
  int reloads = 0;
  auto t = at(3000ms);
  for (int i = 0; i < 1000; ++i) {
    s.observe(true, i % 2 ? "c|a" : "c|b", "c", t);
    t += 1ms;
    if (s.due(t)) ++reloads;
  }
  s.observe(true, "c|b", "c", t);
  EXPECT_EQ(reloads, 0) << "the quiet period coalesces";
  ASSERT_TRUE(s.deadline());
  EXPECT_EQ(*s.deadline(), t + 2s);
  EXPECT_EQ(s.pendingAction(), IkeAction::reload);
}

TEST(RestartSchedulerReload, NeverWhileNotReadyAndUnknownRestartPartMeansRestart) {
  RestartScheduler s(2s, 10s);
  s.observe(false, "c|a", "c", at(0ms));
  EXPECT_FALSE(s.pending());
  // A daemon restarted while charon ran remembers the inputs but not their restart part.
  s.assumeStarted("c|a");
  s.observe(true, "c|b", "c", at(1000ms));
  EXPECT_EQ(s.pendingAction(), IkeAction::restart);
  // The racoon overload never reloads.
  RestartScheduler r(2s, 10s);
  r.observe(true, "a", at(0ms));
  r.begin(at(2000ms));
  r.finished(true, at(2100ms));
  r.observe(true, "b", at(3000ms));
  EXPECT_EQ(r.pendingAction(), IkeAction::restart);
}

// --- computeDesired with backend strongswan ---------------------------------------------
LinkState link(int idx, const std::string& name, bool up, std::vector<const char*> addrs) {
  LinkState l;
  l.index = idx;
  l.name = name;
  l.up = l.running = up;
  for (auto a : addrs) l.addresses.push_back(C(a));
  return l;
}

Config swanConfig() {
  Config c;
  c.sourceFile = "/etc/ipop-ipsec/ipop-ipsecd.yaml";
  c.ike.backend = IkeBackend::strongswan;
  c.ike.unit = "strongswan.service";
  c.xfrm.protectPriority = Config::Xfrm::kStrongswanProtectPriority;
  c.racoon.certificateDir = "/certs";
  return c;
}

CertFiles goodCerts() {
  CertFiles c;
  c.ca = "CA";
  c.cert = "CERT";
  c.key = "KEY";
  return c;
}

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

TEST(StrongswanDesired, UnusableCertificatesAreNotCopiedAndTapDownHasNoConnection) {
  NetSnapshot net;
  net.links[7] = link(7, "ipop", false, {"172.31.0.16/16"});
  CertFiles bad = goodCerts();
  bad.problems.push_back("/certs/host-key.pem: does not exist");
  Desired d = computeDesired(swanConfig(), net, bad, {});
  ASSERT_EQ(d.files.size(), 1u) << "only the configuration";
  EXPECT_THAT(d.files[0].content, Not(HasSubstr("remote_addrs")));
}

// --- Reconciler: reload or restart through the one IKE controller ------------------------
struct ReloadTest : ::testing::Test {
  void SetUp() override {
    files.files["/certs/cacert.pem"] = "CA";
    files.files["/certs/host-cert.pem"] = "CERT";
    files.files["/certs/host-key.pem"] = "KEY";
    net.links[2] = link(2, "eth0", true, {"192.168.1.5/24"});
    r = std::make_unique<Reconciler>(swanConfig(), policies, files, certs, unit, clock,
                                     [this](const Event& e) { events.push_back(e); });
    unit.reloadable = true;  // strongswan.load_command
  }
  void runFor(std::chrono::steady_clock::duration span) {
    auto end = clock.now() + span;
    while (true) {
      auto d = r->deadline();
      if (!d || *d > end) break;
      if (*d > clock.now()) clock.now_ = *d;
      r->onTimer(net);
    }
    clock.now_ = end;
  }
  bool hasEvent(const std::string& action, const std::string& needle) {
    for (const auto& e : events)
      if (e.action == action && e.message.find(needle) != std::string::npos) return true;
    return false;
  }
  FakePolicyTable policies;
  FakeFileStore files;
  FakeCertificateInspector certs{files};
  FakeIkeController unit;
  FakeClock clock;
  NetSnapshot net;
  std::vector<Event> events;
  std::unique_ptr<Reconciler> r;
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

TEST_F(ReloadTest, RenewedCertificatesRestartCharon) {
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  unit.complete();
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/host-cert.pem"] = "RENEWED";
  r->reconcile(net);
  EXPECT_EQ(files.files["/etc/swanctl/x509/ipop-ipsec-host.pem"], "RENEWED");
  runFor(30s);
  EXPECT_EQ(unit.restarts, 2);
  EXPECT_EQ(unit.reloads, 0);
}

TEST_F(ReloadTest, AFailedReloadFallsBackToARestart) {
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  unit.complete();
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
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  unit.complete();
  net.links[7] = link(7, "ipop", true, {"172.31.0.99/16"});
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 2);
  EXPECT_EQ(unit.reloads, 0);
}

TEST_F(ReloadTest, NothingIsLoadedOrStartedWhileIpopIsDown) {
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(3s);
  unit.complete();
  net.links[7] = link(7, "ipop", false, {"172.31.0.16/16"});
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(unit.reloads, 0);
  // The daemon's policies stay (fail closed) while the tap is down.
  EXPECT_EQ(rangesOf(policies.all()), std::vector<Cidr>{C("172.31.0.0/16")});
}

}  // namespace
