// The revocation list (racoon.crl): its judgement (core/certs/certs.cpp) with hand-made facts, and
// what the Reconciler does with it over fakes: handed to racoon as <CA hash>.r0 and to
// strongSwan in x509crl/, a CRL that revokes someone new restarts the IKE daemon (SAs with a
// revoked peer end now, not at their rekey), a routine refresh of it is loaded into the running
// charon (nothing torn down), a CRL that revokes this node never starts it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/certs/certs.hpp"
#include "core/render/render_swanctl.hpp"
#include "cert_facts.hpp"
#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

namespace {

// A well-issued set (cert_facts.hpp) with a current CRL of its CA that revokes two others.
CertFacts withCrl() {
  CertFacts f = good();
  f.hostSerial = "1A2B";
  CrlFacts crl = goodCrl(kNow + 60 * kDay);
  crl.revokedSerials = {"0F", "77"};
  f.crl = crl;
  return f;
}

CertVerdict judge(const CertFacts& f) { return judgeCertificates(f, CertPolicy{}, kNow); }

TEST(JudgeCrl, ACurrentCrlOfTheCaThatDoesNotRevokeThisNodeIsFine) {
  auto v = judge(withCrl());
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.errors, IsEmpty());
  EXPECT_THAT(v.warnings, IsEmpty());
}

TEST(JudgeCrl, ThisNodesOwnCertificateRevokedIsRefusedLoudly) {
  auto f = withCrl();
  f.crl->revokedSerials.push_back("1A2B");
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(AllOf(HasSubstr("host-cert.pem (serial 1A2B) is REVOKED by crl.pem"),
                                       HasSubstr("the IKE daemon is not restarted onto it"))));
}

TEST(JudgeCrl, AnotherCasOrAForgedCrlIsRefused) {
  auto f = withCrl();
  f.crl->signatureChecked = f.crl->signedByCa = false;
  f.crl->issuer = "CN=Other CA";
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("crl.pem is issued by CN=Other CA, not by the CA in cacert.pem")));
  f = withCrl();
  f.crl->signedByCa = false;
  v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("crl.pem's signature does not verify with the key of cacert.pem")));
}

// strongSwan finds a certificate's CRL by the CRL's authorityKeyIdentifier only: without the
// CA's key id there it would load the CRL and never consult it (revoked nodes accepted). That
// is refused for strongSwan (fail closed, with the fix); racoon finds it by the issuer's name.
TEST(JudgeCrl, WithoutTheCasKeyIdentifierStrongSwanWouldIgnoreItRefused) {
  CertPolicy swan;
  swan.crlNeedsKeyId = true;
  auto f = withCrl();
  f.crl->hasAuthorityKeyId = f.crl->authorityKeyIdIsCas = false;
  auto v = judgeCertificates(f, swan, kNow);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(AllOf(HasSubstr("crl.pem has no authorityKeyIdentifier"),
                                       HasSubstr("never consult it (revoked nodes accepted)"),
                                       HasSubstr("ipop-ipsecd pki crl"))));
  f.crl->hasAuthorityKeyId = true;  // another key's id
  v = judgeCertificates(f, swan, kNow);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("crl.pem names another key than cacert.pem's in its authorityKeyIdentifier")));
  EXPECT_TRUE(judge(f).usable) << "racoon looks the CRL up by its issuer's name: no key id needed";
  f.crl->authorityKeyIdIsCas = true;
  EXPECT_TRUE(judgeCertificates(f, swan, kNow).usable);
}

TEST(JudgeCrl, OutOfDateIsRefusedAndSoonIsWarnedLikeCertificateExpiry) {
  auto f = withCrl();
  f.crl->nextUpdate = kNow - kDay;
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("crl.pem is out of date since 2026-05-31")));
  f = withCrl();
  f.crl->nextUpdate = kNow + 5 * kDay;
  v = judge(f);
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.warnings, Contains(HasSubstr("crl.pem must be renewed by 2026-06-06 00:00:00 UTC (in 5 days)")));
}

TEST(JudgeCrl, AnUnreadableCrlNamesThePathAndTheFix) {
  auto f = withCrl();
  f.crl->file.loadError = "does not exist";
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("/etc/racoon/certs/crl.pem does not exist: install the CRL made with `ipop-ipsecd pki crl`")));
}

// --- the Reconciler with a CRL ----------------------------------------------------------

struct CrlReconcileTest : ReconcilerFixture {
  Config crlConfig(IkeBackend backend = IkeBackend::racoon) {
    Config c = cfg();
    c.racoon.crl = "crl.pem";
    c.ike.backend = backend;
    if (backend == IkeBackend::strongswan) c.ike.unit = "strongswan.service";
    return c;
  }
  void up() {
    net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
    r->reconcile(net);
    runFor(3s);
  }
  // The IKE daemon started with `crl` as /certs/crl.pem: its first restart, done.
  void startedWith(const std::string& crl, IkeBackend backend = IkeBackend::racoon) {
    files.files["/certs/crl.pem"] = crl;
    make(crlConfig(backend));
    up();
    EXPECT_EQ(unit.restarts, 1) << "the first start";
    unit.complete();
  }
  // strongSwan with a cut command: charon started with CRL v1; CRL v2 revokes 0F, is loaded,
  // and the cut of 0F's peers runs (not done yet). False when no cut runs.
  bool cutOf0FRunning() {
    unit.reloadable = true;
    unit.cuttable = true;
    startedWith("CRL v1", IkeBackend::strongswan);
    runFor(60s);
    land("CRL v2\nrevoked: 0F");
    unit.complete();
    return unit.cuts.size() == 1u;
  }
  // A new CRL file lands, is seen (inotify), and the quiet period passes.
  void land(const std::string& crl) {
    files.files["/certs/crl.pem"] = crl;
    r->certificatesChanged();
    r->reconcile(net);
    runFor(30s);
  }
};

TEST_F(CrlReconcileTest, RacoonFindsTheCrlAsTheCasHashDotR0) {
  files.files["/certs/crl.pem"] = "CRL v1";
  make(crlConfig());
  up();
  ASSERT_EQ(unit.restarts, 1);
  const std::string hashR0 = "/certs/" + certs.caHash + ".r0";
  ASSERT_TRUE(files.files.count(hashR0)) << "racoon looks CRLs up as <issuer hash>.r0";
  EXPECT_THAT(files.files[hashR0], HasSubstr("CRL v1"));
  EXPECT_THAT(files.files[hashR0], HasSubstr(kHashCopyMarker));
}

TEST_F(CrlReconcileTest, ANewCrlRestartsTheIkeDaemonOnce) {
  startedWith("CRL v1");
  land("CRL v2\nrevoked: 0F");  // a peer revoked
  EXPECT_EQ(unit.restarts, 2) << "SAs with the revoked peer end now";
  unit.complete();
  runFor(60s);
  EXPECT_EQ(unit.restarts, 2);
}

// Without strongswan.cut_command a revocation restarts charon (every SA ends, the revoked
// peer's too).
TEST_F(CrlReconcileTest, WithStrongSwanWithoutACutCommandANewlyRevokedSerialRestartsNamingIt) {
  unit.reloadable = true;
  files.files["/certs/crl.pem"] = "CRL v1";
  Config c = crlConfig(IkeBackend::strongswan);
  c.strongswan.cutCommand.clear();
  make(c);
  up();
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  EXPECT_EQ(files.files["/etc/swanctl/" + std::string(kSwanctlCrlFile)], "CRL v1");
  land("CRL v2\nrevoked: 0F");
  EXPECT_EQ(unit.restarts, 2) << "a reload (swanctl --load-all) would keep the SAs with the revoked peer";
  EXPECT_EQ(unit.reloads, 0);
  EXPECT_TRUE(hasEvent("restart", ": the new CRL revokes serial 0F"));
  EXPECT_EQ(r->status().lastActionReason, "the new CRL revokes serial 0F");
}

// A routine refresh (a new next update, the same revoked serials) is loaded into the running
// charon: no restart, nothing torn down; the log and the status say why.
TEST_F(CrlReconcileTest, WithStrongSwanARefreshWithTheSameRevokedSetIsLoadedNotARestart) {
  unit.reloadable = true;
  startedWith("CRL v1\nrevoked: 0F", IkeBackend::strongswan);
  runFor(60s);  // past ike.min_interval: a restart would not be held back by it
  land("CRL v2 (next update renewed)\nrevoked: 0F");
  EXPECT_EQ(unit.restarts, 1) << "a routine refresh restarts nothing";
  ASSERT_EQ(unit.reloads, 1) << "the new CRL is loaded into the running charon";
  EXPECT_EQ(files.files["/etc/swanctl/" + std::string(kSwanctlCrlFile)], "CRL v2 (next update renewed)\nrevoked: 0F")
      << "written before the load";
  EXPECT_TRUE(hasEvent("reload", "loading the new CRL (revoked set unchanged)"));
  EXPECT_EQ(r->status().lastActionReason, "loading the new CRL (revoked set unchanged)");
  unit.complete();
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(unit.reloads, 1) << "loaded once";
  // A serial taken off the list: loaded too (nobody to cut), named.
  land("CRL v3");
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(unit.reloads, 2);
  EXPECT_TRUE(hasEvent("reload", "the new CRL no longer revokes serial 0F"));
  unit.complete();
  EXPECT_TRUE(unit.cuts.empty());
}

// With strongswan.cut_command: the CRL is loaded into the running charon, then exactly the SAs
// with the revoked peers are cut; nothing is restarted, the log names the reason and the peers.
TEST_F(CrlReconcileTest, WithStrongSwanANewlyRevokedSerialIsLoadedThenOnlyThosePeersAreCut) {
  unit.reloadable = true;
  unit.cuttable = true;
  startedWith("CRL v1\nrevoked: 0F", IkeBackend::strongswan);
  EXPECT_TRUE(unit.cuts.empty()) << "the first CRL: charon starts with it, nothing to cut";
  land("CRL v2\nrevoked: 0F\nrevoked: 77\nrevoked: 78");
  EXPECT_EQ(unit.restarts, 1) << "no restart: every good pair keeps its SAs";
  ASSERT_EQ(unit.reloads, 1) << "the CRL is loaded first";
  EXPECT_TRUE(hasEvent("reload", "the new CRL revokes serials 77, 78"));
  EXPECT_TRUE(unit.cuts.empty()) << "cut only once charon holds the CRL (no new SA with them after the cut)";
  unit.complete();
  ASSERT_EQ(unit.cuts.size(), 1u);
  EXPECT_EQ(unit.cuts[0], (std::vector<std::string>{"77", "78"})) << "only the newly revoked serials";
  EXPECT_TRUE(hasEvent("cut", "cutting the SAs with the peers whose certificates the new CRL revokes (77, 78)"));
  EXPECT_THAT(r->status().lastActionReason, HasSubstr("the new CRL revokes serials 77, 78: cutting"));
  unit.completeCut({}, "cut CN=172.31.0.20 at 172.31.0.20 (#1)");
  EXPECT_TRUE(hasEvent("cut", "the new CRL revokes serials 77, 78: cut CN=172.31.0.20 at 172.31.0.20 (#1)"))
      << "the log names the peers cut";
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(unit.cuts.size(), 1u);
}

// A cut that fails still ends the revoked peers' SAs: by a restart, naming why.
TEST_F(CrlReconcileTest, WithStrongSwanAFailedCutRestartsInstead) {
  ASSERT_TRUE(cutOf0FRunning());
  unit.completeCut(std::make_error_code(std::errc::io_error), "exited with status 1: swanctl --list-certs failed");
  runFor(30s);
  EXPECT_EQ(unit.restarts, 2);
  EXPECT_TRUE(hasEvent("cut", "cutting the SAs with revoked peers failed: exited with status 1"));
  EXPECT_TRUE(hasEvent("restart", "the new CRL revokes serial 0F and cutting only those peers' SAs failed"));
}

// A cut that fails while another load is already pending (no restart can be scheduled then):
// the serials are cut with that load, not forgotten.
TEST_F(CrlReconcileTest, WithStrongSwanAFailedCutWhileALoadIsPendingIsCutWithThatLoad) {
  ASSERT_TRUE(cutOf0FRunning());
  // While the cut runs, the configuration changes (a reload becomes pending).
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16", "10.9.0.1/16"});
  Config c = crlConfig(IkeBackend::strongswan);
  c.protect.ranges.push_back(C("10.9.0.0/16"));
  r->setConfig(c);
  r->reconcile(net);
  unit.completeCut(std::make_error_code(std::errc::io_error), "exited with status 1");
  runFor(30s);
  ASSERT_EQ(unit.restarts, 1) << "a load was pending: no restart scheduled";
  ASSERT_EQ(unit.reloads, 2);
  unit.complete();
  ASSERT_EQ(unit.cuts.size(), 2u) << "the serial is cut again with the next load";
  EXPECT_EQ(unit.cuts[1], (std::vector<std::string>{"0F"}));
}

TEST_F(CrlReconcileTest, WithRacoonTheRestartNamesTheNewlyRevokedSerials) {
  startedWith("CRL v1\nrevoked: 0F");
  land("CRL v2\nrevoked: 0F\nrevoked: 77\nrevoked: 78");
  ASSERT_EQ(unit.restarts, 2);
  EXPECT_TRUE(hasEvent("restart", "restarting racoon.service: the new CRL revokes serials 77, 78"));
}

TEST(CrlChange, NamesWhatTheNewListChanges) {
  EXPECT_EQ(crlChange("a", {"0F"}, "a", {"0F"}), "");
  EXPECT_EQ(crlChange("a", {"0F"}, "b", {"0F"}), "loading the new CRL (revoked set unchanged)");
  EXPECT_EQ(crlChange("", {}, "b", {}), "loading the CRL");
  EXPECT_EQ(crlChange("a", {"0F"}, "b", {"0F", "10"}), "the new CRL revokes serial 10");
  EXPECT_EQ(crlChange("a", {"0F", "10"}, "b", {"11"}), "the new CRL revokes serial 11 and no longer revokes serials 0F, 10");
  EXPECT_EQ(crlChange("a", {"0F"}, "", {}), "the CRL was removed from the configuration");
}

TEST_F(CrlReconcileTest, ACrlThatRevokesThisNodeNeverStartsTheIkeDaemonAndIsNotHandedOver) {
  files.files["/certs/crl.pem"] = "CRL\nrevoked: 1000";  // the fake host certificate's serial
  make(crlConfig());
  up();
  EXPECT_EQ(unit.restarts, 0);
  EXPECT_FALSE(r->status().desired.certsUsable);
  EXPECT_THAT(r->statusLine(), HasSubstr("REVOKED"));
  EXPECT_FALSE(files.files.count("/certs/" + certs.caHash + ".r0"));
  EXPECT_FALSE(policies.all().empty()) << "the policies stay: no plaintext either (fail closed)";
}

// On the revoked node itself: the CRL that revokes it is refused (its IKE daemon is not
// restarted onto it), but the last accepted CRL stays where the IKE daemon loads it, so a
// charon (or racoon) started later still enforces it.
TEST_F(CrlReconcileTest, ACrlRevokingThisNodeKeepsTheLastAcceptedCopy) {
  for (auto backend : {IkeBackend::strongswan, IkeBackend::racoon}) {
    SCOPED_TRACE(backend == IkeBackend::strongswan ? "strongswan" : "racoon");
    files.files.clear();
    files.files["/certs/cacert.pem"] = "CA";
    files.files["/certs/host-cert.pem"] = "CERT";
    files.files["/certs/host-key.pem"] = "KEY";
    files.files["/certs/crl.pem"] = "CRL v1\nrevoked: 0F";
    unit.reloadable = backend == IkeBackend::strongswan;
    const int before = unit.restarts;
    make(crlConfig(backend));
    up();
    ASSERT_EQ(unit.restarts, before + 1);
    unit.complete();
    const std::string copy = backend == IkeBackend::strongswan ? "/etc/swanctl/" + std::string(kSwanctlCrlFile)
                                                               : "/certs/" + certs.caHash + ".r0";
    ASSERT_THAT(files.files[copy], HasSubstr("CRL v1"));
    files.files["/certs/crl.pem"] = "CRL v2\nrevoked: 0F\nrevoked: 1000";  // this node's serial
    r->certificatesChanged();
    r->reconcile(net);
    runFor(30s);
    EXPECT_FALSE(r->status().desired.certsUsable);
    EXPECT_THAT(r->statusLine(), HasSubstr("REVOKED"));
    EXPECT_EQ(unit.restarts, before + 1) << "not restarted onto a CRL that revokes this node";
    ASSERT_TRUE(files.files.count(copy)) << "the last accepted CRL is kept";
    EXPECT_THAT(files.files[copy], HasSubstr("CRL v1"));
    EXPECT_THAT(files.files[copy], Not(HasSubstr("1000")));
  }
}

// racoon.crl removed from the config (a reload): the daemon's copies go, so that neither
// racoon nor charon keeps enforcing an old list (which, once past its next update, would
// make them refuse every peer).
TEST_F(CrlReconcileTest, ACrlRemovedFromTheConfigLeavesNoCopyBehind) {
  files.files["/certs/crl.pem"] = "CRL v1";
  make(crlConfig());
  up();
  const std::string hashR0 = "/certs/" + certs.caHash + ".r0";
  ASSERT_TRUE(files.files.count(hashR0));
  files.files["/certs/" + certs.caHash + ".r1"] = "an operator's file";
  r->setConfig(cfg());  // no racoon.crl
  r->reconcile(net);
  EXPECT_FALSE(files.files.count(hashR0)) << "racoon's copy is removed";
  EXPECT_TRUE(files.files.count("/certs/" + certs.caHash + ".r1")) << "an operator's file is never touched";
  EXPECT_TRUE(files.files.count("/certs/crl.pem")) << "the operator's CRL file itself stays";
}

TEST_F(CrlReconcileTest, WithStrongSwanACrlRemovedFromTheConfigIsRemovedFromX509crl) {
  unit.reloadable = true;
  files.files["/certs/crl.pem"] = "CRL v1";
  make(crlConfig(IkeBackend::strongswan));
  up();
  const std::string copy = "/etc/swanctl/" + std::string(kSwanctlCrlFile);
  ASSERT_TRUE(files.files.count(copy));
  Config c = crlConfig(IkeBackend::strongswan);
  c.racoon.crl.clear();
  r->setConfig(c);
  r->reconcile(net);
  EXPECT_FALSE(files.files.count(copy));
  EXPECT_TRUE(r->status().lastError.empty()) << r->status().lastError;
  r->reconcile(net);  // nothing left to remove: no error either
  EXPECT_TRUE(r->status().lastError.empty()) << r->status().lastError;
}

TEST_F(CrlReconcileTest, WithoutACrlConfiguredNothingChanges) {
  make(cfg());
  up();
  EXPECT_EQ(unit.restarts, 1);
  for (const auto& [path, content] : files.files) EXPECT_EQ(path.find(".r0"), std::string::npos) << path;
}

}  // namespace

// --- a CRL alone is loaded as credentials (strongswan.load_creds_command) -----------------

namespace {

struct CredsLoadTest : CrlReconcileTest {
  void SetUp() override {
    CrlReconcileTest::SetUp();
    unit.reloadable = true;
    unit.credsLoadable = true;
    unit.cuttable = true;
  }
};

// A new CRL changes no connection: charon is given it with `swanctl --load-creds`, which
// reloads no connection (strongSwan 6's load-conn closes the IKE_SAs without a CHILD_SA even
// of an unchanged connection). A change of the connections is still the load_command.
TEST_F(CredsLoadTest, ARefreshAndARevocationAreCredentialLoadsAConfigChangeIsAReload) {
  startedWith("CRL v1\nrevoked: 0F", IkeBackend::strongswan);
  runFor(60s);
  land("CRL v2 (next update renewed)\nrevoked: 0F");
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(unit.reloads, 0) << "no swanctl --load-all for a CRL";
  ASSERT_EQ(unit.credLoads, 1);
  EXPECT_EQ(unit.actions.back(), IkeAction::loadCreds);
  EXPECT_TRUE(hasEvent("reload", "loading the changed credentials into "));
  EXPECT_TRUE(hasEvent("reload", "no connection is reloaded, no SA touched): loading the new CRL (revoked set unchanged)"));
  unit.complete();
  EXPECT_TRUE(hasEvent("reload", "IKE credentials loaded"));
  EXPECT_TRUE(unit.cuts.empty());
  runFor(60s);
  // A revocation: loaded the same way, then only the new serial is cut.
  land("CRL v3\nrevoked: 0F\nrevoked: 77");
  ASSERT_EQ(unit.credLoads, 2);
  EXPECT_EQ(unit.reloads, 0);
  EXPECT_TRUE(hasEvent("reload", "the new CRL revokes serial 77"));
  unit.complete();
  ASSERT_EQ(unit.cuts.size(), 1u);
  EXPECT_EQ(unit.cuts[0], (std::vector<std::string>{"77"}));
  unit.completeCut({}, "cut CN=172.31.0.20 at 172.31.0.20 (#1)");
  runFor(60s);
  // A second range: the connections change, that is the load_command's.
  net.links[7] = link(7, "ipop", true, {"172.31.0.16/16", "10.9.0.1/16"});
  Config c = crlConfig(IkeBackend::strongswan);
  c.protect.ranges.push_back(C("10.9.0.0/16"));
  r->setConfig(c);
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.reloads, 1);
  EXPECT_EQ(unit.credLoads, 2);
  EXPECT_EQ(unit.restarts, 1);
}

// A failed credentials load: charon may not run; the retry is a restart, naming why.
TEST_F(CredsLoadTest, AFailedCredentialsLoadRestartsInstead) {
  startedWith("CRL v1", IkeBackend::strongswan);
  runFor(60s);
  land("CRL v2");
  ASSERT_EQ(unit.credLoads, 1);
  unit.complete(std::make_error_code(std::errc::connection_refused), "exited with status 1: connecting to vici failed");
  EXPECT_TRUE(hasEvent("reload", "loading the credentials failed: exited with status 1"));
  runFor(30s);
  EXPECT_EQ(unit.restarts, 2);
}

// Without load_creds_command (an IKE control that has none) a CRL is loaded by a reload.
TEST_F(CredsLoadTest, WithoutACredentialsLoaderTheCrlIsAReload) {
  unit.credsLoadable = false;
  startedWith("CRL v1", IkeBackend::strongswan);
  runFor(60s);
  land("CRL v2");
  EXPECT_EQ(unit.credLoads, 0);
  EXPECT_EQ(unit.reloads, 1);
  EXPECT_EQ(unit.restarts, 1);
}

// A restarted ipop-ipsecd that adopts the running charon, told what it runs with (the state
// file: ike_restart_inputs, ike_reload_inputs, ike_crl): a routine refresh is a credentials
// load and a revocation cuts only the serials charon's CRL did not revoke yet. (Knowing only
// ike_inputs, the adopting daemon restarted charon for any new CRL.)
TEST_F(CredsLoadTest, AnAdoptedCharonIsGivenANewCrlLikeOneThisRunStarted) {
  startedWith("CRL v1\nrevoked: 0F", IkeBackend::strongswan);
  const auto inputs = r->scheduler().startedInputs();
  const auto restartInputs = r->scheduler().startedRestartInputs();
  const auto reloadInputs = r->scheduler().startedReloadInputs();
  const auto crl = r->crlRunning();
  ASSERT_TRUE(inputs && restartInputs && reloadInputs && crl);
  EXPECT_EQ(crl->second, (std::vector<std::string>{"0F"}));
  ASSERT_TRUE(r->crlLoadedAt());
  // ipop-ipsecd restarts; charon runs on.
  make(crlConfig(IkeBackend::strongswan));
  r->assumeIkeStarted(*inputs, restartInputs, reloadInputs);
  r->assumeCrlRunning(crl->first, crl->second, std::nullopt);
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 1) << "the unchanged CRL: adopted, nothing restarted";
  EXPECT_EQ(unit.credLoads + unit.reloads, 0) << "nor loaded";
  land("CRL v2 (next update renewed)\nrevoked: 0F");
  EXPECT_EQ(unit.restarts, 1) << "a routine refresh restarts nothing after an adoption either";
  ASSERT_EQ(unit.credLoads, 1);
  EXPECT_TRUE(hasEvent("reload", "loading the new CRL (revoked set unchanged)"));
  unit.complete();
  EXPECT_TRUE(unit.cuts.empty());
  runFor(60s);
  land("CRL v3\nrevoked: 0F\nrevoked: 77");
  ASSERT_EQ(unit.credLoads, 2);
  unit.complete();
  ASSERT_EQ(unit.cuts.size(), 1u);
  EXPECT_EQ(unit.cuts[0], (std::vector<std::string>{"77"})) << "0F was revoked by the CRL charon already had";
  EXPECT_EQ(unit.restarts, 1);
}

// Adopted with only ike_inputs (a state file of an earlier release): the next CRL restarts,
// as before, since what charon runs with is not known.
TEST_F(CredsLoadTest, AnAdoptedCharonWithUnknownPartsIsRestartedForANewCrl) {
  startedWith("CRL v1", IkeBackend::strongswan);
  const auto inputs = r->scheduler().startedInputs();
  make(crlConfig(IkeBackend::strongswan));
  r->assumeIkeStarted(*inputs);
  r->reconcile(net);
  runFor(30s);
  EXPECT_EQ(unit.restarts, 1);
  land("CRL v2");
  EXPECT_EQ(unit.restarts, 2);
}

// racoon opens <CA hash>.r0 at every verification of a peer (crypto_openssl.c
// eay_check_x509cert): a refresh that revokes nothing new is written and in force, nothing
// restarted; a newly revoked serial still restarts it, naming the serial (racoon has no
// serial -> peer mapping to cut only that peer).
TEST_F(CrlReconcileTest, WithRacoonARefreshWithTheSameRevokedSetIsWrittenNotARestart) {
  startedWith("CRL v1\nrevoked: 0F");
  runFor(60s);
  const std::string hashR0 = "/certs/" + certs.caHash + ".r0";
  land("CRL v2 (next update renewed)\nrevoked: 0F");
  EXPECT_EQ(unit.restarts, 1) << "racoon reads the new CRL at its next verification";
  EXPECT_THAT(files.files[hashR0], HasSubstr("CRL v2 (next update renewed)"));
  EXPECT_TRUE(hasEvent("reload", "the new CRL is in force for racoon.service (revoked set unchanged)"));
  ASSERT_TRUE(r->crlRunning());
  EXPECT_EQ(r->crlRunning()->first, r->status().desired.ikeCrl) << "the CRL racoon runs with, for the state file";
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  land("CRL v3\nrevoked: 0F\nrevoked: 77");
  ASSERT_EQ(unit.restarts, 2);
  EXPECT_TRUE(hasEvent("restart", "restarting racoon.service: the new CRL revokes serial 77"));
}

}  // namespace
