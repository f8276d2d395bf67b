#pragma once
// Hand-made certificate facts of a well-issued set (as OpenSslInspector would report them)
// at a fixed time, for the core's certificate and CRL judgement tests (certs_test, crl_test).

#include <chrono>
#include <string>

#include "core/certs/certs.hpp"

namespace ipopsec::test {

inline constexpr auto kDay = std::chrono::hours(24);

// 2026-06-01 00:00:00 UTC
inline const WallTime kNow = std::chrono::system_clock::from_time_t(1780272000);

inline CertInfo goodHost() {
  CertInfo c;
  c.subject = "CN=172.31.0.16";
  c.issuer = "CN=GroupVPN CA";
  c.notBefore = kNow - 10 * kDay;
  c.notAfter = kNow + 355 * kDay;
  c.subjectAltNames = {"IP:172.31.0.16"};
  c.keyType = KeyType::rsa;
  c.keyBits = 3072;
  c.signatureAlgorithm = "sha256WithRSAEncryption";
  c.signatureDigest = "SHA256";
  c.hasKeyUsage = true;
  c.keyUsageDigitalSignature = true;
  c.extendedKeyUsage = {"serverAuth", "clientAuth"};
  c.subjectHash = "0badc0de";
  return c;
}

inline CertInfo goodCa() {
  CertInfo c;
  c.subject = "CN=GroupVPN CA";
  c.issuer = c.subject;
  c.notBefore = kNow - 100 * kDay;
  c.notAfter = kNow + 3000 * kDay;
  c.keyType = KeyType::rsa;
  c.keyBits = 3072;
  c.signatureDigest = "SHA256";
  c.isCa = true;
  c.subjectHash = "1a2b3c4d";
  c.pem = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
  return c;
}

inline CertFileFacts file(const std::string& path, unsigned mode = 0644) {
  CertFileFacts f;
  f.path = path;
  f.present = true;
  f.statKnown = true;
  f.mode = mode;
  f.uid = 0;
  f.content = "PEM";
  return f;
}

// A current CRL of that CA (cert_facts' goodCa), updated a day ago, next update at `nextUpdate`,
// revoking nothing.
inline CrlFacts goodCrl(WallTime nextUpdate) {
  CrlFacts c;
  c.file = file("/etc/racoon/certs/crl.pem");
  c.issuer = "CN=GroupVPN CA";
  c.signatureChecked = c.signedByCa = true;
  c.hasAuthorityKeyId = c.authorityKeyIdIsCas = true;
  c.lastUpdate = kNow - kDay;
  c.nextUpdate = nextUpdate;
  return c;
}

inline CertFacts good() {
  CertFacts f;
  f.ca = file("/etc/racoon/certs/cacert.pem");
  f.cert = file("/etc/racoon/certs/host-cert.pem");
  f.key = file("/etc/racoon/certs/host-key.pem", 0600);
  f.caCerts = {goodCa()};
  f.hostCert = goodHost();
  f.keyType = KeyType::rsa;
  f.keyBits = 3072;
  f.keyMatchesCert = true;
  f.chainChecked = true;
  f.chainOk = true;
  f.fingerprint = "f";
  return f;
}

}  // namespace ipopsec::test
