// The certificate judgement (core/certs/certs.hpp) with hand-made facts: every verdict path,
// and the Reconciler's use of it (fake inspector): an unusable set never restarts the IKE
// daemon, a valid renewal restarts it exactly once, racoon's CA hash copy is kept right.

#include "core/certs/certs.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cert_facts.hpp"
#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

namespace {

CertVerdict judge(const CertFacts& f, CertPolicy p = {}) { return judgeCertificates(f, p, kNow); }

TEST(JudgeCertificates, AGoodSetIsUsableWithoutWarningsAndReportsTheExpiry) {
  auto v = judge(good());
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.errors, IsEmpty());
  EXPECT_THAT(v.warnings, IsEmpty());
  ASSERT_TRUE(v.expiry);
  EXPECT_EQ(*v.expiry, kNow + 355 * kDay);
}

TEST(JudgeCertificates, EachLoadErrorNamesThePathAndTheFix) {
  auto f = good();
  f.ca.loadError = "does not exist";
  f.caCerts.clear();
  f.cert.loadError = "is a truncated PEM file: '-----BEGIN CERTIFICATE-----' has no END line";
  f.hostCert.reset();
  f.key.loadError = "is a directory, not a file";
  f.key.statKnown = false;
  f.keyMatchesCert.reset();
  f.chainChecked = false;
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(AllOf(HasSubstr("/etc/racoon/certs/cacert.pem does not exist"), HasSubstr("CA's certificate")),
                                    AllOf(HasSubstr("/etc/racoon/certs/host-cert.pem is a truncated PEM"),
                                          HasSubstr("pki issue")),
                                    AllOf(HasSubstr("/etc/racoon/certs/host-key.pem is a directory"),
                                          HasSubstr("private key"))));
  EXPECT_FALSE(v.expiry);
}

TEST(JudgeCertificates, KeyReadableByOthersIsRefusedWithTheChmod) {
  auto f = good();
  f.key.mode = 0644;
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre("host-key.pem is readable by group/other (mode 0644): chmod 600 "
                                    "/etc/racoon/certs/host-key.pem"));
  f.key.mode = 0640;
  EXPECT_THAT(judge(f).errors, ElementsAre(HasSubstr("(mode 0640)")));
  f.key.mode = 0400;
  EXPECT_TRUE(judge(f).usable) << "owner read-only is fine";
}

TEST(JudgeCertificates, KeyNotOwnedByRootIsRefusedUnlessTheCheckIsOff) {
  auto f = good();
  f.key.uid = 65534;
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(AllOf(HasSubstr("host-key.pem is owned by uid 65534, not root"),
                                          HasSubstr("chown root:root /etc/racoon/certs/host-key.pem"))));
  CertPolicy p;
  p.checkKeyOwner = false;
  EXPECT_TRUE(judge(f, p).usable);
}

TEST(JudgeCertificates, ExpiredAndNotYetValidAreRefused) {
  auto f = good();
  f.hostCert->notAfter = std::chrono::system_clock::from_time_t(1767225600);  // 2026-01-01
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(AllOf(HasSubstr("host-cert.pem expired on 2026-01-01 00:00:00 UTC"),
                                          HasSubstr("/etc/racoon/certs/host-cert.pem"))));
  f = good();
  f.hostCert->notAfter = kNow;  // the last second is already invalid
  EXPECT_FALSE(judge(f).usable);
  f = good();
  f.hostCert->notBefore = kNow + kDay;
  v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(AllOf(HasSubstr("host-cert.pem is not valid before 2026-06-02 00:00:00 UTC"),
                                          HasSubstr("clock"))));
}

TEST(JudgeCertificates, ExpiringSoonIsAWarningWithTheConfiguredHorizon) {
  auto f = good();
  f.hostCert->notAfter = kNow + 12 * kDay + 1h;
  auto v = judge(f);
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.warnings, ElementsAre(HasSubstr("host-cert.pem expires on 2026-06-13 01:00:00 UTC (in 12 days)")));
  CertPolicy p;
  p.expiryWarningDays = 10;
  EXPECT_THAT(judge(f, p).warnings, IsEmpty());
  p.expiryWarningDays = 0;
  f.hostCert->notAfter = kNow + 1h;
  EXPECT_THAT(judge(f, p).warnings, IsEmpty()) << "0 disables the warning";
  p.expiryWarningDays = 30;
  EXPECT_THAT(judge(f, p).warnings, ElementsAre(HasSubstr("(in 0 days)")));
}

TEST(JudgeCertificates, MissingSubjectAltNameIsRefused) {
  auto f = good();
  f.hostCert->subjectAltNames.clear();
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(AllOf(HasSubstr("host-cert.pem has no subjectAltName: racoon needs it"),
                                          HasSubstr("--ip ADDRESS"))));
}

TEST(JudgeCertificates, ChainFailuresNameTheCa) {
  auto f = good();
  f.chainOk = false;
  f.chainError = "unable to get local issuer certificate";
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(AllOf(HasSubstr("host-cert.pem is not signed by cacert.pem: unable to get local "
                                                    "issuer certificate"),
                                          HasSubstr("install the CA that issued it"))));
  f.chainError = "invalid CA certificate";
  EXPECT_THAT(judge(f).errors, ElementsAre("host-cert.pem does not verify against cacert.pem: invalid CA certificate"));
}

TEST(JudgeCertificates, KeyMismatchIsRefused) {
  auto f = good();
  f.keyMatchesCert = false;
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(HasSubstr("host-key.pem does not match host-cert.pem")));
}

TEST(JudgeCertificates, WeakKeysAndSignaturesWarnOrAreRefusedByPolicy) {
  auto f = good();
  f.hostCert->keyBits = 1024;
  f.hostCert->signatureDigest = "SHA1";
  f.hostCert->signatureAlgorithm = "sha1WithRSAEncryption";
  f.caCerts[0].keyBits = 1024;
  auto v = judge(f);
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.warnings, ElementsAre(HasSubstr("host-cert.pem has a weak 1024-bit RSA key"),
                                      HasSubstr("host-cert.pem is signed with SHA1 (sha1WithRSAEncryption)"),
                                      HasSubstr("cacert.pem (CN=GroupVPN CA) has a weak 1024-bit RSA key")));
  CertPolicy p;
  p.weak = WeakCertPolicy::refuse;
  v = judge(f, p);
  EXPECT_FALSE(v.usable);
  EXPECT_EQ(v.errors.size(), 3u);
  EXPECT_THAT(v.errors, Contains(HasSubstr("refused: certificates.weak is refuse")));
  f = good();
  f.hostCert->signatureDigest = "MD5";
  EXPECT_THAT(judge(f).warnings, ElementsAre(HasSubstr("signed with MD5")));
}

TEST(JudgeCertificates, EcKeyIsRefusedForRacoonOnly) {
  auto f = good();
  f.hostCert->keyType = KeyType::ec;
  f.hostCert->keyBits = 256;
  CertPolicy racoon;
  racoon.rsaOnly = true;
  EXPECT_THAT(judge(f, racoon).errors, ElementsAre(HasSubstr("host-cert.pem has an EC key: racoon signs with RSA only")));
  EXPECT_TRUE(judge(f).usable) << "strongSwan signs with ECDSA";
}

TEST(JudgeCertificates, KeyUsageWithoutDigitalSignatureIsRefusedAndOddEkuWarns) {
  auto f = good();
  f.hostCert->keyUsageDigitalSignature = false;
  EXPECT_THAT(judge(f).errors, ElementsAre(HasSubstr("keyUsage without digitalSignature")));
  f = good();
  f.hostCert->extendedKeyUsage = {"codeSigning"};
  auto v = judge(f);
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.warnings, ElementsAre(HasSubstr("extendedKeyUsage without serverAuth")));
  f.hostCert->extendedKeyUsage = {"ipsecIKE"};
  EXPECT_THAT(judge(f).warnings, IsEmpty());
}

TEST(JudgeCertificates, CaValidityIsChecked) {
  auto f = good();
  f.caCerts.push_back(goodCa());
  f.caCerts[1].subject = "CN=Old CA";
  f.caCerts[1].notAfter = kNow - kDay;
  EXPECT_THAT(judge(f).errors, ElementsAre(HasSubstr("cacert.pem (CN=Old CA) expired on 2026-05-31")));
  f = good();
  f.caCerts[0].notBefore = kNow + kDay;
  EXPECT_THAT(judge(f).errors, ElementsAre(HasSubstr("cacert.pem (CN=GroupVPN CA) is not valid before")));
  f = good();
  f.caCerts[0].notAfter = kNow + 5 * kDay;
  auto v = judge(f);
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.warnings, ElementsAre(HasSubstr("cacert.pem (CN=GroupVPN CA) expires on")));
}

TEST(JudgeCertificates, IncompleteFactsAreNeverUsable) {
  auto f = good();
  f.chainChecked = false;
  auto v = judge(f);
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, ElementsAre(HasSubstr("could not be checked completely")));
  f = good();
  f.keyMatchesCert.reset();
  EXPECT_FALSE(judge(f).usable);
  EXPECT_FALSE(judgeCertificates(CertFacts{}, CertPolicy{}, kNow).usable) << "no facts at all";
}

TEST(JudgeCertificates, EveryProblemIsReportedAtOnce) {
  auto f = good();
  f.key.mode = 0666;
  f.key.uid = 1000;
  f.hostCert->subjectAltNames.clear();
  f.hostCert->notAfter = kNow - kDay;
  f.keyMatchesCert = false;
  f.chainOk = false;
  f.chainError = "unable to get local issuer certificate";
  EXPECT_EQ(judge(f).errors.size(), 6u);
}

TEST(CertPolicy, FollowsTheConfig) {
  Config c;
  c.certificates.expiryWarningDays = 7;
  c.certificates.weak = WeakCertPolicy::refuse;
  c.certificates.checkKeyOwner = false;
  auto p = certPolicyFor(c);
  EXPECT_EQ(p.expiryWarningDays, 7);
  EXPECT_EQ(p.weak, WeakCertPolicy::refuse);
  EXPECT_FALSE(p.checkKeyOwner);
  EXPECT_TRUE(p.rsaOnly);
  c.ike.backend = IkeBackend::strongswan;
  EXPECT_FALSE(certPolicyFor(c).rsaOnly);
}

TEST(FormatUtc, IsIsoLikeAndUtc) {
  EXPECT_EQ(formatUtc(kNow), "2026-06-01 00:00:00 UTC");
  EXPECT_EQ(formatUtc(std::chrono::system_clock::from_time_t(4102444799)), "2099-12-31 23:59:59 UTC");
}

// --- the Reconciler with the fake inspector -------------------------------------------------

// The shared Reconciler fixture (reconciler_fixture.hpp) with the tap up in 172.31.0.0/16.
struct CertReconcileTest : ReconcilerFixture {
  void SetUp() override {
    ReconcilerFixture::SetUp();
    make(cfg());
    net.links[7] = link(7, "ipop", true, {"172.31.0.16/16"});
  }
  int count(Severity s, const std::string& needle) {
    int n = 0;
    for (const auto& e : events)
      if (e.action() == "certificates" && e.severity == s && e.message.find(needle) != std::string::npos) ++n;
    return n;
  }
  static void expire(CertFacts& f) { f.hostCert->notAfter = std::chrono::system_clock::now() - kDay; }
};

TEST_F(CertReconcileTest, AnInvalidSetNeverStartsTheIkeDaemonAndIsReportedOnce) {
  certs.tweak = expire;
  r->reconcile(net);
  for (int i = 0; i < 5; ++i) r->reconcile(net);
  runFor(120s);
  EXPECT_EQ(unit.restarts, 0);
  EXPECT_EQ(count(Severity::error, "host-cert.pem expired on"), 1) << "reported once, not at every reconcile";
  EXPECT_FALSE(r->status().desired.certsUsable);
  EXPECT_FALSE(r->status().healthy());
  EXPECT_THAT(r->status().desired.certProblems, ElementsAre(HasSubstr("expired on")));
  EXPECT_THAT(r->statusLine(), HasSubstr("not starting racoon.service: host-cert.pem expired on"));
  EXPECT_FALSE(policies.all().empty()) << "the policies are installed anyway (fail closed)";
}

TEST_F(CertReconcileTest, ProblemsShowInTheStatusLineAlsoWhileIpopIsDown) {
  net.links.erase(7);
  certs.tweak = [](CertFacts& f) { f.key.mode = 0644; };
  r->reconcile(net);
  EXPECT_THAT(r->statusLine(), HasSubstr("certificate problem: host-key.pem is readable by group/other"));
}

TEST_F(CertReconcileTest, BadRenewalLeavesTheRunningIkeDaemonAloneAndAValidOneRestartsItOnce) {
  r->reconcile(net);
  runFor(5s);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  // The operator copies in a certificate for the wrong CA: nothing restarts.
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/host-cert.pem"] = "CERT-WRONG-CA";
  certs.tweak = [](CertFacts& f) {
    f.chainOk = false;
    f.chainError = "unable to get local issuer certificate";
  };
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(count(Severity::error, "is not signed by cacert.pem"), 1);
  // Then the right one: exactly one restart.
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/host-cert.pem"] = "CERT-RENEWED";
  certs.tweak = nullptr;
  for (int i = 0; i < 3; ++i) r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 2);
  EXPECT_EQ(count(Severity::info, "usable again"), 1);
  EXPECT_TRUE(r->status().desired.certsUsable);
  EXPECT_TRUE(r->status().desired.certExpiry.has_value());
}

TEST_F(CertReconcileTest, WarningsAreLoggedOnceAndShownInStatus) {
  certs.tweak = [](CertFacts& f) { f.hostCert->notAfter = std::chrono::system_clock::now() + 3 * kDay; };
  r->reconcile(net);
  r->reconcile(net);
  EXPECT_EQ(count(Severity::warning, "host-cert.pem expires on"), 1);
  EXPECT_THAT(r->statusLine(), HasSubstr("certificate warning: host-cert.pem expires on"));
  runFor(5s);
  EXPECT_EQ(unit.restarts, 1) << "a warning does not hold the IKE daemon back";
}

TEST_F(CertReconcileTest, RacoonFindsTheCaByHashAndAStaleCopyIsRemoved) {
  r->reconcile(net);
  ASSERT_TRUE(files.files.count("/certs/1a2b3c4d.0"));
  const std::string& copy = files.files["/certs/1a2b3c4d.0"];
  EXPECT_EQ(copy.rfind(std::string(kHashCopyMarker), 0), 0u) << copy;
  EXPECT_THAT(copy, HasSubstr("of /certs/cacert.pem"));
  EXPECT_THAT(copy, HasSubstr("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"));
  EXPECT_EQ(files.modes["/certs/1a2b3c4d.0"], 0644u);
  // A new CA (another subject hash): its copy is written, the old one removed.
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/cacert.pem"] = "CA2";
  certs.caHash = "99aa88bb";
  r->reconcile(net);
  EXPECT_TRUE(files.files.count("/certs/99aa88bb.0"));
  EXPECT_FALSE(files.files.count("/certs/1a2b3c4d.0")) << "the old CA must not stay trusted";
  // A file the daemon did not write (c_rehash's, an operator's) is never touched.
  r->certificatesChanged();  // as the daemon does on inotify
  files.files["/certs/deadbeef.0"] = "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n";
  r->reconcile(net);
  EXPECT_TRUE(files.files.count("/certs/deadbeef.0"));
}

TEST_F(CertReconcileTest, TwoCaCertificatesWithCollidingHashesGetDotZeroAndDotOne) {
  certs.tweak = [](CertFacts& f) {
    f.caCerts.push_back(f.caCerts[0]);
    f.caCerts[1].pem = "-----BEGIN CERTIFICATE-----\nCA-B\n-----END CERTIFICATE-----\n";
  };
  r->reconcile(net);
  EXPECT_TRUE(files.files.count("/certs/1a2b3c4d.0"));
  ASSERT_TRUE(files.files.count("/certs/1a2b3c4d.1"));
  EXPECT_THAT(files.files["/certs/1a2b3c4d.1"], HasSubstr("CA-B"));
}

TEST_F(CertReconcileTest, StrongswanBackendWritesNoRacoonHashCopy) {
  Config c = cfg();
  c.ike.backend = IkeBackend::strongswan;
  c.ike.unit = "strongswan.service";
  make(c);
  r->reconcile(net);
  EXPECT_FALSE(files.files.count("/certs/1a2b3c4d.0"));
}

}  // namespace
