#pragma once
// The defaults of ipop-ipsecd.yaml's keys whose value follows ike.backend: one table, one
// row per backend, applied once, by setDefaults, after the keys the file sets were read
// (as ISC Kea's SimpleParser::setDefaults fills in what a scope does not give). The keys
// whose default is the same for every backend are the member initialisers of Config
// (config.hpp); those three members start from the row of the default backend, racoon, so
// that Config{} is what a file that sets none of them gives.

#include <cstdint>
#include <functional>
#include <string>

namespace ipopsec {

enum class IkeBackend { racoon, strongswan };

struct BackendDefaults {
  IkeBackend backend;
  const char* unit;               // ike.unit
  std::uint32_t protectPriority;  // xfrm.protect_priority
  const char* certificateDir;     // racoon.certificate_dir
};
// strongSwan: charon's trap policies sit at up to 400000 and must win over the daemon's,
// or the kernel's ACQUIREs carry no reqid and charon ignores them ("trap not found, unable
// to acquire reqid 0", seen with 5.9.8). Certificates: racoon's own directory for racoon (its
// `path certificate`); a directory of ours for strongSwan (the daemon copies the files into
// swanctl's), see useLegacyCertificateDir (core/config/certificate_dir.hpp) for nodes set up before.
inline constexpr BackendDefaults kBackendDefaults[] = {
    {IkeBackend::racoon, "racoon.service", 250000, "/etc/racoon/certs"},
    {IkeBackend::strongswan, "strongswan.service", 500000, "/etc/ipop-ipsec/certs"},
};
constexpr const BackendDefaults& backendDefaults(IkeBackend b) {
  return b == IkeBackend::racoon ? kBackendDefaults[0] : kBackendDefaults[1];
}

struct Config;

// For each key of the table that `isSet(path)` says the file does not set ("ike.unit"), the
// value of cfg.ike.backend's row; racoon.certificateDirDefaulted says whether
// racoon.certificate_dir was filled in. Called once per parse (parseConfig), after the walk
// and before the cross-checks, which only check.
void setDefaults(Config& cfg, const std::function<bool(const std::string& path)>& isSet);

}  // namespace ipopsec
