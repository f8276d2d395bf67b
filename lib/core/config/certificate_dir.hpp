#pragma once
// Where the strongSwan backend reads the certificates when the config does not say.
//
// racoon.certificate_dir's default follows ike.backend (kBackendDefaults, config.hpp):
// /etc/racoon/certs for racoon, which reads it itself, and /etc/ipop-ipsec/certs for strongSwan.
// Until that split, /etc/racoon/certs was the default of both, so a strongSwan node set up then
// whose config does not set the key has its certificates there. Such a node keeps working: while
// /etc/ipop-ipsec/certs holds none of the files the config names by file name (ca_cert,
// host_cert, host_key, crl) and /etc/racoon/certs holds at least one of them, the certificates
// are read from /etc/racoon/certs, and a warning (at every load, like the config's other
// warnings) names the key that keeps it so and the directory to move them to. A directory
// that the config sets, the racoon backend, and absolute file names are never redirected.

#include <functional>
#include <string>

#include "core/config/config.hpp"

namespace ipopsec {

// The directory the strongSwan backend read by default before /etc/ipop-ipsec/certs.
inline constexpr const char* kLegacyCertificateDir = "/etc/racoon/certs";

// Applies the rule above to a parsed config. `exists(path)`: whether that file exists (the
// caller looks; the core has no file system). Returns true when it switched cfg to
// kLegacyCertificateDir (and appended the warning to cfg.warnings).
bool useLegacyCertificateDir(Config& cfg, const std::function<bool(const std::string& path)>& exists);

}  // namespace ipopsec
