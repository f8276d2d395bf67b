#!/usr/bin/env bash
# Health means a peer can connect, under real systemd with Debian's real strongswan.service
# (charon-systemd): the IKE half is watched by events and repaired, and never reported
# healthy while it is broken.
#   1. `ip xfrm policy flush` removes the daemon's policies and charon's trap policy: the
#      daemon's are back at once; charon's trap is missing, so the node is not healthy, and
#      the daemon restarts strongswan.service saying why; healthy again once the trap is back.
#   2. `systemctl stop strongswan`: seen by systemd's PropertiesChanged signal (not at the
#      5-minute resync), reported, and repaired by a restart that says why.
#   3. SIGKILL of charon: systemd's own Restart=on-abnormal brings it back; meanwhile not
#      healthy; healthy again after.
#   4. The metrics file's timestamp advances while idle, and `systemctl stop ipop-ipsecd`
#      removes the file.
#   5. (run before 4) ike.unit names the alias strongswan-swanctl.service: a stop is still
#      seen by systemd's signal (on the real unit's object path, from LoadUnit).
# Prints the measured times (flush or stop -> healthy again). IKE with a peer and ESP need
# UML (tests/system/uml_*): here the checks are the unit, the kernel's policies and status.
# Usage: systemd_strongswan_health.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_node strongswan
# Metrics for node_exporter, with a 1 s heartbeat (the default is 30 s).
printf 'daemon:\n  metrics_file: /run/ipop-ipsec-test.prom\n  metrics_interval: 1s\n' >>"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
sys_enable ipop-ipsecd.service ipop.service strongswan.service
sys_boot

sw() { sys_prop strongswan.service "$1"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
trap_in() { sys_run ip xfrm policy list dir out | grep -q '^src 10.254.0.16/32 dst 10.254.0.0/16'; }
ours_in() { sys_run ip xfrm policy list dir out | grep -q '^src 10.254.0.0/16 dst 10.254.0.0/16'; }
healthy() { sys_run grep -q '"healthy": true' /run/ipop-ipsec/state.json; }
not_healthy() { sys_run grep -q '"healthy": false' /run/ipop-ipsec/state.json; }
journal_has() { sys_run journalctl -b --no-pager -o cat -u ipop-ipsecd.service | grep -qF "$1"; }
status_text() { sys_run ipop-ipsecd status 2>&1 || true; }

sys_wait "strongswan.service active" 40 eval '[[ $(sw ActiveState) == active ]]'
sys_wait "charon's trap policy for 10.254.0.0/16 in the kernel" 30 trap_in
sys_wait "the daemon reports healthy" 30 healthy
check "status --json says healthy" sys_run sh -c "ipop-ipsecd status --json | grep -q '\"healthy\": true'"

# --- 1. ip xfrm policy flush -------------------------------------------------------------
pid=$(sw MainPID)
t0=$(now)
sys_run ip xfrm policy flush
sys_wait "the daemon's own policies are back" 5 ours_in
sys_wait "not healthy after the flush" 5 not_healthy
flush_status=$(status_text)
sys_log "status after the flush: $(grep -m1 -i 'ike\|trap\|restart' <<<"$flush_status" || true)"
sys_wait "charon's trap policy is back" 30 trap_in
sys_wait "healthy again" 30 healthy
flush_repair=$(since "$t0")
check "the daemon said why it restarted strongswan.service" \
  journal_has "restarting strongswan.service: its trap policies (out 10.254.0.16/32 -> 10.254.0.0/16) were removed by another process"
check "strongswan.service was restarted (new MainPID)" test "$(sw MainPID)" != "$pid"
check "status names the reason of the last restart" sys_run sh -c "ipop-ipsecd status --json | grep -q 'were removed by another process'"
sys_log "FIGURE policy flush -> healthy again (trap back): ${flush_repair} s"

# --- 2. systemctl stop strongswan --------------------------------------------------------
pid=$(sw MainPID)
t0=$(now)
sys_run systemctl stop strongswan.service
sys_wait "the stop is reported" 5 journal_has "strongswan.service is inactive while IPOP is up"
stop_seen=$(since "$t0")
check "the stop was reported within 1 s (systemd's signal, not the 5-minute resync)" \
  awk -v s="$stop_seen" 'BEGIN { exit !(s < 1.0) }'
sys_wait "strongswan.service active again" 30 eval '[[ $(sw ActiveState) == active ]]'
sys_wait "healthy again" 30 healthy
stop_repair=$(since "$t0")
check "a new charon runs" test "$(sw MainPID)" != "$pid"
check "the daemon said why it restarted strongswan.service" \
  journal_has "restarting strongswan.service: strongswan.service is inactive while IPOP is up"
sys_log "FIGURE systemctl stop -> reported ${stop_seen} s, healthy again ${stop_repair} s"

# --- 3. SIGKILL of charon -----------------------------------------------------------------
pid=$(sw MainPID)
t0=$(now)
sys_run kill -KILL "$pid"
sys_wait "not healthy while charon is gone" 5 not_healthy
kill_seen=$(since "$t0")
kill_status=$(status_text)
sys_wait "strongswan.service active again (systemd's Restart=on-abnormal, or the daemon)" 30 \
  eval '[[ $(sw ActiveState) == active && $(sw MainPID) != '"$pid"' ]]'
sys_wait "charon's trap policy in the kernel" 30 trap_in
sys_wait "healthy again" 30 healthy
kill_repair=$(since "$t0")
# systemd restarted it itself: the daemon's own repair (held by min_interval) is dropped, not
# run on top (which would tear down the new charon's SAs). An absence: one min_interval (2 s).
pid_new=$(sw MainPID)
sleep 3
check "charon restarted once after the SIGKILL, by systemd (the daemon's repair was dropped)" \
  test "$(sw MainPID)" = "$pid_new"
sys_log "FIGURE SIGKILL of charon -> not healthy ${kill_seen} s, healthy again ${kill_repair} s"
# --- 5. ike.unit names an alias -----------------------------------------------------------
# Debian's strongswan.service has Alias=strongswan-swanctl.service. systemd sends the unit's
# PropertiesChanged on the path of its own name, not the alias's: the daemon must follow the
# path LoadUnit returns, or a stop is seen only at the 5-minute resync.
sys_run sed -i 's/^  unit: strongswan.service$/  unit: strongswan-swanctl.service/' /etc/ipop-ipsec/ipop-ipsecd.yaml
check "the config names the alias" sys_run grep -q '^  unit: strongswan-swanctl.service$' /etc/ipop-ipsec/ipop-ipsecd.yaml
sys_run systemctl restart ipop-ipsecd.service
alias_healthy() { sys_run grep -q '"ike_unit": "strongswan-swanctl.service"' /run/ipop-ipsec/state.json && healthy; }
sys_wait "healthy with ike.unit = strongswan-swanctl.service" 30 alias_healthy
pid=$(sw MainPID)
t0=$(now)
sys_run systemctl stop strongswan-swanctl.service
sys_wait "the stop of the alias is reported" 5 journal_has "strongswan-swanctl.service is inactive while IPOP is up"
alias_seen=$(since "$t0")
check "the stop was reported within 1 s through the alias (systemd's signal, not the 5-minute resync)" \
  awk -v s="$alias_seen" 'BEGIN { exit !(s < 1.0) }'
sys_wait "strongswan.service active again" 30 eval '[[ $(sw ActiveState) == active && $(sw MainPID) != '"$pid"' ]]'
sys_wait "healthy again" 30 healthy
sys_log "FIGURE systemctl stop through the alias -> reported ${alias_seen} s, healthy again $(since "$t0") s"
# --- 4. the metrics file: a heartbeat while idle, gone with a clean stop ------------------
stamp() { sys_run sed -n 's/^ipop_ipsec_metrics_timestamp_seconds //p' /run/ipop-ipsec-test.prom; }
check "the metrics say healthy and the IKE side ready" \
  sys_run sh -c "grep -qx 'ipop_ipsec_healthy 1' /run/ipop-ipsec-test.prom && grep -qx 'ipop_ipsec_ike_ready 1' /run/ipop-ipsec-test.prom"
s1=$(stamp)
sys_wait "the metrics timestamp advances while nothing changes" 5 eval '[[ $(stamp) -gt '"$s1"' ]]'
sys_run systemctl stop ipop-ipsecd.service
check "systemctl stop ipop-ipsecd removed the metrics file" sys_run test ! -e /run/ipop-ipsec-test.prom

printf '%s\n' "---- status after the flush:" "$flush_status" "---- status after SIGKILL of charon:" "$kill_status"
echo "---- the daemon's journal, from the flush on (warnings and restarts)"
sys_run journalctl -b --no-pager -o short-precise -u ipop-ipsecd.service -u strongswan.service |
  grep -E 'ipop-ipsecd\[[0-9]+\]: (restarting|.* needs a restart|.* is (inactive|failed|activating)|.*restarted$)|systemd\[1\]: (Stopp|Start)' || true
sys_pass
