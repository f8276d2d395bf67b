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
#include "os/c_handle.hpp"

namespace ipopsec {

using X509Ptr = CHandle<X509, X509_free>;
using EvpPkeyPtr = CHandle<EVP_PKEY, EVP_PKEY_free>;
using BioPtr = CHandle<BIO, BIO_free>;
using GeneralNamesPtr = CHandle<GENERAL_NAMES, GENERAL_NAMES_free>;

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
