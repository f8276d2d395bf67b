# tests/system/lib.sh -- shared by tests/system/systemd_*.sh (sourced, not run).
#
# Boots a real systemd in systemd-nspawn on a throw-away overlay of the host root, joined
# to a network namespace made for the test, with the project installed into the overlay
# by `cmake --install` (systemd-nspawn on a throw-away overlay of /). Never boots systemd on
# the host root itself. Everything is undone by a trap, also on failure or Ctrl-C:
# the container is powered off (nspawn killed BY PID if it does not go), the overlay and
# its tmpfs are unmounted, the namespace is deleted.
#
# Usage in a test:
#   source "$(dirname "$0")/lib.sh" "$@"      # $1 = ipop-ipsecd binary, $2 = build dir
#   sys_setup                                 # netns + overlay + cmake --install
#   ...write files into "$ROOT" (the container's /), sys_enable UNIT...
#   sys_boot                                  # waits for running|degraded (bounded)
#   sys_run CMD...                            # run CMD inside the container
#   sys_wait "what" SECONDS CMD...            # until CMD succeeds, bounded
#   sys_pass                                  # prints the summary
# Only addresses 10.254.x.x are used, inside the namespace this file creates.
# IPOPSEC_SYS_ROOT=DIR: the overlay's lower layer is the OS tree DIR instead of the host
# root (scripts/test-trixie: a Debian 13 root); the project is then installed with DIR's own
# cmake (BUILD_DIR, writable for install_manifest.txt, and the source bound at their paths),
# and systemd boots on the unified cgroup hierarchy (systemd >= 256 has no other).

set -euo pipefail

SYS_BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
SYS_BUILD=${2:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
SYS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SYS_LOWER=${IPOPSEC_SYS_ROOT:-/}   # the OS booted (on an overlay)
SYS_NAME=ipopsec-sys-$$             # netns and machine name, unique per run
SYS_WORK=
ROOT=                               # the container's root, seen from the host
SYS_NSPAWN_PID=
SYS_PID1=
SYS_CHECKS=0
SYS_T0=$SECONDS

sys_log() { printf '[%3ds] %s\n' "$((SECONDS - SYS_T0))" "$*"; }

# Everything the container said, for a failing test's log.
sys_diag() {
  set +e
  [[ -n $SYS_PID1 ]] && kill -0 "$SYS_PID1" 2>/dev/null || return 0
  echo "---- diagnostics: systemctl --failed, ipop-ipsecd status, journal (last 150 lines)"
  sys_run systemctl --no-pager --failed
  sys_run systemctl --no-pager status ipop-ipsecd.service
  sys_run journalctl --no-pager -b -n 150 -o short-precise
}

sys_fail() {
  echo "FAIL: $*" >&2
  sys_diag >&2
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
    command -v "$t" >/dev/null 2>&1 || sys_fail "needed tool '$t' is missing: run scripts/setup"
  done
}

sys_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -n $SYS_PID1 ]] && kill -0 "$SYS_PID1" 2>/dev/null; then
    # SIGRTMIN+4 asks systemd for a poweroff without needing its bus.
    nsenter -t "$SYS_PID1" -a systemctl poweroff --no-block >/dev/null 2>&1 ||
      kill -s SIGRTMIN+4 "$SYS_PID1" 2>/dev/null
  fi
  if [[ -n $SYS_NSPAWN_PID ]]; then
    local deadline=$((SECONDS + 20))
    while kill -0 "$SYS_NSPAWN_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$SYS_NSPAWN_PID" 2>/dev/null; then
      echo "container did not power off in 20 s: killing nspawn (pid $SYS_NSPAWN_PID)" >&2
      kill -TERM "$SYS_NSPAWN_PID" 2>/dev/null
      sleep 2
      kill -KILL "$SYS_NSPAWN_PID" 2>/dev/null
    fi
    wait "$SYS_NSPAWN_PID" 2>/dev/null
  fi
  if [[ -n $SYS_WORK ]]; then
    mountpoint -q "$SYS_WORK/o/root" && umount "$SYS_WORK/o/root"
    mountpoint -q "$SYS_WORK/o" && umount "$SYS_WORK/o"
  fi
  ip netns del "$SYS_NAME" 2>/dev/null
  [[ -n $SYS_WORK ]] && ! mountpoint -q "$SYS_WORK/o" && rm -rf "$SYS_WORK"
  exit "$rc"
}

# Network namespace, overlay of the host root, project installed into it.
sys_setup() {
  [[ $(id -u) -eq 0 ]] || sys_fail "system tests need root (nspawn, network namespaces)"
  sys_need systemd-nspawn nsenter ip mount umount mountpoint openssl cmake timeout
  [[ -x $SYS_BIN ]] || sys_fail "no binary at $SYS_BIN"
  local prefix
  prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$SYS_BUILD/CMakeCache.txt")
  [[ $prefix == /usr ]] || sys_fail "$SYS_BUILD is configured with CMAKE_INSTALL_PREFIX=$prefix;" \
    "the units expect /usr/sbin and /etc: configure with -DCMAKE_INSTALL_PREFIX=/usr (the default for a new build dir)"
  trap sys_cleanup EXIT
  trap 'exit 130' INT TERM
  SYS_WORK=$(mktemp -d /tmp/ipopsec-sys.XXXXXX)
  ip netns add "$SYS_NAME"
  ip -n "$SYS_NAME" link set lo up
  # Host /run is not a tmpfs here; nspawn needs one for its own state (LAB.md).
  mkdir -p /run/systemd/nspawn
  mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
  mkdir -p "$SYS_WORK/o"
  mount -t tmpfs -o mode=0755 tmpfs "$SYS_WORK/o"
  mkdir -p "$SYS_WORK/o/upper" "$SYS_WORK/o/work" "$SYS_WORK/o/root"
  [[ -x $SYS_LOWER/lib/systemd/systemd ]] || sys_fail "no systemd in the OS tree $SYS_LOWER"
  mount -t overlay overlay -o "lowerdir=$SYS_LOWER,upperdir=$SYS_WORK/o/upper,workdir=$SYS_WORK/o/work" "$SYS_WORK/o/root"
  ROOT=$SYS_WORK/o/root
  # The project, exactly as an operator installs it (unless the test installs the .deb
  # itself: sys_setup --no-install). The host may carry leftovers of an earlier manual
  # install: start from a clean slate inside the overlay.
  rm -rf "$ROOT/etc/ipop-ipsec" "$ROOT/run/ipop-ipsec"
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
  # Keep the boot small and quick: units of the host that have nothing to do with the test.
  local u
  for u in postgresql.service strongswan-starter.service ipsec.service e2scrub_reap.service \
           prometheus.service prometheus-node-exporter.service \
           apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$ROOT/etc/systemd/system/$u"
  done
  sys_log "overlay of $SYS_LOWER at $ROOT, netns $SYS_NAME"
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

sys_boot() {
  local env=()
  [[ $SYS_LOWER == / ]] || env=(SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1)
  env "${env[@]}" systemd-nspawn -q -D "$ROOT" --register=no --keep-unit -M "$SYS_NAME" \
    --network-namespace-path="/run/netns/$SYS_NAME" --capability=CAP_NET_ADMIN,CAP_NET_RAW \
    -b >"$SYS_WORK/console.log" 2>&1 </dev/null &
  SYS_NSPAWN_PID=$!
  # The container's PID 1, seen from the host: nspawn's child that runs systemd.
  local deadline=$((SECONDS + 20)) c
  while [[ -z $SYS_PID1 ]]; do
    kill -0 "$SYS_NSPAWN_PID" 2>/dev/null || { cat "$SYS_WORK/console.log" >&2; sys_fail "nspawn exited"; }
    ((SECONDS < deadline)) || sys_fail "no systemd under nspawn (pid $SYS_NSPAWN_PID) after 20 s"
    for c in $(ps -o pid= --ppid "$SYS_NSPAWN_PID" 2>/dev/null); do
      [[ $(cat "/proc/$c/comm" 2>/dev/null) == systemd ]] && SYS_PID1=$c
    done
    [[ -n $SYS_PID1 ]] || sleep 0.1
  done
  # Until its bus is up, systemctl fails at once; then --wait blocks until boot is done.
  local state=
  deadline=$((SECONDS + 60))
  until [[ $state == running || $state == degraded ]]; do
    ((SECONDS < deadline)) || sys_fail "container did not finish booting in 60 s: '$state'"
    state=$(timeout 60 nsenter -t "$SYS_PID1" -a systemctl is-system-running --wait 2>/dev/null) || true
    [[ $state == running || $state == degraded ]] || sleep 0.2
  done
  sys_log "container booted ($state), PID 1 is $SYS_PID1 on the host"
}

# Runs a command inside the container (all its namespaces), with a clean environment.
sys_run() {
  nsenter -t "$SYS_PID1" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= "$@"
}

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

# A GroupVPN CA and this node's certificate with a subjectAltName, in the container's
# /etc/racoon/certs (the daemon holds the IKE daemon back until all three exist).
sys_make_certs() {
  sys_overlay_ready
  local d=$ROOT/etc/racoon/certs t=$SYS_WORK/pki
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
# boots a container and checks it is really systemd in the test's namespace; then the
# parent checks that the child's trap left nothing behind (netns, mounts, work folder).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  if [[ ${SYS_SELFTEST_CHILD:-} == 1 ]]; then
    sys_setup
    sys_boot
    check "PID 1 in the container is systemd" test "$(sys_run cat /proc/1/comm)" = systemd
    check "the container runs in the test's network namespace" \
      test "$(sys_run readlink /proc/self/ns/net)" = "$(ip netns exec "$SYS_NAME" readlink /proc/self/ns/net)"
    check "the overlay carries the installed binary" sys_run test -x /usr/sbin/ipop-ipsecd
    echo "$SYS_WORK" >"$SYS_SELFTEST_OUT"
    exit 0
  fi
  out=$(mktemp /tmp/ipopsec-sys-selftest.XXXXXX)
  SYS_SELFTEST_CHILD=1 SYS_SELFTEST_OUT=$out bash "${BASH_SOURCE[0]}" "$@" &
  child=$!
  rc=0
  wait "$child" || rc=$?
  work=$(cat "$out")
  rm -f "$out"
  [[ $rc -eq 0 ]] || { echo "FAIL: self-test child exited $rc" >&2; exit 1; }
  [[ -n $work ]] || { echo "FAIL: self-test child did not report its work folder" >&2; exit 1; }
  if ip netns list | grep -q "^ipopsec-sys-$child\b"; then echo "FAIL: netns ipopsec-sys-$child left behind" >&2; exit 1; fi
  if grep -q " $work" /proc/mounts; then echo "FAIL: mounts under $work left behind" >&2; exit 1; fi
  if [[ -e $work ]]; then echo "FAIL: $work left behind" >&2; exit 1; fi
  echo "PASS: lib.sh self-test: booted, checked, and cleaned up without leftovers"
fi
