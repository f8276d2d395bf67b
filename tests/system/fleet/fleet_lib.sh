# tests/system/fleet/fleet_lib.sh -- several systemd containers for one system test (sourced,
# not run; it lives in a subdirectory so that ctest does not take it for a test).
#
# The multi-container sibling of tests/system/lib.sh (which boots ONE container, and which
# other tests depend on): every container is systemd-nspawn on its own throw-away overlay
# of the host root, in its own network namespace made by the test. An "overlay segment"
# namespace of the test's own holds a bridge; fleet_attach gives a container an interface
# (e.g. IPOP's `ipop`) that is one end of a veth pair whose other end is a port of that
# bridge, so the containers reach each other there and nowhere else. Never boots systemd on
# the host root. Everything is undone by a trap, also on failure or Ctrl-C: each container
# powered off (its nspawn killed BY PID if it does not go), overlays and tmpfs unmounted,
# namespaces deleted, the work folder removed.
#
# Usage in a test:
#   source "$(dirname "$0")/fleet/fleet_lib.sh" "$@"   # $1 = ipop-ipsecd binary, $2 = build dir
#   fleet_setup                         # work folder, traps, the segment namespace
#   fleet_add NAME...                   # a netns + an overlay each; "${FLEET_ROOT[NAME]}" is its /
#   fleet_attach NAME IFNAME            # an interface on the segment's bridge
#   fleet_boot NAME...                  # boots them all at once; waits for running|degraded
#   fleet_run NAME CMD...               # CMD inside the container (all its namespaces)
#   fleet_wait "what" SECONDS CMD...    # until CMD succeeds, bounded (polled)
#   check "what" CMD...                 # CMD must succeed
#   fleet_pass
# Only addresses 10.254.x.x are used, inside the namespaces this file creates.

set -euo pipefail

FLEET_BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
FLEET_BUILD=${2:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
FLEET_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
FLEET_TAG=ipopsec-fl-$$             # prefix of the namespaces and machine names, unique per run
FLEET_WORK=
FLEET_SEG=                          # the segment's namespace (bridge br0)
FLEET_NAMES=()                      # every container added, in order
declare -A FLEET_ROOT=() FLEET_NS=() FLEET_NSPAWN=() FLEET_PID1=()
FLEET_CHECKS=0
FLEET_T0=$SECONDS

fleet_log() { printf '[%3ds] %s\n' "$((SECONDS - FLEET_T0))" "$*"; }

# What each container said, for a failing test's log.
fleet_diag() {
  set +e
  local n
  for n in "${FLEET_NAMES[@]}"; do
    [[ -n ${FLEET_PID1[$n]:-} ]] && kill -0 "${FLEET_PID1[$n]}" 2>/dev/null || continue
    echo "---- diagnostics of $n: failed units, ipop-ipsecd status, journal (last 60 lines)"
    fleet_run "$n" systemctl --no-pager --failed
    fleet_run "$n" ipop-ipsecd status 2>&1
    fleet_run "$n" journalctl --no-pager -b -n 60 -o short-precise -u ipop-ipsecd -u strongswan -u ipop
  done
}

fleet_fail() {
  echo "FAIL: $*" >&2
  fleet_diag >&2
  exit 1
}

check() {
  local what=$1
  shift
  if "$@"; then
    FLEET_CHECKS=$((FLEET_CHECKS + 1))
    fleet_log "ok: $what"
  else
    fleet_fail "$what (command: $*)"
  fi
}

fleet_need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || fleet_fail "needed tool '$t' is missing: run scripts/setup --test"
  done
}

fleet_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local n pid deadline
  # Ask every container to power off at once (SIGRTMIN+4 if its bus does not answer) ...
  for n in "${FLEET_NAMES[@]}"; do
    pid=${FLEET_PID1[$n]:-}
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      timeout 10 nsenter -t "$pid" -a systemctl poweroff --no-block >/dev/null 2>&1 ||
        kill -s SIGRTMIN+4 "$pid" 2>/dev/null
    fi
  done
  # ... then wait for each nspawn (bounded), and kill it by its PID if it does not go.
  deadline=$((SECONDS + 30))
  for n in "${FLEET_NAMES[@]}"; do
    pid=${FLEET_NSPAWN[$n]:-}
    [[ -n $pid ]] || continue
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "container $n did not power off in time: killing its nspawn (pid $pid)" >&2
      kill -TERM "$pid" 2>/dev/null
      local k
      for ((k = 0; k < 25; k++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  for n in "${FLEET_NAMES[@]}"; do
    mountpoint -q "$FLEET_WORK/$n/o/root" && umount "$FLEET_WORK/$n/o/root"
    mountpoint -q "$FLEET_WORK/$n/o" && umount "$FLEET_WORK/$n/o"
    [[ -n ${FLEET_NS[$n]:-} ]] && ip netns del "${FLEET_NS[$n]}" 2>/dev/null
  done
  [[ -n $FLEET_SEG ]] && ip netns del "$FLEET_SEG" 2>/dev/null
  if [[ -n $FLEET_WORK ]]; then
    if grep -q " $FLEET_WORK/" /proc/mounts; then
      echo "mounts under $FLEET_WORK are still there: the folder is left" >&2
    else
      rm -rf "$FLEET_WORK"
    fi
  fi
  exit "$rc"
}

fleet_setup() {
  [[ $(id -u) -eq 0 ]] || fleet_fail "system tests need root (nspawn, network namespaces)"
  fleet_need systemd-nspawn nsenter ip mount umount mountpoint timeout
  trap fleet_cleanup EXIT
  trap 'exit 130' INT TERM
  FLEET_WORK=$(mktemp -d /tmp/ipopsec-fleet.XXXXXX)
  # Host /run is not a tmpfs here; nspawn needs one for its own state.
  mkdir -p /run/systemd/nspawn
  mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
  FLEET_SEG=$FLEET_TAG-seg
  ip netns add "$FLEET_SEG"
  ip -n "$FLEET_SEG" link set lo up
  ip -n "$FLEET_SEG" link add br0 type bridge
  ip -n "$FLEET_SEG" link set br0 up
}

# fleet_add NAME...: a network namespace and an overlay of the host root for each.
fleet_add() {
  local n u r
  for n in "$@"; do
    FLEET_NAMES+=("$n")
    FLEET_NS[$n]=$FLEET_TAG-$n
    ip netns add "${FLEET_NS[$n]}"
    ip -n "${FLEET_NS[$n]}" link set lo up
    mkdir -p "$FLEET_WORK/$n/o"
    mount -t tmpfs -o mode=0755 tmpfs "$FLEET_WORK/$n/o"
    mkdir -p "$FLEET_WORK/$n/o/upper" "$FLEET_WORK/$n/o/work" "$FLEET_WORK/$n/o/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$FLEET_WORK/$n/o/upper,workdir=$FLEET_WORK/$n/o/work" \
      "$FLEET_WORK/$n/o/root"
    r=$FLEET_WORK/$n/o/root
    FLEET_ROOT[$n]=$r
    # Keep the boot small and quick: units of the host that have nothing to do with the test.
    for u in postgresql.service strongswan-starter.service ipsec.service e2scrub_reap.service \
             prometheus.service prometheus-node-exporter.service ssh.service \
             apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
      ln -sf /dev/null "$r/etc/systemd/system/$u"
    done
  done
}

# fleet_attach NAME IFNAME: IFNAME in NAME's namespace, the other end a port of the segment's br0.
fleet_attach() {
  local n=$1 ifname=$2 port="p${#FLEET_NAMES[@]}-$1"
  port=${port:0:15}
  ip link add "$ifname" netns "${FLEET_NS[$n]}" type veth peer name "$port" netns "$FLEET_SEG"
  ip -n "$FLEET_SEG" link set "$port" master br0 up
}

# fleet_boot NAME...: boots the containers at once, then waits for each (bounded).
fleet_boot() {
  local n
  for n in "$@"; do
    systemd-nspawn -q -D "${FLEET_ROOT[$n]}" --register=no --keep-unit -M "${FLEET_NS[$n]}" \
      --network-namespace-path="/run/netns/${FLEET_NS[$n]}" --capability=CAP_NET_ADMIN,CAP_NET_RAW \
      -b >"$FLEET_WORK/$n/console.log" 2>&1 </dev/null &
    FLEET_NSPAWN[$n]=$!
  done
  local deadline=$((SECONDS + 30)) c pending
  # Each container's PID 1, seen from the host: nspawn's child that runs systemd.
  while :; do
    pending=0
    for n in "$@"; do
      [[ -n ${FLEET_PID1[$n]:-} ]] && continue
      kill -0 "${FLEET_NSPAWN[$n]}" 2>/dev/null || { cat "$FLEET_WORK/$n/console.log" >&2; fleet_fail "nspawn of $n exited"; }
      for c in $(ps -o pid= --ppid "${FLEET_NSPAWN[$n]}" 2>/dev/null); do
        [[ $(cat "/proc/$c/comm" 2>/dev/null) == systemd ]] && FLEET_PID1[$n]=$c
      done
      [[ -n ${FLEET_PID1[$n]:-} ]] || pending=1
    done
    ((pending)) || break
    ((SECONDS < deadline)) || fleet_fail "no systemd under nspawn after 30 s"
    sleep 0.1
  done
  local state
  deadline=$((SECONDS + 90))
  for n in "$@"; do
    state=
    until [[ $state == running || $state == degraded ]]; do
      ((SECONDS < deadline)) || fleet_fail "container $n did not finish booting in time: '$state'"
      state=$(timeout 60 nsenter -t "${FLEET_PID1[$n]}" -a systemctl is-system-running --wait 2>/dev/null) || true
      [[ $state == running || $state == degraded ]] || sleep 0.2
    done
    fleet_log "container $n booted ($state), PID 1 is ${FLEET_PID1[$n]} on the host, netns ${FLEET_NS[$n]}"
    if [[ $state == degraded ]]; then
      fleet_log "  failed units in $n: $(fleet_run "$n" systemctl list-units --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')"
      # Seen once with four containers booting at once: the simulated IPOP unit failed with
      # 219/CGROUP (systemd could not place its process in the unit's cgroup), a boot race
      # of nspawn, not of anything under test. Started again once, said so; any other
      # failure stays and the checks that follow report it.
      if [[ $(fleet_run "$n" systemctl show -P ExecMainStatus ipop.service 2>/dev/null) == 219 ]]; then
        fleet_log "  $n: ipop.service failed with 219/CGROUP at boot; starting it again"
        fleet_run "$n" systemctl restart ipop.service ||
          fleet_fail "$n: ipop.service does not start: $(fleet_run "$n" systemctl status ipop.service --no-pager 2>&1 | tail -5)"
      fi
    fi
  done
}

# fleet_run NAME CMD...: CMD inside container NAME (all its namespaces), clean environment.
fleet_run() {
  local n=$1
  shift
  nsenter -t "${FLEET_PID1[$n]}" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= "$@"
}

# fleet_wait "what" SECONDS CMD...: waits for CMD to succeed (polled every 0.2 s), bounded.
fleet_wait() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fleet_fail "timed out after ${limit}s waiting for: $what"
    sleep 0.2
  done
  fleet_log "seen: $what"
}

fleet_pass() {
  fleet_log "PASS: $(basename "$0"): $FLEET_CHECKS checks"
}
