#pragma once
// Test support: certificate fixtures generated at test time through the project's own
// OpenSSL code (pki/pki.hpp); nothing is checked in. RSA 2048 keys keep generation fast.

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "pki/pki.hpp"

namespace ipopsec::test {

struct TestCa {
  EvpPkeyPtr key;
  X509Ptr cert;
};

inline TestCa makeTestCa(const std::string& name = "Test GroupVPN CA") {
  TestCa ca;
  ca.key = generateKey(KeyKind::rsa, 2048);
  CertSpec spec;
  spec.commonName = name;
  spec.ca = true;
  auto now = std::chrono::system_clock::now();
  spec.notBefore = now - std::chrono::hours(24);
  spec.notAfter = now + std::chrono::hours(24 * 3650);
  ca.cert = makeCertificate(spec, ca.key.get(), nullptr, nullptr);
  return ca;
}

inline CertSpec hostSpec(const std::string& ip = "10.254.0.16") {
  CertSpec spec;
  spec.commonName = ip;
  spec.ips = {ip};
  auto now = std::chrono::system_clock::now();
  spec.notBefore = now - std::chrono::hours(1);
  spec.notAfter = now + std::chrono::hours(24 * 365);
  return spec;
}

inline void writeText(const std::filesystem::path& p, const std::string& text, unsigned mode) {
  std::filesystem::remove(p);
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
  }
  ::chmod(p.c_str(), mode);
}

// cacert.pem, host-cert.pem and host-key.pem (0600) in `dir`, host certificate per `spec`
// signed by `ca`. Returns the host certificate's PEM.
inline std::string writeHostSet(const std::filesystem::path& dir, const TestCa& ca, const CertSpec& spec = hostSpec()) {
  auto key = generateKey(KeyKind::rsa, 2048);
  auto cert = makeCertificate(spec, key.get(), ca.cert.get(), ca.key.get());
  std::string pem = certificatePem(cert.get());
  writeText(dir / "cacert.pem", certificatePem(ca.cert.get()), 0644);
  writeText(dir / "host-cert.pem", pem, 0644);
  writeText(dir / "host-key.pem", privateKeyPem(key.get()), 0600);
  return pem;
}

}  // namespace ipopsec::test
