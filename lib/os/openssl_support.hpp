#pragma once
// The OpenSSL 3 building blocks shared by the daemon's certificate inspector
// (cert_inspector.hpp) and the CLI's CA and issuance (pki.hpp): owning handles, the
// error queue as a reason, PEM block labels, and a certificate's facts (core/ports.hpp
// CertInfo). Every OpenSSL handle is owned by a unique_ptr with its free function.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <memory>
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
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// PEM files larger than this are refused ("is too large"): no certificate set or request
// is near it.
constexpr std::size_t kMaxPemFileSize = 1024 * 1024;

// A problem that stops `pki` (missing or wrong CA directory, a file that would be
// overwritten, an OpenSSL failure); the message says what and how to fix it.
class PkiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The last OpenSSL error as a reason, and the queue emptied (it is thread-local state
// that would otherwise leak into the next, unrelated call).
std::string opensslError(const std::string& fallback = "unknown OpenSSL error");

BioPtr memBio(const std::string& s);

// Never prompt for a passphrase (the daemon has no terminal; a prompt would hang `check`).
int noPassphrase(char*, int, int, void*);

KeyType keyTypeOf(const EVP_PKEY* k);

// An ASN1_TIME as wall-clock time (the epoch when absent or unreadable).
WallTime toWall(const ASN1_TIME* t);
// A distinguished name, RFC 2253 ("CN=GroupVPN CA"), as CertInfo's subject and issuer.
std::string nameLine(const X509_NAME* name);

// What a certificate says, as plain facts (subject, SAN, validity, key, usages, hash, PEM).
CertInfo infoOf(X509* x);

// The certificate as PEM; throws PkiError.
std::string certificatePem(X509* cert);

// The PEM block labels in `text` ("CERTIFICATE", "PRIVATE KEY", ...). Sets `error` for
// text that is not PEM at all, or a block without its END line (a truncated copy).
std::vector<std::string> pemLabels(const std::string& text, std::string& error);
std::string describeLabels(const std::vector<std::string>& labels);  // "CERTIFICATE, PRIVATE KEY"

}  // namespace ipopsec
