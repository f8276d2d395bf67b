#pragma once
// Which IKE_SAs to cut when a new CRL revokes certificates (strongSwan): the peers' end
// entity certificates charon holds (`swanctl --list-certs`: subject, serial) and its IKE_SAs
// (`swanctl --list-sas`: unique id, remote identity and host), parsed from swanctl's text
// output, then matched serial -> subject -> IKE_SA. Pure: `ipop-ipsecd cut-revoked` runs
// swanctl and terminates what this finds.

#include <string>
#include <string_view>
#include <vector>

namespace ipopsec {

// A certificate as `swanctl --list-certs` prints it.
struct SwanctlCert {
  std::string subject;  // "CN=172.31.0.20"
  std::string serial;   // normalized (normalizeSerial)
};

// An IKE_SA as `swanctl --list-sas` prints it.
struct SwanctlIkeSa {
  std::string name;        // the connection, "ipop-ipsec-172-31-0-0-16"
  unsigned id = 0;         // the unique id (#N), for `swanctl --terminate --ike-id N`
  std::string state;       // "ESTABLISHED", "CONNECTING", ...
  std::string remoteId;    // "CN=172.31.0.20"
  std::string remoteHost;  // "172.31.0.20"
};

// One IKE_SA to cut, and why.
struct PeerCut {
  SwanctlIkeSa sa;
  std::string serial;
};

// Upper-case hex without separators or leading zero bytes: "7d:b6:01" and "7DB601" alike,
// "00:9a" as "9A", "0F" stays "0F"; "" for something that is not hex.
std::string normalizeSerial(std::string_view serial);

std::vector<SwanctlCert> parseSwanctlCerts(std::string_view listCerts);
std::vector<SwanctlIkeSa> parseSwanctlSas(std::string_view listSas);

// The IKE_SAs whose remote identity is the subject of a certificate with one of `serials`.
// `unknown` gets the serials no certificate charon holds carries (no SA with that peer now,
// or its certificate left charon's cache).
std::vector<PeerCut> revokedPeerSas(const std::vector<SwanctlCert>& certs, const std::vector<SwanctlIkeSa>& sas,
                                    const std::vector<std::string>& serials, std::vector<std::string>* unknown = nullptr);

// The IKE_SAs past authentication (not CONNECTING) whose remote identity is the subject of
// no certificate charon holds: charon's
// certificate cache keeps 32 subject-issuer relations, so in a larger mesh a peer's
// certificate may have left it. With a serial that maps to no certificate, such an SA may
// be the revoked peer's: `ipop-ipsecd cut-revoked` then fails, and the daemon restarts
// charon rather than leave it up.
std::vector<SwanctlIkeSa> unmappedSas(const std::vector<SwanctlCert>& certs, const std::vector<SwanctlIkeSa>& sas);

}  // namespace ipopsec
