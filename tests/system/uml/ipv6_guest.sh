#!/bin/bash
# The UML guest's init for tests/system/uml_ipv6.sh: ESP over IPv6 between GroupVPN nodes,
# each a network namespace with its tap `ipop` on one simulated overlay segment (bridge
# br0), its own ipop-ipsecd (backend strongswan) and charon-systemd.
#   ipv6_guest.sh WORK_DIR IPOP_IPSECD SOURCE_DIR
#   - IPv6 only: n1, n2 protect fd50:1234::/64 (fd50:1234::11, ::12);
#   - dual stack: n3, n4 protect 172.31.0.0/16 and fd50:5678::/64 (172.31.0.13/.14,
#     fd50:5678::13/::14).
# Asserted: charon's trap for every range (no "installing trap failed"), each daemon
# healthy; every pair pings both ways over IPv6 (and over IPv4 for the dual-stack pair),
# carried by keyed ESP SAs of that family in both directions; TCP and UDP over IPv6 pass
# too; on the overlay the capture shows ESP both ways between every pair and family, and
# no plaintext (ICMP/ICMPv6 echo, TCP, UDP other than IKE) between range addresses.
# Writes only inside WORK_DIR and its own tmpfs /run and /tmp; writes WORK_DIR/result.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
W=$1 BIN=$2 SRC=$3
UML=$SRC/tests/system/uml
source "$SRC/tests/support/charon_conf.sh"   # charon_test_conf
failures=0

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec 2>&1

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
finish() {
  say "== summary: $failures failed assertion(s)"
  if ((failures == 0)); then echo PASS >"$W/result"; else echo FAIL >"$W/result"; fi
  poweroff
}
fatal() {
  fail "$*"
  finish
}

echo "$W/modprobe" >/proc/sys/kernel/modprobe
for m in ipv6 esp4 esp6 xfrm_user gcm authenc cbc hmac sha256_generic sha512_generic veth bridge; do
  "$W/modprobe" "$m" || fatal "cannot load kernel module $m"
done
ip link set lo up

in_ns() {
  local n=$1
  shift
  ip netns exec "n$n" "$@"
}

ip link add br0 type bridge
ip link set br0 up
tcpdump -i br0 -n -U --immediate-mode -Z root -w "$W/overlay.pcap" 2>"$W/tcpdump.err" &
tcpdump_pid=$!
for ((i = 0; i < 100; i++)); do grep -q listening "$W/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$W/tcpdump.err" || fatal "tcpdump does not capture on br0: $(cat "$W/tcpdump.err")"

# start_node I "RANGES" "ADDRESS/PREFIX...": namespace, tap on br0 with its addresses, the
# daemon (which starts charon through tests/system/uml/charon_restart.sh).
start_node() {
  local i=$1 ranges=$2 addrs=$3 d=$W/n$1 run=/run/v6/n$1 certs=/run/v6/n$1/certs a
  mkdir -p "$certs" "$d/swanctl/conf.d" "$run/state"
  cp -p "$W/pki/n$i"/*.pem "$certs/"
  ip netns add "n$i"
  in_ns "$i" ip link set lo up
  echo 'include conf.d/*.conf' >"$d/swanctl/swanctl.conf"
  charon_test_conf "$run/charon.vici" "$d/charon.log" node 'retransmit_timeout = 2.0' 'retransmit_tries = 3' \
    'log.time_format = %T' 'log.ike_name = yes' 'log.knl = 1' >"$d/strongswan.conf"
  cat >"$d/ipop-ipsecd.yaml" <<EOF
# node $i (tests/system/uml_ipv6.sh)
ipop:
  interface: ipop
protect:
  ranges: [$ranges]
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
daemon:
  state_dir: $run/state
  remember_dir: ""
  log_level: debug
EOF
  ip netns exec "n$i" "$BIN" --config "$d/ipop-ipsecd.yaml" >"$d/daemon.log" 2>&1 &
  echo $! >"$d/daemon.pid"
  ip link add "v$i" type veth peer name "t$i"
  ip link set "t$i" netns "n$i"
  in_ns "$i" ip link set "t$i" name ipop
  ip link set "v$i" master br0
  ip link set "v$i" up
  for a in $addrs; do
    if [[ $a == *:* ]]; then in_ns "$i" ip addr add "$a" dev ipop nodad; else in_ns "$i" ip addr add "$a" dev ipop; fi
  done
  in_ns "$i" ip link set ipop up
}

touch "$W/gate"   # charon starts as soon as a daemon asks (charon_restart.sh waits for it)
t0=$(date +%s.%N)
start_node 1 "fd50:1234::/64" "fd50:1234::11/64"
start_node 2 "fd50:1234::/64" "fd50:1234::12/64"
start_node 3 "172.31.0.0/16, fd50:5678::/64" "172.31.0.13/16 fd50:5678::13/64"
start_node 4 "172.31.0.0/16, fd50:5678::/64" "172.31.0.14/16 fd50:5678::14/64"
say "4 nodes started (n1, n2 IPv6 only; n3, n4 dual stack)"

# Each node healthy: its daemon found charon's traps (one per range) in the kernel. One
# deadline (60 s) for all four.
healthy() { grep -q '"healthy": true' "/run/v6/n$1/state/state.json" 2>/dev/null; }
deadline=$((SECONDS + 60))
for i in 1 2 3 4; do
  until healthy "$i" || ((SECONDS >= deadline)); do sleep 0.2; done
  if healthy "$i"; then
    ok "n$i: the daemon reports healthy (charon's traps in the kernel)"
  else
    fail "n$i: not healthy after 60 s: $(grep -m1 '"status":' "/run/v6/n$i/state/state.json")"
  fi
  if grep -q "installing trap failed" "$W/n$i/charon.log"; then fail "n$i: charon: installing trap failed"; fi
done
# traps I LOCAL RANGE: charon's out trap (priority not the daemon's 500000)
trap_in() { in_ns "$1" ip xfrm policy list dir out | grep -A1 "^src $2 dst $3 \$" | grep -q -v "priority 500000"; }
trap_in 1 fd50:1234::11/128 fd50:1234::/64 && trap_in 2 fd50:1234::12/128 fd50:1234::/64 &&
  ok "n1, n2: charon's IPv6 trap out A/128 -> fd50:1234::/64" || fail "n1/n2: charon's IPv6 trap missing"
trap_in 3 fd50:5678::13/128 fd50:5678::/64 && trap_in 3 172.31.0.13/32 172.31.0.0/16 &&
  trap_in 4 fd50:5678::14/128 fd50:5678::/64 && trap_in 4 172.31.0.14/32 172.31.0.0/16 &&
  ok "n3, n4: charon's IPv6 and IPv4 traps" || fail "n3/n4: a trap is missing"

# keyed ESP SAs of node I from SRC to DST (larval ACQUIRE states have SPI 0)
esp_sa() { in_ns "$1" ip xfrm state | awk -v s="$2" -v d="$3" '/^src/ { src = $2; dst = $4 } /proto esp spi/ { if ($4 != "0x00000000" && src == s && dst == d) n++ } END { print n + 0 }'; }
ping_ok() { in_ns "$1" ping -c1 -W2 "$2" >/dev/null 2>&1; }
# pair I A J B: I (at A) and J (at B) ping each other until both answer (bounded), then
# each holds keyed ESP SAs both ways.
pair() {
  local i=$1 a=$2 j=$3 b=$4 t k
  t=$(date +%s.%N)
  for ((k = 0; k < 30; k++)); do ping_ok "$i" "$b" && ping_ok "$j" "$a" && break; done
  if ping_ok "$i" "$b" && ping_ok "$j" "$a"; then
    ok "n$i $a <-> n$j $b: pings answered both ways ($(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s)"
  else
    fail "n$i $a <-> n$j $b: no answer"
  fi
  local s1 s2 s3 s4
  s1=$(esp_sa "$i" "$a" "$b") s2=$(esp_sa "$i" "$b" "$a") s3=$(esp_sa "$j" "$b" "$a") s4=$(esp_sa "$j" "$a" "$b")
  if ((s1 >= 1 && s2 >= 1 && s3 >= 1 && s4 >= 1)); then
    ok "n$i, n$j: keyed ESP SAs $a <-> $b both ways on both nodes"
  else
    fail "n$i, n$j: ESP SAs $a <-> $b missing (n$i out $s1 in $s2, n$j out $s3 in $s4)"
  fi
}
pair 1 fd50:1234::11 2 fd50:1234::12
pair 3 fd50:5678::13 4 fd50:5678::14
pair 3 172.31.0.13 4 172.31.0.14
t_mesh=$(date +%s.%N)
say "TIME nodes started -> every pair and family over ESP: $(awk -v a="$t0" -v b="$t_mesh" 'BEGIN { printf "%.2f", b - a }') s"

# TCP and UDP over IPv6 (inside ESP): one line echoed by a server on n2 (python3; the
# perl echo of the IPv4 mesh test speaks IPv4 only).
cat >"$W/echo6.py" <<'EOF'
import socket, sys
mode, proto, addr = sys.argv[1], sys.argv[2], sys.argv[3]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
if mode == "server":
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 7000))
    if kind == socket.SOCK_STREAM:
        s.listen(4)
    print("listening", flush=True)
    while True:
        if kind == socket.SOCK_STREAM:
            c, _ = s.accept()
            c.sendall(b"echo:" + c.recv(100))
            c.close()
        else:
            data, peer = s.recvfrom(100)
            s.sendto(b"echo:" + data, peer)
for _ in range(5):
    s = socket.socket(socket.AF_INET6, kind)
    s.settimeout(2)
    try:
        if kind == socket.SOCK_STREAM:
            s.connect((addr, 7000))
            s.sendall(b"hello")
        else:
            s.sendto(b"hello", (addr, 7000))
        if s.recv(100) == b"echo:hello":
            sys.exit(0)
    except OSError:
        pass
    s.close()
sys.exit(1)
EOF
for proto in tcp udp; do
  in_ns 2 python3 "$W/echo6.py" server "$proto" fd50:1234::12 >"$W/echo6-$proto.out" 2>&1 &
  spid=$!
  for ((k = 0; k < 50; k++)); do grep -q listening "$W/echo6-$proto.out" && break; sleep 0.1; done
  if in_ns 1 python3 "$W/echo6.py" client "$proto" fd50:1234::12 >/dev/null 2>&1; then
    ok "$proto over IPv6 n1 -> n2 echoed"
  else
    fail "$proto over IPv6 n1 -> n2: no echo ($(cat "$W/echo6-$proto.out"))"
  fi
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
done

# --- the capture: ESP both ways per pair and family, no plaintext -----------------------------
kill "$tcpdump_pid"   # --immediate-mode: every packet seen is in the file already
wait "$tcpdump_pid" 2>/dev/null
count() { tcpdump -n -r "$W/overlay.pcap" "$1" 2>/dev/null | wc -l; }
for p in "fd50:1234::11 fd50:1234::12" "fd50:5678::13 fd50:5678::14" "172.31.0.13 172.31.0.14"; do
  read -r a b <<<"$p"
  ab=$(count "esp and src host $a and dst host $b")
  ba=$(count "esp and src host $b and dst host $a")
  if ((ab > 0 && ba > 0)); then ok "ESP on the wire $a -> $b: $ab packets, $b -> $a: $ba"; else fail "ESP on the wire $a -> $b: $ab, $b -> $a: $ba"; fi
done
# Plaintext between range addresses: echo (ICMP, ICMPv6 128/129), TCP, UDP but IKE (500/4500).
range_hosts='(net fd50:1234::/64 or net fd50:5678::/64 or net 172.31.0.0/16)'
plain=$(count "$range_hosts and (icmp or icmp6[0] == 128 or icmp6[0] == 129 or tcp or (udp and not port 500 and not port 4500))")
total=$(count "")
if ((plain == 0)); then ok "plaintext packets between range addresses on the overlay: 0 (of $total captured)"; else
  fail "plaintext packets between range addresses on the overlay: $plain (of $total)"
  tcpdump -n -r "$W/overlay.pcap" "$range_hosts and (icmp or icmp6[0] == 128 or icmp6[0] == 129 or tcp or (udp and not port 500 and not port 4500))" 2>/dev/null | head -5
fi
say "FIGURE plaintext 0 expected: $plain; packets captured: $total"

for i in 1 2 3 4; do kill "$(cat "$W/n$i/daemon.pid")" 2>/dev/null; done
finish
