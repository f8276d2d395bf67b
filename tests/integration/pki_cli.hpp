#pragma once
// What the tests of `ipop-ipsecd pki` (pki_test.cpp, pki_enroll_test.cpp) share: the
// command run as a user runs it, the mode of a file it wrote, and racoon's certificate
// policy (RSA only) its results are judged by.

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "core/certs/certs.hpp"
#include "integration/netns.hpp"

namespace ipopsec::test {

// `ipop-ipsecd pki ARGS` through the shell; its exit status in *status, its output returned.
inline std::string pkiCli(const std::string& args, int* status) {
  std::string out;
  *status = shStatus(std::string(IPOPSEC_BINARY) + " pki " + args, &out);
  return out;
}

inline unsigned modeOf(const std::filesystem::path& p) {
  struct stat st{};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

inline CertPolicy racoonPolicy() {
  CertPolicy p;
  p.rsaOnly = true;
  return p;
}

}  // namespace ipopsec::test
