#pragma once
// Renderer for the strongSwan backend: a swanctl.conf(5) fragment with one IKEv2 mesh
// connection per protected range, and the certificate copies swanctl loads. Pure and
// byte-for-byte deterministic, like the racoon renderers (core/render/render.hpp).
//
// Decisions (docs/strongswan.md explains them for operators):
//  - One connection per protected range R. While the tap holds an address A in R:
//    local_addrs = A, remote_addrs = R, IKEv2, pubkey authentication with certificates. The local
//    identity is charon's default for a certificate, its subject DN; the remote one is
//    %any constrained to certificates issued by the GroupVPN CA (remote.cacerts). A node
//    that IPOP re-addresses keeps its identity.
//  - The child: ESP transport mode, local_ts = A/32 (/128), remote_ts = R, start_action
//    = trap. The traffic selectors are explicit on purpose: with `dynamic` selectors and
//    a range as remote_addrs charon 5.9 installs its trap policies for 0.0.0.0/0 <->
//    0.0.0.0/0 (seen), which would trap the node's underlay traffic too. With these
//    selectors the trap is A/32 <-> R; an ACQUIRE for A -> B (B in R) makes charon
//    initiate to B itself, and the negotiated selectors narrow to A/32 <-> B/32, so the
//    SA is host to host and transport mode is kept.
//  - An IPv6 range's trapping connection has remote_addrs = R, "::". charon takes the
//    trap's SA template addresses from the single hosts in remote_addrs (subnets do not
//    count) and, with none, from %any of IPv4; the kernel refuses a transport template
//    of IPv4 under IPv6 selectors ("Mode in template doesn't support a family change"),
//    so without "::" no IPv6 trap is ever installed. "::" makes it the IPv6 wildcard
//    trap, as an IPv4 range gets by default. The price: as a responder the connection
//    matches an IKE_SA_INIT to A from any IPv6 address (at charon's lowest match
//    quality), not only from R; the peer still needs a certificate of the GroupVPN CA,
//    and the child's remote_ts stays R. A dual-stack node has one connection per range,
//    so each family gets its own trap.
//  - A protected range in which the tap has no address (yet) still gets its connection,
//    as a responder only: local_addrs = R, local_ts left `dynamic` (the address a peer
//    reached, which lies in R), start_action = none, so no trap and nothing initiated.
//    When IPOP moves the node into R, peers that already moved can negotiate with it at
//    once, before the daemon's reload turns the connection into the trapping one (an
//    IKE_SA_INIT in that gap used to get NO_PROPOSAL_CHOSEN, and the peer's kernel then
//    holds its larval state: no new attempt from that side for xfrm_acq_expires). No
//    trap means no policy for R either: the daemon's own fail-closed policies stay alone.
//  - Exclusions and IPv6 neighbour discovery are NOT pass children: the daemon's own
//    bypass policies (xfrm.bypass_priority, 1000) take precedence over every policy
//    charon installs (its trap and SA policies sit at about 100000..400000), so they
//    already keep that traffic out of charon's trap.
//  - Proposals are derived from proposals.phase1/phase2 (racoon names): "aes 256" +
//    sha256 + modp2048 -> aes256-sha256-modp2048; ESP: every encryption x
//    authentication, with the PFS group. Compression (IPComp) is not offered.
//  - Lifetimes: the IKE SA rekeys after proposals.phase1.lifetime, the CHILD_SA after
//    proposals.phase2.lifetime; DPD every strongswan.dpd_delay seconds, dpd_action =
//    clear (the trap stays, so the next packet to that peer negotiates afresh), and
//    close_action = none. MOBIKE and UDP encapsulation are off: IPOP addresses are
//    stable per SA and IPOP already crosses NATs.

#include <optional>
#include <string>
#include <vector>

#include "core/policy/cidr.hpp"
#include "core/config/config.hpp"
#include "core/render/render.hpp"

namespace ipopsec {

// One connection: a protected range and this node's address inside it, if it has one
// (without: the responder-only connection).
struct SwanctlMesh {
  Cidr range;
  std::optional<IpAddress> local;

  bool operator==(const SwanctlMesh&) const = default;
};

// File names inside strongswan.swanctl_dir where the certificates are copied.
inline constexpr const char* kSwanctlCaFile = "x509ca/ipop-ipsec-ca.pem";
inline constexpr const char* kSwanctlCertFile = "x509/ipop-ipsec-host.pem";
inline constexpr const char* kSwanctlKeyFile = "private/ipop-ipsec-host.pem";
inline constexpr const char* kSwanctlCrlFile = "x509crl/ipop-ipsec.crl.pem";  // racoon.crl, when configured

// The connection (and child) name for a range: "ipop-ipsec-172-31-0-0-16".
std::string swanctlConnectionName(const Cidr& range);

// strongSwan proposal strings derived from the racoon-named ones in the config:
// "aes256-sha256-modp2048" and "aes256-sha256-modp2048,aes128-sha256-modp2048".
// Throws RenderError for a name strongSwan has no equivalent for.
std::string swanctlIkeProposal(const Config& cfg);
std::string swanctlEspProposals(const Config& cfg);

// The swanctl.conf fragment (strongswan.config). `meshes` may be empty (no protected
// range known yet): the file then holds an empty `connections` section, so a load
// removes what an earlier one added. Sorted by range; the order of `meshes` does not matter.
// Throws RenderError.
std::string renderSwanctlConf(const std::vector<SwanctlMesh>& meshes, const Config& cfg);

// Every file of the strongSwan backend: the conf fragment (0644) and, for each PEM text
// given, its copy under strongswan.swanctl_dir (CA and host certificate 0644, the
// private key 0600). A missing (nullopt) PEM gives no file: nothing half-made is loaded.
std::vector<RenderedFile> renderStrongswanBackend(const std::vector<SwanctlMesh>& meshes, const Config& cfg,
                                                  const std::optional<std::string>& caPem,
                                                  const std::optional<std::string>& certPem,
                                                  const std::optional<std::string>& keyPem);

}  // namespace ipopsec
