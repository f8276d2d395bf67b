#!/usr/bin/env bash
# End to end with real ESP: an IPOP GroupVPN of several nodes inside one User-Mode-Linux
# guest (this machine's own kernel has no ESP; UML's has, see LAB.md). Each node is a
# network namespace with its tap `ipop` on one simulated overlay segment (a bridge), its
# own ipop-ipsecd (ike.backend: strongswan, control: command) and its own charon-systemd.
# The guest's script (tests/system/uml/guest.sh) asserts:
#   - the daemons' fail-closed policies are in before the tap exists, and before any IKE
#     daemon runs traffic between range addresses is dropped, not sent in the clear;
#   - every pair reaches each other (ping, TCP and UDP echo) over ESP, and the capture on
#     the overlay shows ESP and no plaintext ICMP/TCP/UDP between range addresses;
#   - no ACQUIRE storm and no duplicate SAs (charon's policies and the daemon's coexist);
#   - a late joiner, the time from its tap coming up to ESP with every node;
#   - a node whose certificate comes from another CA is refused;
#   - a node re-addressed inside the range (DHCP) is reached again without a manual step,
#     by a reload (swanctl --load-all) and no charon restart; moved out, it is unreachable;
#   - revocation (issue #14), the last phase: n1..n4 run with `racoon.crl: crl.pem` from
#     the start, an empty CRL of the GroupVPN CA loaded in charon (so every check above
#     also shows that a CRL without entries changes nothing for traffic). With n3 back in
#     the range, the four meshed and pings running between n4 and every peer (and among
#     n1..n3), the CA revokes n4 (`pki revoke`, `pki crl`) and the new CRL lands on n1..n4
#     at T0 (a tmp file, then mv). Asserted: n1..n3 load the CRL into the running charon and
#     cut the SAs with n4 (strongswan.cut_command, `ipop-ipsecd cut-revoked`; the daemon's
#     log line naming n4 is the cut-off), their charon is not restarted, and they hold no SA
#     with n4 within 40 s; no ESP from a good node to n4 later than 1 s after its cut-off,
#     and from n4 to it at most a few stray packets that the good node drops (it set up no
#     CHILD_SA with n4, from its charon log); the last ESP packet with n4 within 15 s of T0;
#     not one ping among n1..n3 lost (their SAs stay); each good node's charon logs
#     "certificate was revoked" for n4; n4 reaches no peer and no peer reaches n4 (ping,
#     UDP and TCP echo); n4 ends with no SA with them; n4's daemon logs that its own
#     certificate "is REVOKED by crl.pem" and does not restart its charon; no plaintext to or
#     from n4 on the overlay. Printed as FIGURE lines: CRL landing -> last ESP packet between
#     the revoked node and any peer (every packet counted; the strays counted apart too),
#     and the pings lost between good nodes during the revocation.
#   uml_mesh.sh IPOP_IPSECD BUILD_DIR
# Certificates come from the project's own `ipop-ipsecd pki` (EC keys: the strongswan
# backend takes them, and they keep the slow UML CPU's IKE exchanges short); one CA for the
# mesh, another for the intruder. The host side (checks, work folder below BUILD_DIR,
# cleanup, certificates, the guest's run) is tests/system/uml/mesh_setup.sh, shared with the
# N-node mesh (tests/system/uml/mesh_bench.sh); the work folder is removed at the end, also
# on failure; the guest is bounded by `timeout` and powers itself off; processes are
# stopped by PID.
set -euo pipefail
bin=$(realpath "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
source "$src/tests/system/uml/mesh_setup.sh"
mesh_host_init uml_mesh "$2" /usr/bin/openssl   # openssl: the guest reads the revoked serial

mesh_ca groupvpn "GroupVPN CA"
mesh_ca other "Other CA"
for i in 1 2 3 4; do mesh_cert "n$i" groupvpn "10.254.0.$((10 + i))" "n$i.groupvpn"; done
mesh_cert n9 other 10.254.0.99 intruder.groupvpn
echo "uml_mesh: certificates issued with 'ipop-ipsecd pki' (EC P-256)"
# The GroupVPN CA's CRL, empty (no revocation yet): n1..n4 run with `racoon.crl: crl.pem`
# from the start; the guest's last phase revokes n4 and distributes a new one.
mesh_pki crl --ca-dir "$work/pki/groupvpn" --out "$work/pki/groupvpn/crl.pem" --days 2
for i in 1 2 3 4; do cp "$work/pki/groupvpn/crl.pem" "$work/pki/n$i/crl.pem"; done
echo "uml_mesh: empty CRL made with 'ipop-ipsecd pki crl' for n1..n4"

if ! mesh_guest_run uml_mesh 420 768M "$src/tests/system/uml/guest.sh" "$work" "$bin" "$src"; then
  echo "uml_mesh: FAILED (result: $(cat "$work/result" 2>/dev/null || echo none), guest exit $mesh_uml_rc)" >&2
  exit 1
fi
echo "uml_mesh: PASSED ($mesh_guest_s s in the guest)"
