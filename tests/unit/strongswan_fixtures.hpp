#pragma once
// The strongSwan backend's config and certificate files as the core tests use them
// (ike_reload_test.cpp, swanctl_traps_test.cpp): ike.backend strongswan with its unit and
// protect priority, the example's config path, and a set of certificate files by content.

#include "core/config/config.hpp"
#include "core/reconcile/desired.hpp"

namespace ipopsec::test {

inline Config swanConfig() {
  Config c;
  c.sourceFile = "/etc/ipop-ipsec/ipop-ipsecd.yaml";
  c.ike.backend = IkeBackend::strongswan;
  c.ike.unit = "strongswan.service";
  c.xfrm.protectPriority = Config::Xfrm::kStrongswanProtectPriority;
  c.racoon.certificateDir = "/certs";
  return c;
}

inline CertFiles goodCerts() {
  CertFiles c;
  c.ca = "CA";
  c.cert = "CERT";
  c.key = "KEY";
  return c;
}

}  // namespace ipopsec::test
