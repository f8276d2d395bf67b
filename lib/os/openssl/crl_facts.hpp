#pragma once
// A node's side of revocation: the CRL file the daemon's certificate inspector reads,
// described as plain facts (CrlFacts) that core/certs judges. The CA's side (revoking,
// signing a CRL) is the CLI's tooling in lib/pki/crl.hpp.

#include <openssl/x509.h>

#include <string>
#include <vector>

#include "core/certs/certs.hpp"

namespace ipopsec {

// A serial number as upper-case hex ("0A1B..."), the form CrlFacts and revoked.txt use.
std::string serialHex(const ASN1_INTEGER* serial);

// What the CRL in `file` (already read) says; `caCerts`: the CA file's certificates, to
// verify its signature. A file that holds no CRL gets a loadError.
CrlFacts describeCrl(CertFileFacts file, const std::vector<X509*>& caCerts);

// The key identifier strongSwan matches a CRL's authorityKeyIdentifier against (the SHA-1
// of the CA's public key); "" when it cannot be computed.
std::string keyId(X509* ca);

}  // namespace ipopsec
