#!/usr/bin/env bash
# The IKE daemon's lifetime is not tied to ipop-ipsecd's, under real systemd with Debian's
# real strongswan.service (charon-systemd). With charon running under the daemon:
#   1. SIGKILL of ipop-ipsecd's MainPID: systemd restarts ipop-ipsecd (Restart=on-failure);
#      charon keeps its MainPID and InvocationID, its unit never leaves active (the journal
#      has no stop of strongswan.service), and the new daemon adopts it: no restart of
#      strongswan.service is logged, and it reports healthy.
#   2. `systemctl restart ipop-ipsecd`: the same (systemd >= 253 propagates a restart to the
#      units that list the restarted one in StopPropagatedFrom=; the drop-in has none).
#   3. `systemctl stop ipop-ipsecd`: charon still runs, and the policies (the daemon's and
#      charon's trap) stay; `systemctl start ipop-ipsecd` adopts it again.
#   4. The documented way to take IPsec down on a node, run as written in docs/operations.md
#      ("Stopping and removing"):
#      `systemctl stop ipop-ipsecd`, `ipop-ipsecd flush`, `systemctl stop strongswan`:
#      no policy of the range is left, charon is stopped.
# Prints charon's and the daemon's PIDs and the times (kill -> daemon back, healthy again).
# Usage: systemd_ike_lifetime.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_node strongswan
sys_enable ipop-ipsecd.service ipop.service strongswan.service
sys_boot

sw() { sys_prop strongswan.service "$1"; }
ipd() { sys_prop ipop-ipsecd.service "$1"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# (The kernel's answer is read whole before grep -q looks at it: under pipefail, grep -q
# leaving early can fail the pipeline with ip's SIGPIPE.)
out_policies() { sys_run ip xfrm policy list dir out; }
trap_in() { grep -q '^src 10.254.0.16/32 dst 10.254.0.0/16' <<<"$(out_policies)"; }
ours_in() { grep -q '^src 10.254.0.0/16 dst 10.254.0.0/16' <<<"$(out_policies)"; }
healthy() { sys_run grep -q '"healthy": true' /run/ipop-ipsec/state.json; }
state_pid_is() { sys_run grep -q "\"pid\": $1," /run/ipop-ipsec/state.json; }
# The journal's position now; the lines after it (whole journal, so systemd's own lines on a
# unit count too).
cursor() { sys_run journalctl -b -n 1 -o export --no-pager | sed -n 's/^__CURSOR=//p'; }
after() { local c=$1; shift; sys_run journalctl -b --no-pager -o short-precise --after-cursor="$c" "$@"; }
# Every sign of strongswan.service leaving active, in systemd's words and in the daemon's.
ike_stop_lines() {
  after "$1" -u strongswan.service | grep -E 'Stopping|Stopped|Deactivated|Starting|Started|Main process exited' || true
  after "$1" -u ipop-ipsecd.service | grep -E 'restarting strongswan.service|strongswan.service (is|needs)' || true
}

sys_wait "strongswan.service active" 40 eval '[[ $(sw ActiveState) == active ]]'
sys_wait "charon's trap policy for 10.254.0.0/16 in the kernel" 30 trap_in
sys_wait "the daemon reports healthy" 30 healthy
sys_wait "the daemon's start of strongswan.service is done" 20 \
  sys_run grep -q '"last_restart_result": "done"' /run/ipop-ipsec/state.json
charon_pid=$(sw MainPID)
charon_inv=$(sw InvocationID)
charon_exit=$(sw ActiveExitTimestampMonotonic)
charon_nrestarts=$(sw NRestarts)
check "the real charon runs (MainPID $charon_pid is charon-systemd)" \
  test "$(sys_run cat "/proc/$charon_pid/comm")" = charon-systemd
sys_log "charon: MainPID $charon_pid, InvocationID $charon_inv"

# charon is the same process and the same invocation of its unit, which never left active.
charon_untouched() {
  local c=$1 lines
  check "charon's MainPID is still $charon_pid" test "$(sw MainPID)" = "$charon_pid"
  check "strongswan.service is the same invocation (never stopped and started)" test "$(sw InvocationID)" = "$charon_inv"
  check "strongswan.service is active and never left active (ActiveExitTimestamp unchanged)" \
    test "$(sw ActiveState)/$(sw ActiveExitTimestampMonotonic)" = "active/$charon_exit"
  check "strongswan.service was not auto-restarted (NRestarts $charon_nrestarts)" test "$(sw NRestarts)" = "$charon_nrestarts"
  lines=$(ike_stop_lines "$c")
  [[ -z $lines ]] || printf '    journal: %s\n' "$lines"
  check "the journal has no stop, start or restart of strongswan.service" test -z "$lines"
}

# The new daemon adopted charon: up, healthy, with its own pid in state.json, and nothing
# pending. An absence: no restart of strongswan.service may follow; the daemon would start
# one at the latest one coalescing window (quiet 1 s + min interval 2 s) after its start.
adopted_by() {
  local pid=$1
  sys_wait "the new daemon (pid $pid) wrote its state" 20 state_pid_is "$pid"
  sys_wait "the new daemon reports healthy" 20 healthy
  sleep 4
  check "the new daemon still reports healthy" healthy
  check "the new daemon logged no restart of strongswan.service (IPOPSEC_ACTION=restart)" \
    test -z "$(sys_run journalctl -b --no-pager -o cat _PID="$pid" IPOPSEC_ACTION=restart)"
  check "the new daemon logged no reload of strongswan.service (IPOPSEC_ACTION=reload)" \
    test -z "$(sys_run journalctl -b --no-pager -o cat _PID="$pid" IPOPSEC_ACTION=reload)"
}

# --- 1. SIGKILL of ipop-ipsecd -------------------------------------------------------------
c=$(cursor)
old=$(ipd MainPID)
nr=$(ipd NRestarts)
t0=$(now)
sys_log "SIGKILL to ipop-ipsecd (MainPID $old in the container)"
sys_run kill -KILL "$old"
back() { local p; p=$(ipd MainPID); [[ $p != 0 && $p != "$old" && $(ipd ActiveState) == active ]]; }
sys_wait "systemd restarted ipop-ipsecd (Restart=on-failure)" 20 back
kill_back=$(since "$t0")
new=$(ipd MainPID)
check "NRestarts of ipop-ipsecd went up ($nr -> $(ipd NRestarts))" test "$(ipd NRestarts)" -gt "$nr"
check "the journal says ipop-ipsecd was killed" \
  grep -q "Main process exited, code=killed, status=9/KILL" <<<"$(after "$c" -u ipop-ipsecd.service)"
adopted_by "$new"
kill_healthy=$(since "$t0")
charon_untouched "$c"
check "policies stay: the daemon's" ours_in
check "policies stay: charon's trap" trap_in
sys_log "FIGURE SIGKILL of ipop-ipsecd $old -> new daemon $new active ${kill_back} s, healthy" \
  "(adopted charon $charon_pid) ${kill_healthy} s (including the 4 s absence window)"

# --- 2. systemctl restart ipop-ipsecd ------------------------------------------------------
c=$(cursor)
old=$(ipd MainPID)
t0=$(now)
check "systemctl restart ipop-ipsecd succeeds" sys_run systemctl restart ipop-ipsecd.service
new=$(ipd MainPID)
restart_back=$(since "$t0")
check "ipop-ipsecd has a new MainPID ($old -> $new)" test "$new" != "$old"
adopted_by "$new"
charon_untouched "$c"
check "policies stay: the daemon's" ours_in
check "policies stay: charon's trap" trap_in
sys_log "FIGURE systemctl restart ipop-ipsecd $old -> $new: ${restart_back} s; charon $charon_pid untouched"

# --- 3. systemctl stop ipop-ipsecd ---------------------------------------------------------
c=$(cursor)
check "systemctl stop ipop-ipsecd succeeds" sys_run systemctl stop ipop-ipsecd.service
check "ipop-ipsecd is inactive" test "$(ipd ActiveState)" = inactive
charon_untouched "$c"
check "policies stay after the stop: the daemon's (fail closed)" ours_in
check "policies stay after the stop: charon's trap" trap_in
rc=0
sys_run ipop-ipsecd status >/dev/null 2>&1 || rc=$?
check "ipop-ipsecd status exits 3 (not running) while charon runs on (got $rc)" test "$rc" -eq 3
c=$(cursor)
check "systemctl start ipop-ipsecd succeeds" sys_run systemctl start ipop-ipsecd.service
adopted_by "$(ipd MainPID)"
charon_untouched "$c"

# --- 4. taking IPsec down, as docs/operations.md says --------------------------------------
check "systemctl stop ipop-ipsecd" sys_run systemctl stop ipop-ipsecd.service
check "ipop-ipsecd flush" sys_run ipop-ipsecd flush
check "systemctl stop strongswan" sys_run systemctl stop strongswan
check "strongswan.service is inactive" test "$(sw ActiveState)" = inactive
check "no policy of 10.254.0.0/16 is left (neither the daemon's nor charon's)" \
  eval '! grep -q "10\.254\." <<<"$(sys_run ip xfrm policy)"'
sys_log "charon ran as MainPID $charon_pid from the first start to the final stop"
sys_pass
