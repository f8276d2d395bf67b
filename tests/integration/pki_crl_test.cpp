// Revocation end to end on real files: `ipop-ipsecd pki revoke` and `pki crl` (the real
// binary), the CRL checked from outside with the openssl CLI, read back by the daemon's
// inspector (os/openssl/cert_inspector.hpp, pki/crl.hpp) and judged by the core: the revoked node
// refuses its own set, the others keep theirs; a CRL of another CA, a tampered one and an
// out-of-date one are refused with their own message; bad requests get clear errors.

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/certs/certs.hpp"
#include "integration/netns.hpp"
#include "os/openssl/cert_inspector.hpp"
#include "pki/crl.hpp"
#include "support/read_file.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

namespace {

class PkiCrlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ipopsec-crl-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pki("init-ca --dir " + ca() + " --name 'GroupVPN CA'");
    pki("issue --ca-dir " + ca() + " --ip 10.254.0.16 --out " + node("a"));
    pki("issue --ca-dir " + ca() + " --ip 10.254.0.17 --out " + node("b"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string ca() const { return (dir_ / "ca").string(); }
  std::string node(const std::string& n) const { return (dir_ / n).string(); }
  std::string crl() const { return (dir_ / "crl.pem").string(); }
  // Runs `ipop-ipsecd pki ARGS`; returns its exit status, output in `out`.
  int pkiStatus(const std::string& args, std::string* out = nullptr) {
    return shStatus(std::string(IPOPSEC_BINARY) + " pki " + args, out);
  }
  std::string pki(const std::string& args) { return sh(std::string(IPOPSEC_BINARY) + " pki " + args); }
  CertFacts inspect(const std::string& n, const std::string& crlPath) {
    OpenSslInspector in;
    return in.inspect(node(n) + "/cacert.pem", node(n) + "/host-cert.pem", node(n) + "/host-key.pem", crlPath);
  }
  std::string serialOf(const std::string& n) {
    std::string s = sh("openssl x509 -noout -serial -in " + node(n) + "/host-cert.pem");  // serial=0A1B...
    s = s.substr(s.find('=') + 1);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }

  fs::path dir_;
};

TEST_F(PkiCrlTest, ARevokedNodeIsInTheSignedCrlThatOpensslAndTheDaemonEnforce) {
  std::string out = pki("revoke --ca-dir " + ca() + " --cert " + node("b") + "/host-cert.pem --reason keyCompromise");
  EXPECT_THAT(out, HasSubstr("revoked serial " + serialOf("b") + " (keyCompromise)"));
  out = pki("crl --ca-dir " + ca() + " --out " + crl() + " --days 30");
  EXPECT_THAT(out, HasSubstr("CRL number 1, 1 revoked certificate"));

  // openssl: signed by the CA, b revoked, a fine.
  EXPECT_EQ(shStatus("openssl crl -in " + crl() + " -CAfile " + ca() + "/cacert.pem -noout"), 0);
  std::string text = sh("openssl crl -in " + crl() + " -noout -text");
  EXPECT_THAT(text, HasSubstr("Serial Number: " + serialOf("b")));
  EXPECT_THAT(text, HasSubstr("Key Compromise"));
  EXPECT_THAT(text, HasSubstr("X509v3 CRL Number"));
  EXPECT_THAT(text, HasSubstr("Next Update"));
  std::string verify;
  EXPECT_NE(shStatus("openssl verify -crl_check -CRLfile " + crl() + " -CAfile " + ca() + "/cacert.pem " + node("b") +
                         "/host-cert.pem",
                     &verify),
            0);
  EXPECT_THAT(verify, HasSubstr("certificate revoked"));
  EXPECT_EQ(shStatus("openssl verify -crl_check -CRLfile " + crl() + " -CAfile " + ca() + "/cacert.pem " + node("a") +
                     "/host-cert.pem"),
            0);

  // The daemon's inspector and judgement, as on node b and on node a.
  CertFacts b = inspect("b", crl());
  ASSERT_TRUE(b.crl);
  EXPECT_THAT(b.crl->file.loadError, IsEmpty());
  EXPECT_TRUE(b.crl->signatureChecked && b.crl->signedByCa);
  EXPECT_EQ(b.crl->issuer, "CN=GroupVPN CA");
  EXPECT_EQ(b.crl->revokedSerials, std::vector<std::string>{serialOf("b")});
  CertVerdict vb = judgeCertificates(b, CertPolicy{}, std::chrono::system_clock::now());
  EXPECT_FALSE(vb.usable);
  EXPECT_THAT(vb.errors, Contains(HasSubstr("is REVOKED by crl.pem")));
  CertVerdict va = judgeCertificates(inspect("a", crl()), CertPolicy{}, std::chrono::system_clock::now());
  EXPECT_TRUE(va.usable) << (va.errors.empty() ? "" : va.errors.front());
}

TEST_F(PkiCrlTest, ANewCrlCarriesEveryRevocationAndANewNumber) {
  pki("crl --ca-dir " + ca() + " --out " + crl());
  EXPECT_TRUE(inspect("a", crl()).crl->revokedSerials.empty()) << "an empty CRL is a valid CRL";
  pki("revoke --ca-dir " + ca() + " --serial " + serialOf("a"));
  pki("revoke --ca-dir " + ca() + " --cert " + node("b") + "/host-cert.pem");
  std::string out = pki("crl --ca-dir " + ca() + " --out " + crl());
  EXPECT_THAT(out, HasSubstr("CRL number 2, 2 revoked certificates"));
  EXPECT_EQ(inspect("a", crl()).crl->revokedSerials.size(), 2u);
}

TEST_F(PkiCrlTest, AnotherCasCrlATamperedOneAndAnOutOfDateOneAreRefused) {
  pki("init-ca --dir " + (dir_ / "other").string() + " --name 'Other CA'");
  pki("crl --ca-dir " + (dir_ / "other").string() + " --out " + (dir_ / "other.pem").string());
  CertVerdict v = judgeCertificates(inspect("a", (dir_ / "other.pem").string()), CertPolicy{},
                                    std::chrono::system_clock::now());
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("other.pem is issued by CN=Other CA, not by the CA in cacert.pem")));

  // This CA's CRL with one bit of its signature flipped: same issuer, signature fails.
  pki("crl --ca-dir " + ca() + " --out " + crl());
  sh("openssl crl -in " + crl() + " -out " + (dir_ / "der.crl").string() + " -outform DER");
  std::string der = readFile(dir_ / "der.crl");
  der[der.size() - 5] ^= 0x40;  // a bit of the signature
  std::ofstream(dir_ / "der.crl", std::ios::binary) << der;
  sh("openssl crl -inform DER -in " + (dir_ / "der.crl").string() + " -out " + (dir_ / "tampered.pem").string());
  v = judgeCertificates(inspect("a", (dir_ / "tampered.pem").string()), CertPolicy{}, std::chrono::system_clock::now());
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("tampered.pem's signature does not verify with the key of cacert.pem")));

  // Judged 31 days later (past its 30-day next update), and 20 days later (within the warning).
  v = judgeCertificates(inspect("a", crl()), CertPolicy{}, std::chrono::system_clock::now() + std::chrono::hours(24 * 31));
  EXPECT_THAT(v.errors, Contains(HasSubstr("crl.pem is out of date since")));
  v = judgeCertificates(inspect("a", crl()), CertPolicy{}, std::chrono::system_clock::now() + std::chrono::hours(24 * 20));
  EXPECT_THAT(v.warnings, Contains(HasSubstr("crl.pem must be renewed by")));

  // Not a CRL at all.
  CertFacts f = inspect("a", node("a") + "/host-cert.pem");
  EXPECT_THAT(f.crl->file.loadError, HasSubstr("holds no CRL (found CERTIFICATE)"));
}

// strongSwan looks a certificate's CRL up by the CRL's authorityKeyIdentifier only. `pki crl`
// writes the CA's key id there (openssl shows it, the inspector finds it the CA's); a CRL made
// by `openssl ca -gencrl` without crl_extensions has none: refused for strongSwan (it would
// load it and never consult it), accepted for racoon (which finds it by the issuer's name).
TEST_F(PkiCrlTest, TheCrlCarriesTheCasKeyIdentifierWithoutItStrongSwanRefusesIt) {
  pki("crl --ca-dir " + ca() + " --out " + crl());
  EXPECT_THAT(sh("openssl crl -in " + crl() + " -noout -text"), HasSubstr("X509v3 Authority Key Identifier"));
  CertFacts mine = inspect("a", crl());
  ASSERT_TRUE(mine.crl);
  EXPECT_TRUE(mine.crl->hasAuthorityKeyId && mine.crl->authorityKeyIdIsCas);
  CertPolicy swan;
  swan.crlNeedsKeyId = true;
  EXPECT_TRUE(judgeCertificates(mine, swan, std::chrono::system_clock::now()).usable);

  const fs::path o = dir_ / "openssl-ca";
  fs::create_directories(o);
  std::ofstream(o / "index.txt").flush();
  std::ofstream(o / "crlnumber") << "01\n";
  std::ofstream(o / "ca.cnf") << "[ca]\ndefault_ca = g\n[g]\ndatabase = " << (o / "index.txt").string()
                              << "\ncrlnumber = " << (o / "crlnumber").string()
                              << "\ndefault_md = sha256\ndefault_crl_days = 30\n";
  const std::string bare = (dir_ / "bare.pem").string();
  sh("openssl ca -batch -config " + (o / "ca.cnf").string() + " -gencrl -keyfile " + ca() + "/ca-key.pem -cert " + ca() +
     "/cacert.pem -out " + bare + " 2>&1");
  EXPECT_THAT(sh("openssl crl -in " + bare + " -noout -text"), ::testing::Not(HasSubstr("Authority Key Identifier")));
  CertFacts f = inspect("a", bare);
  ASSERT_TRUE(f.crl);
  EXPECT_TRUE(f.crl->signedByCa) << "a valid CRL of the CA";
  EXPECT_FALSE(f.crl->hasAuthorityKeyId);
  CertVerdict v = judgeCertificates(f, swan, std::chrono::system_clock::now());
  EXPECT_FALSE(v.usable);
  EXPECT_THAT(v.errors, Contains(HasSubstr("bare.pem has no authorityKeyIdentifier")));
  EXPECT_TRUE(judgeCertificates(f, CertPolicy{}, std::chrono::system_clock::now()).usable) << "racoon: fine";
}

TEST_F(PkiCrlTest, BadRequestsGetClearErrorsAndChangeNothing) {
  std::string out;
  EXPECT_EQ(pkiStatus("revoke --ca-dir " + ca() + " --serial zz", &out), 1);
  EXPECT_THAT(out, HasSubstr("'ZZ' is not a certificate serial number"));
  EXPECT_EQ(pkiStatus("revoke --ca-dir " + ca() + " --serial 1A --reason stolen", &out), 1);
  EXPECT_THAT(out, HasSubstr("--reason 'stolen' is not one of: unspecified, keyCompromise"));
  EXPECT_EQ(pkiStatus("revoke --ca-dir " + ca(), &out), 1);
  EXPECT_THAT(out, HasSubstr("give exactly one of --cert FILE or --serial HEX"));
  pki("init-ca --dir " + (dir_ / "other").string() + " --name 'Other CA'");
  pki("issue --ca-dir " + (dir_ / "other").string() + " --ip 10.9.0.1 --out " + node("x"));
  EXPECT_EQ(pkiStatus("revoke --ca-dir " + ca() + " --cert " + node("x") + "/host-cert.pem", &out), 1);
  EXPECT_THAT(out, HasSubstr("was not issued by the CA in"));
  EXPECT_FALSE(fs::exists(ca() + "/revoked.txt")) << "nothing recorded by a refused revocation";

  pki("revoke --ca-dir " + ca() + " --cert " + node("a") + "/host-cert.pem");
  EXPECT_EQ(pkiStatus("revoke --ca-dir " + ca() + " --serial " + serialOf("a"), &out), 1);
  EXPECT_THAT(out, HasSubstr("is already revoked"));

  // A damaged revocation list is named with its line, and no CRL is written from it.
  std::ofstream(ca() + "/revoked.txt", std::ios::app) << "garbage line\n";
  EXPECT_EQ(pkiStatus("crl --ca-dir " + ca() + " --out " + crl(), &out), 1);
  EXPECT_THAT(out, HasSubstr("revoked.txt:3: not a revocation"));
  EXPECT_FALSE(fs::exists(crl()));
  EXPECT_EQ(pkiStatus("crl --ca-dir " + ca() + " --out " + crl() + " --days 0", &out), 1);
  EXPECT_THAT(out, HasSubstr("--days must be between 1 and 3650"));
  EXPECT_EQ(pkiStatus("crl --ca-dir " + (dir_ / "nope").string() + " --out " + crl(), &out), 1);
  EXPECT_THAT(out, HasSubstr("does not exist: create a CA first"));
}

TEST_F(PkiCrlTest, EachSubcommandHasItsOwnHelp) {
  std::string out;
  EXPECT_EQ(pkiStatus("revoke --help", &out), 0);
  EXPECT_THAT(out, HasSubstr("usage: ipop-ipsecd pki revoke --ca-dir DIR (--cert FILE | --serial HEX)"));
  EXPECT_EQ(pkiStatus("crl --help", &out), 0);
  EXPECT_THAT(out, HasSubstr("usage: ipop-ipsecd pki crl --ca-dir DIR --out FILE [--days N]"));
  EXPECT_EQ(pkiStatus("--help", &out), 0);
  EXPECT_THAT(out, HasSubstr("pki revoke"));
  EXPECT_THAT(out, HasSubstr("pki crl"));
}

}  // namespace
