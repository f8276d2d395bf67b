#pragma once
// The certificate cache: the certificate files inspected (CertificateInspector) at the first
// read and again only once they may have changed (stale(): inotify, a resync, a new config,
// a write that met a symlink), so that an address event's file step does not wait for
// OpenSSL; the verdict, which depends on the time, is judged anew at every read.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "core/ports.hpp"
#include "core/reconcile/desired.hpp"

namespace ipopsec {

class CertCache {
 public:
  CertCache(FileStore& files, CertificateInspector& certs) : files_(files), certs_(certs) {}
  // Inspect the files again at the next read.
  void stale() { stale_ = true; }
  // One read of the files (when stale): what is judged is exactly what the IKE inputs
  // fingerprint and what the backends copy; judged at wall(), asked after the inspection.
  CertFiles read(const Config& cfg, const std::function<std::chrono::system_clock::time_point()>& wall);

 private:
  FileStore& files_;
  CertificateInspector& certs_;
  bool stale_ = true;
  CertFacts facts_;
  std::vector<HashFileFacts> hashFiles_;  // racoon's <hash>.<n> entries of the certificate directory
  std::vector<std::string> crlCopies_;    // the daemon's own CRL copies on disk (CertFiles::ownedCrlCopies)
};

}  // namespace ipopsec
