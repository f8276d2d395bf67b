#!/usr/bin/env bash
# Issue 22, "done when" (a), with real charon (strongSwan from Debian) and real ESP: a UML
# guest (this machine's own kernel has no ESP; UML's has) with three nodes, each running the
# real ipop-ipsecd (ike.backend: strongswan, ike.control: command) and its own
# charon-systemd, meshed over ESP. On n1, `ip xfrm policy flush` (charon's trap policies
# go) and then `ip xfrm state flush` (charon's SAs go, charon is not told): each time the
# daemon must restart charon by itself and say why, n1's state.json and `status` must say
# "not healthy" until charon is back with its traps, and ESP between n1 and its peers must
# flow again. The time from each flush to the first echo reply after the repair is printed
# ("FIGURE" lines), with the guest's own timestamps; plaintext on the overlay is counted.
# What the guest asserts: tests/system/uml/ike_repair_guest.sh's header.
#   uml_ike_repair.sh IPOP_IPSECD BUILD_DIR   (root; UML_IKE_REPAIR_KEEP=1 keeps the work folder)
# Everything runs below a work folder in BUILD_DIR (not /tmp: the guest mounts its own tmpfs
# there), removed at the end, also on failure; the guest is bounded by `timeout` and powers
# itself off; processes are stopped by PID.
set -euo pipefail
bin=$(realpath "$1")
build=$(realpath "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)

fail() { echo "FAIL: uml_ike_repair: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "must run as root"
for tool in /usr/bin/linux.uml /usr/sbin/charon-systemd /usr/sbin/swanctl /usr/bin/tcpdump /usr/bin/openssl /sbin/modprobe /usr/bin/cc; do
  [[ -x $tool ]] || fail "$tool is missing; run scripts/setup --test"
done
kver=$(ls /usr/lib/uml/modules 2>/dev/null | head -1)
[[ -n $kver ]] || fail "no UML modules in /usr/lib/uml/modules; run scripts/setup --test"

work=$(mktemp -d "$build/uml-ike-repair.XXXXXX")
uml_pid=
cleanup() {
  local rc=$?
  set +e
  if [[ -n $uml_pid ]] && kill -0 "$uml_pid" 2>/dev/null; then
    kill -TERM "$uml_pid"
    wait "$uml_pid" 2>/dev/null
  fi
  if ((rc != 0)) && [[ -d $work ]]; then
    echo "---- uml_ike_repair: evidence for the failure (daemon and charon logs, tails)"
    for d in "$work"/n*; do
      [[ -d $d ]] || continue
      echo "-- ${d##*/}/daemon.log"; grep -v ' debug ' "$d/daemon.log" 2>/dev/null | tail -25
      echo "-- ${d##*/}/charon.log"; grep -E 'IKE|CHD|CFG|KNL' "$d/charon.log" 2>/dev/null | tail -20
    done
  fi
  if [[ -n ${UML_IKE_REPAIR_KEEP:-} ]]; then echo "uml_ike_repair: work folder kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- certificates: the project's own `ipop-ipsecd pki` (EC keys keep UML's IKE short) ---
pki=$work/pki
mkdir -p "$pki"
pki_cmd() { "$bin" pki "$@" >>"$pki/pki.log" 2>&1; }
pki_cmd init-ca --dir "$pki/groupvpn" --name "GroupVPN CA" --days 2 --key ec ||
  fail "ipop-ipsecd pki init-ca failed: $(tail -2 "$pki/pki.log")"
for i in 1 2 3; do
  pki_cmd issue --ca-dir "$pki/groupvpn" --ip "10.254.0.1$i" --dns "n$i.groupvpn" --days 2 --key ec --out "$pki/n$i" ||
    fail "ipop-ipsecd pki issue failed for n$i: $(tail -2 "$pki/pki.log")"
done

# --- the guest ----------------------------------------------------------------------------
# shellcheck source=uml/host.sh
source "$src/tests/system/uml/host.sh"
uml_prepare "$work"
echo "uml_ike_repair: booting a UML guest (Linux $kver) with 3 nodes; work folder $work"
uml_run uml_ike_repair "$src/tests/system/uml/ike_repair_guest.sh" "$work" "$bin" "$src" 300 ||
  fail "the guest did not pass (see the FAIL lines above)"
