#!/usr/bin/env bash
# The seed's rule under a real systemd: racoon starts only after IPOP's tap has its
# address -- at boot and at an IPOP restart, not at a range change that leaves racoon.conf
# byte-identical (racoon learns policies over PF_KEY, addresses over netlink) -- and never while IPOP is
# down, even though racoon.service is enabled and ipop.service is a oneshot that is
# "active" 3 s before its tap has an address. Nor while the tap, up and addressed, has no
# carrier (IPOP's controller stopped); the carrier coming back starts it. And racoon stopped by
# hand or killed while IPOP is up is reported and started again by the daemon, saying why.
#
# racoon is not packaged in Debian, so racoon.service is a stand-in of that name that
# records each start with a timestamp and the tap's addresses at that moment. The real
# ipop-ipsecd.service and racoon.service.d drop-in are the installed ones.
# Usage: systemd_racoon.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_node racoon
# Everything enabled as on a real node: racoon too, as its vendor package would do.
sys_enable ipop-ipsecd.service ipop.service racoon.service
sys_boot

policies() { sys_run ip xfrm policy; }
addr_time() {  # epoch at which ipop-sim gave the tap its address (its journal line)
  sys_run journalctl -b -o short-unix --no-pager -u ipop.service |
    awk '/ipop-sim: 10\.254.* on ipop/ { t = $1 } END { print t }'
}

# --- boot ---------------------------------------------------------------------------------
check "ipop-ipsecd is active after boot" test "$(sys_prop ipop-ipsecd.service ActiveState)" = active
check "ipop.service (oneshot) is active after boot" test "$(sys_prop ipop.service ActiveState)" = active
sys_wait "racoon started once after boot" 30 starts_ge 1
line=$(start_line 1)
sys_log "racoon start 1: $line"
check "at boot racoon's first start saw the tap's address" grep -q '10.254.0.16/16' <<<"$line"
check "at boot racoon was first skipped by its condition (ipop-up flag absent)" \
  sys_run sh -c "journalctl -b --no-pager -u racoon.service | grep -qE 'unmet condition check \(?ConditionPathExists=/run/ipop-ipsec/ipop-up'"
check "the fail-closed policies for 10.254.0.0/16 are in the kernel" grep -q 'src 10.254.0.0/16 dst 10.254.0.0/16' <<<"$(policies)"
sys_wait "the daemon reports the restart done" 20 sys_run grep -q '"last_restart_result": "done"' /run/ipop-ipsec/state.json
check "racoon was started exactly once at boot" test "$(starts)" -eq 1
check "ipop-ipsecd status exits 0 (protected and healthy)" sys_run ipop-ipsecd status

# --- range change: re-address the tap -----------------------------------------------------
conf_before=$(sys_run cat /etc/racoon/racoon.conf | md5sum)
sys_run ip addr add 10.254.7.16/24 dev ipop
sys_run ip addr del 10.254.0.16/16 dev ipop
sys_wait "policies follow the new range 10.254.7.0/24" 10 eval 'grep -q "src 10.254.7.0/24 dst 10.254.7.0/24" <<<"$(policies)"'
sys_wait "the daemon reports the new range" 10 sys_run grep -q '10.254.7.0/24' /run/ipop-ipsec/state.json
check "racoon.conf is byte-identical for the new range" test "$(sys_run cat /etc/racoon/racoon.conf | md5sum)" = "$conf_before"
# "Not restarted" is an absence: observe it over one whole coalescing window (quiet period
# 1 s + min interval 2 s), after which any restart would have happened.
sleep 4
check "racoon was NOT restarted for a range change with an unchanged racoon.conf" test "$(starts)" -eq 1

# --- IPOP down: racoon is not started, not even by hand -----------------------------------
sys_run systemctl stop ipop.service
sys_wait "the daemon removed the ipop-up flag" 10 sys_run test ! -e /run/ipop-ipsec/ipop-up
check "policies stay while IPOP is down (fail closed)" grep -q 'src 10.254.7.0/24' <<<"$(policies)"
sys_run systemctl stop racoon.service
sys_run systemctl start racoon.service || true
check "racoon started by hand while IPOP is down: condition failed" test "$(sys_prop racoon.service ConditionResult)" = no
check "racoon is not running while IPOP is down" test "$(sys_prop racoon.service ActiveState)" = inactive
check "no new racoon start was recorded while IPOP is down" test "$(starts)" -eq 1

# --- IPOP restart: the oneshot is active 3 s before the address ---------------------------
echo 10.254.0.16/16 >"$ROOT/etc/ipop-sim/address"
sys_run systemctl start ipop.service
ipop_active=$(date +%s.%N)
sys_wait "racoon started again after IPOP came back" 30 starts_ge 2
line=$(start_line 2)
sys_log "racoon start 2: $line"
check "after the IPOP restart racoon saw the tap's address" grep -q '10.254.0.16/16' <<<"$line"
started=${line%% *}
check "racoon started >= 3 s after ipop.service was active (when the address came)" \
  awk -v a="$ipop_active" -v s="$started" 'BEGIN { exit !(s - a >= 2.9) }'
t=$(addr_time)
check "the journal has the address line of ipop.service" test -n "$t"
check "racoon started after the journal's address line" awk -v a="$t" -v s="$started" 'BEGIN { exit !(s >= a) }' 

# --- IPOP's controller stops: the tap stays up with its address, but has NO-CARRIER --------
sys_run sh -c 'kill "$(cat /run/ipop-sim.carrier)"'
sys_wait "without carrier the daemon removed the ipop-up flag" 10 sys_run test ! -e /run/ipop-ipsec/ipop-up
check "the tap is up with its address and NO-CARRIER" \
  sys_run sh -c 'ip link show dev ipop | grep -q "NO-CARRIER,.*UP" && ip addr show dev ipop | grep -q 10.254.0.16/16'
check "ipop-ipsecd status names the missing carrier" sys_run sh -c 'ipop-ipsecd status | grep -q "no carrier"'
check "policies stay while the tap has no carrier (fail closed)" grep -q 'src 10.254.0.0/16' <<<"$(policies)"
sys_run systemctl stop racoon.service
sys_run systemctl start racoon.service || true
check "racoon started by hand without carrier: condition failed" test "$(sys_prop racoon.service ConditionResult)" = no
check "no new racoon start was recorded without carrier" test "$(starts)" -eq 2
sys_run sh -c '/usr/local/sbin/ipopsec-tap-carrier ipop >/run/ipop-sim.carrier'
sys_wait "racoon started again once the carrier came back" 30 starts_ge 3
sys_wait "ipop-ipsecd status exits 0 (healthy) with the carrier back" 20 sys_run ipop-ipsecd status

# --- racoon stopped or killed while IPOP is up: reported at once, repaired ------------------
# (The stand-in has no Restart=: a SIGKILL leaves its unit failed, as a racoon that died for good.)
journal_has() { sys_run journalctl -b --no-pager -o cat -u ipop-ipsecd.service | grep -qF "$1"; }
not_healthy() { sys_run grep -q '"healthy": false' /run/ipop-ipsec/state.json; }
for how in stop kill; do
  n=$(starts)
  if [[ $how == stop ]]; then
    sys_run systemctl stop racoon.service
    state=inactive
  else
    sys_run systemctl kill --signal=KILL racoon.service
    state=failed
  fi
  sys_wait "racoon $how: not healthy" 5 not_healthy
  sys_wait "the daemon said why it restarts racoon ($how)" 10 \
    journal_has "restarting racoon.service: racoon.service is $state while IPOP is up"
  sys_wait "racoon started again by the daemon after $how" 20 starts_ge $((n + 1))
  sys_wait "healthy again after $how" 20 sys_run ipop-ipsecd status
done
sys_pass
