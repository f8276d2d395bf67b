// The OpenSSL adapter (pki/pki.hpp) on real files in a temp directory: every kind of bad
// certificate set gives its own clear error through judgeCertificates; and the
// `ipop-ipsecd pki` command, checked from outside with the openssl CLI.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/certs/certs.hpp"
#include "integration/netns.hpp"
#include "integration/pki_cli.hpp"
#include "integration/pki_fixtures.hpp"
#include "os/openssl/cert_inspector.hpp"
#include "pki/pki.hpp"
#include "support/read_file.hpp"

using namespace ipopsec;
using namespace ipopsec::test;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

namespace {

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();
    enterFreshNetns();
    dir_ = fs::temp_directory_path() / ("ipopsec-pki-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "certs");
    ca_ = makeTestCa();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path certs() const { return dir_ / "certs"; }
  CertFacts inspect() {
    OpenSslInspector in;
    return in.inspect((certs() / "cacert.pem").string(), (certs() / "host-cert.pem").string(),
                      (certs() / "host-key.pem").string());
  }
  CertVerdict verdict(CertPolicy p = racoonPolicy()) {
    return judgeCertificates(inspect(), p, std::chrono::system_clock::now());
  }

  fs::path dir_;
  TestCa ca_;
};

TEST_F(PkiTest, AGoodSetGivesTheFactsAndIsUsable) {
  writeHostSet(certs(), ca_);
  auto f = inspect();
  EXPECT_THAT(f.ca.loadError, IsEmpty());
  EXPECT_THAT(f.cert.loadError, IsEmpty());
  EXPECT_THAT(f.key.loadError, IsEmpty());
  ASSERT_TRUE(f.hostCert);
  EXPECT_EQ(f.hostCert->subject, "CN=10.254.0.16");
  EXPECT_EQ(f.hostCert->issuer, "CN=Test GroupVPN CA");
  EXPECT_THAT(f.hostCert->subjectAltNames, ElementsAre("IP:10.254.0.16"));
  EXPECT_EQ(f.hostCert->keyType, KeyType::rsa);
  EXPECT_EQ(f.hostCert->keyBits, 2048);
  EXPECT_EQ(f.hostCert->signatureDigest, "SHA256");
  EXPECT_EQ(f.hostCert->signatureAlgorithm, "sha256WithRSAEncryption");
  EXPECT_TRUE(f.hostCert->keyUsageDigitalSignature);
  EXPECT_THAT(f.hostCert->extendedKeyUsage, ElementsAre("serverAuth", "clientAuth"));
  EXPECT_FALSE(f.hostCert->isCa);
  ASSERT_EQ(f.caCerts.size(), 1u);
  EXPECT_TRUE(f.caCerts[0].isCa);
  // The subject hash racoon looks the CA up by, exactly as `openssl x509 -hash` prints it.
  std::string hash = sh("openssl x509 -hash -noout -in " + (certs() / "cacert.pem").string());
  EXPECT_EQ(f.caCerts[0].subjectHash + "\n", hash);
  EXPECT_EQ(f.caCerts[0].pem, readFile(certs() / "cacert.pem"));
  EXPECT_EQ(f.keyMatchesCert, true);
  EXPECT_TRUE(f.chainChecked);
  EXPECT_TRUE(f.chainOk) << f.chainError;
  EXPECT_EQ(f.key.mode, 0600u);
  EXPECT_EQ(f.key.uid, 0u);
  auto v = verdict();
  EXPECT_TRUE(v.usable) << ::testing::PrintToString(v.errors);
  EXPECT_THAT(v.warnings, IsEmpty());
}

TEST_F(PkiTest, ExpiredAndNotYetValid) {
  auto spec = hostSpec();
  spec.notBefore = std::chrono::system_clock::now() - std::chrono::hours(24 * 10);
  spec.notAfter = std::chrono::system_clock::now() - std::chrono::hours(24);
  writeHostSet(certs(), ca_, spec);
  EXPECT_THAT(verdict().errors, ElementsAre(HasSubstr("host-cert.pem expired on")));
  spec.notBefore = std::chrono::system_clock::now() + std::chrono::hours(24);
  spec.notAfter = std::chrono::system_clock::now() + std::chrono::hours(48);
  writeHostSet(certs(), ca_, spec);
  EXPECT_THAT(verdict().errors, ElementsAre(HasSubstr("host-cert.pem is not valid before")));
}

TEST_F(PkiTest, WrongCa) {
  writeHostSet(certs(), makeTestCa("Another CA"));
  writeText(certs() / "cacert.pem", certificatePem(ca_.cert.get()), 0644);
  EXPECT_THAT(verdict().errors,
              ElementsAre(HasSubstr("host-cert.pem is not signed by cacert.pem: unable to get local issuer certificate")));
}

TEST_F(PkiTest, SeveralCaCertificatesInTheCaFile) {
  writeHostSet(certs(), ca_);
  auto other = makeTestCa("Other CA");
  writeText(certs() / "cacert.pem", certificatePem(other.cert.get()) + certificatePem(ca_.cert.get()), 0644);
  auto f = inspect();
  EXPECT_EQ(f.caCerts.size(), 2u);
  EXPECT_TRUE(f.chainOk) << f.chainError;
  EXPECT_TRUE(verdict().usable);
}

TEST_F(PkiTest, NoSubjectAltName) {
  auto spec = hostSpec();
  spec.ips.clear();
  writeHostSet(certs(), ca_, spec);
  EXPECT_THAT(verdict().errors, ElementsAre(HasSubstr("host-cert.pem has no subjectAltName")));
}

TEST_F(PkiTest, KeyMismatch) {
  writeHostSet(certs(), ca_);
  auto other = generateKey(KeyKind::rsa, 2048);
  writeText(certs() / "host-key.pem", privateKeyPem(other.get()), 0600);
  EXPECT_THAT(verdict().errors, ElementsAre(HasSubstr("host-key.pem does not match host-cert.pem")));
}

TEST_F(PkiTest, KeyReadableByOthers) {
  writeHostSet(certs(), ca_);
  ::chmod((certs() / "host-key.pem").c_str(), 0644);
  EXPECT_THAT(verdict().errors,
              ElementsAre("host-key.pem is readable by group/other (mode 0644): chmod 600 " + (certs() / "host-key.pem").string()));
}

TEST_F(PkiTest, KeyNotOwnedByRoot) {
  writeHostSet(certs(), ca_);
  ASSERT_EQ(::chown((certs() / "host-key.pem").c_str(), 65534, 65534), 0);
  EXPECT_THAT(verdict().errors, ElementsAre(AllOf(HasSubstr("host-key.pem is owned by uid 65534, not root"),
                                                  HasSubstr("chown root:root"))));
}

TEST_F(PkiTest, TruncatedGarbageEmptyDirectoryAndSymlinkLoop) {
  writeHostSet(certs(), ca_);
  std::string cert = readFile(certs() / "host-cert.pem");
  auto only = [&](const std::string& needle) {
    auto v = verdict();
    EXPECT_FALSE(v.usable);
    EXPECT_THAT(v.errors, ElementsAre(HasSubstr(needle)));
  };
  writeText(certs() / "host-cert.pem", cert.substr(0, cert.size() / 2), 0644);
  only("host-cert.pem is a truncated PEM file: '-----BEGIN CERTIFICATE-----' has no END line");
  std::string garbage;
  for (int i = 0; i < 700; ++i) garbage += static_cast<char>((i * 7919) % 256);
  writeText(certs() / "host-cert.pem", garbage, 0644);
  only("host-cert.pem is not a PEM file (no '-----BEGIN' line)");
  writeText(certs() / "host-cert.pem", "", 0644);
  only("host-cert.pem is empty");
  writeText(certs() / "host-cert.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all !!\n-----END CERTIFICATE-----\n", 0644);
  only("host-cert.pem holds a damaged certificate");
  fs::remove(certs() / "host-cert.pem");
  fs::create_directory(certs() / "host-cert.pem");
  only("host-cert.pem is a directory, not a file");
  fs::remove(certs() / "host-cert.pem");
  fs::create_symlink("host-cert.pem", certs() / "host-cert.pem");
  only("host-cert.pem is a symlink loop");
  fs::remove(certs() / "host-cert.pem");
  only("host-cert.pem does not exist");
}

TEST_F(PkiTest, WrongKindsOfPemAndAnEncryptedKey) {
  writeHostSet(certs(), ca_);
  std::string key = readFile(certs() / "host-key.pem"), cert = readFile(certs() / "host-cert.pem");
  writeText(certs() / "host-key.pem", cert, 0600);
  EXPECT_THAT(verdict().errors, ElementsAre(HasSubstr("host-key.pem holds no private key (found CERTIFICATE)")));
  writeText(certs() / "host-key.pem", key, 0600);
  writeText(certs() / "cacert.pem", key, 0644);
  EXPECT_THAT(verdict().errors, ElementsAre(HasSubstr("cacert.pem holds no certificate (found PRIVATE KEY)")));
  writeHostSet(certs(), ca_);
  sh("openssl pkey -in " + (certs() / "host-key.pem").string() + " -aes256 -passout pass:secret -out " +
     (dir_ / "enc.pem").string());
  writeText(certs() / "host-key.pem", readFile(dir_ / "enc.pem"), 0600);
  EXPECT_THAT(verdict().errors, ElementsAre(HasSubstr("host-key.pem is encrypted with a passphrase")));
}

TEST_F(PkiTest, WeakSignatureWarnsOrIsRefused) {
  auto spec = hostSpec();
  spec.digest = "SHA1";
  writeHostSet(certs(), ca_, spec);
  auto v = verdict();
  EXPECT_TRUE(v.usable);
  EXPECT_THAT(v.warnings, ElementsAre(HasSubstr("signed with SHA1 (sha1WithRSAEncryption)")));
  auto p = racoonPolicy();
  p.weak = WeakCertPolicy::refuse;
  EXPECT_FALSE(verdict(p).usable);
}

TEST_F(PkiTest, HashCopiesAreOnlyTheMarkedOnes) {
  writeText(certs() / "1a2b3c4d.0", std::string(kHashCopyMarker) + " of x\n-----BEGIN CERTIFICATE-----\n", 0644);
  writeText(certs() / "5e6f7a8b.0", "-----BEGIN CERTIFICATE-----\n", 0644);
  writeText(certs() / "notahash.0", std::string(kHashCopyMarker), 0644);
  fs::create_symlink("1a2b3c4d.0", certs() / "1a2b3c4d.1");
  OpenSslInspector in;
  EXPECT_THAT(in.hashCopies(certs().string()), ElementsAre((certs() / "1a2b3c4d.0").string()));
  EXPECT_THAT(in.hashCopies((dir_ / "missing").string()), IsEmpty());
}

TEST_F(PkiTest, HashFilesDescribeLinksCopiesAndForeignFilesOnlyReadingThroughLinks) {
  writeHostSet(certs(), ca_);
  std::string caPem = certificatePem(ca_.cert.get());
  std::string hash = inspect().caCerts.at(0).subjectHash;
  TestCa other = makeTestCa("Another CA");
  fs::create_directories(dir_ / "outside");
  writeText(dir_ / "outside" / "bundle.pem", certificatePem(other.cert.get()) + caPem, 0644);
  fs::create_symlink("cacert.pem", certs() / (hash + ".0"));                        // c_rehash's
  fs::create_symlink((dir_ / "outside" / "bundle.pem"), certs() / (hash + ".1"));  // a bundle outside
  fs::create_symlink("gone.pem", certs() / (hash + ".2"));                          // dangling
  writeText(certs() / (hash + ".3"), certificatePem(other.cert.get()), 0644);       // another CA's
  writeText(certs() / (hash + ".4"), "garbage\n", 0644);                            // not a certificate
  writeText(certs() / (hash + ".5"), std::string(kHashCopyMarker) + " of x\n" + caPem, 0644);  // the daemon's
  writeText(certs() / (hash + ".06"), caPem, 0644);                                 // no lookup slot
  writeText(certs() / "0badc0de.0", "garbage\n", 0644);                            // another hash: not read
  OpenSslInspector in;
  auto files = in.hashFiles(certs().string(), {hash});
  ASSERT_EQ(files.size(), 8u);
  auto at = [&](const std::string& name) {
    for (const auto& f : files)
      if (f.path == (certs() / name).string()) return f;
    ADD_FAILURE() << name << " not listed";
    return HashFileFacts{};
  };
  auto link0 = at(hash + ".0");
  EXPECT_TRUE(link0.symlink);
  EXPECT_EQ(link0.target, "cacert.pem");
  EXPECT_EQ(link0.index, 0);
  EXPECT_EQ(link0.hash, hash);
  EXPECT_FALSE(link0.owned);
  EXPECT_EQ(link0.loadError, "");
  ASSERT_EQ(link0.certs.size(), 1u);
  EXPECT_EQ(link0.certs[0].pem, caPem);
  auto bundle = at(hash + ".1");
  ASSERT_EQ(bundle.certs.size(), 2u);
  EXPECT_EQ(bundle.certs[0].subject, "CN=Another CA");
  EXPECT_EQ(bundle.certs[1].pem, caPem);
  auto dangling = at(hash + ".2");
  EXPECT_TRUE(dangling.symlink);
  EXPECT_TRUE(dangling.dangling);
  EXPECT_EQ(dangling.target, "gone.pem");
  EXPECT_THAT(dangling.certs, IsEmpty());
  auto foreign = at(hash + ".3");
  EXPECT_FALSE(foreign.symlink);
  ASSERT_EQ(foreign.certs.size(), 1u);
  EXPECT_EQ(foreign.certs[0].subject, "CN=Another CA");
  EXPECT_THAT(at(hash + ".4").loadError, HasSubstr("is not a PEM file"));
  auto own = at(hash + ".5");
  EXPECT_TRUE(own.owned);
  EXPECT_EQ(at(hash + ".06").index, -1);
  auto unread = at("0badc0de.0");
  EXPECT_EQ(unread.loadError, "");
  EXPECT_THAT(unread.certs, IsEmpty()) << "entries of other hashes are listed, not read";
  EXPECT_THAT(in.hashCopies(certs().string()), ElementsAre((certs() / (hash + ".5")).string()));

  // And the core's decision over these real facts: the links serve, the rest is named.
  auto plan = planHashFiles(inspect().caCerts, files, certs().string(), (certs() / "cacert.pem").string());
  EXPECT_THAT(plan.copies, IsEmpty());
  ASSERT_EQ(plan.problems.size(), 3u);
  EXPECT_THAT(plan.problems[0], HasSubstr("is a dangling symlink (to gone.pem"));
  EXPECT_THAT(plan.problems[1], HasSubstr("holds another CA's certificate (CN=Another CA)"));
  EXPECT_THAT(plan.problems[2], HasSubstr("is not a certificate"));
}

// --- ipop-ipsecd pki -------------------------------------------------------------------------

TEST_F(PkiTest, InitCaAndIssueMakeCertificatesThatOpensslAccepts) {
  int st = 0;
  std::string ca = (dir_ / "ca").string(), out = (dir_ / "node16").string();
  std::string o = pkiCli("init-ca --dir " + ca + " --name 'GroupVPN CA' --days 100", &st);
  ASSERT_EQ(st, 0) << o;
  EXPECT_EQ(modeOf(dir_ / "ca" / "ca-key.pem"), 0600u);
  // -nameopt RFC2253: the DN as 'CN=x' from every OpenSSL (3.0 prints 'CN = x' by default, 3.5 'CN=x').
  std::string caText = sh("openssl x509 -text -noout -nameopt RFC2253 -in " + ca + "/cacert.pem");
  EXPECT_THAT(caText, HasSubstr("CA:TRUE"));
  EXPECT_THAT(caText, HasSubstr("Certificate Sign, CRL Sign"));
  EXPECT_THAT(caText, HasSubstr("Subject: CN=GroupVPN CA"));
  EXPECT_THAT(caText, HasSubstr("X509v3 Subject Key Identifier"));
  o = pkiCli("issue --ca-dir " + ca + " --ip 172.31.0.16 --dns node16.vpn --out " + out, &st);
  ASSERT_EQ(st, 0) << o;
  EXPECT_THAT(o, HasSubstr("host-key.pem (mode 0600)"));
  EXPECT_EQ(modeOf(dir_ / "node16" / "host-key.pem"), 0600u);
  EXPECT_EQ(readFile(dir_ / "node16" / "cacert.pem"), readFile(dir_ / "ca" / "cacert.pem"));
  // Outside checks with the openssl CLI.
  EXPECT_THAT(sh("openssl verify -CAfile " + out + "/cacert.pem " + out + "/host-cert.pem"), HasSubstr(": OK"));
  std::string text = sh("openssl x509 -text -noout -nameopt RFC2253 -in " + out + "/host-cert.pem");
  EXPECT_THAT(text, HasSubstr("IP Address:172.31.0.16"));
  EXPECT_THAT(text, HasSubstr("DNS:node16.vpn"));
  EXPECT_THAT(text, HasSubstr("TLS Web Server Authentication, TLS Web Client Authentication"));
  EXPECT_THAT(text, HasSubstr("Digital Signature, Key Encipherment"));
  EXPECT_THAT(text, HasSubstr("Public-Key: (3072 bit)")) << "RSA 3072 by default (racoon signs with RSA only)";
  EXPECT_THAT(text, HasSubstr("Subject: CN=node16.vpn"));
  EXPECT_THAT(text, HasSubstr("X509v3 Authority Key Identifier"));
  EXPECT_THAT(sh("openssl pkey -noout -in " + out + "/host-key.pem && echo key-ok"), HasSubstr("key-ok"));
  // And the daemon's own check accepts them.
  OpenSslInspector in;
  auto v = judgeCertificates(in.inspect(out + "/cacert.pem", out + "/host-cert.pem", out + "/host-key.pem"), racoonPolicy(),
                             std::chrono::system_clock::now());
  EXPECT_TRUE(v.usable) << ::testing::PrintToString(v.errors);
  // Two issues give different serials.
  std::string serial1 = sh("openssl x509 -serial -noout -in " + out + "/host-cert.pem");
  o = pkiCli("issue --ca-dir " + ca + " --ip 172.31.0.17 --out " + (dir_ / "node17").string(), &st);
  ASSERT_EQ(st, 0) << o;
  EXPECT_NE(sh("openssl x509 -serial -noout -in " + (dir_ / "node17" / "host-cert.pem").string()), serial1);
  EXPECT_THAT(sh("openssl x509 -subject -noout -nameopt RFC2253 -in " + (dir_ / "node17" / "host-cert.pem").string()),
              HasSubstr("subject=CN=172.31.0.17\n"));
}

TEST_F(PkiTest, RefusesToOverwriteUnlessForced) {
  int st = 0;
  std::string ca = (dir_ / "ca").string(), out = (dir_ / "node").string();
  ASSERT_EQ((pkiCli("init-ca --dir " + ca + " --name CA", &st), st), 0);
  std::string key = readFile(dir_ / "ca" / "ca-key.pem");
  std::string o = pkiCli("init-ca --dir " + ca + " --name CA", &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("already exists: refusing to overwrite a CA"));
  EXPECT_EQ(readFile(dir_ / "ca" / "ca-key.pem"), key);
  ASSERT_EQ((pkiCli("issue --ca-dir " + ca + " --ip 10.0.0.1 --out " + out, &st), st), 0);
  std::string hostKey = readFile(dir_ / "node" / "host-key.pem");
  o = pkiCli("issue --ca-dir " + ca + " --ip 10.0.0.1 --out " + out, &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("host-key.pem already exists: refusing to overwrite it; use --force"));
  EXPECT_EQ(readFile(dir_ / "node" / "host-key.pem"), hostKey);
  o = pkiCli("issue --ca-dir " + ca + " --ip 10.0.0.1 --out " + out + " --force", &st);
  EXPECT_EQ(st, 0) << o;
  EXPECT_NE(readFile(dir_ / "node" / "host-key.pem"), hostKey);
}

TEST_F(PkiTest, ClearErrorsForAMissingOrWrongCaDirectoryAndBadArguments) {
  int st = 0;
  std::string o = pkiCli("issue --ca-dir " + (dir_ / "nope").string() + " --ip 10.0.0.1 --out " + (dir_ / "o").string(), &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("does not exist: create a CA first with 'ipop-ipsecd pki init-ca"));
  EXPECT_FALSE(fs::exists(dir_ / "o"));
  fs::create_directories(dir_ / "notca");
  writeText(dir_ / "notca" / "cacert.pem", certificatePem(ca_.cert.get()), 0644);
  o = pkiCli("issue --ca-dir " + (dir_ / "notca").string() + " --ip 10.0.0.1 --out " + (dir_ / "o").string(), &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("is not a CA directory: " + (dir_ / "notca" / "ca-key.pem").string() + " does not exist"));
  writeText(dir_ / "notca" / "ca-key.pem", privateKeyPem(generateKey(KeyKind::rsa, 2048).get()), 0600);
  o = pkiCli("issue --ca-dir " + (dir_ / "notca").string() + " --ip 10.0.0.1 --out " + (dir_ / "o").string(), &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("ca-key.pem does not match"));
  writeText(dir_ / "notca" / "cacert.pem", "garbage", 0644);
  o = pkiCli("issue --ca-dir " + (dir_ / "notca").string() + " --ip 10.0.0.1 --out " + (dir_ / "o").string(), &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("cacert.pem is not a PEM certificate"));
  ASSERT_EQ((pkiCli("init-ca --dir " + (dir_ / "ca").string(), &st), st), 0);
  o = pkiCli("issue --ca-dir " + (dir_ / "ca").string() + " --ip 10.0.0.300 --out " + (dir_ / "o").string(), &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("--ip '10.0.0.300' is not an IPv4 or IPv6 address"));
  o = pkiCli("issue --ca-dir " + (dir_ / "ca").string() + " --out " + (dir_ / "o").string(), &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("give the node's VPN address with --ip"));
  o = pkiCli("issue --ip 10.0.0.1 --out " + (dir_ / "o").string(), &st);
  EXPECT_EQ(st, 64);
  EXPECT_THAT(o, HasSubstr("ca-dir"));
  o = pkiCli("init-ca --dir " + (dir_ / "ca2").string() + " --key dsa", &st);
  EXPECT_EQ(st, 64);
  EXPECT_THAT(o, HasSubstr("--key must be rsa or ec"));
  o = pkiCli("renew", &st);
  EXPECT_EQ(st, 64);
  EXPECT_THAT(o, HasSubstr("unknown subcommand 'renew'"));
  o = pkiCli("", &st);
  EXPECT_EQ(st, 64);
}

TEST_F(PkiTest, EcKeysAreForStrongswanOnly) {
  int st = 0;
  std::string ca = (dir_ / "ca").string(), out = (dir_ / "node").string();
  ASSERT_EQ((pkiCli("init-ca --dir " + ca + " --key ec", &st), st), 0);
  std::string o = pkiCli("issue --ca-dir " + ca + " --ip 10.0.0.1 --key ec --out " + out, &st);
  ASSERT_EQ(st, 0) << o;
  EXPECT_THAT(o, HasSubstr("racoon signs with RSA only"));
  EXPECT_THAT(sh("openssl verify -CAfile " + out + "/cacert.pem " + out + "/host-cert.pem"), HasSubstr(": OK"));
  OpenSslInspector in;
  auto facts = in.inspect(out + "/cacert.pem", out + "/host-cert.pem", out + "/host-key.pem");
  auto now = std::chrono::system_clock::now();
  EXPECT_THAT(judgeCertificates(facts, racoonPolicy(), now).errors, ElementsAre(HasSubstr("has an EC key: racoon signs with RSA only")));
  EXPECT_TRUE(judgeCertificates(facts, CertPolicy{}, now).usable);
}

TEST_F(PkiTest, CheckCommandPrintsEveryProblemAndExitsOne) {
  std::string cfg = (dir_ / "ipop-ipsecd.yaml").string();
  std::ofstream(cfg) << "racoon:\n  certificate_dir: " << certs().string() << "\n";
  writeHostSet(certs(), ca_);
  std::string out;
  EXPECT_EQ(shStatus(std::string(IPOPSEC_BINARY) + " check --config " + cfg, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("CN=10.254.0.16 (IP:10.254.0.16), RSA 2048 bits, valid until"));
  EXPECT_THAT(out, HasSubstr("ok"));
  auto spec = hostSpec();
  spec.ips.clear();
  writeHostSet(certs(), makeTestCa("Another CA"), spec);
  writeText(certs() / "cacert.pem", certificatePem(ca_.cert.get()), 0644);
  ::chmod((certs() / "host-key.pem").c_str(), 0640);
  EXPECT_EQ(shStatus(std::string(IPOPSEC_BINARY) + " check --config " + cfg, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("error: host-key.pem is readable by group/other (mode 0640)"));
  EXPECT_THAT(out, HasSubstr("error: host-cert.pem has no subjectAltName"));
  EXPECT_THAT(out, HasSubstr("error: host-cert.pem is not signed by cacert.pem"));
  EXPECT_THAT(out, HasSubstr("3 certificate problems"));
}

}  // namespace
