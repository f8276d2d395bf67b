# tests/system/lib.sh -- shared by the system tests (sourced, not run): tests/system/systemd_*.sh
# and ansible_fleet.sh boot containers with it, units_verify.sh uses its overlay alone
# (sys_setup, no boot), binary_hardening.sh and package_lintian.sh only its check, sys_fail,
# sys_need and sys_pass.
#
# Boots real systemd in systemd-nspawn, each container on its own throw-away overlay of the
# host root, in a network namespace made for the test, with the project installed into the
# overlay by `cmake --install` (or by the test, from the .deb). Never boots systemd on the
# host root itself. Everything is undone by a trap, also on failure or Ctrl-C: every
# container is powered off (its nspawn killed BY PID if it does not go), the overlays and
# their tmpfs are unmounted, the namespaces are deleted, the work folder removed.
#
# One container (most tests):
#   source "$(dirname "$0")/lib.sh" "$@"      # $1 = ipop-ipsecd binary, $2 = build dir
#   sys_setup [--no-install]                  # netns $SYS_NAME + overlay $ROOT + cmake --install
#   sys_node strongswan|racoon                # or: sys_setup, certificates, simulated IPOP, config
#   ...write files into "$ROOT" (the container's /), sys_enable UNIT...
#   sys_boot                                  # waits for running|degraded (bounded)
#   sys_run CMD...                            # run CMD inside the container
# Several containers (ansible_fleet.sh):
#   sys_fleet_setup                           # work folder, traps, the segment namespace (bridge br0)
#   sys_add NAME...                           # a netns + an overlay each; "${SYS_ROOTS[NAME]}" is its /
#   sys_attach NAME IFNAME                    # an interface of NAME that is a port of the segment's br0
#   sys_boot NAME...                          # boots them all at once; waits for running|degraded
#   sys_on NAME CMD...                        # CMD inside container NAME
# Both:
#   sys_wait "what" SECONDS CMD...            # until CMD succeeds, bounded (polled)
#   check "what" CMD...                       # CMD must succeed (counted)
#   sys_pass                                  # prints the summary
# Only addresses 10.254.x.x are used, inside the namespaces this file creates.
# IPOPSEC_SYS_ROOT=DIR: the overlays' lower layer is the OS tree DIR instead of the host
# root (scripts/test-trixie: a Debian 13 root); the project is then installed with DIR's own
# cmake (BUILD_DIR, writable for install_manifest.txt, and the source bound at their paths),
# and systemd boots on the unified cgroup hierarchy (systemd >= 256 has no other).

set -euo pipefail

SYS_BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
SYS_BUILD=${2:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
SYS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SYS_LOWER=${IPOPSEC_SYS_ROOT:-/}   # the OS booted (on an overlay)
SYS_NAME=ipopsec-sys-$$             # the one container's netns and machine name (a fleet's prefix)
SYS_WORK=
SYS_SEG=                            # a fleet's segment namespace (bridge br0)
SYS_NAMES=()                        # every container added, in order
declare -A SYS_ROOTS=() SYS_NETNS=() SYS_NSPAWNS=() SYS_PID1S=()
ROOT=                               # the one container's root, seen from the host
SYS_NSPAWN_PID=                     # the one container's nspawn
SYS_PID1=                           # the one container's PID 1, seen from the host
SYS_CHECKS=0
SYS_T0=$SECONDS
SYS_ONE=sys                         # the one container's name in SYS_NAMES

sys_log() { printf '[%3ds] %s\n' "$((SECONDS - SYS_T0))" "$*"; }

# Everything the containers said, for a failing test's log.
sys_diag() {
  set +e
  local n lines=150
  ((${#SYS_NAMES[@]} < 2)) || lines=60
  for n in "${SYS_NAMES[@]}"; do
    [[ -n ${SYS_PID1S[$n]:-} ]] && kill -0 "${SYS_PID1S[$n]}" 2>/dev/null || continue
    echo "---- diagnostics of $n: systemctl --failed, ipop-ipsecd status, journal (last $lines lines)"
    sys_on "$n" systemctl --no-pager --failed
    sys_on "$n" systemctl --no-pager status ipop-ipsecd.service
    sys_on "$n" journalctl --no-pager -b -n "$lines" -o short-precise
  done
}

# sys_fail MESSAGE: says what failed, then what the containers said (and, if the test
# defines sys_on_fail, what it prints), and exits 1.
sys_fail() {
  echo "FAIL: $*" >&2
  sys_diag >&2
  if declare -F sys_on_fail >/dev/null; then sys_on_fail >&2; fi
  exit 1
}

# check "what" CMD...: CMD must succeed.
check() {
  local what=$1
  shift
  if "$@"; then
    SYS_CHECKS=$((SYS_CHECKS + 1))
    sys_log "ok: $what"
  else
    sys_fail "$what (command: $*)"
  fi
}

sys_need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || sys_fail "needed tool '$t' is missing: run scripts/setup --test"
  done
}

sys_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local n pid deadline k
  # Ask every container to power off at once (SIGRTMIN+4, which needs no bus, if systemctl
  # does not answer) ...
  for n in "${SYS_NAMES[@]}"; do
    pid=${SYS_PID1S[$n]:-}
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      timeout 10 nsenter -t "$pid" -a systemctl poweroff --no-block >/dev/null 2>&1 ||
        kill -s SIGRTMIN+4 "$pid" 2>/dev/null
    fi
  done
  # ... then wait for each nspawn (bounded), and kill it by its PID if it does not go.
  deadline=$((SECONDS + 30))
  for n in "${SYS_NAMES[@]}"; do
    pid=${SYS_NSPAWNS[$n]:-}
    [[ -n $pid ]] || continue
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "container $n did not power off in time: killing its nspawn (pid $pid)" >&2
      kill -TERM "$pid" 2>/dev/null
      for ((k = 0; k < 25; k++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  for n in "${SYS_NAMES[@]}"; do
    mountpoint -q "$(sys_dir "$n")/o/root" && umount "$(sys_dir "$n")/o/root"
    mountpoint -q "$(sys_dir "$n")/o" && umount "$(sys_dir "$n")/o"
    [[ -n ${SYS_NETNS[$n]:-} ]] && ip netns del "${SYS_NETNS[$n]}" 2>/dev/null
  done
  [[ -n $SYS_SEG ]] && ip netns del "$SYS_SEG" 2>/dev/null
  if [[ -n $SYS_WORK ]]; then
    if grep -q " $SYS_WORK/" /proc/mounts; then
      echo "mounts under $SYS_WORK are still there: the folder is left" >&2
    else
      rm -rf "$SYS_WORK"
    fi
  fi
  exit "$rc"
}

# Root, the tools, the traps, the work folder, and a tmpfs for nspawn's state.
sys_init() {
  [[ $(id -u) -eq 0 ]] || sys_fail "system tests need root (nspawn, network namespaces)"
  sys_need systemd-nspawn nsenter ip mount umount mountpoint openssl timeout
  [[ -x $SYS_LOWER/lib/systemd/systemd ]] || sys_fail "no systemd in the OS tree $SYS_LOWER"
  trap sys_cleanup EXIT
  trap 'exit 130' INT TERM
  SYS_WORK=$(mktemp -d /tmp/ipopsec-sys.XXXXXX)
  # Host /run is not a tmpfs here; nspawn needs one for its own state (LAB.md).
  mkdir -p /run/systemd/nspawn
  mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
}

# The folder of container NAME (its overlay below o/, its console.log): the one container's
# is the work folder itself.
sys_dir() { if [[ $1 == "$SYS_ONE" ]]; then echo "$SYS_WORK"; else echo "$SYS_WORK/$1"; fi; }

# sys_add NAME...: a network namespace and an overlay of the OS tree for each.
sys_add() {
  local n u r d
  for n in "$@"; do
    SYS_NAMES+=("$n")
    if [[ $n == "$SYS_ONE" ]]; then SYS_NETNS[$n]=$SYS_NAME; else SYS_NETNS[$n]=$SYS_NAME-$n; fi
    ip netns add "${SYS_NETNS[$n]}"
    ip -n "${SYS_NETNS[$n]}" link set lo up
    d=$(sys_dir "$n")
    mkdir -p "$d/o"
    mount -t tmpfs -o mode=0755 tmpfs "$d/o"
    mkdir -p "$d/o/upper" "$d/o/work" "$d/o/root"
    mount -t overlay overlay -o "lowerdir=$SYS_LOWER,upperdir=$d/o/upper,workdir=$d/o/work" "$d/o/root"
    r=$d/o/root
    SYS_ROOTS[$n]=$r
    # The host may carry leftovers of an earlier manual install: a clean slate in the overlay.
    rm -rf "$r/etc/ipop-ipsec" "$r/run/ipop-ipsec"
    # Keep the boot small and quick: units of the host that have nothing to do with the test.
    for u in postgresql.service strongswan-starter.service ipsec.service e2scrub_reap.service \
             prometheus.service prometheus-node-exporter.service ssh.service \
             apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
      ln -sf /dev/null "$r/etc/systemd/system/$u"
    done
    sys_log "overlay of $SYS_LOWER at $r, netns ${SYS_NETNS[$n]}"
  done
}

# One container: network namespace, overlay, the project installed into it as an operator
# does (unless the test installs the .deb itself: sys_setup --no-install).
sys_setup() {
  sys_init
  sys_need cmake
  [[ -x $SYS_BIN ]] || sys_fail "no binary at $SYS_BIN"
  local prefix
  prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$SYS_BUILD/CMakeCache.txt")
  [[ $prefix == /usr ]] || sys_fail "$SYS_BUILD is configured with CMAKE_INSTALL_PREFIX=$prefix;" \
    "the units expect /usr/sbin and /etc: configure with -DCMAKE_INSTALL_PREFIX=/usr (the default for a new build dir)"
  sys_add "$SYS_ONE"
  ROOT=${SYS_ROOTS[$SYS_ONE]}
  if [[ ${1:-} != --no-install ]]; then
    if [[ $SYS_LOWER == / ]]; then
      DESTDIR=$ROOT cmake --install "$SYS_BUILD" >"$SYS_WORK/install.log" 2>&1
    else
      systemd-nspawn -q --register=no --keep-unit -D "$ROOT" --bind="$SYS_BUILD" --bind-ro="$SYS_SRC" \
        cmake --install "$SYS_BUILD" >"$SYS_WORK/install.log" 2>&1
    fi ||
      { cat "$SYS_WORK/install.log" >&2; sys_fail "cmake --install into the overlay failed"; }
    [[ -x $ROOT/usr/sbin/ipop-ipsecd ]] || sys_fail "cmake --install did not lay out /usr/sbin/ipop-ipsecd"
  fi
}

# Several containers: the work folder, the traps, and the "overlay segment": a namespace of
# the test's own with a bridge br0, where sys_attach puts the containers' interfaces, so
# the containers reach each other there and nowhere else.
sys_fleet_setup() {
  sys_init
  SYS_SEG=$SYS_NAME-seg
  ip netns add "$SYS_SEG"
  ip -n "$SYS_SEG" link set lo up
  ip -n "$SYS_SEG" link add br0 type bridge
  ip -n "$SYS_SEG" link set br0 up
}

# sys_attach NAME IFNAME: IFNAME in NAME's namespace, the other end a port of the segment's br0.
sys_attach() {
  local n=$1 ifname=$2 port="p${#SYS_NAMES[@]}-$1"
  [[ -n $SYS_SEG ]] || sys_fail "internal: no segment (call sys_fleet_setup first)"
  port=${port:0:15}
  ip link add "$ifname" netns "${SYS_NETNS[$n]}" type veth peer name "$port" netns "$SYS_SEG"
  ip -n "$SYS_SEG" link set "$port" master br0 up
}

# Guards every writer: files go into the overlay, never into the host's own root.
sys_overlay_ready() {
  [[ -n $ROOT ]] && mountpoint -q "$ROOT" || sys_fail "internal: overlay not set up (call sys_setup first)"
}

# sys_enable UNIT...: enabled before boot (systemctl --root works without a running systemd).
sys_enable() {
  sys_overlay_ready
  systemctl --root="$ROOT" enable "$@" >/dev/null 2>&1 || sys_fail "cannot enable $*"
}

# sys_boot [NAME...]: boots the containers (the one container without NAME) at once, then
# waits for each (bounded) to finish booting.
sys_boot() {
  (($#)) || set -- "$SYS_ONE"
  local env=() n
  [[ $SYS_LOWER == / ]] || env=(SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1)
  for n in "$@"; do
    env "${env[@]}" systemd-nspawn -q -D "${SYS_ROOTS[$n]}" --register=no --keep-unit -M "${SYS_NETNS[$n]}" \
      --network-namespace-path="/run/netns/${SYS_NETNS[$n]}" --capability=CAP_NET_ADMIN,CAP_NET_RAW \
      -b >"$(sys_dir "$n")/console.log" 2>&1 </dev/null &
    SYS_NSPAWNS[$n]=$!
  done
  # Each container's PID 1, seen from the host: nspawn's child that runs systemd.
  local deadline=$((SECONDS + 30)) c pending
  while :; do
    pending=0
    for n in "$@"; do
      [[ -n ${SYS_PID1S[$n]:-} ]] && continue
      kill -0 "${SYS_NSPAWNS[$n]}" 2>/dev/null || { cat "$(sys_dir "$n")/console.log" >&2; sys_fail "nspawn of $n exited"; }
      for c in $(ps -o pid= --ppid "${SYS_NSPAWNS[$n]}" 2>/dev/null); do
        [[ $(cat "/proc/$c/comm" 2>/dev/null) == systemd ]] && SYS_PID1S[$n]=$c
      done
      [[ -n ${SYS_PID1S[$n]:-} ]] || pending=1
    done
    ((pending)) || break
    ((SECONDS < deadline)) || sys_fail "no systemd under nspawn after 30 s"
    sleep 0.1
  done
  SYS_PID1=${SYS_PID1S[$SYS_ONE]:-} SYS_NSPAWN_PID=${SYS_NSPAWNS[$SYS_ONE]:-}
  # Until its bus is up, systemctl fails at once; then --wait blocks until boot is done.
  local state
  deadline=$((SECONDS + 90))
  for n in "$@"; do
    state=
    until [[ $state == running || $state == degraded ]]; do
      ((SECONDS < deadline)) || sys_fail "container $n did not finish booting in time: '$state'"
      state=$(timeout 60 nsenter -t "${SYS_PID1S[$n]}" -a systemctl is-system-running --wait 2>/dev/null) || true
      [[ $state == running || $state == degraded ]] || sleep 0.2
    done
    sys_log "container $n booted ($state), PID 1 is ${SYS_PID1S[$n]} on the host, netns ${SYS_NETNS[$n]}"
    if [[ $state == degraded ]]; then
      sys_log "  failed units in $n: $(sys_on "$n" systemctl list-units --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')"
      # Seen once with four containers booting at once: the simulated IPOP unit failed with
      # 219/CGROUP (systemd could not place its process in the unit's cgroup), a boot race
      # of nspawn, not of anything under test. Started again once, said so; any other
      # failure stays and the checks that follow report it.
      if [[ $(sys_on "$n" systemctl show -P ExecMainStatus ipop.service 2>/dev/null) == 219 ]]; then
        sys_log "  $n: ipop.service failed with 219/CGROUP at boot; starting it again"
        sys_on "$n" systemctl restart ipop.service ||
          sys_fail "$n: ipop.service does not start: $(sys_on "$n" systemctl status ipop.service --no-pager 2>&1 | tail -5)"
      fi
    fi
  done
}

# sys_on NAME CMD...: CMD inside container NAME (all its namespaces), with a clean environment.
sys_on() {
  local n=$1
  shift
  nsenter -t "${SYS_PID1S[$n]}" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= "$@"
}

# sys_run CMD...: CMD inside the one container.
sys_run() { sys_on "$SYS_ONE" "$@"; }

# sys_wait "what" SECONDS CMD...: waits for CMD to succeed (polled every 0.1 s), bounded.
sys_wait() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || sys_fail "timed out after ${limit}s waiting for: $what"
    sleep 0.1
  done
  sys_log "seen: $what"
}

# A unit property inside the container (systemctl show -P).
sys_prop() { sys_run systemctl show -P "$2" "$1"; }

# sys_make_certs [BACKEND]: a GroupVPN CA and this node's certificate with a subjectAltName,
# in BACKEND's default certificate directory in the container (strongswan:
# /etc/ipop-ipsec/certs; racoon, the default: /etc/racoon/certs, racoon's own): the daemon
# holds the IKE daemon back until all three exist.
sys_make_certs() {
  sys_overlay_ready
  local d t=$SYS_WORK/pki
  case ${1:-racoon} in
    strongswan) d=$ROOT/etc/ipop-ipsec/certs ;;
    racoon) d=$ROOT/etc/racoon/certs ;;
    *) sys_fail "internal: sys_make_certs strongswan|racoon, not '${1:-}'" ;;
  esac
  mkdir -p "$d" "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ipop-ipsec test CA" \
    -keyout "$t/ca-key.pem" -out "$d/cacert.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=node16" -addext "subjectAltName=IP:10.254.0.16" \
    -keyout "$d/host-key.pem" -out "$t/host.csr" 2>/dev/null
  openssl x509 -req -in "$t/host.csr" -CA "$d/cacert.pem" -CAkey "$t/ca-key.pem" -CAcreateserial \
    -days 2 -copy_extensions copy -out "$d/host-cert.pem" 2>/dev/null
  chmod 600 "$d/host-key.pem"
  openssl x509 -in "$d/host-cert.pem" -noout -ext subjectAltName | grep -q 'IP Address:10.254.0.16' ||
    sys_fail "test certificate has no subjectAltName"
}

# sys_node strongswan|racoon: one node of the backend, not yet booted: sys_setup, its
# certificates (sys_make_certs), the simulated IPOP giving the tap 10.254.0.16/16, the
# daemon's config for the backend's unit (strongswan.service, Debian's real one, which must
# be there; racoon.service, the stand-in). The test enables the units it wants.
sys_node() {
  case $1 in
    strongswan)
      sys_need charon-systemd swanctl
      [[ -f $SYS_LOWER/lib/systemd/system/strongswan.service || -f $SYS_LOWER/usr/lib/systemd/system/strongswan.service ]] ||
        sys_fail "strongswan.service missing in $SYS_LOWER: run scripts/setup --test (charon-systemd)" ;;
    racoon) ;;
    *) sys_fail "internal: sys_node strongswan|racoon, not '$1'" ;;
  esac
  sys_setup
  sys_make_certs "$1"
  sys_make_ipop 10.254.0.16/16
  sys_write_config "$1" "$1.service"
  [[ $1 != racoon ]] || sys_make_racoon_standin
}

# The simulated IPOP: ipop.service is Type=oneshot + RemainAfterExit like IPOP's own, and
# its tap gets its address only 3 s after the unit is "active" (the trap the issue names).
# The address comes from /etc/ipop-sim/address. Like IPOP's controller, a process of the
# unit (ipopsec-tap-carrier, from the build dir) holds the tap open, so it has carrier: a tap
# nobody holds is NO-CARRIER, and the daemon does not count IPOP as up then.
sys_make_ipop() {
  sys_overlay_ready
  [[ -x $SYS_BUILD/ipopsec-tap-carrier ]] || sys_fail "no $SYS_BUILD/ipopsec-tap-carrier: build the ipopsec-tap-carrier target"
  mkdir -p "$ROOT/usr/local/sbin" "$ROOT/etc/ipop-sim"
  install -m 0755 "$SYS_BUILD/ipopsec-tap-carrier" "$ROOT/usr/local/sbin/ipopsec-tap-carrier"
  echo "${1:-10.254.0.16/16}" >"$ROOT/etc/ipop-sim/address"
  cat >"$ROOT/usr/local/sbin/ipop-sim" <<'EOF'
#!/bin/sh
# Simulated IPOP: creates the tap at once, gives it its address 3 s later (in the background,
# so ipop.service is already "active" when the address appears).
set -e
case "$1" in
  start)
    ip tuntap add dev ipop mode tap
    /usr/local/sbin/ipopsec-tap-carrier ipop >/run/ipop-sim.carrier  # the holder's pid; it stays in the unit
    ip link set ipop up
    addr=$(cat /etc/ipop-sim/address)
    (sleep 3; ip addr add "$addr" dev ipop; echo "ipop-sim: $addr on ipop") &
    echo "ipop-sim: tap ipop up, address $addr in 3 s"
    ;;
  stop)
    [ -s /run/ipop-sim.carrier ] && kill "$(cat /run/ipop-sim.carrier)" 2>/dev/null || true
    rm -f /run/ipop-sim.carrier
    ip link del ipop 2>/dev/null || true
    ;;
esac
EOF
  chmod 755 "$ROOT/usr/local/sbin/ipop-sim"
  cat >"$ROOT/etc/systemd/system/ipop.service" <<'EOF'
[Unit]
Description=Simulated IPOP GroupVPN (oneshot, like IPOP's own unit)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/ipop-sim start
ExecStop=/usr/local/sbin/ipop-sim stop
[Install]
WantedBy=multi-user.target
EOF
}

# A stand-in racoon.service (racoon is not packaged in Debian): a simple service that
# records each start with a timestamp and the tap's IPv4 addresses at that moment in
# /var/lib/racoon-standin/starts, then sleeps. The installed drop-in applies to it.
sys_make_racoon_standin() {
  sys_overlay_ready
  mkdir -p "$ROOT/var/lib/racoon-standin" "$ROOT/usr/local/sbin"
  rm -f "$ROOT/var/lib/racoon-standin/starts"
  cat >"$ROOT/usr/local/sbin/racoon-standin" <<'EOF'
#!/bin/sh
# Stand-in racoon: one line per start: "<epoch seconds> <the tap's IPv4 addresses>".
addrs=$(ip -4 -o addr show dev ipop 2>/dev/null | awk '{print $4}' | tr '\n' ' ')
echo "$(date +%s.%N) ${addrs:-none}" >>/var/lib/racoon-standin/starts
echo "racoon stand-in started; ipop addresses: ${addrs:-none}"
exec sleep infinity
EOF
  chmod 755 "$ROOT/usr/local/sbin/racoon-standin"
  cat >"$ROOT/etc/systemd/system/racoon.service" <<'EOF'
[Unit]
Description=racoon stand-in (records each start)
[Service]
Type=simple
ExecStart=/usr/local/sbin/racoon-standin
[Install]
WantedBy=multi-user.target
EOF
}
# How many times the stand-in started; the Nth start's line.
starts() { sys_run sh -c 'cat /var/lib/racoon-standin/starts 2>/dev/null' | grep -c . || true; }
starts_ge() { (($(starts) >= $1)); }
start_line() { sys_run sed -n "${1}p" /var/lib/racoon-standin/starts; }

# The daemon's config in the container: quick restart coalescing for the tests.
sys_write_config() {
  sys_overlay_ready
  local backend=${1:-racoon} unit=${2:-racoon.service}
  mkdir -p "$ROOT/etc/ipop-ipsec"
  cat >"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml" <<EOF
# ipop-ipsecd config of a system test (the defaults, but quick restart coalescing).
ipop:
  interface: ipop
protect:
  ranges: auto
ike:
  backend: $backend
  control: systemd
  unit: $unit
  quiet_period: 1s
  min_interval: 2s
  restart_timeout: 30s
EOF
}

# Runs in the container, exactly as written, the code block that follows the marker
# <!-- test: NAME --> in README.md or docs/*.md (the docs' commands, tested as a reader runs them).
sys_run_doc_block() {
  local block
  block=$(awk -v marker="<!-- test: $1 -->" 'index($0, marker) { found = 1; next }
             found && /^```/ { if (inside) exit; inside = 1; next }
             inside { print }' "$SYS_SRC"/README.md "$SYS_SRC"/docs/*.md)
  check "the README's block after <!-- test: $1 --> is found" test -n "$block"
  sys_log "running the README's commands as written:"
  printf '    %s\n' "$block"
  check "the README's commands run (sh -e)" sys_run sh -ec "$block"
}

sys_pass() {
  sys_log "PASS: $(basename "$0"): $SYS_CHECKS checks"
}

# Run directly (ctest registers every tests/system/*.sh), this file tests itself: a child
# boots one container and checks it is really systemd in the test's namespace, another
# boots two containers on a segment and checks they reach each other there and only there;
# then the parent checks that each child's trap left nothing behind (netns, mounts, work
# folder).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${SYS_SELFTEST_CHILD:-} in
    one)
      sys_setup
      sys_boot
      check "PID 1 in the container is systemd" test "$(sys_run cat /proc/1/comm)" = systemd
      check "the container runs in the test's network namespace" \
        test "$(sys_run readlink /proc/self/ns/net)" = "$(ip netns exec "$SYS_NAME" readlink /proc/self/ns/net)"
      check "the overlay carries the installed binary" sys_run test -x /usr/sbin/ipop-ipsecd
      echo "$SYS_WORK" >"$SYS_SELFTEST_OUT"
      sys_pass
      exit 0 ;;
    fleet)
      sys_fleet_setup
      sys_add a b
      sys_attach a ipop
      sys_attach b ipop
      sys_boot a b
      for n in a b; do
        check "$n: PID 1 is systemd, in its own namespace ${SYS_NETNS[$n]}" eval \
          '[[ $(sys_on "$n" cat /proc/1/comm) == systemd &&
              $(sys_on "$n" readlink /proc/self/ns/net) == "$(ip netns exec "${SYS_NETNS[$n]}" readlink /proc/self/ns/net)" ]]'
      done
      check "a and b are two machines (a boot id each)" \
        test "$(sys_on a cat /proc/sys/kernel/random/boot_id)" != "$(sys_on b cat /proc/sys/kernel/random/boot_id)"
      sys_on a ip addr add 10.254.0.1/24 dev ipop
      sys_on a ip link set ipop up
      sys_on b ip addr add 10.254.0.2/24 dev ipop
      sys_on b ip link set ipop up
      sys_wait "a reaches b over the segment's bridge" 10 sys_on a ping -c1 -W1 10.254.0.2
      check "the segment's bridge (netns $SYS_SEG) has the two ports and no other" \
        test "$(ip -n "$SYS_SEG" -o link show master br0 | wc -l)" -eq 2
      echo "$SYS_WORK" >"$SYS_SELFTEST_OUT"
      sys_pass
      exit 0 ;;
  esac
  for kind in one fleet; do
    out=$(mktemp /tmp/ipopsec-sys-selftest.XXXXXX)
    SYS_SELFTEST_CHILD=$kind SYS_SELFTEST_OUT=$out bash "${BASH_SOURCE[0]}" "$@" &
    child=$!
    rc=0
    wait "$child" || rc=$?
    work=$(cat "$out")
    rm -f "$out"
    [[ $rc -eq 0 ]] || { echo "FAIL: self-test child ($kind) exited $rc" >&2; exit 1; }
    [[ -n $work ]] || { echo "FAIL: self-test child ($kind) did not report its work folder" >&2; exit 1; }
    if ip netns list | grep -q "^ipopsec-sys-$child\b"; then echo "FAIL: netns ipopsec-sys-$child* left behind" >&2; exit 1; fi
    if grep -q " $work" /proc/mounts; then echo "FAIL: mounts under $work left behind" >&2; exit 1; fi
    if [[ -e $work ]]; then echo "FAIL: $work left behind" >&2; exit 1; fi
  done
  echo "PASS: lib.sh self-test: one container and two on a segment booted, checked, and cleaned up without leftovers"
fi
