#pragma once
// Certificate revocation for a GroupVPN, over OpenSSL 3: on the CA's machine `pki revoke`
// records a revocation in the CA directory (revoked.txt) and `pki crl` writes the signed
// CRL; on a node, the daemon's inspector reads the CRL file into plain facts (CrlFacts)
// that core/certs/certs.cpp judges.

#include <openssl/x509.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/certs/certs.hpp"
#include "os/openssl/crl_facts.hpp"

namespace ipopsec {

// --- the CA's side ------------------------------------------------------------------

// RFC 5280 reason codes `pki revoke --reason` accepts.
const std::vector<std::string>& revocationReasons();  // "unspecified", "keyCompromise", ...

struct Revocation {
  std::string serial;  // upper-case hex
  std::chrono::system_clock::time_point when;
  std::string reason;  // one of revocationReasons()
};

// CA_DIR/revoked.txt: one revocation per line, "SERIAL UNIXTIME REASON". Throws PkiError
// naming the file and line of a bad one. A missing file is an empty list.
std::vector<Revocation> readRevocations(const std::string& caDir);

struct RevokeRequest {
  std::string caDir;
  std::string certPath;  // the certificate to revoke (issued by this CA), or
  std::string serial;    // its serial in hex
  std::string reason = "unspecified";
};
// Adds the revocation to CA_DIR/revoked.txt (atomically; an already revoked serial is an
// error naming when it was revoked). Throws PkiError.
Revocation revokeCertificate(const RevokeRequest& req);

struct CrlRequest {
  std::string caDir;
  std::string outPath;
  int days = 30;  // nextUpdate = now + days
};
struct CrlResult {
  std::size_t entries = 0;
  long number = 0;  // the CRL number (CA_DIR/crlnumber, incremented)
  std::chrono::system_clock::time_point nextUpdate;
};
// Writes a CRL v2 of every revocation in revoked.txt, signed by the CA (SHA-256), with
// lastUpdate now, nextUpdate and a CRL number. Throws PkiError.
CrlResult makeCrl(const CrlRequest& req);

}  // namespace ipopsec
