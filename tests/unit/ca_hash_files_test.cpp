// racoon's CA lookup files (<certificate_dir>/<subject hash>.<n>) next to an operator's:
// planHashFiles (core/certs/certs.hpp) with hand-made facts, and the Reconciler with the fake
// inspector. c_rehash's symlink to cacert.pem (or an operator's copy) that holds the CA
// certificate is used as it is: no write, no error, the IKE daemon starts. Only an entry
// for another CA (or no certificate, or a dangling link) is a problem, named with its file,
// what it holds and the fix. The daemon never writes through a symlink and never removes
// a file it did not write.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "core/certs/certs.hpp"
#include "core/reconcile/reconciler.hpp"
#include "fakes.hpp"
#include "reconciler_fixture.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

namespace {

const std::string kDir = "/certs";
const std::string kCaPath = "/certs/cacert.pem";

CertInfo ca(const std::string& subject, const std::string& hash, const std::string& body) {
  CertInfo c;
  c.subject = subject;
  c.issuer = subject;
  c.isCa = true;
  c.subjectHash = hash;
  c.pem = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n";
  return c;
}

const CertInfo kCa = ca("CN=GroupVPN CA", "1a2b3c4d", "CA");
const CertInfo kOldCa = ca("CN=GroupVPN CA,O=old", "1a2b3c4d", "OLD-CA");  // same subject hash, another key
const CertInfo kSecondCa = ca("CN=Second CA", "5e6f7a8b", "CA-2");

HashFileFacts entry(const std::string& name, std::vector<CertInfo> certs) {
  HashFileFacts e;
  e.path = kDir + "/" + name;
  e.hash = name.substr(0, 8);
  e.index = std::stoi(name.substr(9));
  e.certs = std::move(certs);
  return e;
}
HashFileFacts link(const std::string& name, const std::string& target, std::vector<CertInfo> certs) {
  HashFileFacts e = entry(name, std::move(certs));
  e.symlink = true;
  e.target = target;
  return e;
}
HashFileFacts owned(const std::string& name) {
  HashFileFacts e = entry(name, {});
  e.owned = true;
  return e;
}

std::vector<std::string> paths(const HashFilePlan& p) {
  std::vector<std::string> out;
  for (const auto& [path, pem] : p.copies) out.push_back(path);
  return out;
}

// --- planHashFiles ---------------------------------------------------------------------------

TEST(PlanHashFiles, WithoutEntriesEveryCaCertificateGetsACopyCollidingHashesOnDotOne) {
  auto p = planHashFiles({kCa, kOldCa, kSecondCa}, {}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, ElementsAre(Pair("/certs/1a2b3c4d.0", kCa.pem), Pair("/certs/1a2b3c4d.1", kOldCa.pem),
                                    Pair("/certs/5e6f7a8b.0", kSecondCa.pem)));
}

TEST(PlanHashFiles, RehashSymlinkToTheCaFileIsUsedAsItIs) {
  auto p = planHashFiles({kCa}, {link("1a2b3c4d.0", "cacert.pem", {kCa})}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, IsEmpty()) << "nothing to write: the link serves racoon";
}

TEST(PlanHashFiles, SymlinkToABundleHoldingTheCaIsUsedAndTheBundlesOtherCaGetsItsCopy) {
  // cacert.pem holds two CA certificates; a hand-made link for the first one's hash.
  auto p = planHashFiles({kCa, kSecondCa}, {link("1a2b3c4d.0", "cacert.pem", {kCa, kSecondCa})}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, ElementsAre(Pair("/certs/5e6f7a8b.0", kSecondCa.pem)));
  // Both certificates' hashes linked to the bundle: nothing to write at all.
  p = planHashFiles({kCa, kSecondCa},
                    {link("1a2b3c4d.0", "cacert.pem", {kCa, kSecondCa}), link("5e6f7a8b.0", "cacert.pem", {kCa, kSecondCa})},
                    kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, IsEmpty());
}

TEST(PlanHashFiles, SymlinkToAFileOutsideTheDirectoryHoldingTheCaIsUsed) {
  auto p = planHashFiles({kCa}, {link("1a2b3c4d.0", "/etc/ssl/groupvpn/ca.pem", {kCa})}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, IsEmpty());
}

TEST(PlanHashFiles, AnOperatorsRegularFileWithTheSameCaIsFine) {
  auto p = planHashFiles({kCa}, {entry("1a2b3c4d.0", {kCa})}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, IsEmpty());
}

TEST(PlanHashFiles, AnOperatorsFileWithAnotherCaIsAProblemNamingTheFileWhatItHoldsAndTheFix) {
  auto p = planHashFiles({kCa}, {entry("1a2b3c4d.0", {kOldCa})}, kDir, kCaPath);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_THAT(p.problems[0], AllOf(HasSubstr("/certs/1a2b3c4d.0 holds another CA's certificate (CN=GroupVPN CA,O=old)"),
                                   HasSubstr("not the one in /certs/cacert.pem (CN=GroupVPN CA)"),
                                   HasSubstr("remove it (ipop-ipsecd then writes its own copy of /certs/cacert.pem)")));
  EXPECT_THAT(paths(p), Not(Contains("/certs/1a2b3c4d.0"))) << "never written over";
}

TEST(PlanHashFiles, ASymlinkToAnotherCaIsAProblemWithTheLinkAndItsTarget) {
  auto p = planHashFiles({kCa}, {link("1a2b3c4d.0", "old-cacert.pem", {kOldCa})}, kDir, kCaPath);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_THAT(p.problems[0],
              AllOf(HasSubstr("/certs/1a2b3c4d.0 is a symlink to old-cacert.pem, which holds another CA's certificate "
                              "(CN=GroupVPN CA,O=old)"),
                    HasSubstr("remove the link"), HasSubstr("`openssl rehash /certs`")));
  EXPECT_THAT(paths(p), Not(Contains("/certs/1a2b3c4d.0")));
}

TEST(PlanHashFiles, ADanglingSymlinkIsAProblem) {
  HashFileFacts e = link("1a2b3c4d.0", "cacert.pem.old", {});
  e.dangling = true;
  e.loadError = "is a dangling symlink (its target does not exist)";
  auto p = planHashFiles({kCa}, {e}, kDir, kCaPath);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_THAT(p.problems[0], AllOf(HasSubstr("/certs/1a2b3c4d.0 is a dangling symlink (to cacert.pem.old"),
                                   HasSubstr("remove it, or run `openssl rehash /certs`")));
  EXPECT_THAT(paths(p), Not(Contains("/certs/1a2b3c4d.0")));
}

TEST(PlanHashFiles, AFileThatIsNotACertificateIsAProblem) {
  HashFileFacts e = entry("1a2b3c4d.0", {});
  e.loadError = "is not a PEM file (no '-----BEGIN' line)";
  auto p = planHashFiles({kCa}, {e}, kDir, kCaPath);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_THAT(p.problems[0], AllOf(HasSubstr("/certs/1a2b3c4d.0 is not a certificate (it is not a PEM file"),
                                   HasSubstr("remove it")));
  HashFileFacts l = link("1a2b3c4d.0", "host-key.pem", {});
  l.loadError = "holds no certificate (found PRIVATE KEY)";
  p = planHashFiles({kCa}, {l}, kDir, kCaPath);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_THAT(p.problems[0], HasSubstr("/certs/1a2b3c4d.0 is a symlink to host-key.pem, which is not a certificate "
                                       "(it holds no certificate (found PRIVATE KEY))"));
}

TEST(PlanHashFiles, TheDaemonsOwnCopyIsRewrittenInPlace) {
  auto p = planHashFiles({kCa}, {owned("1a2b3c4d.0")}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, ElementsAre(Pair("/certs/1a2b3c4d.0", kCa.pem)));
}

TEST(PlanHashFiles, NoSlotBelowAnOperatorsEntryIsLeftEmptyTheLookupStopsThere) {
  // `openssl rehash` next to the daemon's copy linked the CA as .1: the copy at .0 stays.
  auto p = planHashFiles({kCa}, {owned("1a2b3c4d.0"), link("1a2b3c4d.1", "cacert.pem", {kCa})}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, ElementsAre(Pair("/certs/1a2b3c4d.0", kCa.pem)));
  // An operator's .1 with nothing at .0: .0 is filled.
  p = planHashFiles({kCa}, {link("1a2b3c4d.1", "cacert.pem", {kCa})}, kDir, kCaPath);
  EXPECT_THAT(p.copies, ElementsAre(Pair("/certs/1a2b3c4d.0", kCa.pem)));
}

TEST(PlanHashFiles, ACollidingCaCertificateNotInTheOperatorsEntryGetsTheNextFreeSlot) {
  auto p = planHashFiles({kCa, kOldCa}, {link("1a2b3c4d.0", "cacert.pem", {kCa})}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, ElementsAre(Pair("/certs/1a2b3c4d.1", kOldCa.pem)));
}

TEST(PlanHashFiles, EntriesOfOtherHashesAndNamesOpensslNeverOpensAreNotItsBusiness) {
  HashFileFacts notASlot = entry("1a2b3c4d.0", {kOldCa});
  notASlot.path = "/certs/1a2b3c4d.01";
  notASlot.index = -1;
  auto p = planHashFiles({kCa}, {entry("deadbeef.0", {kOldCa}), notASlot}, kDir, kCaPath);
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.copies, ElementsAre(Pair("/certs/1a2b3c4d.0", kCa.pem)));
}

// --- the Reconciler with the fake inspector ---------------------------------------------------

LinkState tapLink() {
  LinkState l;
  l.index = 7;
  l.name = "ipop";
  l.up = l.running = true;
  l.addresses = {*Cidr::parse("172.31.0.16/16")};
  return l;
}

struct HashFileReconcileTest : ReconcilerFixture {
  void SetUp() override {
    ReconcilerFixture::SetUp();
    make(cfg());
    net.links[7] = tapLink();
  }
  int count(Severity s, const std::string& needle) {
    int n = 0;
    for (const auto& e : events)
      if (e.severity == s && e.message.find(needle) != std::string::npos) ++n;
    return n;
  }
  int errors() {
    return static_cast<int>(std::count_if(events.begin(), events.end(), [](const Event& e) { return e.severity == Severity::error; }));
  }
  bool wrote(const std::string& path) {
    return std::find(files.written.begin(), files.written.end(), path) != files.written.end();
  }
  bool removed(const std::string& path) {
    return std::find(files.removed.begin(), files.removed.end(), path) != files.removed.end();
  }


};

TEST_F(HashFileReconcileTest, RehashedDirectoryStartsTheIkeDaemonOnceWithNoWriteThroughTheSymlink) {
  files.symlinks["/certs/1a2b3c4d.0"] = "cacert.pem";  // c_rehash / openssl rehash
  r->reconcile(net);
  runFor(5s);
  EXPECT_EQ(unit.restarts, 1);
  unit.complete();
  for (int i = 0; i < 3; ++i) r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(errors(), 0);
  EXPECT_EQ(r->status().lastError, "");
  EXPECT_TRUE(r->status().desired.certsUsable);
  EXPECT_TRUE(r->status().healthy()) << r->statusLine();
  EXPECT_FALSE(wrote("/certs/1a2b3c4d.0"));
  EXPECT_FALSE(removed("/certs/1a2b3c4d.0"));
  EXPECT_EQ(files.symlinks["/certs/1a2b3c4d.0"], "cacert.pem");
  EXPECT_EQ(count(Severity::info, "usable again"), 0) << "they never were unusable";
}

TEST_F(HashFileReconcileTest, AnotherCasFileBlocksTheIkeDaemonIsReportedOnceAndStaysUntilTheOperatorRemovesIt) {
  const std::string old = "-----BEGIN CERTIFICATE-----\nOLD-CA\n-----END CERTIFICATE-----\n";
  files.files["/certs/1a2b3c4d.0"] = old;  // an operator's copy of a CA re-made with the same name
  r->reconcile(net);
  for (int i = 0; i < 3; ++i) r->reconcile(net);
  runFor(120s);
  EXPECT_EQ(unit.restarts, 0);
  EXPECT_FALSE(r->status().desired.certsUsable);
  EXPECT_FALSE(r->status().healthy());
  EXPECT_EQ(count(Severity::error, "/certs/1a2b3c4d.0 holds another CA's certificate (CN=OLD-CA)"), 1)
      << "reported once, not at every reconcile";
  EXPECT_THAT(r->status().desired.certProblems,
              ElementsAre(AllOf(HasSubstr("/certs/1a2b3c4d.0"), HasSubstr("CN=OLD-CA"), HasSubstr("remove it"))));
  EXPECT_THAT(r->statusLine(), HasSubstr("not starting racoon.service: /certs/1a2b3c4d.0 holds another CA's certificate"));
  EXPECT_EQ(files.files["/certs/1a2b3c4d.0"], old) << "an operator's file is never written over";
  EXPECT_FALSE(removed("/certs/1a2b3c4d.0")) << "nor removed";
  EXPECT_EQ(r->status().lastError, "") << "not a failed write";
  EXPECT_FALSE(policies.all().empty()) << "the policies are in anyway (fail closed)";

  // The operator removes it: the daemon writes its own copy and starts the IKE daemon once.
  files.files.erase("/certs/1a2b3c4d.0");
  r->certificatesChanged();  // as the daemon does on inotify
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 1);
  EXPECT_EQ(count(Severity::info, "usable again"), 1);
  EXPECT_EQ(files.files["/certs/1a2b3c4d.0"].rfind(std::string(kHashCopyMarker), 0), 0u);
}

TEST_F(HashFileReconcileTest, ADanglingSymlinkBlocksTheIkeDaemonAndIsLeftAlone) {
  files.symlinks["/certs/1a2b3c4d.0"] = "cacert-2019.pem";
  r->reconcile(net);
  runFor(60s);
  EXPECT_EQ(unit.restarts, 0);
  EXPECT_THAT(r->status().desired.certProblems,
              ElementsAre(HasSubstr("/certs/1a2b3c4d.0 is a dangling symlink (to cacert-2019.pem")));
  EXPECT_EQ(files.symlinks.count("/certs/1a2b3c4d.0"), 1u);
  EXPECT_FALSE(wrote("/certs/1a2b3c4d.0"));
}

TEST_F(HashFileReconcileTest, RehashOverTheDaemonsOwnCopyBeforeInotifyTellsIsNeverWrittenThrough) {
  r->reconcile(net);
  runFor(5s);
  ASSERT_EQ(unit.restarts, 1);
  unit.complete();
  ASSERT_EQ(files.files["/certs/1a2b3c4d.0"].rfind(std::string(kHashCopyMarker), 0), 0u);
  // The operator replaces the daemon's copy with a link; the daemon reconciles (an address
  // event) before the directory's inotify event arrives.
  files.files.erase("/certs/1a2b3c4d.0");
  files.symlinks["/certs/1a2b3c4d.0"] = "cacert.pem";
  r->reconcile(net);
  EXPECT_THAT(r->status().lastError, HasSubstr("/certs/1a2b3c4d.0: it is a symlink now"));
  EXPECT_EQ(files.symlinks["/certs/1a2b3c4d.0"], "cacert.pem") << "never written through, never replaced";
  // The retry reads the directory again and uses the link.
  runFor(60s);
  EXPECT_EQ(r->status().lastError, "");
  EXPECT_TRUE(r->status().desired.certsUsable);
  EXPECT_EQ(files.symlinks["/certs/1a2b3c4d.0"], "cacert.pem");
  EXPECT_FALSE(removed("/certs/1a2b3c4d.0"));
}

TEST_F(HashFileReconcileTest, UsableAgainIsLoggedOnlyAfterAProblemNeverAtTheFirstReconcile) {
  for (int i = 0; i < 3; ++i) r->reconcile(net);
  runFor(10s);
  EXPECT_EQ(count(Severity::info, "usable again"), 0);
  EXPECT_EQ(unit.restarts, 1);
}

}  // namespace
