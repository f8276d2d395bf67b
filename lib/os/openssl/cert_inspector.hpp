#pragma once
// The daemon's CertificateInspector (core/ports.hpp) over OpenSSL 3: reads cacert.pem /
// host-cert.pem / host-key.pem, the CRL (crl.hpp) and racoon's hash-directory entries into
// plain facts;
// every judgement is core's (core/certs/certs.hpp). No shelling out to `openssl`.

#include <string>
#include <vector>

#include "core/ports.hpp"

namespace ipopsec {

class OpenSslInspector final : public CertificateInspector {
 public:
  // Files larger than kMaxPemFileSize (openssl_support.hpp) are refused ("is too large").
  CertFacts inspect(const std::string& ca, const std::string& cert, const std::string& key,
                    const std::string& crl) override;
  // Without a CRL.
  CertFacts inspect(const std::string& ca, const std::string& cert, const std::string& key) {
    return inspect(ca, cert, key, "");
  }
  std::vector<HashFileFacts> hashFiles(const std::string& dir, const std::vector<std::string>& hashes) override;
};

}  // namespace ipopsec
