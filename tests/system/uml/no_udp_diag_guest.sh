#!/bin/bash
# The UML guest's init for tests/system/uml_no_udp_diag.sh: the real daemon on a real kernel
# whose UDP socket diagnostics are a module (udp_diag), first absent (module autoloading
# off), then loaded.
#   no_udp_diag_guest.sh WORK_DIR IPOP_IPSECD
# 1. no udp_diag: "is UDP 500 bound" cannot be asked (the dump answers ENOENT); after the IKE
#    restart the daemon says so once and removes the larval states at once, not after
#    ike.restart_timeout (20 s here);
# 2. udp_diag loaded: after the next restart it waits until the stand-in IKE daemon binds
#    UDP 500 (2 s after its restart command ran), and says nothing of the kind again.
# Writes only inside WORK_DIR and its own tmpfs /run and /tmp; WORK_DIR/result is PASS or FAIL.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
W=$1 BIN=$2
failures=0
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec 2>&1
say() { printf '[%6.1fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }
ok() { say "ok   $*"; }
fail() { say "FAIL $*"; failures=$((failures + 1)); }
finish() {
  [[ -n ${DAEMON_PID:-} ]] && kill "$DAEMON_PID" 2>/dev/null
  [[ -f $W/binder.pid ]] && kill "$(cat "$W/binder.pid")" 2>/dev/null
  say "== summary: $failures failed assertion(s)"
  if ((failures == 0)); then echo PASS >"$W/result"; else echo FAIL >"$W/result"; fi
  sync
  echo o >/proc/sysrq-trigger
  sleep 60
}
now() { date +%s.%N; }
# wait_log TEXT COUNT SECONDS: until the daemon's log holds TEXT at least COUNT times.
wait_log() {
  local deadline=$(($(date +%s) + $3))
  until (($(grep -cF -- "$1" "$W/daemon.log") >= $2)); do
    (($(date +%s) < deadline)) || return 1
    sleep 0.02
  done
}

echo "$W/modprobe" >/proc/sys/kernel/modprobe
for m in xfrm_user veth; do "$W/modprobe" "$m" || { fail "cannot load kernel module $m"; finish; }; done
echo >/proc/sys/kernel/modprobe   # autoloading off: udp_diag stays absent until loaded below
grep -q '^udp_diag ' /proc/modules && { fail "udp_diag is loaded already"; finish; }
ok "udp_diag not loaded, module autoloading off"
ip link set lo up

"$BIN" --config "$W/ipop-ipsecd.yaml" >"$W/daemon.log" 2>&1 &
DAEMON_PID=$!
ip link add ipop type veth peer name peer0
ip link set peer0 up
ip addr add 10.254.0.16/16 dev ipop
ip link set ipop up
until [[ -s $W/restart1.at ]]; do sleep 0.02; kill -0 "$DAEMON_PID" || { fail "the daemon exited"; finish; }; done
if wait_log "removed stale larval states" 1 30; then
  t=$(awk -v a="$(cat "$W/restart1.at")" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  awk -v t="$t" 'BEGIN { exit !(t < 3) }' && ok "no udp_diag: larval states removed ${t}s after the restart ran (restart_timeout 20s)" ||
    fail "no udp_diag: the larval removal came ${t}s after the restart (it waited)"
else
  fail "no udp_diag: no larval removal within 30 s"
fi
grep -F "cannot ask the kernel whether" "$W/daemon.log" | grep -qF "(no UDP socket diagnostics: module udp_diag)" &&
  ok "no udp_diag: the log says the kernel cannot answer ($(grep -F 'cannot ask the kernel' "$W/daemon.log" | head -1 | sed 's/.*cannot ask/cannot ask/'))" ||
  fail "no udp_diag: the log does not say why the daemon did not wait"

# --- udp_diag loaded: the next restart waits for the bind ----------------------------------
"$W/modprobe" udp_diag || { fail "cannot load udp_diag"; finish; }
ok "udp_diag loaded"
ip link set ipop down
sleep 0.3  # the tap's down must be seen on its own before it comes up again (IPOP restarting)
ip link set ipop up
until [[ -s $W/restart2.at ]]; do sleep 0.02; kill -0 "$DAEMON_PID" || { fail "the daemon exited"; finish; }; done
if wait_log "removed stale larval states" 2 30; then
  t=$(awk -v a="$(cat "$W/restart2.at")" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  awk -v t="$t" 'BEGIN { exit !(t >= 1.9) }' && ok "udp_diag: larval states removed ${t}s after the restart, once UDP 500 was bound (2s)" ||
    fail "udp_diag: larval states removed ${t}s after the restart, before the bind at 2s"
  grep -F "removed stale larval states" "$W/daemon.log" | tail -1 | grep -qF " listens)" &&
    ok "udp_diag: the removal says the IKE daemon listens" || fail "udp_diag: the removal does not say it listens"
else
  fail "udp_diag: no larval removal within 30 s"
fi
n=$(grep -cF "cannot ask the kernel whether" "$W/daemon.log")
((n == 1)) && ok "the 'cannot ask' line was said once" || fail "the 'cannot ask' line was said $n times"
finish
