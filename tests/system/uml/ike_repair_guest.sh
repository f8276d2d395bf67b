#!/bin/bash
# The UML guest's init for tests/system/uml_ike_repair.sh (issue 22, "done when" (a)): three
# nodes n1..n3 (network namespaces) on one overlay segment (bridge br0; each node's tap
# `ipop` is a veth port), each with the real ipop-ipsecd (backend strongswan, control
# command: charon_restart.sh) and its own charon-systemd, meshed over real ESP. Then, on n1,
# one round each of
#   policy: `ip xfrm policy flush`  (charon's trap policies go, with everything else)
#   state:  `ip xfrm state flush`   (charon's SAs go; charon is not told)
# with pings every 50 ms running through, n1 -> n2 (the flushed node sends) and n3 -> n1
# (a peer sends; n1 itself sends nothing to n3), timed by ping -D (the guest's clock), and
# n1's state.json polled from just before the flush. Asserted per round, within 20 s:
#   - n1's daemon logs the restart with the reason ("were removed by another process"),
#     and charon is restarted (charon_restart.sh's start log);
#   - state.json says "healthy": false after the flush, then true again;
#   - `ipop-ipsecd status` on n1, run as soon as state.json says false, exits 1 (running,
#     not healthy) and names the IKE problem (printed: the example for the report);
#   - both pings are answered again after the repair: a reply to a request sent after
#     charon's restart (so over SAs the restarted charon keyed), ESP from the replying side
#     on the wire after it, replies still coming a second later, and n1 then holds keyed
#     ESP SAs with packets counted each way with n2 and n3;
#   - the capture on br0 holds no plaintext between range addresses (anything but ESP and
#     IKE), except what `ip xfrm policy flush` itself let through in the instant before
#     the daemon put its policies back (counted and printed, bounded to 0.5 s after the
#     flush; the state flush round and the rest of the run must have none).
# Printed: "FIGURE round <name>, ping ..." lines with the times from the flush to the
# daemon's restart line, charon's start, healthy again, the first echo reply (to a request
# sent after the flush), the first reply after the repair, the first ESP packet of the
# replying side after it, and the longest gap between replies.
#   ike_repair_guest.sh WORK_DIR IPOP_IPSECD SOURCE_DIR
# Writes only inside WORK_DIR (the guest sees the host's / through hostfs) and its own tmpfs
# /run and /tmp. Writes WORK_DIR/result (PASS or FAIL) and powers the guest off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin   # init gets no PATH
W=$1 BIN=$2 SRC=$3
UML=$SRC/tests/system/uml
source "$SRC/tests/support/charon_conf.sh"   # charon_test_conf
RANGE=10.254.0.0/16
PRIO=500000   # the daemon's protect priority with backend strongswan
N=3
BOUND=20      # seconds from a flush until ESP must flow again
MIN_INTERVAL=10   # ike.min_interval (the daemon's default, written out in the config)
failures=0

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec 2>&1   # everything goes to the console (con0 = fd 1 of linux.uml: the host's console.log)

say() { printf '[%6.1fs] %s\n' "$(awk '{print $1}' /proc/uptime)" "$*"; }
ok() { say "ok   $*"; }
fail() {
  say "FAIL $*"
  failures=$((failures + 1))
}
finish() {
  say "== summary: $failures failed assertion(s)"
  if ((failures == 0)); then echo PASS >"$W/result"; else echo FAIL >"$W/result"; fi
  sync
  echo o >/proc/sysrq-trigger
  sleep 60
}
fatal() {
  fail "$*"
  finish
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "$W/modprobe" >/proc/sys/kernel/modprobe
for m in esp4 xfrm_user gcm authenc cbc hmac sha256_generic sha512_generic veth bridge udp_diag; do
  "$W/modprobe" "$m" || fatal "cannot load kernel module $m"
done
echo 1 >/proc/sys/kernel/printk   # the console is for the test's lines, not bridge port messages
ip link set lo up

addr_of() { echo "10.254.0.$((10 + $1))"; }
in_ns() {
  local i=$1
  shift
  ip netns exec "n$i" "$@"
}

# --- the overlay segment and a capture on it ---------------------------------------
ip link add br0 type bridge
ip link set br0 up
tcpdump -i br0 -n -U -Z root -w "$W/overlay.pcap" 2>"$W/tcpdump.err" &
tcpdump_pid=$!
for ((k = 0; k < 100; k++)); do grep -q listening "$W/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$W/tcpdump.err" || fatal "tcpdump does not capture on br0: $(cat "$W/tcpdump.err")"
: >"$W/gate"   # charon_restart.sh waits for it; never held here

# --- nodes -----------------------------------------------------------------------------
# start_node I: namespace, strongswan.conf, daemon config, daemon (no tap yet). The
# certificates are copied onto the guest's tmpfs, as in guest.sh (inotify and hostfs).
start_node() {
  local i=$1 d=$W/n$1 run=/run/ikerep/n$1
  mkdir -p "$run/certs" "$run/state" "$d/swanctl/conf.d" "$d/swanctl/x509ca" "$d/swanctl/x509" "$d/swanctl/private"
  cp -p "$W/pki/n$i"/*.pem "$run/certs/"
  chmod 700 "$d/swanctl/private"
  ip netns add "n$i"
  in_ns "$i" ip link set lo up
  echo 'include conf.d/*.conf' >"$d/swanctl/swanctl.conf"
  charon_test_conf "$run/charon.vici" "$d/charon.log" node 'retransmit_timeout = 2.0' 'retransmit_tries = 3' \
    'log.time_format = %T' 'log.time_add_ms = yes' 'log.ike_name = yes' >"$d/strongswan.conf"
  # ike timings: the daemon's defaults (quiet_period 2s, min_interval 10s), written out.
  cat >"$d/ipop-ipsecd.yaml" <<EOF
# node $i (tests/system/uml_ike_repair.sh)
ipop:
  interface: ipop
protect:
  ranges: [$RANGE]
ike:
  backend: strongswan
  control: command
  restart_command: [/bin/bash, $UML/charon_restart.sh, $d, $run, $W/gate]
  quiet_period: 2s
  min_interval: ${MIN_INTERVAL}s
  restart_timeout: 90s
racoon:
  certificate_dir: $run/certs
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
  # Not through in_ns (a function: $! would be a subshell's): ip netns exec execs the daemon.
  ip netns exec "n$i" "$BIN" --config "$d/ipop-ipsecd.yaml" >"$d/daemon.log" 2>&1 &
  echo $! >"$d/daemon.pid"
}

# tap_up I: IPOP's tap appears with its address, on the overlay segment.
tap_up() {
  local i=$1
  ip link add "v$i" type veth peer name "t$i"
  ip link set "t$i" netns "n$i"
  in_ns "$i" ip link set "t$i" name ipop
  ip link set "v$i" master br0
  ip link set "v$i" up
  in_ns "$i" ip addr add "$(addr_of "$i")/16" dev ipop
  in_ns "$i" ip link set ipop up
}

# keyed_sas I: "SRC DST" per keyed ESP SA of node I (larval ACQUIRE states have SPI 0)
keyed_sas() { in_ns "$1" ip xfrm state | awk '/^src/ { s = $2; d = $4 } /proto esp spi/ { if ($4 != "0x00000000") print s, d }'; }
# counted_sas I: "SRC DST" per keyed ESP SA of node I that has carried packets
counted_sas() {
  in_ns "$1" ip -s xfrm state | awk '/^src/ { s = $2; d = $4; spi = "" } /proto esp spi/ { spi = $4 }
    /\(packets\)/ { if (spi != "" && spi != "0x00000000") { split($2, a, "("); if (a[1] + 0 > 0) print s, d } }'
}
ping_ok() { in_ns "$1" ping -c1 -W2 "$2" >/dev/null 2>&1; }
# wait_mesh TIMEOUT: every pair of n1..nN reaches each other, over a keyed ESP SA.
wait_mesh() {
  local deadline=$((SECONDS + $1)) pending a b
  while :; do
    pending=0
    for a in $(seq 1 $N); do
      for b in $(seq 1 $N); do
        ((a == b)) && continue
        if ! ping_ok "$a" "$(addr_of "$b")" || ! keyed_sas "$a" | grep -qx "$(addr_of "$a") $(addr_of "$b")"; then
          pending=$((pending + 1))
        fi
      done
    done
    ((pending == 0)) && return 0
    ((SECONDS >= deadline)) && return 1
  done
}

state1=/run/ikerep/n1/state/state.json
# healthy_of FILE: true/false from a state.json ("" when there is none yet)
healthy_of() {
  local line
  while IFS= read -r line; do
    if [[ $line =~ \"healthy\":\ (true|false) ]]; then
      echo "${BASH_REMATCH[1]}"
      return
    fi
  done 2>/dev/null <"$1"
}
# watch_health OUT: "TIME true|false" for every change of n1's "healthy" (read every 20 ms),
# until killed
watch_health() {
  local last= h
  while :; do
    h=$(healthy_of "$state1")
    if [[ -n $h && $h != "$last" ]]; then
      echo "$(date +%s.%N) $h" >>"$1"
      # the file as it read "healthy": false first (its ike_problems, for the report)
      [[ $h == false && ! -e $1.false.json ]] && cp "$state1" "$1.false.json"
      last=$h
    fi
    sleep 0.02
  done
}
# log_epoch "YYYY-mm-dd HH:MM:SS.mmm": the daemon's log time as seconds since the epoch
log_epoch() { date -d "$1" +%s.%N; }

say "== $N nodes on one overlay segment ($RANGE), each with ipop-ipsecd (strongswan, ike.restart_command) and charon-systemd"
for i in $(seq 1 $N); do start_node "$i"; done
for i in $(seq 1 $N); do
  for ((k = 0; k < 100; k++)); do
    in_ns "$i" ip xfrm policy | grep -q "priority $PRIO" && break
    sleep 0.1
  done
  in_ns "$i" ip xfrm policy | grep -q "priority $PRIO" ||
    fatal "n$i: ipop-ipsecd installed no policies: $(tail -3 "$W/n$i/daemon.log")"
done
for i in $(seq 1 $N); do tap_up "$i"; done
t_taps=$(now)
if wait_mesh 90; then
  ok "all $((N * (N - 1))) directed pairs reach each other over ESP ($(elapsed "$t_taps" "$(now)") s after the taps came up)"
else
  fatal "the mesh did not converge within 90 s"
fi
for ((k = 0; k < 100; k++)); do [[ $(healthy_of "$state1") == true ]] && break; sleep 0.1; done
[[ $(healthy_of "$state1") == true ]] || fatal "n1's state.json does not say healthy with the mesh up: $(grep -E '"ike_problems"|"healthy"' "$state1" | tr -s ' ')"
ok "n1's state.json says \"healthy\": true; charon's traps: $(grep '"ike_traps_present"' "$state1" | sed 's/^ *//')"
in_ns 1 ip xfrm policy | grep -E '^src|priority' | paste - - | sed 's/^/      /'

# --- one round: a flush on n1, the repair, measured ------------------------------------
# Pings every 50 ms, in both roles: n1 (the flushed node) pings n2, and n3 pings n1. ESP
# with n3 must come back although n1 itself sends nothing to n3 (n3's SAs with n1 are
# intact after the flush on n1, and its ESP finds no SA on n1 until the repair).
PINGS=("1 2" "3 1")
# reply_times FILE T0 T1 S: from a `ping -D` log, "FIRST AGAIN GAP": the receive time of the
# first reply to a request sent after T1 and of the first to one sent after S (sent =
# received - round trip time; "-" for none), and the longest gap between replies after T0.
reply_times() {
  awk -F'[][]' -v t0="$2" -v t1="$3" -v s="$4" '
    /bytes from/ { t = $2 + 0; sent = t
      if (match($3, /time=[0-9.]+/)) sent = t - substr($3, RSTART + 5, RLENGTH - 5) / 1000
      if (t > t0 && prev != "" && t - prev > gap) gap = t - prev
      prev = t
      if (sent <= t1) next
      if (first == "") first = t
      if (again == "" && sent > s) again = t }
    END { printf "%s %s %.6f\n", (first == "" ? "-" : sprintf("%.6f", first)), (again == "" ? "-" : sprintf("%.6f", again)), gap }' "$1"
}
# round NAME COMMAND... : NAME is policy or state; the command runs in n1.
round() {
  local name=$1
  local r=$W/round-$name
  shift
  mkdir -p "$r"
  say "== round $name: '$*' on n1; pings n1 -> n2 and n3 -> n1 every 50 ms"
  # Repairs are bounded by ike.min_interval since the last restart: a flush sooner than that
  # would measure the backoff, not the repair. The spacing a real flush has, made sure of.
  local last since
  last=$(tail -1 "$W/n1/charon-starts.log" | awk '{print $1}')
  since=$(elapsed "$last" "$(now)")
  if awk -v s="$since" -v m="$MIN_INTERVAL" 'BEGIN { exit !(s < m + 0.5) }'; then
    say "n1's charon started ${since} s ago: waiting for ike.min_interval (${MIN_INTERVAL} s) to pass"
    sleep "$(awk -v s="$since" -v m="$MIN_INTERVAL" 'BEGIN { printf "%.2f", m + 0.5 - s }')"
  fi
  [[ $(healthy_of "$state1") == true ]] || fail "round $name: n1 is not healthy before the flush"
  local log0 starts0 p a b pids=() logs=()
  log0=$(wc -l <"$W/n1/daemon.log")
  starts0=$(wc -l <"$W/n1/charon-starts.log")
  watch_health "$r/health" &
  local watcher=$!
  for p in "${PINGS[@]}"; do
    read -r a b <<<"$p"
    ip netns exec "n$a" ping -D -O -i 0.05 "$(addr_of "$b")" >"$r/ping-$a-$b.log" 2>&1 &
    pids+=($!) logs+=("$r/ping-$a-$b.log")
  done
  # Pings answered and the watcher's first reading (true) in before the flush.
  local deadline=$((SECONDS + 10)) f answered
  while :; do
    answered=0
    for f in "${logs[@]}"; do grep -qs 'bytes from' "$f" && answered=$((answered + 1)); done
    ((answered == ${#logs[@]})) && [[ -s $r/health ]] && break
    ((SECONDS < deadline)) || break
    sleep 0.05
  done
  ((answered == ${#logs[@]})) || fail "round $name: the pings get no answer before the flush"
  local t0 t1
  t0=$(now)
  in_ns 1 "$@"
  t1=$(now)
  echo "$t0" >"$r/t0"
  say "T0: '$*' on n1 (the command ran $(elapsed "$t0" "$t1") s; times below are from its start)"

  # Until: state.json said false then true, charon started again, and every ping was
  # answered for a request sent after charon's new start. Bounded.
  local t_false= t_true= t_start= status_rc= replied x
  deadline=$((SECONDS + BOUND))
  while :; do
    if [[ -z $t_false ]]; then
      t_false=$(awk -v t0="$t0" '$1 > t0 && $2 == "false" { print $1; exit }' "$r/health")
      if [[ -n $t_false ]]; then
        # The example for the report: what an operator sees during the broken period.
        in_ns 1 "$BIN" status --config "$W/n1/ipop-ipsecd.yaml" >"$r/status.out" 2>&1
        status_rc=$?
      fi
    fi
    [[ -n $t_false && -z $t_true ]] && t_true=$(awk -v f="$t_false" '$1 > f && $2 == "true" { print $1; exit }' "$r/health")
    (($(wc -l <"$W/n1/charon-starts.log") > starts0)) && t_start=$(sed -n "$((starts0 + 1))p" "$W/n1/charon-starts.log" | awk '{print $1}')
    replied=0
    if [[ -n $t_start ]]; then
      for f in "${logs[@]}"; do
        read -r _ x _ <<<"$(reply_times "$f" "$t0" "$t1" "$t_start")"
        [[ $x != - ]] && replied=$((replied + 1))
      done
    fi
    [[ -n $t_true ]] && ((replied == ${#logs[@]})) && break
    ((SECONDS >= deadline)) && break
    sleep 0.1
  done
  local t_end
  t_end=$(now)
  # A second of pings after that: the replies must go on (no second outage from the repair).
  sleep 1
  kill "${pids[@]}" "$watcher" 2>/dev/null
  wait "${pids[@]}" "$watcher" 2>/dev/null

  # The daemon's log: the reason, and when it acted.
  local reason line t_log=
  if [[ $name == policy ]]; then reason="were removed by another process"; else reason="its SAs were removed from the kernel by another process"; fi
  line=$(tail -n +$((log0 + 1)) "$W/n1/daemon.log" | grep -m1 -F "restarting " | grep -F "$reason")
  if [[ -n $line ]]; then
    ok "round $name: n1's daemon restarts charon and names the reason:"
    echo "      $line"
    t_log=$(log_epoch "${line:0:23}")
  else
    fail "round $name: n1's daemon logged no restart naming '$reason' after the flush:"
    tail -n +$((log0 + 1)) "$W/n1/daemon.log" | grep -v ' debug ' | head -12 | sed 's/^/      /'
  fi
  if [[ -n $t_start ]]; then
    ok "round $name: n1's charon was restarted $(elapsed "$t0" "$t_start") s after the flush"
  else
    fail "round $name: n1's charon was not restarted within $BOUND s of the flush"
  fi
  # state.json: false after the flush, true again later.
  sed "s/^/      health: /" "$r/health"
  if [[ -n $t_false && -n $t_true ]]; then
    ok "round $name: n1's state.json said \"healthy\": false $(elapsed "$t0" "$t_false") s after the flush, true again at $(elapsed "$t0" "$t_true") s"
  elif [[ -n $t_false ]]; then
    fail "round $name: n1's state.json said \"healthy\": false after the flush, and not true again within $BOUND s: $(grep '"ike_problems"' "$state1")"
  else
    fail "round $name: n1's state.json never said \"healthy\": false after the flush (polled every 20 ms)"
  fi
  if [[ -n $status_rc ]]; then
    say "round $name: \`ipop-ipsecd status\` on n1 during the broken period (exit $status_rc):"
    sed 's/^/      status: /' "$r/status.out"
    grep -E '"healthy"|"ike_problems"|"last_action_reason"' "$r/health.false.json" 2>/dev/null | sed 's/^/      state.json as it first said false: /'
    if ((status_rc == 1)); then
      ok "round $name: status exits 1 (running, not healthy) during the broken period"
    else
      fail "round $name: status exits $status_rc during the broken period (expected 1: running, not healthy)"
    fi
  fi

  # Per ping: the first reply to a request sent after the flush, the first to one sent
  # after charon's restart (the repaired path), on the wire the first ESP packet of the
  # replying side after the restart, and the longest gap between replies.
  local first again gap f_first f_again f_wire wire
  for p in "${PINGS[@]}"; do
    read -r a b <<<"$p"
    read -r first again gap <<<"$(reply_times "$r/ping-$a-$b.log" "$t0" "$t1" "${t_start:-9e99}")"
    f_first=- f_again=- f_wire=-
    [[ $first != - ]] && f_first=$(elapsed "$t0" "$first")
    [[ $again != - ]] && f_again=$(elapsed "$t0" "$again")
    if [[ -n $t_start ]]; then
      wire=$(tcpdump -tt -n -r "$W/overlay.pcap" "esp and src $(addr_of "$b") and dst $(addr_of "$a")" 2>/dev/null |
        awk -v s="$t_start" '$1 > s { print $1; exit }')
      [[ -n $wire ]] && f_wire=$(elapsed "$t0" "$wire")
    fi
    say "FIGURE round $name, ping n$a -> n$b: flush -> n1's daemon logs the restart $([[ -n $t_log ]] && elapsed "$t0" "$t_log" || echo -) s, -> charon started $([[ -n $t_start ]] && elapsed "$t0" "$t_start" || echo -) s, -> healthy again $([[ -n $t_true ]] && elapsed "$t0" "$t_true" || echo -) s; first echo reply $f_first s, first reply after the repair (request sent after charon's restart) $f_again s, first ESP n$b -> n$a on the wire after the restart $f_wire s; longest gap between replies $(awk -v g="$gap" 'BEGIN { printf "%.2f", g }') s"
    [[ $f_wire == - ]] && fail "round $name: no ESP from n$b to n$a on the wire after charon's restart"
    if [[ $f_again == - ]]; then
      fail "round $name: n$b never answered n$a after the repair within $BOUND s"
    elif awk -v x="$f_again" -v b="$BOUND" 'BEGIN { exit !(x <= b) }'; then
      ok "round $name: n$b answers n$a again after the repair, $f_again s after the flush"
    else
      fail "round $name: n$b answered n$a only $f_again s after the flush (bound $BOUND s)"
    fi
    # The replies go on after the repair: one in the last half second of the pings.
    awk -F'[][]' -v t="$t_end" '/bytes from/ && $2 > t + 0.5 { f = 1 } END { exit !f }' "$r/ping-$a-$b.log" ||
      fail "round $name: n$b stopped answering n$a again after the repair"
  done
  for b in 2 3; do
    grep -qx "$(addr_of 1) $(addr_of "$b")" <<<"$(counted_sas 1)" && grep -qx "$(addr_of "$b") $(addr_of 1)" <<<"$(counted_sas 1)" &&
      ok "round $name: n1 holds keyed ESP SAs with n$b that carried packets both ways" ||
      fail "round $name: n1 holds no keyed ESP SA with packets counted each way with n$b: $(counted_sas 1 | tr '\n' ';')"
  done
}

round policy ip xfrm policy flush
round state ip xfrm state flush

# --- what the overlay carried ----------------------------------------------------------
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null
esp=$(tcpdump -n -r "$W/overlay.pcap" esp 2>/dev/null | wc -l)
filter="ip and src net $RANGE and dst net $RANGE and not esp and not (udp port 500 or udp port 4500)"
tcpdump -tt -n -r "$W/overlay.pcap" "$filter" 2>/dev/null >"$W/plain.txt"
t0p=$(cat "$W/round-policy/t0" 2>/dev/null || echo 0)
in_window=$(awk -v t="$t0p" '$1 >= t && $1 <= t + 0.5' "$W/plain.txt" | wc -l)
outside=$(awk -v t="$t0p" '$1 < t || $1 > t + 0.5' "$W/plain.txt" | wc -l)
say "capture on br0: $esp ESP packets; plaintext (non-ESP, non-IKE) between range addresses: $in_window within 0.5 s after the policy flush, $outside at any other time"
awk -v t="$t0p" '{ printf "      %+.4f s after the policy flush: %s\n", $1 - t, substr($0, index($0, " ") + 1) }' "$W/plain.txt" | head -10
((esp > 0)) && ok "the overlay carried ESP" || fail "no ESP on the overlay"
((outside == 0)) && ok "no plaintext between range addresses on the overlay outside the policy flush's instant (the state flush round included)" ||
  fail "$outside plaintext packet(s) between range addresses outside the policy flush's instant"
for i in $(seq 1 $N); do
  say "n$i: charon started $(wc -l <"$W/n$i/charon-starts.log") time(s); XFRM errors: $(in_ns "$i" awk '$2 > 0 { printf "%s=%s ", $1, $2 }' /proc/net/xfrm_stat); UDP: $(in_ns "$i" awk '/^Udp:/ { if (!n++) { split($0, h); next } for (k = 2; k <= NF; k++) if ($k > 0) printf "%s=%s ", h[k], $k }' /proc/net/snmp)"
done
finish
