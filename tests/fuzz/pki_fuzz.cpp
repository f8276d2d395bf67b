// Fuzz target: the certificate/key loader (OpenSslInspector::inspect, the daemon's path for
// cacert.pem / host-cert.pem / host-key.pem) and the verdict the core draws from it. The
// input is split into the three files at "\n====\n". Contract: facts and a verdict with
// reasons; never a crash, a leak or an escaping exception. Also the PEM parsers behind
// `ipop-ipsecd pki` (they throw PkiError on bad input, nothing else).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/certs/certs.hpp"
#include "os/openssl/cert_inspector.hpp"
#include "pki/pki.hpp"

using namespace ipopsec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = "/tmp/ipopsec-pki-fuzz-" + std::to_string(::getpid());
  static const bool made = [] {
    std::atexit([] { std::system(("rm -rf " + dir).c_str()); });
    return std::system(("mkdir -p " + dir).c_str()) == 0;
  }();
  if (!made) std::abort();
  std::string in(reinterpret_cast<const char*>(data), size), parts[3];
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    auto end = i < 2 ? in.find("\n====\n", start) : std::string::npos;
    parts[i] = in.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (end == std::string::npos) break;
    start = end + 6;
  }
  const char* names[3] = {"/cacert.pem", "/host-cert.pem", "/host-key.pem"};
  for (int i = 0; i < 3; ++i) std::ofstream(dir + names[i], std::ios::binary | std::ios::trunc) << parts[i];
  OpenSslInspector inspector;
  CertFacts facts = inspector.inspect(dir + names[0], dir + names[1], dir + names[2]);
  CertPolicy policy;
  policy.checkKeyOwner = false;
  CertVerdict v = judgeCertificates(facts, policy, std::chrono::system_clock::now());
  if (!v.usable && v.errors.empty()) std::abort();  // unusable must say why
  for (int i = 0; i < 2; ++i) {
    try {
      if (i == 0) (void)parseCertificatePem(parts[1]);
      else (void)parsePrivateKeyPem(parts[2]);
    } catch (const PkiError&) {
    }
  }
  return 0;
}
