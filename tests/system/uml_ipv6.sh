#!/usr/bin/env bash
# Real ESP over IPv6 with the strongSwan backend, inside one User-Mode-Linux guest (this
# machine's own kernel has no ESP): an IPv6-only pair (n1, n2 in fd50:1234::/64) and a
# dual-stack pair (n3, n4 in 172.31.0.0/16 and fd50:5678::/64), each node a network
# namespace with its tap on one simulated overlay segment, its own ipop-ipsecd and
# charon-systemd. The guest's script (tests/system/uml/ipv6_guest.sh) asserts charon's traps
# for every range and family, each daemon healthy, pings both ways per pair and family over
# keyed ESP SAs, TCP and UDP over IPv6, ESP both ways on the wire, and 0 plaintext packets
# between range addresses on the overlay.
#   uml_ipv6.sh IPOP_IPSECD BUILD_DIR
# Everything runs below a work folder in BUILD_DIR, removed at the end, also on failure; the
# guest is bounded by `timeout` and powers itself off.
set -euo pipefail
bin=$(realpath "$1")
build=$(realpath "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)

if [[ $(id -u) -ne 0 ]]; then
  echo "uml_ipv6: must run as root" >&2
  exit 1
fi
for tool in /usr/bin/linux.uml /usr/sbin/charon-systemd /usr/sbin/swanctl /usr/bin/tcpdump /usr/bin/python3 /sbin/modprobe; do
  [[ -x $tool ]] || { echo "uml_ipv6: $tool is missing; run scripts/setup" >&2; exit 1; }
done
kver=$(ls /usr/lib/uml/modules 2>/dev/null | head -1)
[[ -n $kver ]] || { echo "uml_ipv6: no UML modules in /usr/lib/uml/modules; run scripts/setup" >&2; exit 1; }

work=$(mktemp -d "$build/uml-ipv6.XXXXXX")
uml_pid=
cleanup() {
  local rc=$?
  set +e
  if [[ -n $uml_pid ]] && kill -0 "$uml_pid" 2>/dev/null; then
    kill -TERM "$uml_pid"
    wait "$uml_pid" 2>/dev/null
  fi
  if ((rc != 0)) && [[ -d $work ]]; then
    echo "---- uml_ipv6: evidence for the failure (daemon and charon logs, tails)"
    for d in "$work"/n*; do
      [[ -d $d ]] || continue
      echo "-- ${d##*/}/daemon.log"; tail -10 "$d/daemon.log" 2>/dev/null
      echo "-- ${d##*/}/charon.log"; grep -E 'IKE|CHD|CFG|KNL' "$d/charon.log" 2>/dev/null | tail -15
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- certificates: one GroupVPN CA, EC keys (short IKE exchanges on UML's slow CPU) ------------
pki=$work/pki
mkdir -p "$pki"
pki_cmd() { "$bin" pki "$@" >>"$pki/pki.log" 2>&1 || { echo "uml_ipv6: ipop-ipsecd pki $*: $(tail -1 "$pki/pki.log")" >&2; exit 1; }; }
pki_cmd init-ca --dir "$pki/groupvpn" --name "GroupVPN CA" --days 2 --key ec
pki_cmd issue --ca-dir "$pki/groupvpn" --ip fd50:1234::11 --dns n1.groupvpn --days 2 --key ec --out "$pki/n1"
pki_cmd issue --ca-dir "$pki/groupvpn" --ip fd50:1234::12 --dns n2.groupvpn --days 2 --key ec --out "$pki/n2"
pki_cmd issue --ca-dir "$pki/groupvpn" --ip fd50:5678::13 --dns n3.groupvpn --days 2 --key ec --out "$pki/n3"
pki_cmd issue --ca-dir "$pki/groupvpn" --ip fd50:5678::14 --dns n4.groupvpn --days 2 --key ec --out "$pki/n4"

# --- the guest ---------------------------------------------------------------------------------
source "$src/tests/system/uml/host.sh"
uml_prepare "$work"
echo "uml_ipv6: booting a UML guest (Linux $kver) with 4 nodes; work folder $work"
uml_run uml_ipv6 "$src/tests/system/uml/ipv6_guest.sh" "$work" "$bin" "$src" 300
