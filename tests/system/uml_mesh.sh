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
# backend takes them, and they keep the slow UML CPU's IKE exchanges short), or from the
# openssl CLI when the binary has no pki command; one CA for the mesh, another for the
# intruder. Everything runs below a work folder in BUILD_DIR (not /tmp: the guest mounts
# its own tmpfs there), removed at the end, also on failure; the guest is bounded by
# `timeout` and powers itself off; processes are stopped by PID.
set -euo pipefail
bin=$(realpath "$1")
build=$(realpath "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)

if [[ $(id -u) -ne 0 ]]; then
  echo "uml_mesh: must run as root" >&2
  exit 1
fi
for tool in /usr/bin/linux.uml /usr/sbin/charon-systemd /usr/sbin/swanctl /usr/bin/tcpdump /usr/bin/perl /usr/bin/openssl; do
  [[ -x $tool ]] || { echo "uml_mesh: $tool is missing; run scripts/setup" >&2; exit 1; }
done
kver=$(ls /usr/lib/uml/modules 2>/dev/null | head -1)
[[ -n $kver ]] || { echo "uml_mesh: no UML modules in /usr/lib/uml/modules; run scripts/setup" >&2; exit 1; }

work=$(mktemp -d "$build/uml-mesh.XXXXXX")
uml_pid=
cleanup() {
  local rc=$?
  set +e
  if [[ -n $uml_pid ]] && kill -0 "$uml_pid" 2>/dev/null; then
    kill -TERM "$uml_pid"
    wait "$uml_pid" 2>/dev/null
  fi
  if ((rc != 0)) && [[ -d $work ]]; then
    echo "---- uml_mesh: evidence for the failure (daemon and charon logs, tails)"
    for d in "$work"/n*; do
      [[ -d $d ]] || continue
      echo "-- ${d##*/}/daemon.log"; tail -15 "$d/daemon.log" 2>/dev/null
      echo "-- ${d##*/}/charon.log"; grep -E 'IKE|CHD|CFG|KNL' "$d/charon.log" 2>/dev/null | tail -15
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- certificates --------------------------------------------------------------------
pki=$work/pki
mkdir -p "$pki"
pki_cmd() { "$bin" pki "$@" >>"$pki/pki.log" 2>&1; }
issue_pki() { # issue_pki NODE CA ADDRESS NAME
  pki_cmd issue --ca-dir "$pki/$2" --ip "$3" --dns "$4" --days 2 --key ec --out "$pki/$1"
}
if pki_cmd init-ca --dir "$pki/groupvpn" --name "GroupVPN CA" --days 2 --key ec &&
  pki_cmd init-ca --dir "$pki/other" --name "Other CA" --days 2 --key ec &&
  issue_pki n1 groupvpn 10.254.0.11 n1.groupvpn && issue_pki n2 groupvpn 10.254.0.12 n2.groupvpn &&
  issue_pki n3 groupvpn 10.254.0.13 n3.groupvpn && issue_pki n4 groupvpn 10.254.0.14 n4.groupvpn &&
  issue_pki n9 other 10.254.0.99 intruder.groupvpn; then
  echo "uml_mesh: certificates issued with 'ipop-ipsecd pki' (EC P-256)"
  # The GroupVPN CA's CRL, empty (no revocation yet): n1..n4 run with `racoon.crl: crl.pem`
  # from the start; the guest's last phase revokes n4 and distributes a new one.
  if pki_cmd crl --ca-dir "$pki/groupvpn" --out "$pki/groupvpn/crl.pem" --days 2; then
    for i in 1 2 3 4; do cp "$pki/groupvpn/crl.pem" "$pki/n$i/crl.pem"; done
    echo "uml_mesh: empty CRL made with 'ipop-ipsecd pki crl' for n1..n4"
  else
    echo "uml_mesh: 'ipop-ipsecd pki crl' failed ($(tail -1 "$pki/pki.log")): the revocation phase will fail"
  fi
else
  echo "uml_mesh: 'ipop-ipsecd pki' unavailable ($(tail -1 "$pki/pki.log")); using the openssl CLI"
  rm -rf "${pki:?}"/*
  ca() { # ca NAME SUBJECT
    mkdir -p "$pki/$1"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "$2" -keyout "$pki/$1/ca-key.pem" \
      -out "$pki/$1/cacert.pem" 2>/dev/null
  }
  host() { # host NODE CA CN
    local d=$pki/$1
    mkdir -p "$d"
    openssl req -newkey rsa:2048 -nodes -subj "/O=IPOP GroupVPN/CN=$3" -keyout "$d/host-key.pem" \
      -out "$d/host.csr" 2>/dev/null
    openssl x509 -req -in "$d/host.csr" -CA "$pki/$2/cacert.pem" -CAkey "$pki/$2/ca-key.pem" -CAcreateserial \
      -days 2 -extfile <(printf 'subjectAltName=DNS:%s\n' "$3") -out "$d/host-cert.pem" 2>/dev/null
    cp "$pki/$2/cacert.pem" "$d/cacert.pem"
    chmod 600 "$d/host-key.pem"
    rm -f "$d/host.csr"
  }
  ca groupvpn "/O=IPOP GroupVPN/CN=GroupVPN CA"
  ca other "/O=Somebody else/CN=Other CA"
  for i in 1 2 3 4; do host "n$i" groupvpn "n$i.groupvpn"; done
  host n9 other "intruder.groupvpn"
fi

# --- the guest --------------------------------------------------------------------------
source "$src/tests/system/uml/host.sh"
uml_prepare "$work"
echo "uml_mesh: booting a UML guest (Linux $kver) with 5 nodes; work folder $work"
uml_run uml_mesh "$src/tests/system/uml/guest.sh" "$work" "$bin" "$src" 420
