// revoked_peers: swanctl's --list-certs and --list-sas output (as strongSwan 5.9.8 printed it
// on a node whose trap had set up an IKE_SA with a peer) parsed, and the IKE_SAs to cut for a
// revoked serial found through the peer certificate's subject.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/certs/revoked_peers.hpp"

using namespace ipopsec;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

namespace {

const char* kCerts = R"(

List of X.509 End Entity Certificates

  subject:  "CN=172.31.0.16"
  issuer:   "CN=GroupVPN CA"
  validity:  not before Dec 07 01:24:56 2026, ok
             not after  Dec 09 02:24:56 2026, ok (expires in 47 hours)
  serial:    1a:98:af:91:e6:8d:dd:47:8c:0e:e0:47:be:9c:c4:33:79:ce:8f:36
  altNames:  172.31.0.16
  flags:     serverAuth clientAuth 
  authkeyId: 36:ab:1f:c3:ff:f6:a6:69:d6:cf:24:20:59:5f:de:3e:55:b3:67:9c
  subjkeyId: 37:27:e9:51:71:fa:75:84:de:f0:0d:ec:b8:d3:cc:f6:e8:c6:66:26
  pubkey:    ECDSA 256 bits, has private key
  keyid:     d1:e0:8a:f0:16:f5:a4:86:1e:d7:65:9c:16:71:e8:46:84:27:54:fb
  subjkey:   37:27:e9:51:71:fa:75:84:de:f0:0d:ec:b8:d3:cc:f6:e8:c6:66:26

  subject:  "CN=172.31.0.20"
  issuer:   "CN=GroupVPN CA"
  validity:  not before Dec 07 01:24:56 2026, ok
             not after  Dec 09 02:24:56 2026, ok (expires in 47 hours)
  serial:    7d:b6:18:c2:e4:1e:04:45:69:01:8b:56:2c:1d:83:de:ec:c5:53:71
  altNames:  172.31.0.20
  flags:     serverAuth clientAuth 
  authkeyId: 36:ab:1f:c3:ff:f6:a6:69:d6:cf:24:20:59:5f:de:3e:55:b3:67:9c
  subjkeyId: 66:c8:1d:dc:b3:9c:42:22:e6:d0:33:07:78:f7:d4:81:d7:f0:e9:3a
  pubkey:    ECDSA 256 bits
  keyid:     b9:2c:17:81:a5:3f:8f:4a:1a:07:11:8f:96:ad:24:12:88:f1:1d:5f
  subjkey:   66:c8:1d:dc:b3:9c:42:22:e6:d0:33:07:78:f7:d4:81:d7:f0:e9:3a

List of X.509 CA Certificates

  subject:  "CN=GroupVPN CA"
  issuer:   "CN=GroupVPN CA"
  validity:  not before Dec 07 01:24:56 2026, ok
             not after  Dec 09 02:24:56 2026, ok (expires in 47 hours)
  serial:    46:b4:47:6f:d9:6e:e4:22:d1:f5:9b:5d:ba:6a:32:13:a5:f6:27:56
  flags:     CA CRLSign self-signed 
  subjkeyId: 36:ab:1f:c3:ff:f6:a6:69:d6:cf:24:20:59:5f:de:3e:55:b3:67:9c
  pubkey:    ECDSA 256 bits
  keyid:     27:0f:84:a4:a7:8f:e2:65:d5:20:2c:d1:2c:80:3b:d5:8d:89:7f:55
  subjkey:   36:ab:1f:c3:ff:f6:a6:69:d6:cf:24:20:59:5f:de:3e:55:b3:67:9c

List of X.509 CRLs

  issuer:   "CN=GroupVPN CA"
  update:    this on Dec 07 02:24:56 2026, ok
             next on Jan 06 02:24:56 2027, ok (expires in 29 days)
  serial:    01
  authKeyId: 36:ab:1f:c3:ff:f6:a6:69:d6:cf:24:20:59:5f:de:3e:55:b3:67:9c
  0 revoked certificates
)";

// Two IKE_SAs (the second with a CHILD_SA, whose indented lines name local/remote too).
const char* kSas = R"(ipop-ipsec-172-31-0-0-16: #1, ESTABLISHED, IKEv2, 956d05702972dbf9_i* 3049caf150d7960b_r
  local  'CN=172.31.0.16' @ 172.31.0.16[500]
  remote 'CN=172.31.0.20' @ 172.31.0.20[500]
  AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048
  established 1s ago, rekeying in 28269s
ipop-ipsec-172-31-0-0-16: #7, ESTABLISHED, IKEv2, 1111111111111111_i 2222222222222222_r*
  local  'CN=172.31.0.16' @ 172.31.0.16[500]
  remote 'CN=172.31.0.30' @ 172.31.0.30[500]
  AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048
  established 3s ago, rekeying in 28000s
  ipop-ipsec-172-31-0-0-16: #2, reqid 1, INSTALLED, TRANSPORT, ESP:AES_CBC-256/HMAC_SHA2_256_128
    installed 3s ago, rekeying in 3400s, expires in 3960s
    in  c1e5a6b3,      0 bytes,     0 packets
    out c3c0b0d2,      0 bytes,     0 packets
    local  172.31.0.16/32
    remote 172.31.0.30/32
)";

TEST(RevokedPeers, NormalizesSerialsLikeOpensslAndSwanctlPrintThem) {
  EXPECT_EQ(normalizeSerial("7d:b6:18:c2"), "7DB618C2");
  EXPECT_EQ(normalizeSerial("7DB618C2"), "7DB618C2");
  EXPECT_EQ(normalizeSerial("00:9a:01"), "9A01");
  EXPECT_EQ(normalizeSerial("F"), "0F");
  EXPECT_EQ(normalizeSerial("00"), "00");
  EXPECT_EQ(normalizeSerial("zz"), "");
}

TEST(RevokedPeers, ParsesTheEndEntityAndCaCertificatesButNotTheCrlsNumber) {
  auto certs = parseSwanctlCerts(kCerts);
  ASSERT_EQ(certs.size(), 3u);
  EXPECT_EQ(certs[1].subject, "CN=172.31.0.20");
  EXPECT_EQ(certs[1].serial, "7DB618C2E41E044569018B562C1D83DEECC55371");
  EXPECT_EQ(certs[2].subject, "CN=GroupVPN CA");
}

TEST(RevokedPeers, ParsesEachIkeSaWithItsRemoteIdentityAndHost) {
  auto sas = parseSwanctlSas(kSas);
  ASSERT_EQ(sas.size(), 2u);
  EXPECT_EQ(sas[0].name, "ipop-ipsec-172-31-0-0-16");
  EXPECT_EQ(sas[0].id, 1u);
  EXPECT_EQ(sas[0].state, "ESTABLISHED");
  EXPECT_EQ(sas[0].remoteId, "CN=172.31.0.20");
  EXPECT_EQ(sas[0].remoteHost, "172.31.0.20");
  EXPECT_EQ(sas[1].id, 7u);
  EXPECT_EQ(sas[1].remoteId, "CN=172.31.0.30") << "not the CHILD_SA's 'remote 172.31.0.30/32'";
  EXPECT_EQ(sas[1].remoteHost, "172.31.0.30");
}

TEST(RevokedPeers, ARevokedSerialCutsExactlyThatPeersIkeSas) {
  auto certs = parseSwanctlCerts(kCerts);
  auto sas = parseSwanctlSas(kSas);
  std::vector<std::string> unknown;
  auto cut = revokedPeerSas(certs, sas, {"7DB618C2E41E044569018B562C1D83DEECC55371", "0F"}, &unknown);
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_EQ(cut[0].sa.id, 1u);
  EXPECT_EQ(cut[0].sa.remoteHost, "172.31.0.20");
  EXPECT_EQ(cut[0].serial, "7DB618C2E41E044569018B562C1D83DEECC55371");
  EXPECT_THAT(unknown, ElementsAre("0F")) << "no certificate charon holds has it";
  EXPECT_THAT(revokedPeerSas(certs, sas, {"1A98AF91E68DDD478C0EE047BE9CC43379CE8F36"}), IsEmpty())
      << "this node's own certificate: no IKE_SA has it as the remote identity";
}

TEST(RevokedPeers, AnIkeSaWhosePeerCertificateCharonNoLongerHoldsIsUnmapped) {
  auto certs = parseSwanctlCerts(kCerts);
  auto sas = parseSwanctlSas(kSas);
  auto unmapped = unmappedSas(certs, sas);
  ASSERT_EQ(unmapped.size(), 1u) << "CN=172.31.0.30's certificate is not in the list";
  EXPECT_EQ(unmapped[0].id, 7u);
  sas[1].state = "CONNECTING";
  EXPECT_THAT(unmappedSas(certs, sas), IsEmpty()) << "not authenticated yet: it checks the new CRL";
  sas[1].state = "ESTABLISHED";
  certs.push_back(SwanctlCert{"CN=172.31.0.30", "0F"});
  EXPECT_THAT(unmappedSas(certs, sas), IsEmpty());
}

}  // namespace
