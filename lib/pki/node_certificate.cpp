#include "pki/node_certificate.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace ipopsec::pki {
namespace {

bool isIp(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

void checkNames(const std::vector<std::string>& ips, const std::vector<std::string>& dns, const std::string& ipWhat,
                const std::string& dnsWhat) {
  for (const auto& ip : ips)
    if (!isIp(ip)) throw PkiError(ipWhat + " '" + ip + "' is not an IPv4 or IPv6 address");
  for (const auto& d : dns)
    if (d.empty() || d.find_first_of(" ,/\\\"'") != std::string::npos ||
        std::any_of(d.begin(), d.end(), [](unsigned char c) { return c < 0x21 || c > 0x7e; }))
      throw PkiError(dnsWhat + " '" + d + "' is not a DNS name");
}

void checkDays(int days) {
  if (days < 1 || days > 36500) throw PkiError("--days must be from 1 to 36500");
}

X509Ptr issueNodeCertificate(const LoadedCa& ca, EVP_PKEY* subjectKey, const std::vector<std::string>& ips,
                             const std::vector<std::string>& dns, int days) {
  auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.commonName = !dns.empty() ? dns.front() : ips.front();
  spec.ips = ips;
  spec.dns = dns;
  spec.notBefore = now - std::chrono::hours(1);                                   // tolerate clock skew
  spec.notAfter = std::min(now + std::chrono::hours(24) * days, ca.info.notAfter);  // never outlive the CA
  return makeCertificate(spec, subjectKey, ca.cert.get(), ca.key.get());
}

}  // namespace ipopsec::pki
