#!/bin/bash
# The UML guest's init for tests/system/uml_mesh.sh: an IPOP GroupVPN of several nodes
# (network namespaces) on one simulated overlay segment (bridge br0; each node's port is
# its tap `ipop`), each with its own ipop-ipsecd (backend strongswan) and charon-systemd.
#   guest.sh WORK_DIR IPOP_IPSECD SOURCE_DIR
# Phases, in order: fail-closed before IKE, mesh n1..n3 (ESP, TCP/UDP, SAs, status), late
# joiner n4, intruder n9 (another CA), n3 re-addressed (DHCP) and moved out of the range,
# and last the revocation of n4 (issue #14; see revocation_phase and uml_mesh.sh's header),
# then the capture's verdict (ESP seen, no plaintext between range addresses).
# Writes only inside WORK_DIR (the guest sees the host's / through hostfs) and its own
# tmpfs /run and /tmp. Writes WORK_DIR/result (PASS or FAIL) and powers the guest off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin   # init gets no PATH
W=$1 BIN=$2 SRC=$3
UML=$SRC/tests/system/uml
source "$SRC/tests/support/charon_conf.sh"   # charon_test_conf
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
# The node's certificate directory is a copy of CERTDIR on the guest's tmpfs, as on a real
# node's disk: inotify sees no change in a hostfs directory (UML 6.1's hostfs makes a new
# inode at every lookup), so the daemon would see a new file only at its 5-minute resync.
start_node() {
  local i=$1 d=$W/n$1 run=/run/mesh/n$1 crl= certs=/run/mesh/n$1/certs
  mkdir -p "$certs"
  cp -p "$2"/*.pem "$certs/"
  # The GroupVPN CA's CRL (empty until the revocation phase), where the host put one.
  [[ -e $certs/crl.pem ]] && crl='  crl: crl.pem'
  mkdir -p "$d/swanctl/conf.d" "$d/swanctl/x509ca" "$d/swanctl/x509" "$d/swanctl/private" "$run/state"
  chmod 700 "$d/swanctl/private"
  ip netns add "$(ns "$i")"
  in_ns "$i" ip link set lo up
  echo 'include conf.d/*.conf' >"$d/swanctl/swanctl.conf"
  charon_test_conf "$run/charon.vici" "$d/charon.log" node 'retransmit_timeout = 2.0' 'retransmit_tries = 3' \
    'log.time_format = %T' 'log.ike_name = yes' 'log.knl = 1' >"$d/strongswan.conf"
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
$crl
strongswan:
  swanctl_dir: $d/swanctl
  config: $d/swanctl/conf.d/ipop-ipsec.conf
  load_command: [/usr/bin/env, SWANCTL_DIR=$d/swanctl, /usr/sbin/swanctl, --load-all, --noprompt, --uri, "unix://$run/charon.vici"]
  load_creds_command: [/usr/bin/env, SWANCTL_DIR=$d/swanctl, /usr/sbin/swanctl, --load-creds, --noprompt, --uri, "unix://$run/charon.vici"]
  cut_command: [$BIN, cut-revoked, --uri, "unix://$run/charon.vici"]
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
# Until every server listens (perl starts slowly under UML: a fixed pause lost the race).
for j in $(seq 1 $N); do
  for ((k = 0; k < 100; k++)); do
    [[ -n $(in_ns "$j" ss -Hltn 'sport = :5001') && -n $(in_ns "$j" ss -Hlun 'sport = :5002') ]] && break
    sleep 0.1
  done
done
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
  grep -q 'start_action = trap' "$W/n3/swanctl/conf.d/ipop-ipsec.conf" || break
  sleep 0.1
done
sleep 1
if ping_ok 1 "${CUR[3]}" || ping_ok 3 "${CUR[1]}" || ping_ok 1 10.99.0.33; then
  fail "n3, moved out of the range, is still reachable"
else
  ok "n3 moved out of the range (10.99.0.33): no longer reachable from n1"
fi
conf3=$W/n3/swanctl/conf.d/ipop-ipsec.conf
if grep -q 'start_action = trap' "$conf3"; then
  fail "n3's swanctl configuration still traps for $RANGE"
elif grep -q "local_addrs = $RANGE\$" "$conf3" && grep -q 'start_action = none' "$conf3"; then
  ok "n3's swanctl configuration keeps $RANGE as a responder-only connection (local_addrs = $RANGE, no trap)"
else
  fail "n3's swanctl configuration has no responder-only connection for $RANGE: $(grep -E 'local_addrs|start_action' "$conf3" | tr -s ' ' | paste -sd' ')"
fi
in_ns 3 ip xfrm policy | grep -q "priority $PRIO" && ok "n3 keeps its fail-closed policies for $RANGE"

# --- revocation (issue #14): n4 is revoked, the new CRL lands on every node ------------
# n1..n4 have run with `racoon.crl: crl.pem` from the start: an empty CRL of the GroupVPN
# CA (`pki crl`, no entry) made by the host, so every phase above also shows that a CRL
# without entries changes nothing for traffic. Here n3 comes back into the range (four
# nodes), the CA revokes n4 (`pki revoke`, `pki crl`), and the new crl.pem lands on n1..n4
# at T0 (a temporary file, then `mv`, as an operator or Ansible would). Each daemon sees it
# by inotify; on n1..n3 it loads the CRL into the running charon and cuts only the SAs with
# n4 (the SAs among the good nodes stay); n4's daemon refuses a CRL that revokes n4 itself.
# Traffic runs throughout: ping every 0.2 s from n4 to each peer and back, every 0.5 s
# among n1..n3. The measured times and counts are printed as TIME and FIGURE lines.
revocation_phase() {
  local ca=$W/pki/groupvpn a4 j i t0 serial bg=() ok_all line ts
  local -A starts0 clog0 cut gone
  if [[ ! -s /run/mesh/n4/certs/crl.pem || ! -s $ca/crl.pem ]]; then
    fail "revocation: the host made no CRL with 'ipop-ipsecd pki crl' (see uml_mesh.sh's output): phase not run"
    return
  fi
  say "== revocation: n3 back in the range, then n4 is revoked and the new CRL lands on n1..n4"
  in_ns 3 ip addr del 10.99.0.33/16 dev ipop
  CUR[3]=$(addr_of 3)
  in_ns 3 ip addr add "${CUR[3]}/16" dev ipop
  local t_back
  t_back=$(now)
  if wait_mesh 90 1 2 3 4; then
    say "TIME n3 back in the range (${CUR[3]}) -> all 12 directed pairs of n1..n4 over ESP: $(elapsed "$t_back" "$(now)") s"
  else
    fail "revocation: the mesh n1..n4 did not converge within 90 s after n3 came back into the range"
    return
  fi
  ok_all=1
  for i in 1 2 3 4; do
    if [[ -s $W/n$i/swanctl/x509crl/ipop-ipsec.crl.pem ]] &&
      in_ns "$i" swanctl --list-certs --type x509_crl --uri "unix:///run/mesh/n$i/charon.vici" 2>&1 |
      grep -q '^List of X.509 CRLs'; then :; else
      fail "n$i: charon does not hold the GroupVPN CA's (empty) CRL"
      ok_all=0
    fi
  done
  ((ok_all)) && ok "n1..n4 run with the GroupVPN CA's empty CRL loaded in charon, and every pair reaches each other over ESP"

  a4=${CUR[4]}
  for j in 1 2 3; do
    ip netns exec n4 ping -D -O -i 0.2 "${CUR[$j]}" >"$W/revoke-ping-4-$j.log" 2>&1 &
    bg+=($!)
    ip netns exec "n$j" ping -D -O -i 0.2 "$a4" >"$W/revoke-ping-$j-4.log" 2>&1 &
    bg+=($!)
    for i in 1 2 3; do # the good nodes among themselves, for the time until their ESP is back
      [[ $i == "$j" ]] && continue
      ip netns exec "n$j" ping -D -O -i 0.5 "${CUR[$i]}" >"$W/revoke-ping-$j-$i.log" 2>&1 &
      bg+=($!)
    done
  done
  local deadline=$((SECONDS + 15)) pending
  while :; do
    pending=0
    for j in 1 2 3; do
      grep -q 'bytes from' "$W/revoke-ping-4-$j.log" || pending=1
      grep -q 'bytes from' "$W/revoke-ping-$j-4.log" || pending=1
    done
    ((pending == 0 || SECONDS >= deadline)) && break
    sleep 0.2
  done
  ((pending == 0)) || fail "revocation: before the CRL, the pings between n4 and n1..n3 got no answer"

  # The CA revokes n4 and makes the new CRL (the CA's work, before the landing).
  if ! "$BIN" pki revoke --ca-dir "$ca" --cert "$W/pki/n4/host-cert.pem" --reason keyCompromise >"$W/revoke.log" 2>&1 ||
    ! "$BIN" pki crl --ca-dir "$ca" --out "$ca/crl-revoked.pem" --days 2 >>"$W/revoke.log" 2>&1; then
    fail "revocation: pki revoke / pki crl failed: $(tail -2 "$W/revoke.log")"
    kill "${bg[@]}" 2>/dev/null
    wait "${bg[@]}" 2>/dev/null
    return
  fi
  serial=$(openssl x509 -noout -serial -in "$W/pki/n4/host-cert.pem" | cut -d= -f2)
  sed 's/^/      pki: /' "$W/revoke.log"
  openssl crl -noout -text -in "$ca/crl-revoked.pem" 2>/dev/null | grep -q "Serial Number: $serial" &&
    ok "the new CRL lists n4's serial $serial" || fail "the new CRL does not list n4's serial $serial"
  for i in 1 2 3 4; do
    starts0[$i]=$(wc -l <"$W/n$i/charon-starts.log")
    clog0[$i]=$(wc -l <"$W/n$i/charon.log")
  done
  # T0: the CRL lands, as an operator or Ansible would copy it: a temporary file, then mv.
  t0=$(now)
  for i in 1 2 3 4; do
    cp "$ca/crl-revoked.pem" "/run/mesh/n$i/certs/.crl.pem.new"
    mv -f "/run/mesh/n$i/certs/.crl.pem.new" "/run/mesh/n$i/certs/crl.pem"
  done
  say "T0: the new CRL landed on n1..n4 ($(elapsed "$t0" "$(now)") s for the four copies)"

  # Each good node: its daemon loads the CRL into the running charon and cuts the SAs with
  # n4 (strongswan.cut_command: `ipop-ipsecd cut-revoked`); its log line naming the peer cut
  # is written when the terminate is done (the cut-off). Its charon is not restarted, and no
  # SA with n4 is left.
  deadline=$((SECONDS + 40))
  for j in 1 2 3; do
    while :; do
      line=$(grep -a "the new CRL revokes serial $serial: cut " "$W/n$j/daemon.log" | grep -F "at $a4 " | head -1 || true)
      if [[ -n $line ]] && ! keyed_sas "$j" | grep -q -w "$a4"; then
        gone[$j]=$(now)
        ts=$(awk '{ print $1 " " $2 }' <<<"$line")
        cut[$j]=$(date -d "$ts" +%s.%N)
        break
      fi
      ((SECONDS >= deadline)) && break
      sleep 0.1
    done
    if [[ -n ${cut[$j]:-} ]]; then
      say "n$j: n4 cut $(elapsed "$t0" "${cut[$j]}") s after T0 (${line#* * * }); no SA with n4 seen at +$(elapsed "$t0" "${gone[$j]}") s"
    else
      fail "n$j: within 40 s of the CRL, its daemon logged no cut of n4 or an SA with n4 remains: $(grep -a -E 'action=(cut|restart)' "$W/n$j/daemon.log" | tail -2 | tr '\n' ' ') $(keyed_sas "$j" | grep -w "$a4" | head -2 | tr '\n' ' ')"
    fi
    if (($(wc -l <"$W/n$j/charon-starts.log") == starts0[$j])); then
      ok "n$j's charon was not restarted for the revocation"
    else
      fail "n$j's charon was restarted after the CRL landed: $(grep -a 'restarting' "$W/n$j/daemon.log" | tail -1)"
    fi
  done
  # n4's daemon refuses the CRL that revokes n4 itself, loudly, and keeps charon as it is.
  deadline=$((SECONDS + 15))
  until grep -q 'is REVOKED by crl.pem' "$W/n4/daemon.log" || ((SECONDS >= deadline)); do sleep 0.1; done
  if line=$(grep -m1 'is REVOKED by crl.pem' "$W/n4/daemon.log"); then
    ok "n4's daemon refuses the CRL that revokes n4 itself:"
    echo "      ${line:0:300}"
  else
    fail "n4's daemon does not say that its own certificate is revoked: $(tail -2 "$W/n4/daemon.log")"
  fi

  # The good nodes still reach each other over ESP (their SAs were never cut).
  if wait_mesh 60 1 2 3; then
    ok "n1..n3 reach each other over ESP after the revocation (ping and SAs, $(elapsed "$t0" "$(now)") s after T0 with the test's one-pair-at-a-time probe)"
  else
    fail "n1..n3 do not reach each other over ESP within 60 s of the CRL landing"
  fi
  # The good nodes' charon refuses n4's certificate (their pings to n4 and n4's to them
  # make new IKE_SAs be tried).
  for j in 1 2 3; do
    deadline=$((SECONDS + 45))
    until tail -n +$((clog0[$j] + 1)) "$W/n$j/charon.log" | grep -q 'certificate was revoked' || ((SECONDS >= deadline)); do
      sleep 0.2
    done
    if line=$(tail -n +$((clog0[$j] + 1)) "$W/n$j/charon.log" | grep -m1 'certificate was revoked'); then
      ok "n$j's charon refuses n4's revoked certificate: ${line:0:160}"
    else
      fail "n$j's charon logged no refusal of n4's revoked certificate within 45 s of the mesh coming back"
    fi
  done
  # n4 reaches no peer (ping, UDP, TCP), and no peer reaches n4: all probes in parallel.
  local probes=() what=()
  for j in 1 2 3; do
    ip netns exec n4 ping -c1 -W2 "${CUR[$j]}" >/dev/null 2>&1 &
    probes+=($!) what+=("ping n4->n$j")
    ip netns exec n4 perl "$UML/echo.pl" udp-client "${CUR[$j]}" 5002 "revoked udp n4->n$j" >/dev/null 2>&1 &
    probes+=($!) what+=("UDP echo n4->n$j")
    ip netns exec n4 perl "$UML/echo.pl" tcp-client "${CUR[$j]}" 5001 "revoked tcp n4->n$j" >/dev/null 2>&1 &
    probes+=($!) what+=("TCP echo n4->n$j")
    ip netns exec "n$j" ping -c1 -W2 "$a4" >/dev/null 2>&1 &
    probes+=($!) what+=("ping n$j->n4")
  done
  ok_all=1
  for k in "${!probes[@]}"; do
    if wait "${probes[$k]}"; then
      fail "revocation: ${what[$k]} got through after the CRL"
      ok_all=0
    fi
  done
  ((ok_all)) && ok "n4 reaches no peer and no peer reaches n4 (ping, UDP and TCP echo all fail)"
  local t_end
  t_end=$(now)
  kill "${bg[@]}" 2>/dev/null
  wait "${bg[@]}" 2>/dev/null
  for j in 1 2 3; do
    keyed_sas "$j" | grep -q -w "$a4" && fail "n$j holds an SA with n4 at the end of the revocation phase"
  done
  # n4 is left with no SA: the good nodes' DELETEs (their charon stopping) and AUTH_FAILEDs
  # removed every one it had (bounded: a refused IKE_AUTH may be in flight).
  # (Only SAs with the peers' addresses count: one with n3's former address 10.254.0.33,
  # left from the DHCP phase, waits for DPD, since no DELETE can reach an address gone.)
  local peers=(-e "${CUR[1]}" -e "${CUR[2]}" -e "${CUR[3]}")
  deadline=$((SECONDS + 15))
  until [[ -z $(keyed_sas 4 | grep -w -F "${peers[@]}") ]] || ((SECONDS >= deadline)); do sleep 0.3; done
  if [[ -z $(keyed_sas 4 | grep -w -F "${peers[@]}") ]]; then
    ok "n4 holds no ESP SA with n1, n2 or n3$([[ -n $(keyed_sas 4) ]] && echo " (other: $(keyed_sas 4 | tr '\n' ';'))")"
  else
    fail "n4 still holds ESP SAs with its peers: $(keyed_sas 4 | grep -w -F "${peers[@]}" | tr '\n' ';')"
  fi
  if (($(wc -l <"$W/n4/charon-starts.log") == starts0[4])); then
    ok "n4's charon was not restarted onto the CRL that revokes n4"
  else
    fail "n4's charon was restarted after the CRL that revokes n4"
  fi

  # What the overlay carried with n4 (the capture is written packet by packet), per good
  # node n_j and direction, after T0:
  #   - n_j -> n4: none later than 1 s after n_j's cut-off (a good node never encrypts for
  #     the revoked node again);
  #   - n4 -> n_j later than 1 s after the cut-off: "strays". IKEv2 lets a responder install
  #     its CHILD_SA when it sends IKE_AUTH, before the initiator has checked its
  #     certificate: when n_j initiates to n4 (its own pings), n4 holds an outbound SA until
  #     n_j's AUTH_FAILED arrives, and a ping of n4's may leave on it. n_j never installed
  #     the other half (asserted from its charon log), so the kernel drops them. A few are
  #     tolerated and reported; a stale SA that n4 kept (a lost DELETE) would send 5 a second.
  #   - the figure: the last ESP packet either way, every packet counted (strays too).
  local max=0 x lo li ns na la
  for j in 1 2 3; do
    [[ -n ${cut[$j]:-} ]] || continue # failed above: no cut-off to measure from
    # (a here-string: the guest has no /dev/fd for a process substitution)
    read -r lo li ns na la <<<"$(tcpdump -tt -n -r "$W/overlay.pcap" "esp and host $a4 and host ${CUR[$j]}" 2>/dev/null |
      awk -v t0="$t0" -v c="${cut[$j]}" -v a4="$a4" '
        $1 < t0 { next }
        { la = $1 }
        $3 == a4 && $1 <= c + 1 { li = $1 }
        $3 == a4 && $1 > c + 1 { ns++ }
        $3 != a4 { lo = $1; if ($1 > c + 1) na++ }
        END { printf "%s %s %d %d %s\n", (lo == "" ? "-" : lo), (li == "" ? "-" : li), ns, na, (la == "" ? "-" : la) }')"
    if [[ $la == - ]]; then
      fail "no ESP between n4 and n$j after T0 in the capture: the traffic up to the cut-off is missing"
      continue
    fi
    x=$(elapsed "$t0" "$la")
    max=$(awk -v a="$max" -v b="$x" 'BEGIN { print (b > a) ? b : a }')
    say "n4<->n$j: last ESP packet $x s after T0 (n$j's cut-off at $(elapsed "$t0" "${cut[$j]}") s); later than cut-off + 1 s: $na ESP n$j->n4, $ns ESP n4->n$j"
    if ((na == 0)); then
      ok "n$j sent no ESP to n4 after its cut-off ($(elapsed "${cut[$j]}" "$t_end") s of traffic to n4 observed)"
    else
      fail "n$j sent $na ESP packet(s) to n4 later than 1 s after its cut-off:"
      tcpdump -tt -n -r "$W/overlay.pcap" "esp and src ${CUR[$j]} and dst $a4" 2>/dev/null |
        awk -v c="${cut[$j]}" '$1 > c + 1' | head -5 | sed 's/^/      /'
    fi
    if tail -n +$((clog0[$j] + 1)) "$W/n$j/charon.log" | grep 'CHILD_SA .* established' | grep -q -F "$a4/32"; then
      fail "n$j's charon established a CHILD_SA with n4 after the CRL landed:"
      tail -n +$((clog0[$j] + 1)) "$W/n$j/charon.log" | grep 'CHILD_SA .* established' | grep -F "$a4/32" | head -2 | sed 's/^/      /'
    elif ((ns == 0)); then
      ok "n4 sent no ESP to n$j after n$j's cut-off, and n$j's charon set up no CHILD_SA with n4"
    elif ((ns <= 10)); then
      ok "n4 sent $ns stray ESP packet(s) to n$j after its cut-off, dropped: n$j's charon set up no CHILD_SA with n4 (n4's half of a refused IKE_AUTH)"
      tcpdump -tt -n -r "$W/overlay.pcap" "esp and src $a4 and dst ${CUR[$j]}" 2>/dev/null |
        awk -v c="${cut[$j]}" '$1 > c + 1' | head -3 | while read -r ts rest; do
        echo "      $(date -d "@$ts" +%T.%6N) $rest"
      done
      grep -h -E 'IKE_AUTH response .* \[ IDr CERT AUTH|AUTH_FAILED' "$W/n4/charon.log" | tail -4 | sed 's/^/      n4 charon: /'
    else
      fail "n4 kept sending ESP to n$j after its cut-off: $ns packets (a stale SA on n4?)"
      tcpdump -tt -n -r "$W/overlay.pcap" "esp and src $a4 and dst ${CUR[$j]}" 2>/dev/null |
        awk -v c="${cut[$j]}" '$1 > c + 1' | head -5 | sed 's/^/      /'
    fi
  done
  say "TIME CRL landing -> last ESP packet with the revoked node: $max s (max over n1..n3; traffic between n4 and every peer observed until $(elapsed "$t0" "$t_end") s)"
  local strays=0
  for j in 1 2 3; do
    [[ -n ${cut[$j]:-} ]] || continue
    x=$(tcpdump -tt -n -r "$W/overlay.pcap" "esp and src $a4 and dst ${CUR[$j]}" 2>/dev/null | awk -v c="${cut[$j]}" '$1 > c + 1' | wc -l)
    strays=$((strays + x))
  done
  say "FIGURE revocation: CRL landing -> last ESP packet between the revoked node and any peer (every packet counted): $max s; of them ESP n4 -> a peer later than that peer's cut-off + 1 s (IKEv2 responder artefact, bound 10 per peer): $strays"
  # The good nodes among themselves: their SAs are never cut, so not one ping between them
  # may be lost (pings every 0.5 s each way; ping -O names every request without an answer
  # by the next send; a late answer still counts as answered).
  local a b lost=0 sent=0 l s
  for a in 1 2 3; do
    for b in 1 2 3; do
      [[ $a == "$b" ]] && continue
      read -r s l <<<"$(awk -v t0="$t0" -v t1="$t_end" '
          { ts = substr($1, 2, length($1) - 2) + 0 }
          /bytes from/ { match($0, /icmp_seq=[0-9]+/); got[substr($0, RSTART + 9, RLENGTH - 9)] = 1 }
          /no answer yet/ && ts >= t0 && ts <= t1 { match($0, /icmp_seq=[0-9]+/); miss[substr($0, RSTART + 9, RLENGTH - 9)] = 1 }
          /bytes from/ && ts >= t0 && ts <= t1 { n++ }
          END { m = 0; for (q in miss) if (!(q in got)) m++; printf "%d %d\n", n + m, m }' "$W/revoke-ping-$a-$b.log")"
      sent=$((sent + s))
      lost=$((lost + l))
      ((l == 0)) || say "n$a -> n$b: $l of $s pings during the revocation unanswered"
    done
  done
  say "FIGURE revocation: lost pings between good nodes (n1..n3, 6 directions, every 0.5 s) from the CRL landing to the end of the phase ($(elapsed "$t0" "$t_end") s): $lost of $sent"
  ((sent > 0)) || fail "no ping between good nodes recorded during the revocation"
  ((lost == 0)) && ok "not one ping between good nodes lost during the revocation ($sent answered)" ||
    fail "$lost ping(s) between good nodes lost during the revocation"
  if awk -v m="$max" 'BEGIN { exit !(m <= 15) }'; then
    ok "ESP with the revoked node ended on every peer within 15 s of the CRL landing ($max s)"
  else
    fail "ESP with the revoked node lasted $max s after the CRL landed (bound: 15 s)"
  fi
  x=$(tcpdump -n -r "$W/overlay.pcap" "host $a4 and (icmp or tcp or (udp and not port 500 and not port 4500))" 2>/dev/null | wc -l)
  ((x == 0)) && ok "no plaintext to or from n4 on the overlay, before or after the revocation (fail closed)" ||
    fail "$x plaintext packets to or from n4 on the overlay"
}
revocation_phase

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
