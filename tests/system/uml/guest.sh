#!/bin/bash
# The UML guest's init for tests/system/uml_mesh.sh: an IPOP GroupVPN of several nodes
# (network namespaces) on one simulated overlay segment (bridge br0; each node's port is
# its tap `ipop`), each with its own ipop-ipsecd (backend strongswan) and charon-systemd.
#   guest.sh WORK_DIR IPOP_IPSECD SOURCE_DIR
# Writes only inside WORK_DIR (the guest sees the host's / through hostfs) and its own
# tmpfs /run and /tmp. Writes WORK_DIR/result (PASS or FAIL) and powers the guest off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin   # init gets no PATH
W=$1 BIN=$2 SRC=$3
UML=$SRC/tests/system/uml
RANGE=10.254.0.0/16
PRIO=500000            # the daemon's protect priority with backend strongswan
failures=0

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec 2>&1   # everything goes to the console (con0 = fd 1 of linux.uml: the host's console.log)

poweroff() {
  sync
  echo o >/proc/sysrq-trigger
  sleep 60
}
say() { printf '[%6.1fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }
ok() { say "ok   $*"; }
fail() {
  say "FAIL $*"
  failures=$((failures + 1))
}
# fatal: stop here (later steps depend on this one)
fatal() {
  fail "$*"
  finish
}
finish() {
  say "== summary: $failures failed assertion(s)"
  if ((failures == 0)); then echo PASS >"$W/result"; else echo FAIL >"$W/result"; fi
  poweroff
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "$W/modprobe" >/proc/sys/kernel/modprobe
for m in esp4 xfrm_user gcm authenc cbc hmac sha256_generic sha512_generic veth bridge; do
  "$W/modprobe" "$m" || fatal "cannot load kernel module $m"
done
ip link set lo up

addr_of() { echo "10.254.0.$((10 + $1))"; }   # node i's overlay address
ns() { echo "n$1"; }
in_ns() {
  local n=$1
  shift
  ip netns exec "$(ns "$n")" "$@"
}

# --- the overlay segment and a capture on it ---------------------------------------
ip link add br0 type bridge
ip link set br0 up
tcpdump -i br0 -n -U -Z root -w "$W/overlay.pcap" 2>"$W/tcpdump.err" &
tcpdump_pid=$!
for ((i = 0; i < 100; i++)); do grep -q listening "$W/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$W/tcpdump.err" || fatal "tcpdump does not capture on br0: $(cat "$W/tcpdump.err")"

# --- nodes ---------------------------------------------------------------------------
# start_node I CERTDIR: namespace, strongswan.conf, daemon config, daemon (no tap yet).
start_node() {
  local i=$1 certs=$2 d=$W/n$1 run=/run/mesh/n$1
  mkdir -p "$d/swanctl/conf.d" "$d/swanctl/x509ca" "$d/swanctl/x509" "$d/swanctl/private" "$run/state"
  chmod 700 "$d/swanctl/private"
  ip netns add "$(ns "$i")"
  in_ns "$i" ip link set lo up
  echo 'include conf.d/*.conf' >"$d/swanctl/swanctl.conf"
  cat >"$d/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 constraints pubkey kernel-netlink socket-default vici updown hmac sha1 sha2 aes gcm kdf
  install_routes = no
  retransmit_timeout = 2.0
  retransmit_tries = 3
  plugins {
    vici {
      socket = unix://$run/charon.vici
    }
  }
  filelog {
    node {
      path = $d/charon.log
      time_format = %T
      ike_name = yes
      flush_line = yes
      default = 1
      knl = 1
    }
  }
}
EOF
  cat >"$d/ipop-ipsecd.yaml" <<EOF
# mesh node $i (tests/system/uml_mesh.sh)
ipop:
  interface: ipop
protect:
  ranges: [$RANGE]
ike:
  backend: strongswan
  control: command
  restart_command: [/bin/bash, $UML/charon_restart.sh, $d, $run, $W/gate]
  quiet_period: 300ms
  min_interval: 2s
  restart_timeout: 90s
racoon:
  certificate_dir: $certs
strongswan:
  swanctl_dir: $d/swanctl
  config: $d/swanctl/conf.d/ipop-ipsec.conf
  load_command: [/usr/bin/env, SWANCTL_DIR=$d/swanctl, /usr/sbin/swanctl, --load-all, --noprompt, --uri, "unix://$run/charon.vici"]
  dpd_delay: 30
daemon:
  state_dir: $run/state
  remember_dir: $run/lib
  log_level: debug
EOF
  in_ns "$i" "$BIN" check --config "$d/ipop-ipsecd.yaml" >"$d/check.out" 2>&1 ||
    say "note: 'ipop-ipsecd check' for n$i: $(tail -1 "$d/check.out")"
  in_ns "$i" ip xfrm monitor acquire >"$d/acquire.log" 2>&1 &
  in_ns "$i" "$BIN" --config "$d/ipop-ipsecd.yaml" >"$d/daemon.log" 2>&1 &
  echo $! >"$d/daemon.pid"
}

# The daemon's fail-closed policies are in the kernel (wait, bounded).
wait_policies() {
  local i=$1
  for ((k = 0; k < 100; k++)); do
    in_ns "$i" ip xfrm policy | grep -q "priority $PRIO" && return 0
    sleep 0.1
  done
  return 1
}

# tap_up I ADDR: IPOP's tap appears with its address, on the overlay segment.
tap_up() {
  local i=$1 a=$2
  ip link add "v$i" type veth peer name "t$i"
  ip link set "t$i" netns "$(ns "$i")"
  in_ns "$i" ip link set "t$i" name ipop
  ip link set "v$i" master br0
  ip link set "v$i" up
  in_ns "$i" ip addr add "$a/16" dev ipop
  in_ns "$i" ip link set ipop up
}

# keyed_sas I: "SRC DST" per keyed ESP SA of node I (larval ACQUIRE states have SPI 0)
keyed_sas() { in_ns "$1" ip xfrm state | awk '/^src/ { s = $2; d = $4 } /proto esp spi/ { if ($4 != "0x00000000") print s, d }'; }
esp_sa() { keyed_sas "$1" | grep -c "^$2 $3\$" || true; }
# ping_ok I ADDR: one echo round trip from node I
ping_ok() { in_ns "$1" ping -c1 -W2 "$2" >/dev/null 2>&1; }
# pair_esp I J ADDR_J: node I reaches J and an ESP SA carries it
pair_esp() {
  ping_ok "$1" "$3" && (($(esp_sa "$1" "$(cur_addr "$1")" "$3") >= 1))
}
declare -A CUR
cur_addr() { echo "${CUR[$1]}"; }

# wait_mesh TIMEOUT NODES...: every pair of NODES reaches each other over ESP.
wait_mesh() {
  local timeout=$1
  shift
  local nodes=("$@") deadline=$((SECONDS + timeout)) pending
  while :; do
    pending=0
    for a in "${nodes[@]}"; do
      for b in "${nodes[@]}"; do
        [[ $a == "$b" ]] && continue
        pair_esp "$a" "$b" "$(cur_addr "$b")" || pending=$((pending + 1))
      done
    done
    ((pending == 0)) && return 0
    ((SECONDS >= deadline)) && return 1
  done
}

daemon_log_has() { grep -c -- "$2" "$W/n$1/daemon.log" || true; }

# --- certificates: made by the host (openssl CLI) into $W/pki ------------------------
N=3
say "== $N nodes on one overlay segment ($RANGE), plus a late joiner and a node of another CA"
rm -f "$W/gate"   # charon may not start yet
for i in 1 2 3 4 9; do start_node "$i" "$W/pki/n$i"; done
for i in 1 2 3 4 9; do
  wait_policies "$i" || fatal "n$i: ipop-ipsecd installed no policies (see $W/n$i/daemon.log): $(tail -3 "$W/n$i/daemon.log")"
done
ok "every daemon installed its fail-closed policies before IPOP's tap exists"
in_ns 1 ip xfrm policy | sed 's/^/      /'

# --- IPOP comes up; the IKE daemons are held back ------------------------------------
for i in $(seq 1 $N); do
  CUR[$i]=$(addr_of "$i")
  tap_up "$i" "${CUR[$i]}"
done
t_taps=$(now)
say "taps up: n1 ${CUR[1]}, n2 ${CUR[2]}, n3 ${CUR[3]}"
sleep 1   # let the daemons ask for charon's start (held by the gate)
if ping_ok 1 "${CUR[2]}" || ping_ok 2 "${CUR[3]}"; then
  fail "before any IKE daemon runs, traffic between range addresses got through"
else
  ok "before any IKE daemon runs, ping n1->n2 and n2->n3 get no answer (dropped by the require policies)"
fi
if (($(keyed_sas 1 | wc -l) == 0)); then
  ok "n1 holds no keyed SA yet, only $(in_ns 1 ip xfrm state | grep -c '^src' || true) larval (ACQUIRE) state(s)"
else
  fail "n1 has keyed SAs before any IKE daemon ran"
fi

# --- let charon start: the mesh converges ---------------------------------------------
touch "$W/gate"
t_gate=$(now)
if wait_mesh 90 $(seq 1 $N); then
  t_mesh=$(now)
  ok "all $((N * (N - 1))) directed pairs of n1..n$N reach each other over ESP"
  say "TIME taps up -> all pairs ESP: $(elapsed "$t_taps" "$t_mesh") s (includes the test's hold of the IKE daemons; from release: $(elapsed "$t_gate" "$t_mesh") s)"
else
  fatal "the mesh did not converge within 90 s"
fi

# UDP and TCP exchanges between every pair.
for j in $(seq 1 $N); do
  in_ns "$j" perl "$UML/echo.pl" tcp-server "${CUR[$j]}" 5001 >/dev/null 2>&1 &
  in_ns "$j" perl "$UML/echo.pl" udp-server "${CUR[$j]}" 5002 >/dev/null 2>&1 &
done
sleep 0.5
xfail=0
for a in $(seq 1 $N); do
  for b in $(seq 1 $N); do
    [[ $a == "$b" ]] && continue
    in_ns "$a" perl "$UML/echo.pl" tcp-client "${CUR[$b]}" 5001 "tcp n$a->n$b" >/dev/null || { fail "TCP n$a->n$b"; xfail=1; }
    in_ns "$a" perl "$UML/echo.pl" udp-client "${CUR[$b]}" 5002 "udp n$a->n$b" >/dev/null || { fail "UDP n$a->n$b"; xfail=1; }
  done
done
((xfail == 0)) && ok "TCP and UDP echo between every pair"

# --- no fight between charon's policies and the daemon's: ACQUIREs and SAs -----------
for i in $(seq 1 $N); do
  sas=$(keyed_sas "$i" | wc -l)
  dup=$(keyed_sas "$i" | sort | uniq -d | wc -l)
  acq=$(grep -c 'acquire' "$W/n$i/acquire.log" || true)
  ike=$(in_ns "$i" swanctl --list-sas --uri "unix:///run/mesh/n$i/charon.vici" 2>&1 | tee "$W/n$i/list-sas.out" | grep -c 'ESTABLISHED' || true)
  say "n$i: $sas ESP SAs, $dup duplicated (src,dst), $ike IKE_SAs, $acq ACQUIREs so far"
  ((ike == N - 1)) || {
    fail "n$i has $ike IKE_SAs, expected $((N - 1)) (one per peer)"
    head -3 "$W/n$i/list-sas.out" | sed 's/^/      swanctl: /'
  }
  ((sas == 2 * (N - 1))) || fail "n$i has $sas ESP SAs, expected $((2 * (N - 1))) (one in, one out per peer)"
  ((dup == 0)) || fail "n$i has duplicate SAs"
  ((acq <= 10 * (N - 1))) || fail "n$i saw $acq ACQUIREs: an ACQUIRE storm"
done
in_ns 1 ip xfrm policy | grep -E '^src|priority' | paste - - | sed 's/^/      /'
# `ipop-ipsecd status` tells "protected" from "encrypted, with whom": the keyed ESP SAs of
# the range in the SAD and their peers, in the text and in --json.
for i in $(seq 1 $N); do
  in_ns "$i" "$BIN" status --config "$W/n$i/ipop-ipsecd.yaml" >"$W/n$i/status.out" 2>&1 || true
  in_ns "$i" "$BIN" status --json --config "$W/n$i/ipop-ipsecd.yaml" >"$W/n$i/status.json" 2>&1 || true
  line=$(grep '^ipsec SAs:' "$W/n$i/status.out" || true)
  [[ $i == 1 ]] && sed 's/^/      status: /' "$W/n$i/status.out"
  if grep -q "^ipsec SAs:  $((2 * (N - 1))) ESP SAs with $((N - 1)) peers (" "$W/n$i/status.out" &&
    grep -q "\"esp_sas\": $((2 * (N - 1)))," "$W/n$i/status.json"; then
    ok "n$i: status says $line"
  else
    fail "n$i: status does not count its $((2 * (N - 1))) ESP SAs with $((N - 1)) peers: '$line'"
  fi
done

# --- a late joiner: time from its tap coming up to ESP with every node ----------------
CUR[4]=$(addr_of 4)
tap_up 4 "${CUR[4]}"
t_join=$(now)
if wait_mesh 60 1 2 3 4; then
  say "TIME last tap up (n4 joins) -> all pairs ESP: $(elapsed "$t_join" "$(now)") s"
  ok "n4 joined: all 12 directed pairs of n1..n4 over ESP"
else
  fail "n4 did not join the mesh within 60 s"
fi

# --- a node whose certificate comes from another CA -----------------------------------
CUR[9]=10.254.0.99
tap_up 9 "${CUR[9]}"
sleep 2
refused=1
ping_ok 9 "${CUR[1]}" && refused=0
ping_ok 1 "${CUR[9]}" && refused=0
(($(esp_sa 1 "${CUR[1]}" "${CUR[9]}") + $(esp_sa 9 "${CUR[9]}" "${CUR[1]}") == 0)) || refused=0
if ((refused)); then
  ok "n9 (certificate of another CA) is refused: no SA with n1, no traffic"
  grep -hE 'constraint check failed|no trusted .* public key|AUTHENTICATION_FAILED|authentication of .* failed' \
    "$W/n1/charon.log" "$W/n9/charon.log" | head -4 | sed 's/^/      /'
else
  fail "n9 (certificate of another CA) got an SA or traffic through"
fi

# --- DHCP: n3 moves to another address in the range -----------------------------------
old=${CUR[3]}
CUR[3]=10.254.0.33
starts_before=$(wc -l <"$W/n3/charon-starts.log")
# As a DHCP client does: the old lease goes, the new one comes. (Adding first would make
# the new address a secondary that Linux deletes together with the old primary.)
in_ns 3 ip addr del "$old/16" dev ipop
in_ns 3 ip addr add "${CUR[3]}/16" dev ipop
t_move=$(now)
if wait_mesh 90 1 2 3 4; then
  say "TIME n3 re-addressed $old -> ${CUR[3]} -> all pairs ESP again: $(elapsed "$t_move" "$(now)") s"
  ok "the mesh re-converged after n3's new address, without any manual step"
else
  fail "the mesh did not re-converge within 90 s after n3 moved to ${CUR[3]}"
fi
starts_after=$(wc -l <"$W/n3/charon-starts.log")
if ((starts_after == starts_before)) && (($(daemon_log_has 3 "IKE configuration loaded") >= 1)); then
  ok "n3 applied its new address with swanctl --load-all (a reload), charon was not restarted"
else
  fail "n3: expected a reload without a charon restart (starts $starts_before -> $starts_after)"
fi

# --- n3 moves out of the range ---------------------------------------------------------
in_ns 3 ip addr del "${CUR[3]}/16" dev ipop
in_ns 3 ip addr add 10.99.0.33/16 dev ipop
for ((k = 0; k < 50; k++)); do
  grep -q 'remote_addrs' "$W/n3/swanctl/conf.d/ipop-ipsec.conf" || break
  sleep 0.1
done
sleep 1
if ping_ok 1 "${CUR[3]}" || ping_ok 3 "${CUR[1]}" || ping_ok 1 10.99.0.33; then
  fail "n3, moved out of the range, is still reachable"
else
  ok "n3 moved out of the range (10.99.0.33): no longer reachable from n1"
fi
grep -q 'remote_addrs' "$W/n3/swanctl/conf.d/ipop-ipsec.conf" &&
  fail "n3's swanctl configuration still has a mesh connection" ||
  ok "n3's swanctl configuration has no mesh connection any more"
in_ns 3 ip xfrm policy | grep -q "priority $PRIO" && ok "n3 keeps its fail-closed policies for $RANGE"

# --- what the overlay carried ----------------------------------------------------------
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null
esp=$(tcpdump -n -r "$W/overlay.pcap" esp 2>/dev/null | wc -l)
plain=$(tcpdump -n -r "$W/overlay.pcap" "net $RANGE and (icmp or tcp or (udp and not port 500 and not port 4500))" 2>/dev/null | wc -l)
ike=$(tcpdump -n -r "$W/overlay.pcap" "udp port 500 or udp port 4500" 2>/dev/null | wc -l)
say "capture on br0: $esp ESP packets, $ike IKE packets, $plain plaintext ICMP/TCP/UDP packets between range addresses"
tcpdump -n -r "$W/overlay.pcap" esp 2>/dev/null | head -3 | sed 's/^/      /'
((esp > 0)) && ok "the overlay carried ESP" || fail "no ESP on the overlay"
if ((plain == 0)); then
  ok "no plaintext ICMP/TCP/UDP between range addresses on the overlay, before or after the IKE daemons ran"
else
  fail "$plain plaintext packets between range addresses:"
  tcpdump -n -r "$W/overlay.pcap" "net $RANGE and (icmp or tcp or (udp and not port 500 and not port 4500))" 2>/dev/null | head -5
fi
for i in 1 2 3 4 9; do
  say "n$i: $(grep -c acquire "$W/n$i/acquire.log" || true) ACQUIREs in all, charon started $(wc -l <"$W/n$i/charon-starts.log" 2>/dev/null || echo 0) time(s), $(daemon_log_has "$i" "IKE configuration loaded") reload(s)"
done
finish
