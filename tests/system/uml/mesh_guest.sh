#!/bin/bash
# The UML guest's init for the N-node mesh (tests/system/uml/mesh_bench.sh): N+1 nodes
# (network namespaces n1..n<N+1>) on one overlay segment (bridge br0, each node's tap `ipop`
# is a veth port), each with its own charon-systemd. Phases on the same nodes (mesh_nodes.sh):
#   daemon: every node runs ipop-ipsecd (backend strongswan, control command, ranges
#           [A, B]), which starts/reloads its charon;
#   limit:  no daemon; every charon already running with all its connections loaded
#           (ipop-ipsecd's rendered files for the final address) before the event: only IKE
#           is left, what nothing can beat;
#   ideal:  no daemon; one watcher per node (ipopsec_addr_watch, started before the event)
#           starts charon (loads its config) the moment IPOP is up on its node (its address
#           on the tap, the tap up with carrier: the daemon's condition), all nodes in
#           parallel, with the same rendered files: the ideal in the product's order;
#   anchor: (ANCHOR 2) no daemon; one connection per peer, charon started from a shell loop.
# Scenarios, each timed from its event to "every pair exchanging ESP":
#   a  n1..nN come up in range A (timed from the last tap up)
#   b  all N move to range B (timed from the last address change)
#   c  n<N+1> joins the running mesh in B (timed from its tap up; pairs with it only)
# "Exchanging ESP" is observed: every node's mesh_probe.pl has an answer from each peer
# (UDP echo; only ESP can carry it: fail-closed policies on every node), then the ESP SAs'
# packet counters (ip -s xfrm state) of every pair, both directions, are non-zero; a capture
# on br0 must show ESP for every pair and no plaintext between range addresses.
#   mesh_guest.sh WORK_DIR IPOP_IPSECD SCRIPTS_PARENT N ROUNDS ANCHOR(0|1|2) WAYS(1|2) PATCH_REQID(0|1) NORETRY(0|1) WATCH
#   (ANCHOR 0: the daemon alone; 1: also limit and ideal; 2: also the per-peer anchor.
#   NORETRY 1: each round also runs the daemon with ike.acquire_retry off, phase daemon_noretry.
#   WATCH: ipopsec_addr_watch (ipopsec_larval_flush beside it). Scripts in SCRIPTS_PARENT/uml; PATCH_REQID: an experiment,
#   see mesh_reqid.sh)
# Writes WORK_DIR/times (PHASE SCENARIO ROUND SECONDS, "none" for a pair that never answered,
# "bad" for a round whose ESP checks failed), WORK_DIR/steps (steps_say), WORK_DIR/result
# (PASS/FAIL), powers off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
W=$1 BIN=$2 SRC=$3 N=$4 ROUNDS=$5 ANCHOR=$6 WAYS=$7 PATCH_REQID=$8 NORETRY=$9 WATCH=${10}
LARVAL=$(dirname "$WATCH")/ipopsec_larval_flush
UML=$SRC/uml   # mesh_bench.sh's copies of tests/system/uml/*
RANGE_A=10.254.0.0/16 RANGE_B=10.253.0.0/16
PRIO=500000   # the daemon's protect priority with backend strongswan; the anchor uses the same
J=$((N + 1))  # the joiner
TIMEOUT=$((N > 8 ? 15 * N : 120))   # per scenario
failures=0

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec 2>&1

say() { printf '[%6.1fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }
ok() { say "ok   $*"; }
fail() { say "FAIL $*"; failures=$((failures + 1)); }
finish() {
  say "== summary: $failures failed assertion(s)"
  if ((failures == 0)); then echo PASS >"$W/result"; else echo FAIL >"$W/result"; fi
  sync
  echo o >/proc/sysrq-trigger
  sleep 60
}
fatal() { fail "$*"; finish; }
now() { date +%s.%N; }

echo "$W/modprobe" >/proc/sys/kernel/modprobe
for m in esp4 xfrm_user gcm authenc cbc hmac sha256_generic sha512_generic veth bridge; do
  "$W/modprobe" "$m" || fatal "cannot load kernel module $m"
done
echo 1 >/proc/sys/kernel/printk   # the console is for the test's lines, not bridge port messages
ip link set lo up

addr() { if [[ $1 == A ]]; then echo "10.254.0.$((10 + $2))"; else echo "10.253.0.$((10 + $2))"; fi; }
in_ns() { local i=$1; shift; ip netns exec "n$i" "$@"; }

ip link add br0 type bridge && ip link set br0 up
tcpdump -i br0 -n -U -Z root -w "$W/overlay.pcap" 2>"$W/tcpdump.err" &
tcpdump_pid=$!
for ((k = 0; k < 100; k++)); do grep -q listening "$W/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$W/tcpdump.err" || fatal "tcpdump does not capture on br0: $(cat "$W/tcpdump.err")"
: >"$W/gate"   # charon_restart.sh waits for it; never held here

# strongswan_conf DIR RUN: one charon's strongswan.conf (the same for both phases)
strongswan_conf() {
  cat >"$1/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 constraints pubkey kernel-netlink socket-default vici updown hmac sha1 sha2 aes gcm kdf
  install_routes = no
  retransmit_timeout = 2.0
  retransmit_tries = 3
  plugins {
    vici {
      socket = unix://$2/charon.vici
    }
  }
  filelog {
    node {
      path = $1/charon.log
      time_format = %T
      ike_name = yes
      flush_line = yes
      time_add_ms = yes
      default = 1
    }
  }
}
EOF
}

for i in $(seq 1 "$J"); do
  ip netns add "n$i"
  in_ns "$i" ip link set lo up
  in_ns "$i" perl "$UML/echo.pl" udp-server 0.0.0.0 5002 >/dev/null 2>&1 &
done

# tap_up I ADDR: IPOP's tap appears with its address, on the overlay segment.
declare -A ADDR_AT
tap_up() {
  ip link add "v$1" type veth peer name "t$1" netns "n$1"
  ip link set "v$1" master br0 up
  in_ns "$1" ip link set "t$1" name ipop
  ADDR_AT[$1]=$(date +%T.%N)  # the address is added now (local time of day, as charon's log has it)
  in_ns "$1" ip addr add "$2/16" dev ipop
  in_ns "$1" ip link set ipop up
}
# readdress I OLD NEW: as a DHCP client does, the old lease goes, the new one comes.
readdress() {
  in_ns "$1" ip addr del "$2/16" dev ipop
  in_ns "$1" ip addr add "$3/16" dev ipop
}

# --- observing: probes, ESP counters, timings -----------------------------------------
# probe_start TAG I PEERS...: node I's prober, waiting for SIGUSR1 (PID in $W/probe/TAG.nI.ready)
probe_start() {
  local tag=$1 i=$2
  shift 2
  mkdir -p "$W/probe"
  rm -f "$W/probe/$tag.n$i".*
  in_ns "$i" perl "$UML/mesh_probe.pl" "$W/probe/$tag.n$i.out" "$W/probe/$tag.n$i.ready" "$TIMEOUT" "$@" &
}
# probe_ready TAG: every prober of TAG waits for the signal (bounded); probe_go TAG releases them at once.
probe_ready() {
  local tag=$1 k
  for ((k = 0; k < 600; k++)); do
    (($(ls "$W/probe/$tag".*.ready 2>/dev/null | wc -l) == PROBERS)) && return 0
    sleep 0.05
  done
  fatal "$tag: only $(ls "$W/probe/$tag".*.ready 2>/dev/null | wc -l) of $PROBERS probers started"
}
probe_go() {
  local f pids=()
  for f in "$W/probe/$1".*.ready; do pids+=("$(<"$f")"); done
  kill -USR1 "${pids[@]}"
}
# probe_wait TAG T0: waits for the probers; prints the seconds from T0 to the last first
# answer, or "none" when a pair never answered.
probe_wait() {
  local tag=$1 t0=$2 k
  for ((k = 0; k < (TIMEOUT + 10) * 10; k++)); do
    (($(ls "$W/probe/$tag".*.out 2>/dev/null | wc -l) == PROBERS)) && break
    sleep 0.1
  done
  cat "$W/probe/$tag".*.out 2>/dev/null | awk -v t0="$t0" -v want="$PROBES" '
    $2 == "none" { none++ } $2 != "none" { n++; if ($2 > m) m = $2 }
    END { if (none || n != want) print "none"; else printf "%.2f\n", m - t0 }'
}
# esp_ok I PEER_ADDRS...: node I has a keyed ESP SA to and from each peer, with packets counted
esp_ok() {
  local i=$1 me p
  shift
  me=$(in_ns "$i" ip -4 -o addr show dev ipop | awk '{ sub("/.*", "", $4); print $4 }')
  in_ns "$i" ip -s xfrm state >"$W/xfrm.n$i"
  local counted
  counted=$(awk '/^src/ { s = $2; d = $4; spi = "" } /proto esp spi/ { spi = $4 }
    /\(packets\)/ { if (spi != "" && spi != "0x00000000") { split($2, a, "("); if (a[1] + 0 > 0) print s, d } }' "$W/xfrm.n$i")
  for p in "$@"; do
    grep -qx "$me $p" <<<"$counted" || { echo "n$i: no ESP SA with packets $me -> $p"; return 1; }
    grep -qx "$p $me" <<<"$counted" || { echo "n$i: no ESP SA with packets $p -> $me"; return 1; }
  done
}
record() { # record PHASE SCENARIO ROUND SECONDS
  echo "$1 $2 $3 $4" >>"$W/times"
  say "TIME $1 $2 (round $3): $4 s"
}

# run_probes TAG PHASE SCEN ROUND T0 CHECKED_NODES...: waits for TAG's probers, checks the
# ESP counters of CHECKED_NODES against the peers they probed, records the time (or the
# round's failure: "none" or "bad").
declare -A PEERS_OF
run_probes() {
  local tag=$1 phase=$2 scen=$3 round=$4 t0=$5 secs i why f pend
  shift 5
  secs=$(probe_wait "$tag" "$t0")
  if [[ $secs == none ]]; then
    fail "$phase $scen (round $round): not every pair answered within $TIMEOUT s"
    for f in "$W/probe/$tag".*.out; do
      grep -q none "$f" || continue
      i=${f%.out} i=${i##*.n}
      pend=$(awk '$2 == "none" { printf "%s ", $1 }' "$f")
      say "n$i got no answer from: $pend"
      # The SAs and charon's policies with those peers (reqids: an SA whose reqid the in policy
      # does not name has its packets dropped, XfrmInTmplMismatch).
      in_ns "$i" ip -s xfrm state | awk -v pend=" $pend" '/^src/ { s = $2; d = $4 } /proto esp spi/ { spi = $4; rq = $6 }
        /\(packets\)/ && (index(pend, " " s " ") || index(pend, " " d " ")) { print "      SA " s " -> " d " spi " spi " reqid " rq " " $2 }'
      in_ns "$i" ip xfrm policy | awk -v pend=" $pend" '/^src/ { s = $2; d = $4; sub("/32", "", s); sub("/32", "", d) }
        /dir/ { dir = $2 " " $3 " " $4 }
        /reqid/ && $(NF - 2) != 0 && (index(pend, " " s " ") || index(pend, " " d " ")) { print "      policy " s " -> " d " " dir " reqid " $(NF - 2) }'
      say "n$i: XFRM error counters: $(in_ns "$i" awk '$2 > 0 { printf "%s=%s ", $1, $2 }' /proc/net/xfrm_stat)"
    done
    record "$phase" "$scen" "$round" none
    return 1
  fi
  for i in "$@"; do
    # shellcheck disable=SC2086
    why=$(esp_ok "$i" ${PEERS_OF[$i]}) || {
      fail "$phase $scen (round $round): every pair answered after $secs s, but $why"
      record "$phase" "$scen" "$round" bad
      return 1
    }
  done
  record "$phase" "$scen" "$round" "$secs"
  ok "$phase $scen: every probed pair answered, over ESP SAs with packets counted both ways"
}

# Who probes whom. WAYS=2: every node probes every peer (both ends send at once, as real
# traffic does, so both charons may initiate); WAYS=1: only the lower-numbered node of a pair
# (and the joiner) probes, the echo answer still proves both directions.
probes_mesh() { # probes_mesh TAG RANGE: n1..nN probe each other
  local tag=$1 r=$2 i j peers
  PROBERS=0 PROBES=0
  for i in $(seq 1 "$N"); do
    peers=()
    for j in $(seq 1 "$N"); do
      ((i == j || (WAYS == 1 && j < i))) || peers+=("$(addr "$r" "$j")")
    done
    PEERS_OF[$i]="${peers[*]}"
    ((${#peers[@]})) || continue
    PROBERS=$((PROBERS + 1)) PROBES=$((PROBES + ${#peers[@]}))
    probe_start "$tag" "$i" "${peers[@]}"
  done
}
probes_join() { # probes_join TAG: the joiner probes all (WAYS=2: every other node probes the joiner too)
  local tag=$1 i peers=()
  PROBERS=1 PROBES=$N
  for i in $(seq 1 "$N"); do
    peers+=("$(addr B "$i")")
    PEERS_OF[$i]=
    ((WAYS == 2)) || continue
    PEERS_OF[$i]=$(addr B "$J")
    PROBERS=$((PROBERS + 1)) PROBES=$((PROBES + 1))
    probe_start "$tag" "$i" "$(addr B "$J")"
  done
  PEERS_OF[$J]="${peers[*]}"
  probe_start "$tag" "$J" "${peers[@]}"
}

# --- nodes --------------------------------------------------------------------------
source "$UML/mesh_nodes.sh"

say "== mesh of $N nodes + 1 joiner, $ROUNDS round(s), anchor: $ANCHOR, probes: $WAYS way(s), reqid patch: $PATCH_REQID; memory: $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
warm_up
# The phases of a round, in an order that turns by one each round: whatever one phase leaves
# behind for the next (caches, the guest's memory) falls on each of them in turn.
phases=("daemon_phase ROUND")
((NORETRY)) && phases+=("daemon_phase ROUND noretry")
((ANCHOR >= 1)) && phases+=("limit_phase ROUND" "ideal_phase ROUND")
((ANCHOR >= 2)) && phases+=("anchor_phase ROUND")
mem_say idle -
for round in $(seq 1 "$ROUNDS"); do
  for ((turn = 0; turn < ${#phases[@]}; turn++)); do
    run_phase=${phases[(turn + round - 1) % ${#phases[@]}]}
    started=$(now)
    ${run_phase/ROUND/$round}
    # phase_s: the phase's wall time in the guest (PHASE ROUND SECONDS)
    name=${run_phase%%_phase*}
    [[ $run_phase == *noretry ]] && name=daemon_noretry
    echo "$name $round $(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')" >>"$W/phase_s"
  done
done

# --- what the overlay carried -------------------------------------------------------------
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null
plain=$(tcpdump -n -r "$W/overlay.pcap" "(net $RANGE_A or net $RANGE_B) and (icmp or tcp or (udp and not port 500 and not port 4500))" 2>/dev/null | wc -l)
tcpdump -n -r "$W/overlay.pcap" esp 2>/dev/null | awk '$4 == ">" { sub(":$", "", $5); print $3, $5 }' |
  sort -u >"$W/esp-pairs"
want=0 missing=0
for r in A B; do
  last=$N
  [[ $r == B ]] && last=$J
  for i in $(seq 1 "$last"); do
    for j in $(seq 1 "$last"); do
      ((i == j)) && continue
      want=$((want + 1))
      grep -qx "$(addr "$r" "$i") $(addr "$r" "$j")" "$W/esp-pairs" || missing=$((missing + 1))
    done
  done
done
say "capture on br0: $(tcpdump -n -r "$W/overlay.pcap" esp 2>/dev/null | wc -l) ESP packets, $plain plaintext ICMP/TCP/UDP between range addresses"
((missing == 0)) && ok "ESP on the wire for all $want directed pairs (range A: $N nodes, range B: $J)" ||
  fail "no ESP on the wire for $missing of $want directed pairs"
((plain == 0)) && ok "no plaintext between range addresses on the overlay" || {
  fail "$plain plaintext packets between range addresses"
  tcpdump -n -r "$W/overlay.pcap" "(net $RANGE_A or net $RANGE_B) and (icmp or tcp or (udp and not port 500 and not port 4500))" 2>/dev/null | head -5
}
finish
