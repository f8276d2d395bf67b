#pragma once
// OpenSSL 3 adapters for certificates: the CertificateInspector that reads and parses
// cacert.pem / host-cert.pem / host-key.pem into plain facts (every judgement is core's,
// core/certs.hpp), and the issuance behind `ipop-ipsecd pki` (a GroupVPN CA, node
// certificates). No shelling out to `openssl`; every OpenSSL handle is owned by a
// unique_ptr with its free function.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/ports.hpp"

namespace ipopsec {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

class OpenSslInspector final : public CertificateInspector {
 public:
  // Files larger than this are refused ("is too large"): no certificate set is near it.
  static constexpr std::size_t kMaxFileSize = 1024 * 1024;

  CertFacts inspect(const std::string& ca, const std::string& cert, const std::string& key) override;
  std::vector<HashFileFacts> hashFiles(const std::string& dir, const std::vector<std::string>& hashes) override;
};

// --- issuance ---------------------------------------------------------------------------

// A problem that stops `pki` (missing or wrong CA directory, a file that would be
// overwritten, an OpenSSL failure); the message says what and how to fix it.
class PkiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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

std::string certificatePem(X509* cert);
std::string privateKeyPem(EVP_PKEY* key);  // PKCS#8, unencrypted
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
