# shellcheck shell=bash
# Host side of the mesh test (tests/system/uml_mesh.sh, guest guest.sh) and of the N-node
# mesh (tests/system/uml/mesh_bench.sh: the benchmark, and CI's tests/system/uml_mesh8.sh),
# sourced by both: one place for the checks, the work folder and its cleanup, the
# certificates and the guest's run. Needs $bin (ipop-ipsecd).
#   mesh_host_init NAME BUILD_DIR TOOL...
#       root, the TOOLs and UML's modules there (sets kver); the work folder $work below
#       BUILD_DIR (not /tmp: the guest mounts its own tmpfs there); the EXIT trap: the guest
#       stopped by its PID, on failure the tails of every node's daemon and charon logs,
#       $work removed (kept when IPOPSEC_MESH_KEEP is set)
#   mesh_ca CA NAME                  a CA in $work/pki/CA (ipop-ipsecd pki, EC P-256)
#   mesh_cert NODE CA ADDRESS DNS    a node's certificate, key and the CA in $work/pki/NODE
#   mesh_guest_run NAME SECONDS MEM GUEST ARG...
#       the UML guest: its init runs `bash GUEST ARG...` (xstate_shim and modprobe from
#       uml_prepare), MEM of memory, bounded by SECONDS; waits, prints its console from init
#       on; sets mesh_guest_s and mesh_uml_rc; returns non-zero unless it wrote PASS to
#       $work/result
# EC keys: the strongswan backend takes them, and they keep the slow UML CPU's IKE short.

mesh_host_init() {
  local name=$1 build tool
  build=$(realpath "$2")
  shift 2
  mesh_name=$name
  if [[ $(id -u) -ne 0 ]]; then echo "$name: must run as root" >&2; exit 1; fi
  for tool in /usr/bin/linux.uml /usr/sbin/charon-systemd /usr/sbin/swanctl /usr/bin/tcpdump /usr/bin/perl "$@"; do
    [[ -x $tool ]] || { echo "$name: $tool is missing; run scripts/setup" >&2; exit 1; }
  done
  kver=$(ls /usr/lib/uml/modules 2>/dev/null | head -1)
  [[ -n $kver ]] || { echo "$name: no UML modules in /usr/lib/uml/modules; run scripts/setup" >&2; exit 1; }
  work=$(mktemp -d "$build/$name.XXXXXX")
  uml_pid=
  trap mesh_cleanup EXIT
  trap 'exit 130' INT TERM
}

mesh_cleanup() {
  local rc=$? d
  set +e
  if [[ -n $uml_pid ]] && kill -0 "$uml_pid" 2>/dev/null; then
    kill -TERM "$uml_pid"
    wait "$uml_pid" 2>/dev/null
  fi
  if ((rc != 0)) && [[ -d $work ]]; then
    echo "---- $mesh_name: evidence for the failure (every node's daemon and charon logs, tails)"
    while read -r d; do
      echo "-- ${d#"$work"/}/daemon.log"; tail -10 "$d/daemon.log" 2>/dev/null
      echo "-- ${d#"$work"/}/charon.log"; grep -E 'IKE|CHD|CFG|KNL' "$d/charon.log" 2>/dev/null | tail -10
    done < <(find "$work" -name charon.log -printf '%h\n' | sort)
  fi
  if [[ -n ${IPOPSEC_MESH_KEEP:-} ]]; then
    echo "$mesh_name: IPOPSEC_MESH_KEEP is set: the work folder (logs, capture) stays: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}

mesh_pki() { "$bin" pki "$@" >>"$work/pki.log" 2>&1 || { echo "$mesh_name: ipop-ipsecd pki $1 failed: $(tail -3 "$work/pki.log")" >&2; exit 1; }; }
mesh_ca() { mesh_pki init-ca --dir "$work/pki/$1" --name "$2" --days 2 --key ec; }
mesh_cert() { mesh_pki issue --ca-dir "$work/pki/$2" --ip "$3" --dns "$4" --days 2 --key ec --out "$work/pki/$1"; }

mesh_guest_run() {
  local name=$1 seconds=$2 mem=$3 start
  shift 3
  source "$(dirname "${BASH_SOURCE[0]}")/host.sh"
  uml_prepare "$work"
  { printf '#!/bin/bash\nexec /bin/bash'; printf ' %q' "$@"; printf '\n'; } >"$work/init"
  chmod +x "$work/init"
  echo "$name: booting a UML guest (Linux $kver, mem=$mem): $*"
  start=$SECONDS
  uml_boot "$work" "$work/init" "$seconds" "$mem"
  mesh_uml_rc=0
  wait "$uml_pid" || mesh_uml_rc=$?
  uml_pid=
  mesh_guest_s=$((SECONDS - start))
  echo "$name: guest ran $mesh_guest_s s (exit $mesh_uml_rc)"
  echo "---- guest console (kernel messages and the test's own lines, [time] ok/FAIL ...)"
  grep -v -E '^[[:space:]]*\[<|^(Call Trace|Stack):' "$work/console.log" | sed -n '/as init process/,$p'
  echo "----"
  [[ $(cat "$work/result" 2>/dev/null) == PASS ]]
}
