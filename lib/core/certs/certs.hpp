#pragma once
// Certificates: plain facts about the CA file, the host certificate and its private key,
// extracted by the OS adapter (pki/pki.hpp, OpenSSL 3), and the pure judgement over them
// (time validity, subjectAltName, key/certificate match, chain, weak crypto, key file
// permissions). No OpenSSL, no syscalls here: every decision is unit-tested with
// hand-made facts.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config.hpp"

namespace ipopsec {

using WallTime = std::chrono::system_clock::time_point;

enum class KeyType { none, rsa, ec, ed25519, ed448, dsa, other };
std::string_view toString(KeyType t);

// One of the three files as the adapter found it.
struct CertFileFacts {
  std::string path;
  bool present = false;   // something exists at the path (lstat succeeded)
  // Empty when the file was read and parsed; otherwise what is wrong, without the path,
  // e.g. "does not exist", "is a directory, not a file", "is a symlink loop", "is empty",
  // "is a truncated PEM file: '-----BEGIN CERTIFICATE-----' has no END line",
  // "is not a PEM file (no '-----BEGIN' line): garbage or DER", "holds no certificate
  // (found a PRIVATE KEY block)".
  std::string loadError;
  std::string content;    // the bytes, when the file could be read
  bool statKnown = false;
  unsigned mode = 0;      // permission bits (& 07777) of the file read (symlinks followed)
  unsigned uid = 0;       // its owner
};

// One certificate, as far as the checks need it.
struct CertInfo {
  std::string subject;  // RFC 2253, e.g. "CN=172.31.0.16"
  std::string issuer;
  WallTime notBefore{}, notAfter{};
  std::vector<std::string> subjectAltNames;  // "IP:172.31.0.16", "DNS:node16.vpn", "email:..."
  KeyType keyType = KeyType::none;
  int keyBits = 0;
  std::string signatureAlgorithm;  // OpenSSL's long name, e.g. "sha256WithRSAEncryption"
  std::string signatureDigest;     // "SHA256", "SHA1", "MD5", ...; "" when none (Ed25519) or unknown
  bool isCa = false;               // basicConstraints CA:TRUE
  bool hasKeyUsage = false;
  bool keyUsageDigitalSignature = false;
  std::vector<std::string> extendedKeyUsage;  // OpenSSL short names: "serverAuth", "clientAuth", "ipsecIKE", ...
  std::string subjectHash;  // as `openssl x509 -hash` prints it: 8 hex digits
  std::string pem;          // this certificate alone, PEM
};

// The CRL file (racoon.crl), as far as the checks need it.
struct CrlFacts {
  CertFileFacts file;          // loadError also when the file holds no CRL
  std::string issuer;          // RFC 2253
  bool signatureChecked = false;  // a CA certificate with the CRL's issuer name was found and tried
  bool signedByCa = false;     // its signature verifies with that certificate's key
  bool hasAuthorityKeyId = false;    // it carries an authorityKeyIdentifier with a key id
  bool authorityKeyIdIsCas = false;  // ... which is the SHA-1 of the signing CA's public key
  WallTime lastUpdate{};
  std::optional<WallTime> nextUpdate;
  std::vector<std::string> revokedSerials;  // upper-case hex, as `openssl crl -text` shows them
};

struct CertFacts {
  CertFileFacts ca, cert, key;
  std::optional<CrlFacts> crl;     // nullopt when no CRL is configured
  std::string hostSerial;          // the host certificate's serial, upper-case hex
  std::vector<CertInfo> caCerts;   // every certificate in the CA file (several allowed)
  std::optional<CertInfo> hostCert;  // the first certificate of the host certificate file
  KeyType keyType = KeyType::none;   // the private key, when loaded
  int keyBits = 0;
  std::optional<bool> keyMatchesCert;  // nullopt: not compared (certificate or key not loaded)
  bool chainChecked = false;   // X509_verify_cert ran (host certificate and CA file loaded)
  bool chainOk = false;        // the host certificate chains to the CA file (time not checked here)
  std::string chainError;      // OpenSSL's reason when !chainOk, e.g. "unable to get local issuer certificate"
  std::string fingerprint;     // of the files' bytes (the CRL's too)
};

struct CertPolicy {
  int expiryWarningDays = 30;
  WeakCertPolicy weak = WeakCertPolicy::warn;
  bool checkKeyOwner = true;  // the key file must belong to root (racoon refuses others)
  bool rsaOnly = false;       // the IKE daemon signs with RSA only (racoon)
  // The IKE daemon finds a CRL by its authorityKeyIdentifier only (strongSwan): a CRL without
  // the CA's key id there would be loaded and never consulted.
  bool crlNeedsKeyId = false;
};

CertPolicy certPolicyFor(const Config& cfg);

struct CertVerdict {
  bool usable = false;
  std::vector<std::string> errors;    // each names the file and the fix
  std::vector<std::string> warnings;
  std::optional<WallTime> expiry;     // the host certificate's notAfter, for STATUS
  // The first instant after `now` at which the same facts may be judged otherwise (a
  // certificate becoming valid or expiring, a CRL's nextUpdate passing, a warning window
  // opening or its "in N days" counting down): the daemon judges again then, not by polling.
  // nullopt when no time in the facts can change the verdict.
  std::optional<WallTime> nextChange;
};

// The whole judgement: usable only when all three files load, the certificate is valid
// now, carries a subjectAltName, chains to the CA file, the key matches it and the key
// file is private (and owned by root when policy.checkKeyOwner).
CertVerdict judgeCertificates(const CertFacts& facts, const CertPolicy& policy, WallTime now);

// "2026-01-01 00:00:00 UTC"
std::string formatUtc(WallTime t);

// First line of the copies of the CA certificate the daemon writes as
// <certificate_dir>/<subject hash>.<n> for racoon (see desired.cpp). PEM readers skip
// text before "-----BEGIN", and the line tells the daemon (and an operator) which
// hash files it owns, so that a stale one is removed when the CA changes.
inline constexpr std::string_view kHashCopyMarker = "# ipop-ipsecd: racoon's CA lookup copy";

// One entry <hash>.<n> of the certificate directory as the adapter found it: racoon
// (OpenSSL's hash-directory lookup) opens <hash>.0, <hash>.1, ... in turn and stops at the
// first one that is missing or holds no certificate. c_rehash / `openssl rehash` make
// these as symlinks (e.g. to cacert.pem); the daemon writes its own marked copies.
struct HashFileFacts {
  std::string path;        // <dir>/<hash>.<n>
  std::string hash;        // the name's 8 hex digits, as spelled
  int index = -1;          // n; -1 when not a plain decimal OpenSSL would look up (e.g. ".01")
  bool symlink = false;    // the entry itself is a symlink (never written through)
  std::string target;      // the symlink's target as readlink() gives it
  bool dangling = false;   // a symlink whose target does not exist
  bool owned = false;      // a regular file whose first line is kHashCopyMarker: the daemon's
  // Empty when certificates were read from it (through the symlink); otherwise what is
  // wrong, as CertFileFacts::loadError ("is not a PEM file ...", "holds no certificate ...").
  // Not filled for owned entries (the daemon rewrites them whatever they hold).
  std::string loadError;
  std::vector<CertInfo> certs;  // every certificate in it (a bundle holds several)
};

// What the daemon does about racoon's CA lookup: the copies it writes (full path, the CA
// certificate's PEM) and the entries it cannot use nor replace (an operator's file for
// another CA, a dangling symlink, not a certificate), each a problem naming the file, what
// it holds and the fix. An operator's entry that holds the CA certificate is used as it is.
struct HashFilePlan {
  std::vector<std::pair<std::string, std::string>> copies;
  std::vector<std::string> problems;
};

// `caCerts`: the certificates of the CA file `caPath`; `entries`: the hash entries found in
// `dir` (the certificate directory). The daemon never writes to nor removes an entry it
// does not own; it fills the free (or its own) slots so that the lookup, which stops at
// the first missing slot, reaches every CA certificate.
HashFilePlan planHashFiles(const std::vector<CertInfo>& caCerts, const std::vector<HashFileFacts>& entries,
                           const std::string& dir, const std::string& caPath);

}  // namespace ipopsec
