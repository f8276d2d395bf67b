#!/usr/bin/env bash
# charon's trap policies from the files ipop-ipsecd renders, on this machine's kernel: the
# real daemon (ike.backend strongswan, control command) and a real charon-systemd in a
# network namespace made here, IPOP's tap held by ipopsec-tap-carrier. For an IPv6-only
# node (fd50:1234::16 in fd50:1234::/64) and a dual-stack one (also 172.31.0.16 in
# 172.31.0.0/16):
#   - charon installs every trap: `out A/128 -> R` (A/32 for IPv4) and its `in` twin, each
#     with a transport template of the selectors' family (:: for IPv6, 0.0.0.0 for IPv4),
#     and never logs "installing trap failed" (before the renderer named "::" for IPv6,
#     charon's IPv6 template was IPv4 and the kernel refused it: "Mode in template doesn't
#     support a family change");
#   - swanctl --list-pols lists each trap, and the daemon reports healthy, i.e. its health
#     check (expectedTraps) finds in the kernel exactly what charon installed;
#   - a packet to a peer B of each range is caught by the trap: charon initiates an IKE_SA to
#     B itself (the wildcard trap), and no plaintext of it leaves on the tap.
# Installing a CHILD_SA needs ESP, which this kernel lacks: tests/system/uml_ipv6.sh shows
# ESP between nodes over IPv6 (UML).
# Usage: strongswan_traps.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
set -euo pipefail
source "$(dirname "$0")/../support/charon_conf.sh"   # charon_test_conf, charon_restart_script
source "$(dirname "$0")/../support/wait_for.sh"   # wait_for
BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
CARRIER=${2:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}/ipopsec-tap-carrier
CHECKS=0
NS='' WORK='' DAEMON_PID='' CARRIER_PID='' TCPDUMP_PID=''
fail() {
  echo "FAIL: $*" >&2
  if [[ -n $WORK ]]; then
    [[ -f $WORK/node/daemon.log ]] && { echo "---- daemon log (last 25 lines)" >&2; tail -n 25 "$WORK/node/daemon.log" >&2; }
    [[ -f $WORK/node/charon.log ]] && { echo "---- charon log (CFG/KNL/IKE, last 25)" >&2; grep -E 'CFG|KNL|IKE' "$WORK/node/charon.log" | tail -n 25 >&2; }
    [[ -n $NS ]] && { echo "---- ip xfrm policy" >&2; ip -n "$NS" xfrm policy >&2; }
  fi
  exit 1
}
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }
[[ $(id -u) -eq 0 ]] || fail "needs root (network namespace, XFRM policies)"
[[ -x $CARRIER ]] || fail "no $CARRIER: build the ipopsec-tap-carrier target"
for t in /usr/sbin/charon-systemd /usr/sbin/swanctl /usr/bin/tcpdump; do
  [[ -x $t ]] || fail "needed tool $t is missing: run scripts/setup --test"
done

# Everything a scenario started, stopped by pid; its namespace deleted.
stop_node() {
  local pid i
  for pid in $DAEMON_PID $TCPDUMP_PID $CARRIER_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -s $WORK/node/charon.pid ]]; then
    pid=$(<"$WORK/node/charon.pid")
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$WORK/node/charon.pid"
  fi
  DAEMON_PID='' TCPDUMP_PID='' CARRIER_PID=''
  if [[ -n $NS ]]; then ip netns del "$NS" 2>/dev/null || true; fi
  NS=
  rm -rf "/run/ipopsec-traps-$$"
}
cleanup() {
  local rc=$?
  set +e
  stop_node
  [[ -n $WORK ]] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d /tmp/ipopsec-traps.XXXXXX)

# --- certificates (the project's own pki, EC keys) ---------------------------------------------
pki() { "$BIN" pki "$@" >>"$WORK/pki.log" 2>&1 || fail "ipop-ipsecd pki $*: $(tail -1 "$WORK/pki.log")"; }
pki init-ca --dir "$WORK/ca" --name "GroupVPN CA" --days 2 --key ec
pki issue --ca-dir "$WORK/ca" --ip fd50:1234::16 --dns n16.groupvpn --days 2 --key ec --out "$WORK/certs"

# --- one node: namespace, tap with carrier, daemon, charon (started by the daemon) -------------
# start_node NAME "RANGE..." "ADDRESS/PREFIX..."
start_node() {
  local name=$1 ranges=$2 addrs=$3 d=$WORK/node run=/run/ipopsec-traps-$$
  rm -rf "$d"
  mkdir -p "$d/swanctl/conf.d" "$run"
  NS=ipopsec-traps-$name-$$
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  echo 'include conf.d/*.conf' >"$d/swanctl/swanctl.conf"
  charon_test_conf "$run/charon.vici" "$d/charon.log" node 'retransmit_tries = 1' 'log.knl = 2' >"$d/strongswan.conf"
  # ike.restart_command: (re)start this node's charon by its pid, wait for its vici socket,
  # load the configuration (what strongswan.service's ExecStartPost does).
  charon_restart_script "$d" "$run" >"$d/charon_restart.sh"
  chmod 755 "$d/charon_restart.sh"
  cat >"$d/ipop-ipsecd.yaml" <<EOF
ipop:
  interface: ipop
protect:
  ranges: [$ranges]
ike:
  backend: strongswan
  control: command
  restart_command: [/bin/bash, $d/charon_restart.sh]
  quiet_period: 300ms
  min_interval: 1s
racoon:
  certificate_dir: $WORK/certs
strongswan:
  swanctl_dir: $d/swanctl
  config: $d/swanctl/conf.d/ipop-ipsec.conf
  load_command: [/usr/bin/env, SWANCTL_DIR=$d/swanctl, /usr/sbin/swanctl, --load-all, --noprompt, --uri, "unix://$run/charon.vici"]
daemon:
  state_dir: $d/state
  remember_dir: ""
  log_level: debug
EOF
  ip netns exec "$NS" "$BIN" --config "$d/ipop-ipsecd.yaml" >"$d/daemon.log" 2>&1 &
  DAEMON_PID=$!
  ip -n "$NS" tuntap add dev ipop mode tap
  CARRIER_PID=$(ip netns exec "$NS" "$CARRIER" ipop)  # IPOP's controller holds the tap: carrier
  local a
  for a in $addrs; do
    if [[ $a == *:* ]]; then ip -n "$NS" addr add "$a" dev ipop nodad; else ip -n "$NS" addr add "$a" dev ipop; fi
  done
  ip -n "$NS" link set ipop up
  # The peers (nobody answers on the tap) get permanent neighbour entries, so that what the
  # node sends them really leaves on the tap: IKE, and any plaintext that would escape.
  ip -n "$NS" neigh replace fd50:1234::20 lladdr 02:00:00:00:00:20 dev ipop nud permanent
  if [[ $addrs == *172.31.* ]]; then
    ip -n "$NS" neigh replace 172.31.0.20 lladdr 02:00:00:00:00:20 dev ipop nud permanent
  fi
  ip netns exec "$NS" tcpdump -i ipop -n -U --immediate-mode -w "$d/tap.pcap" 2>"$d/tcpdump.err" &
  TCPDUMP_PID=$!
  for ((i = 0; i < 100; i++)); do grep -q listening "$d/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$d/tcpdump.err" || fail "tcpdump does not capture on the tap: $(cat "$d/tcpdump.err")"
}

healthy() { grep -q '"healthy": true' "$WORK/node/state/state.json"; }
charon_log_has() { grep -qF -- "$1" "$WORK/node/charon.log"; }
charon_log_re() { grep -qE -- "$1" "$WORK/node/charon.log"; }
# trap_ok LOCAL RANGE TEMPLATE: charon's out and in trap policies with a transport template
# of TEMPLATE (:: or 0.0.0.0), at charon's priority (not the daemon's 500000).
trap_ok() {
  local pols
  pols=$(ip -n "$NS" xfrm policy)
  awk -v s="$1" -v d="$2" -v t="$3" '
    /^src/ { src = $2; dst = $4; dir = ""; prio = ""; tmpl = "" }
    /dir (in|out) priority/ { dir = $2; prio = $4 }
    /tmpl src/ { tmpl = $3 " " $5 }
    /mode transport/ && prio != "500000" && tmpl == t " " t {
      if (dir == "out" && src == s && dst == d) o = 1
      if (dir == "in" && src == d && dst == s) i = 1
    }
    END { exit !(o && i) }' <<<"$pols"
}

# check_node "LOCAL/HOST RANGE TEMPLATE PEER" ...: the checks above, per range.
check_node() {
  local spec addr range tmpl peer host name
  wait_for "the daemon reports healthy (its expected traps are in the kernel)" 40 healthy
  for spec in "$@"; do
    read -r addr range tmpl peer <<<"$spec"
    host=${addr%/*}
    name=ipop-ipsec-$(sed -e 's/[.:/]/-/g' -e 's/--*/-/g' <<<"$range")
    trap_ok "$addr" "$range" "$tmpl" || fail "no trap out $addr -> $range (and in) with template $tmpl in the kernel"
    ok "charon's trap out $addr -> $range and in, template $tmpl -> $tmpl, transport"
    SWANCTL_DIR=$WORK/node/swanctl swanctl --list-pols --uri "unix:///run/ipopsec-traps-$$/charon.vici" 2>/dev/null |
      grep -A2 "^$name/$name, TRANSPORT" | grep -q "local:  $addr" || fail "swanctl --list-pols does not list $name"
    ok "swanctl --list-pols lists $name (local $addr)"
    # A packet to a peer: the trap's ACQUIRE makes charon initiate to that peer itself.
    if [[ $peer == *:* ]]; then
      ip netns exec "$NS" ping -6 -c1 -W1 -I "$host" "$peer" >/dev/null 2>&1 || true
    else
      ip netns exec "$NS" ping -c1 -W1 -I "$host" "$peer" >/dev/null 2>&1 || true
    fi
    wait_for "the trap's ACQUIRE: charon initiates $name's IKE_SA to $peer" 10 \
      charon_log_re "initiating IKE_SA $name\[[0-9]+\] to $peer\$"
  done
  ! charon_log_has "installing trap failed" || fail "charon logs 'installing trap failed'"
  ! charon_log_has "unable to add policy" || fail "charon logs 'unable to add policy'"
  ok "charon logged no failed trap"
}

# no_plaintext "PEER...": after the captures end, no ICMP echo to a peer left on the tap.
no_plaintext() {
  kill "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" 2>/dev/null || true
  TCPDUMP_PID=
  local p n ike
  ike=$(tcpdump -n -r "$WORK/node/tap.pcap" 'udp port 500' 2>/dev/null | wc -l)
  for p in "$@"; do
    n=$(tcpdump -n -r "$WORK/node/tap.pcap" "dst host $p and (icmp or icmp6)" 2>/dev/null | grep -c -i 'echo request' || true)
    [[ $n -eq 0 ]] || fail "$n plaintext echo request(s) to $p left on the tap"
  done
  [[ $ike -gt 0 ]] || fail "no IKE packet on the tap (the capture saw nothing?)"
  ok "no plaintext echo to $* on the tap ($ike IKE packets seen there)"
}

echo "== IPv6-only node"
start_node v6 "fd50:1234::/64" "fd50:1234::16/64"
check_node "fd50:1234::16/128 fd50:1234::/64 :: fd50:1234::20"
no_plaintext fd50:1234::20
stop_node

echo "== dual-stack node"
start_node dual "172.31.0.0/16, fd50:1234::/64" "172.31.0.16/16 fd50:1234::16/64"
check_node "fd50:1234::16/128 fd50:1234::/64 :: fd50:1234::20" "172.31.0.16/32 172.31.0.0/16 0.0.0.0 172.31.0.20"
no_plaintext fd50:1234::20 172.31.0.20
stop_node

echo "strongswan_traps: PASSED ($CHECKS checks)"
