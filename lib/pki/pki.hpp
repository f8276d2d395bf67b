#pragma once
// The issuance behind `ipop-ipsecd pki` over OpenSSL 3: a GroupVPN CA, node certificates,
// and enrollment (a request made on the node, signed on the CA machine). No shelling out
// to `openssl`. The daemon's certificate inspector is cert_inspector.hpp; what both use,
// openssl_support.hpp.
//
// Sources by job: certificate.cpp (keys, certificates, PEM), ca.cpp (the CA directory:
// init-ca, load, issue), enroll.cpp (request on the node, sign on the CA machine),
// node_certificate.{hpp,cpp} (what issue and sign share), pki_files.{hpp,cpp} (its files).

#include <chrono>
#include <string>
#include <vector>

#include "os/openssl/openssl_support.hpp"

namespace ipopsec {

enum class KeyKind { rsa, ec };

// RSA (default 3072 bits: racoon signs with RSA only) or EC P-256 (strongSwan).
EvpPkeyPtr generateKey(KeyKind kind, int rsaBits = 3072);

// What a certificate says. Used by issueCa/issueHost and by tests to make fixtures
// (expired, not yet valid, no SAN, SHA-1, ...).
struct CertSpec {
  std::string commonName;
  std::string organization;  // optional O=
  std::chrono::system_clock::time_point notBefore, notAfter;
  bool ca = false;                 // basicConstraints critical CA:TRUE, keyUsage keyCertSign+cRLSign
  std::vector<std::string> ips;    // subjectAltName IP:
  std::vector<std::string> dns;    // subjectAltName DNS:
  bool hostUsages = true;          // non-CA: keyUsage digitalSignature+keyEncipherment, EKU serverAuth+clientAuth
  std::string digest = "SHA256";   // signature digest ("SHA1" for weak fixtures)
};

// Makes and signs a certificate for `subjectKey`: self-signed when issuer is null
// (issuerKey = subjectKey). Random 159-bit serial, SKI/AKI. Throws PkiError.
X509Ptr makeCertificate(const CertSpec& spec, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey);

std::string privateKeyPem(EVP_PKEY* key);  // certificatePem: openssl_support.hpp  // PKCS#8, unencrypted
// Parses the first certificate / private key of a PEM text; throws PkiError.
X509Ptr parseCertificatePem(const std::string& pem);
EvpPkeyPtr parsePrivateKeyPem(const std::string& pem);

struct CaRequest {
  std::string dir;                 // created when missing (0700)
  std::string name = "GroupVPN CA";
  int days = 3650;
  KeyKind key = KeyKind::rsa;
  bool force = false;              // overwrite an existing CA in dir
};
// Writes DIR/cacert.pem (0644) and DIR/ca-key.pem (0600). Returns the files written.
std::vector<std::string> initCa(const CaRequest& req);

struct HostRequest {
  std::string caDir;               // made by initCa: cacert.pem + ca-key.pem
  std::string outDir;              // created when missing (0755)
  std::vector<std::string> ips;    // at least one IP or DNS name; the first names the subject (CN=)
  std::vector<std::string> dns;
  int days = 365;
  KeyKind key = KeyKind::rsa;
  bool force = false;              // overwrite existing host-key.pem / host-cert.pem
};
// A CA directory made by initCa (cacert.pem, ca-key.pem), loaded and checked: the key
// matches, CA:TRUE, not expired. Throws PkiError naming the file and the fix.
struct LoadedCa {
  std::string certPath, pem;
  X509Ptr cert;
  EvpPkeyPtr key;
  CertInfo info;
};
LoadedCa loadCa(const std::string& caDir);

// Writes OUT/host-key.pem (0600), OUT/host-cert.pem (0644) and OUT/cacert.pem (0644, the
// CA's certificate). Returns the files written.
std::vector<std::string> issueHost(const HostRequest& req);

// --- enrollment: the node's private key never leaves the node ---------------------------

// A PKCS#10 request (PEM) signed by `key`, subject CN = the first DNS name (else the first
// IP), asking for the subjectAltName IP:/DNS: as an extension. Throws PkiError.
std::string makeRequestPem(EVP_PKEY* key, const std::vector<std::string>& ips, const std::vector<std::string>& dns);

struct NodeRequest {               // `ipop-ipsecd pki request`, on the node
  std::string outDir;              // created when missing (0755)
  std::vector<std::string> ips;    // at least one IP or DNS name
  std::vector<std::string> dns;
  KeyKind key = KeyKind::rsa;
  bool force = false;              // overwrite existing host-key.pem / host.csr
};
// Writes OUT/host-key.pem (0600) and OUT/host.csr (0644, no private material). Returns the
// files written.
std::vector<std::string> makeRequest(const NodeRequest& req);

struct SignRequest {               // `ipop-ipsecd pki sign`, on the CA machine
  std::string caDir;               // made by initCa
  std::string csrPath;             // the node's host.csr
  std::string outDir;              // created when missing (0755)
  int days = 365;
  bool rsaOnly = false;            // --backend racoon: refuse EC keys
  bool force = false;              // overwrite an existing host-cert.pem
};
struct SignResult {
  std::vector<std::string> files;  // OUT/host-cert.pem, OUT/cacert.pem
  std::vector<std::string> ips, dns;  // what the certificate certifies (the request's subjectAltName)
  std::string key;                 // "RSA 3072 bits", "EC prime256v1"
};
// Checks the request (PEM CSR, no private key in the file, its self-signature verifies,
// a subjectAltName of IP/DNS names, RSA >= 2048 or EC P-256/384/521, RSA only when
// rsaOnly) and issues the certificate exactly as issueHost does, for the request's key.
// Writes OUT/host-cert.pem (0644) and OUT/cacert.pem (0644). Throws PkiError naming the
// file and the reason.
SignResult signRequest(const SignRequest& req);

}  // namespace ipopsec
