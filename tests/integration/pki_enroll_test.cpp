// Enrollment without moving a private key: `ipop-ipsecd pki request` on the node (its key
// and a CSR), `ipop-ipsecd pki sign` on the CA machine (checks the CSR, issues the
// certificate through the same path as `pki issue`). Real binary, real OpenSSL, temp
// directories; checked from outside with the openssl CLI and with the daemon's own
// certificate judgement (OpenSslInspector + judgeCertificates).

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
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
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

std::set<std::string> namesIn(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

class PkiEnrollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IPOPSEC_REQUIRE_ROOT();  // the inspector wants host-key.pem owned by root
    dir_ = fs::temp_directory_path() / ("ipopsec-pki-enroll-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ca_ = (dir_ / "ca").string();
    int st = 0;
    std::string o = pkiCli("init-ca --dir " + ca_ + " --name 'GroupVPN CA'", &st);
    ASSERT_EQ(st, 0) << o;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `pki sign` of `csr` into dir_/signed; returns the output.
  std::string sign(const std::string& csr, int* status, const std::string& extra = "") {
    return pkiCli("sign --ca-dir " + ca_ + " --csr " + csr + " --out " + (dir_ / "signed").string() + extra, status);
  }
  // A sign that must be refused: exit 1, "error: ipop-ipsecd pki sign: CSR ..." with `why`,
  // and no certificate written.
  void expectRefused(const std::string& csr, const std::string& why, const std::string& extra = "") {
    int st = 0;
    std::string o = sign(csr, &st, extra);
    EXPECT_EQ(st, 1) << o;
    EXPECT_THAT(o, HasSubstr("error: ipop-ipsecd pki sign: " + csr)) << "names the file";
    EXPECT_THAT(o, HasSubstr(why));
    EXPECT_FALSE(fs::exists(dir_ / "signed" / "host-cert.pem")) << o;
  }

  fs::path dir_;
  std::string ca_;
};

TEST_F(PkiEnrollTest, RequestThenSignGivesAVerifiedCertificateForTheNodesOwnKey) {
  int st = 0;
  std::string node = (dir_ / "node").string(), signedDir = (dir_ / "signed").string();
  // On the node: the key and the request, nothing else.
  std::string o = pkiCli("request --ip 172.31.0.21 --dns node21.vpn --out " + node, &st);
  ASSERT_EQ(st, 0) << o;
  EXPECT_THAT(o, HasSubstr("host-key.pem (mode 0600)"));
  EXPECT_THAT(o, HasSubstr("host.csr"));
  EXPECT_EQ(modeOf(dir_ / "node" / "host-key.pem"), 0600u);
  struct stat st_key{};
  ASSERT_EQ(::stat((dir_ / "node" / "host-key.pem").c_str(), &st_key), 0);
  EXPECT_EQ(st_key.st_uid, ::getuid());
  EXPECT_EQ(namesIn(dir_ / "node"), (std::set<std::string>{"host-key.pem", "host.csr"}));
  std::string csr = readFile(dir_ / "node" / "host.csr");
  EXPECT_THAT(csr, HasSubstr("-----BEGIN CERTIFICATE REQUEST-----"));
  EXPECT_THAT(csr, Not(HasSubstr("PRIVATE"))) << "the CSR carries no private key";
  EXPECT_THAT(sh("openssl req -verify -noout -in " + node + "/host.csr"), HasSubstr("verify OK"));
  std::string reqText = sh("openssl req -text -noout -in " + node + "/host.csr");
  EXPECT_THAT(reqText, HasSubstr("Requested Extensions"));
  EXPECT_THAT(reqText, HasSubstr("IP Address:172.31.0.21"));
  EXPECT_THAT(reqText, HasSubstr("DNS:node21.vpn"));
  EXPECT_THAT(reqText, HasSubstr("Public-Key: (3072 bit)"));

  // On the CA: only the CSR travels.
  o = sign(node + "/host.csr", &st, " --backend racoon");
  ASSERT_EQ(st, 0) << o;
  EXPECT_THAT(o, HasSubstr("certified IP:172.31.0.21, DNS:node21.vpn (RSA 3072 bits)"));
  EXPECT_EQ(namesIn(dir_ / "signed"), (std::set<std::string>{"host-cert.pem", "cacert.pem"}))
      << "no key on the CA side";
  EXPECT_EQ(readFile(dir_ / "signed" / "cacert.pem"), readFile(dir_ / "ca" / "cacert.pem"));
  EXPECT_THAT(sh("openssl verify -CAfile " + signedDir + "/cacert.pem " + signedDir + "/host-cert.pem"),
              HasSubstr(": OK"));
  std::string text = sh("openssl x509 -text -noout -nameopt RFC2253 -in " + signedDir + "/host-cert.pem");
  EXPECT_THAT(text, HasSubstr("IP Address:172.31.0.21"));
  EXPECT_THAT(text, HasSubstr("DNS:node21.vpn"));
  // The same profile as `pki issue`.
  EXPECT_THAT(text, HasSubstr("Subject: CN=node21.vpn"));
  EXPECT_THAT(text, HasSubstr("CA:FALSE"));
  EXPECT_THAT(text, HasSubstr("Digital Signature, Key Encipherment"));
  EXPECT_THAT(text, HasSubstr("TLS Web Server Authentication, TLS Web Client Authentication"));
  EXPECT_THAT(text, HasSubstr("X509v3 Authority Key Identifier"));
  // It certifies the node's own key.
  EXPECT_EQ(sh("openssl x509 -noout -pubkey -in " + signedDir + "/host-cert.pem"),
            sh("openssl pkey -pubout -in " + node + "/host-key.pem"));

  // Back on the node: the set `ipop-ipsecd check` judges is usable (racoon: RSA only).
  fs::copy_file(dir_ / "signed" / "host-cert.pem", dir_ / "node" / "host-cert.pem");
  fs::copy_file(dir_ / "signed" / "cacert.pem", dir_ / "node" / "cacert.pem");
  OpenSslInspector in;
  auto v = judgeCertificates(in.inspect(node + "/cacert.pem", node + "/host-cert.pem", node + "/host-key.pem"),
                             racoonPolicy(), std::chrono::system_clock::now());
  EXPECT_TRUE(v.usable) << ::testing::PrintToString(v.errors);
  EXPECT_TRUE(v.errors.empty()) << ::testing::PrintToString(v.errors);
}

TEST_F(PkiEnrollTest, EcRequestsAreForStrongswanOnly) {
  int st = 0;
  std::string node = (dir_ / "node").string();
  std::string o = pkiCli("request --ip 10.0.0.7 --key ec --out " + node, &st);
  ASSERT_EQ(st, 0) << o;
  EXPECT_THAT(o, HasSubstr("racoon signs with RSA only"));
  expectRefused(node + "/host.csr", "has an EC key: racoon signs with RSA only", " --backend racoon");
  o = sign(node + "/host.csr", &st, " --backend strongswan");
  ASSERT_EQ(st, 0) << o;
  EXPECT_THAT(o, HasSubstr("certified IP:10.0.0.7 (EC prime256v1)"));
  std::string s = (dir_ / "signed").string();
  EXPECT_THAT(sh("openssl verify -CAfile " + s + "/cacert.pem " + s + "/host-cert.pem"), HasSubstr(": OK"));
  EXPECT_EQ(sh("openssl x509 -noout -pubkey -in " + s + "/host-cert.pem"),
            sh("openssl pkey -pubout -in " + node + "/host-key.pem"));
  OpenSslInspector in;
  auto facts = in.inspect(s + "/cacert.pem", s + "/host-cert.pem", node + "/host-key.pem");
  EXPECT_TRUE(judgeCertificates(facts, CertPolicy{}, std::chrono::system_clock::now()).usable);
}

TEST_F(PkiEnrollTest, SignRefusesBadRequestsEachWithItsOwnMessage) {
  fs::path b = dir_ / "bad";
  fs::create_directories(b);
  std::string bad = b.string();
  // No subjectAltName.
  sh("openssl req -new -newkey rsa:2048 -nodes -subj /CN=nosan -keyout " + bad + "/k1.pem -out " + bad + "/nosan.csr");
  expectRefused(bad + "/nosan.csr", "has no subjectAltName");
  // A 1024-bit RSA key (with a SAN: only the key is wrong).
  sh("openssl req -new -newkey rsa:1024 -nodes -subj /CN=weak -addext subjectAltName=IP:10.0.0.9 -keyout " + bad +
     "/k2.pem -out " + bad + "/weak.csr");
  expectRefused(bad + "/weak.csr", "has a weak key: RSA 1024 bits, at least 2048 are needed");
  // A good request whose signature was damaged: the last DER byte is in the signature.
  std::string good = makeRequestPem(generateKey(KeyKind::rsa, 2048).get(), {"10.0.0.10"}, {});
  writeText(b / "good.csr", good, 0644);
  sh("openssl req -in " + bad + "/good.csr -outform DER -out " + bad + "/good.der");
  std::string der = readFile(b / "good.der");
  ASSERT_FALSE(der.empty());
  der.back() = static_cast<char>(der.back() ^ 0x01);
  writeText(b / "flipped.der", der, 0644);
  sh("openssl req -inform DER -in " + bad + "/flipped.der -out " + bad + "/badsig.csr");
  ASSERT_NE(readFile(b / "badsig.csr"), good);
  expectRefused(bad + "/badsig.csr", "has a bad signature: the request does not verify with its own key");
  // Garbage, a truncated request, a certificate instead of a request, a key in the file, no file.
  writeText(b / "garbage.csr", "this is not a certificate request\n", 0644);
  expectRefused(bad + "/garbage.csr", "is not a certificate request: it is not PEM");
  writeText(b / "truncated.csr", good.substr(0, good.size() / 2), 0644);
  expectRefused(bad + "/truncated.csr", "is not a certificate request: it is a truncated PEM file");
  fs::copy_file(dir_ / "ca" / "cacert.pem", b / "cert.csr");
  expectRefused(bad + "/cert.csr", "is not a certificate request: it holds CERTIFICATE, not a CERTIFICATE REQUEST");
  writeText(b / "withkey.csr", good + readFile(b / "k1.pem"), 0644);
  expectRefused(bad + "/withkey.csr", "holds a private key: send only the request");
  expectRefused(bad + "/missing.csr", "No such file or directory");
  // The undamaged request is signed (the refusals were about the requests only).
  int st = 0;
  std::string o = sign(bad + "/good.csr", &st);
  EXPECT_EQ(st, 0) << o;
  EXPECT_THAT(o, HasSubstr("certified IP:10.0.0.10 (RSA 2048 bits)"));
}

TEST_F(PkiEnrollTest, NeitherOverwritesUnlessForced) {
  int st = 0;
  std::string node = (dir_ / "node").string();
  ASSERT_EQ((pkiCli("request --ip 10.0.0.1 --out " + node, &st), st), 0);
  std::string key = readFile(dir_ / "node" / "host-key.pem");
  std::string o = pkiCli("request --ip 10.0.0.1 --out " + node, &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("host-key.pem already exists: refusing to overwrite it; use --force"));
  EXPECT_EQ(readFile(dir_ / "node" / "host-key.pem"), key);
  ASSERT_EQ((sign(node + "/host.csr", &st), st), 0);
  std::string cert = readFile(dir_ / "signed" / "host-cert.pem");
  o = sign(node + "/host.csr", &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("host-cert.pem already exists: refusing to overwrite it; use --force"));
  EXPECT_EQ(readFile(dir_ / "signed" / "host-cert.pem"), cert);
  o = pkiCli("request --ip 10.0.0.1 --out " + node + " --force", &st);
  EXPECT_EQ(st, 0) << o;
  EXPECT_NE(readFile(dir_ / "node" / "host-key.pem"), key);
  EXPECT_EQ(modeOf(dir_ / "node" / "host-key.pem"), 0600u);
  o = sign(node + "/host.csr", &st, " --force");
  EXPECT_EQ(st, 0) << o;
  EXPECT_EQ(sh("openssl x509 -noout -pubkey -in " + (dir_ / "signed" / "host-cert.pem").string()),
            sh("openssl pkey -pubout -in " + node + "/host-key.pem"));
}

TEST_F(PkiEnrollTest, UsageErrorsAndPerCommandHelp) {
  int st = 0;
  std::string node = (dir_ / "node").string();
  std::string o = pkiCli("request --ip 10.0.0.1", &st);
  EXPECT_EQ(st, 64);
  EXPECT_THAT(o, HasSubstr("error: ipop-ipsecd pki request:"));
  EXPECT_THAT(o, HasSubstr("out"));
  o = pkiCli("request --out " + node, &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("give the node's VPN address with --ip"));
  o = pkiCli("request --ip 10.0.0.300 --out " + node, &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("--ip '10.0.0.300' is not an IPv4 or IPv6 address"));
  EXPECT_FALSE(fs::exists(dir_ / "node"));
  o = pkiCli("request --ip 10.0.0.1 --key dsa --out " + node, &st);
  EXPECT_EQ(st, 64);
  EXPECT_THAT(o, HasSubstr("--key must be rsa or ec"));
  o = pkiCli("sign --ca-dir " + ca_ + " --out " + node, &st);
  EXPECT_EQ(st, 64);
  EXPECT_THAT(o, HasSubstr("csr"));
  ASSERT_EQ((pkiCli("request --ip 10.0.0.1 --out " + node, &st), st), 0);
  o = sign(node + "/host.csr", &st, " --backend ipsec-tools");
  EXPECT_EQ(st, 64);
  EXPECT_THAT(o, HasSubstr("--backend must be racoon or strongswan"));
  o = pkiCli("sign --ca-dir " + (dir_ / "nope").string() + " --csr " + node + "/host.csr --out " + node, &st);
  EXPECT_EQ(st, 1);
  EXPECT_THAT(o, HasSubstr("does not exist: create a CA first"));

  o = pkiCli("request --help", &st);
  EXPECT_EQ(st, 0);
  EXPECT_THAT(o, HasSubstr("usage: ipop-ipsecd pki request"));
  EXPECT_THAT(o, HasSubstr("--out"));
  EXPECT_THAT(o, Not(HasSubstr("--ca-dir")));
  EXPECT_THAT(o, Not(HasSubstr("--csr")));
  o = pkiCli("sign -h", &st);
  EXPECT_EQ(st, 0);
  EXPECT_THAT(o, HasSubstr("usage: ipop-ipsecd pki sign"));
  EXPECT_THAT(o, HasSubstr("--csr"));
  EXPECT_THAT(o, HasSubstr("--backend"));
  EXPECT_THAT(o, Not(HasSubstr("--ip ")));
  EXPECT_THAT(o, Not(HasSubstr("--dns")));
  o = pkiCli("--help", &st);
  EXPECT_EQ(st, 0);
  EXPECT_THAT(o, HasSubstr("ipop-ipsecd pki request"));
  EXPECT_THAT(o, HasSubstr("ipop-ipsecd pki sign"));
}

}  // namespace
