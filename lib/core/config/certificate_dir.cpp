#include "core/config/certificate_dir.hpp"

#include <vector>

namespace ipopsec {

bool useLegacyCertificateDir(Config& cfg, const std::function<bool(const std::string& path)>& exists) {
  if (cfg.ike.backend != IkeBackend::strongswan || !cfg.racoon.certificateDirDefaulted) return false;
  const std::string dir = cfg.racoon.certificateDir;
  if (dir == kLegacyCertificateDir) return false;
  // The files the config names inside the directory (absolute names do not depend on it).
  std::vector<std::string> names;
  for (const std::string* name : {&cfg.racoon.caCert, &cfg.racoon.hostCert, &cfg.racoon.hostKey, &cfg.racoon.crl})
    if (!name->empty() && name->front() != '/') names.push_back(*name);
  std::string found;  // the ones in the legacy directory, for the warning
  for (const auto& name : names) {
    if (exists(dir + "/" + name)) return false;  // the new directory is in use
    if (exists(std::string(kLegacyCertificateDir) + "/" + name)) found += (found.empty() ? "" : ", ") + name;
  }
  if (found.empty()) return false;  // a new install: the errors will name the new directory
  cfg.racoon.certificateDir = kLegacyCertificateDir;
  cfg.warnings.push_back(std::string("racoon.certificate_dir: not set, and ") + dir +
                         " (its default with ike.backend strongswan) holds none of the certificate files while " +
                         kLegacyCertificateDir + " (the default before) holds " + found + ": reading them from " +
                         kLegacyCertificateDir + "; set 'racoon.certificate_dir: " + kLegacyCertificateDir +
                         "' to keep them there, or move them to " + dir + " and reload");
  return true;
}

}  // namespace ipopsec
