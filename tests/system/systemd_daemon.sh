#!/usr/bin/env bash
# ipop-ipsecd.service under a real systemd, one container for all cases:
#   - journal: structured fields (IPOPSEC_RANGE=..., IPOPSEC_ACTION=restart) are queryable;
#   - `systemctl reload` applies a new config (new range -> new policies); a broken one is
#     refused, the service stays active and says why in STATUS= and the journal;
#   - watchdog (WatchdogSec=3s drop-in): a daemon that stops answering (SIGSTOP) is
#     restarted by systemd with a new MainPID, and the policies are never gone meanwhile;
#   - the watchdog restart and a restart of ipop-ipsecd leave racoon running (its drop-in
#     ties nothing of its lifetime to ipop-ipsecd's);
#   - `systemctl stop ipop-ipsecd` leaves the policies (fail closed) and racoon running;
#     `ipop-ipsecd status` exits 3 when stopped (LSB: not running), 0 when protected and healthy.
# Usage: systemd_daemon.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_node racoon
mkdir -p "$ROOT/etc/systemd/system/ipop-ipsecd.service.d"
cat >"$ROOT/etc/systemd/system/ipop-ipsecd.service.d/test-watchdog.conf" <<'EOF'
# Test only: a short watchdog so that a hung daemon is caught within seconds.
[Service]
WatchdogSec=3s
RestartSec=1s
EOF
sys_enable ipop-ipsecd.service ipop.service racoon.service
sys_boot

policies() { sys_run ip xfrm policy; }
has_policy() { grep -q "src $1 dst $1" <<<"$(policies)"; }
main_pid() { sys_prop ipop-ipsecd.service MainPID; }
status_ok() { sys_run ipop-ipsecd status >/dev/null 2>&1; }
journal_has() { [[ -n $(sys_run journalctl -b --no-pager -o cat -u ipop-ipsecd.service "$@") ]]; }

sys_wait "racoon started once IPOP is up" 30 starts_ge 1
sys_wait "ipop-ipsecd status says protected and healthy" 20 status_ok
check "policies for 10.254.0.0/16 installed" has_policy 10.254.0.0/16

# --- journal: structured fields -----------------------------------------------------------
check "journalctl -u ipop-ipsecd IPOPSEC_RANGE=10.254.0.0/16 returns the daemon's entries" \
  journal_has IPOPSEC_RANGE=10.254.0.0/16
check "journal entries with IPOPSEC_ACTION=restart exist" journal_has IPOPSEC_ACTION=restart
check "a restart entry names the unit (IPOPSEC_UNIT=racoon.service)" \
  journal_has IPOPSEC_ACTION=restart IPOPSEC_UNIT=racoon.service
check "entries carry IPOPSEC_INTERFACE=ipop" journal_has IPOPSEC_INTERFACE=ipop
sys_run journalctl -b --no-pager -o cat -u ipop-ipsecd.service IPOPSEC_RANGE=10.254.0.0/16 | sed 's/^/    journal: /'

# --- reload: a new config is applied -------------------------------------------------------
sed -i 's|^  ranges: auto|  ranges: [10.254.0.0/17]|' "$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
check "the new config really differs" grep -q 'ranges: \[10.254.0.0/17\]' "$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
check "systemctl reload ipop-ipsecd succeeds" sys_run systemctl reload ipop-ipsecd.service
sys_wait "policies for the reloaded range 10.254.0.0/17" 10 has_policy 10.254.0.0/17
sys_wait "the old range's policies removed" 10 eval '! has_policy 10.254.0.0/16'

# --- reload: a broken config is refused ----------------------------------------------------
good=$(cat "$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml")
pid_before=$(main_pid)
printf '%s\n' "$good" "bogus_key: 1" >"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
check "systemctl reload with a broken config FAILS (ExecReload checks first)" eval '! sys_run systemctl reload ipop-ipsecd.service'
check "the journal names the bad key (check's error)" sys_run sh -c "journalctl -b --no-pager -o cat -u ipop-ipsecd.service | grep -q 'bogus_key'"
check "the service stays active after a refused reload" test "$(sys_prop ipop-ipsecd.service ActiveState)" = active
check "same process (not restarted) after a refused reload" test "$(main_pid)" = "$pid_before"
check "the running config's policies stay" has_policy 10.254.0.0/17
# The daemon's own refusal (a SIGHUP that bypasses ExecReload, or a config changed between
# the check and the signal) is kept until a reload succeeds, across later status changes.
sys_run kill -HUP "$(main_pid)"
refused() { sys_prop ipop-ipsecd.service StatusText | grep -q 'RELOAD REFUSED'; }
sys_wait "STATUS= says the reload was refused" 10 refused
sys_log "StatusText: $(sys_prop ipop-ipsecd.service StatusText)"
check "systemctl status shows why" sys_run sh -c "systemctl status --no-pager ipop-ipsecd.service | grep -q 'RELOAD REFUSED.*bogus_key'"
check "the journal says why" sys_run sh -c "journalctl -b --no-pager -o cat -u ipop-ipsecd.service | grep -q 'reload refused.*bogus_key'"
check "state.json keeps the refusal" sys_run sh -c "grep -q '\"reload_refused\": \".*bogus_key' /run/ipop-ipsec/state.json"
ip netns exec "$SYS_NAME" ip addr add 10.254.9.9/17 dev ipop
ip netns exec "$SYS_NAME" ip addr del 10.254.9.9/17 dev ipop
check "still refused after other status changes" refused
check "same process after the refused SIGHUP" test "$(main_pid)" = "$pid_before"
printf '%s\n' "$good" >"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
sys_run systemctl reload ipop-ipsecd.service
sys_wait "a good config reloads again (STATUS= no longer says refused)" 10 eval '! refused'
check "state.json no longer says refused" sys_run sh -c "grep -q '\"reload_refused\": \"\"' /run/ipop-ipsec/state.json"
sys_wait "restart after the range change done and healthy" 20 status_ok

# --- watchdog: a hung daemon is restarted by systemd --------------------------------------
racoon_active() { [[ $(sys_prop racoon.service ActiveState) == active ]]; }
sys_wait "racoon running before the watchdog case" 20 racoon_active
racoon_pid=$(sys_prop racoon.service MainPID)
old=$(main_pid)
restarts_before=$(sys_prop ipop-ipsecd.service NRestarts)
sys_log "SIGSTOP to ipop-ipsecd (pid $old in the container)"
sys_run kill -STOP "$old"
gone=0
deadline=$((SECONDS + 30))
while :; do
  has_policy 10.254.0.0/17 || gone=$((gone + 1))
  new=$(main_pid)
  [[ $new != 0 && $new != "$old" && $(sys_prop ipop-ipsecd.service ActiveState) == active ]] && break
  ((SECONDS < deadline)) || sys_fail "no restart by the watchdog within 30 s"
  sleep 0.1
done
sys_log "restarted by systemd: MainPID $old -> $new"
check "the watchdog restart gave a new MainPID" test "$new" != "$old"
check "NRestarts went up" test "$(sys_prop ipop-ipsecd.service NRestarts)" -gt "$restarts_before"
check "the journal says the watchdog fired" sys_run sh -c "journalctl -b --no-pager -u ipop-ipsecd.service | grep -q 'Watchdog timeout'"
check "the policies were never gone while the daemon hung and restarted" test "$gone" -eq 0
sys_wait "healthy again after the watchdog restart" 20 status_ok
# The IKE daemon's lifetime is not tied to ipop-ipsecd's: racoon ran on through the hang
# and the restart, and the new daemon adopted it.
check "racoon kept running through the watchdog restart (same MainPID)" \
  test "$(sys_prop racoon.service MainPID)" = "$racoon_pid"
starts_before=$(starts)

# --- restart of ipop-ipsecd does not restart racoon ---------------------------------------
check "systemctl restart ipop-ipsecd succeeds" sys_run systemctl restart ipop-ipsecd.service
sys_wait "healthy again after systemctl restart" 20 status_ok
# An absence: watch one whole coalescing window (quiet 1 s + min interval 2 s).
sleep 4
check "racoon kept running across a manual restart of ipop-ipsecd (same MainPID)" \
  test "$(sys_prop racoon.service MainPID)" = "$racoon_pid"
check "racoon was not started again by the daemon's restarts" test "$(starts)" -eq "$starts_before"

# --- stop: policies stay (fail closed), racoon runs on, status is non-zero ----------------
check "systemctl stop ipop-ipsecd succeeds" sys_run systemctl stop ipop-ipsecd.service
check "ipop-ipsecd is inactive" test "$(sys_prop ipop-ipsecd.service ActiveState)" = inactive
check "policies stay after systemctl stop (fail closed)" has_policy 10.254.0.0/17
check "racoon runs on after systemctl stop ipop-ipsecd (same MainPID)" \
  test "$(sys_prop racoon.service ActiveState)/$(sys_prop racoon.service MainPID)" = "active/$racoon_pid"
rc=0
sys_run ipop-ipsecd status >/dev/null 2>&1 || rc=$?
check "ipop-ipsecd status exits 3 (LSB: not running) when the daemon is stopped (got $rc)" test "$rc" -eq 3
check "systemctl start ipop-ipsecd succeeds" sys_run systemctl start ipop-ipsecd.service
sys_wait "status exits 0 again once started (protected and healthy)" 20 status_ok
# The daemon adopts the racoon that ran on: no new start.
check "racoon is the same process after ipop-ipsecd's start" test "$(sys_prop racoon.service MainPID)" = "$racoon_pid"
check "racoon was not started again" test "$(starts)" -eq "$starts_before"
sys_pass
