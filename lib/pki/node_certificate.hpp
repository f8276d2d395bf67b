#pragma once
// What `pki issue` (ca.cpp) and `pki sign` (enroll.cpp) share: the checks on a node's
// names and on --days, and the one path that issues a node certificate.

#include <string>
#include <vector>

#include "pki/pki.hpp"

namespace ipopsec::pki {

// The checks on a node's names, wherever they come from (`issue`'s --ip/--dns, or a
// request's subjectAltName): `what` says which ("--ip", "host.csr: its subjectAltName IP").
void checkNames(const std::vector<std::string>& ips, const std::vector<std::string>& dns, const std::string& ipWhat,
                const std::string& dnsWhat);
void checkDays(int days);

// A node certificate for `subjectKey` with the names as subjectAltName, the first DNS
// name (else the first IP) as CN, valid from an hour ago for `days` days but never past
// the CA.
X509Ptr issueNodeCertificate(const LoadedCa& ca, EVP_PKEY* subjectKey, const std::vector<std::string>& ips,
                             const std::vector<std::string>& dns, int days);

}  // namespace ipopsec::pki
