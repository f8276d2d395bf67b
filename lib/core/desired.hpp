#pragma once
// Desired state: a pure function of the config, the observed network and the
// certificate files. No I/O.

#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/net_state.hpp"
#include "core/policy.hpp"
#include "core/render.hpp"

namespace ipopsec {

struct CertFiles {
  // Content of cacert.pem, host-cert.pem, host-key.pem; nullopt when missing/unreadable.
  std::optional<std::string> ca, cert, key;
  std::vector<std::string> problems;  // human lines; empty when usable
  bool usable() const { return ca && cert && key && problems.empty(); }
};

struct Desired {
  // "IPOP is up": the tap exists, is up, and carries an address inside the protected
  // ranges (with `auto`: any address of an enabled family).
  bool ipopUp = false;
  std::string tapState;                   // "absent", "down", "no address", "up"
  std::optional<IpAddress> localAddress;  // the tap's address inside the ranges
  std::vector<Cidr> ranges;               // ranges whose policies are installed
  bool heldRanges = false;                // auto: tap has no address; last ranges held (fail closed)
  std::vector<std::string> refused;       // ranges refused by the underlay safety check, with why
  std::vector<Policy> policies;
  std::vector<RenderedFile> files;
  bool certsUsable = false;
  std::string ikeInputs;  // fingerprint of everything the IKE daemon depends on
};

// `previousRanges`: ranges the daemon protects now (from the kernel); with `ranges: auto`
// they are held while the tap carries no address, so no protected range ever loses its
// policies because IPOP went down or restarted.
Desired computeDesired(const Config& cfg, const NetSnapshot& net, const CertFiles& certs,
                       const std::vector<Cidr>& previousRanges);

// The ranges a set of owned policies protects (their protect `out` selectors).
std::vector<Cidr> rangesOf(const std::vector<Policy>& policies);

// One status line for systemd's STATUS= and the log.
std::string describe(const Config& cfg, const Desired& d);

// 64-bit FNV-1a, hex; for fingerprints (not security-relevant).
std::string fingerprint(const std::string& data);

}  // namespace ipopsec
