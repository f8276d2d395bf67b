#!/usr/bin/env bash
# daemon.metrics_file with the real Prometheus tools: the real daemon and the real
# prometheus-node-exporter (textfile collector only, on 127.0.0.1 inside a network namespace
# made here), scraped over HTTP, its values checked against a scenario:
#   tap up                     -> ipop_ipsec_range_protected{range=...} 1, ike_restarts_total 1
#   host certificate renewed   -> certificate_expiry_timestamp_seconds = the new notAfter
#     with one near expiry        (5 days), a restart (2)
#   tap down and up (IPOP)     -> ike_restarts_total 2 -> 3
#   carrier lost and back      -> ipop_up 0 (range still 1, no restart), then ike_restarts_total 4
#     (IPOP's controller, ipopsec-tap-carrier, stops and starts again)
# and `promtool check metrics` accepts the file and the scraped families at every step.
# Usage: metrics_node_exporter.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
set -euo pipefail
source "$(dirname "$0")/../support/wait_for.sh"   # wait_for
BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
CARRIER=${2:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}/ipopsec-tap-carrier
CHECKS=0
fail() {
  echo "FAIL: $*" >&2
  [[ -n ${WORK:-} && -f $WORK/daemon.log ]] && { echo "---- daemon log (last 30 lines)" >&2; tail -n 30 "$WORK/daemon.log" >&2; }
  [[ -n ${WORK:-} && -f $WORK/exporter.log ]] && { echo "---- node_exporter log (last 10 lines)" >&2; tail -n 10 "$WORK/exporter.log" >&2; }
  exit 1
}
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }
[[ $(id -u) -eq 0 ]] || fail "needs root (network namespace, XFRM policies)"
[[ -x $CARRIER ]] || fail "no $CARRIER: build the ipopsec-tap-carrier target"
for t in promtool prometheus-node-exporter curl openssl ip; do
  command -v "$t" >/dev/null || fail "needed tool '$t' is missing: run scripts/setup --test"
done

NS=ipopsec-prom-$$
WORK=$(mktemp -d /tmp/ipopsec-prom.XXXXXX)
DAEMON_PID= EXPORTER_PID= CARRIER_PID=
cleanup() {
  local rc=$?
  set +e
  for pid in $DAEMON_PID $EXPORTER_PID $CARRIER_PID; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

# --- certificates: a CA, and a host certificate valid $1 days --------------------------------
CERTS=$WORK/certs
mkdir -p "$CERTS" "$WORK/pki" "$WORK/textfile"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=metrics test CA" \
  -keyout "$WORK/pki/ca-key.pem" -out "$CERTS/cacert.pem" 2>/dev/null
host_cert() {  # DAYS OUT-FILE
  openssl req -newkey rsa:2048 -nodes -subj "/CN=node16" -addext "subjectAltName=IP:10.254.0.16" \
    -keyout "$WORK/pki/key.pem" -out "$WORK/pki/host.csr" 2>/dev/null
  openssl x509 -req -in "$WORK/pki/host.csr" -CA "$CERTS/cacert.pem" -CAkey "$WORK/pki/ca-key.pem" \
    -CAcreateserial -days "$1" -copy_extensions copy -out "$2" 2>/dev/null
}
not_after() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
host_cert 400 "$CERTS/host-cert.pem"
install -m 0600 "$WORK/pki/key.pem" "$CERTS/host-key.pem"

cat >"$WORK/restart.sh" <<EOF
#!/bin/sh
echo restarted >>"$WORK/restarts.log"
EOF
chmod 755 "$WORK/restart.sh"
PROM=$WORK/textfile/ipop-ipsec.prom
cat >"$WORK/ipop-ipsecd.yaml" <<EOF
ipop:
  interface: ipop
protect:
  ranges: auto
ike:
  control: command
  restart_command: ["$WORK/restart.sh"]
  quiet_period: 300ms
  min_interval: 1s
racoon:
  config: $WORK/racoon.conf
  spd_file: $WORK/ipsec-tools.conf
  certificate_dir: $CERTS
daemon:
  state_dir: $WORK/run
  remember_dir: ""
  metrics_file: $PROM
EOF

# --- the daemon and node_exporter in the namespace --------------------------------------------
# Started with `ip netns exec` directly (it execs the program), not through the in_ns
# function: then $! is the program's own pid, which cleanup stops and waits for (through a
# function, $! would be a subshell's, and the program would outlive the test).
ip netns exec "$NS" "$BIN" --config "$WORK/ipop-ipsecd.yaml" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
ip netns exec "$NS" prometheus-node-exporter --web.listen-address=127.0.0.1:9100 --collector.disable-defaults \
  --collector.textfile --collector.textfile.directory="$WORK/textfile" >"$WORK/exporter.log" 2>&1 &
EXPORTER_PID=$!

scrape() { in_ns curl -sf --max-time 2 http://127.0.0.1:9100/metrics; }
# value METRIC-WITH-LABELS: its value in a fresh scrape ("" when absent).
value() { scrape | awk -v m="$1" '$1 == m { print $2 }'; }
# is METRIC NUMBER: present with that value (node_exporter re-renders values: 1.83e+09).
is() { scrape | awk -v m="$1" -v want="$2" '$1 == m { found = 1; same = ($2 + 0 == want + 0) } END { exit !(found && same) }'; }
WAIT_FOR_WATCH+=(EXPORTER_PID "node_exporter")
wait_for_detail() { echo "last scrape: $(scrape | grep '^ipop_ipsec_' | tr '\n' ' ')"; }
promtool_ok() {  # file or scraped text on stdin: promtool must print nothing and exit 0
  local out rc=0
  out=$(promtool check metrics 2>&1) || rc=$?
  [[ $rc -eq 0 && -z $out ]] || { echo "promtool check metrics (exit $rc): $out"; return 1; }
}
check_promtool() {
  promtool_ok <"$PROM" || fail "promtool check metrics rejects $PROM"
  scrape | grep -E '^(# (HELP|TYPE) )?ipop_ipsec_' | promtool_ok || fail "promtool check metrics rejects the scraped ipop_ipsec_ families"
  ok "promtool check metrics accepts the file and the scraped families ($1)"
}

RANGE='ipop_ipsec_range_protected{range="10.254.0.0/16"}'
wait_for "node_exporter serves the textfile collector's metrics" 20 is node_textfile_scrape_error 0
wait_for "the file, scraped: IPOP not up yet" 20 is ipop_ipsec_ipop_up 0
check_promtool "before the tap"

# --- tap up --------------------------------------------------------------------------------------
ip -n "$NS" tuntap add dev ipop mode tap
CARRIER_PID=$(in_ns "$CARRIER" ipop)  # IPOP's controller holds the tap open: carrier
ip -n "$NS" link set ipop up
ip -n "$NS" addr add 10.254.0.16/16 dev ipop
wait_for "tap up: $RANGE is 1" 20 is "$RANGE" 1
wait_for "tap up: ipop_ipsec_ike_restarts_total is 1" 20 is ipop_ipsec_ike_restarts_total 1
[[ $(wc -l <"$WORK/restarts.log") -eq 1 ]] || fail "restart command ran $(wc -l <"$WORK/restarts.log") times, expected 1"
ok "the restart command really ran once"
is ipop_ipsec_ipop_up 1 || fail "ipop_ipsec_ipop_up is '$(value ipop_ipsec_ipop_up)' with the tap up"
is ipop_ipsec_policies_installed 4 || fail "ipop_ipsec_policies_installed is '$(value ipop_ipsec_policies_installed)', expected 4"
[[ $(in_ns ip xfrm policy | grep -c 'dst 10.254.0.0/16') -ge 4 ]] || fail "the kernel does not hold the range's policies"
ok "ipop_up 1, policies_installed 4, as the kernel holds"
expiry=$(not_after "$CERTS/host-cert.pem")
is ipop_ipsec_certificate_expiry_timestamp_seconds "$expiry" ||
  fail "certificate_expiry_timestamp_seconds is '$(value ipop_ipsec_certificate_expiry_timestamp_seconds)', the cert's notAfter is $expiry"
ok "certificate_expiry_timestamp_seconds is the certificate's notAfter ($expiry)"
reaction=$(value ipop_ipsec_last_change_reaction_seconds)
awk -v r="$reaction" 'BEGIN { exit !(r != "" && r >= 0 && r < 1) }' || fail "last_change_reaction_seconds is '$reaction'"
ok "last_change_reaction_seconds is $reaction"
check_promtool "tap up"

# --- a renewed host certificate, 5 days from expiry ----------------------------------------------
host_cert 5 "$WORK/pki/new-cert.pem"
install -m 0600 "$WORK/pki/key.pem" "$CERTS/.host-key.new"
mv "$CERTS/.host-key.new" "$CERTS/host-key.pem"
mv "$WORK/pki/new-cert.pem" "$CERTS/host-cert.pem"
near=$(not_after "$CERTS/host-cert.pem")
((near < $(date +%s) + 6 * 86400)) || fail "the test's new certificate is not near expiry"
wait_for "certificate_expiry_timestamp_seconds is the renewed certificate's notAfter ($near)" 20 \
  is ipop_ipsec_certificate_expiry_timestamp_seconds "$near"
wait_for "the certificate change restarted IKE: ipop_ipsec_ike_restarts_total is 2" 20 is ipop_ipsec_ike_restarts_total 2
grep -q 'expires' "$WORK/daemon.log" || fail "the daemon did not warn about the near expiry"
ok "the daemon warned about the near expiry"
check_promtool "certificate near expiry"

# --- IPOP restarts: the tap goes down and comes back --------------------------------------------
ip -n "$NS" link set ipop down
wait_for "tap down: ipop_ipsec_ipop_up is 0" 20 is ipop_ipsec_ipop_up 0
is "$RANGE" 1 || fail "the range must stay protected while the tap is down (fail closed)"
ok "the range stays protected while the tap is down"
ip -n "$NS" link set ipop up
wait_for "tap up again: ipop_ipsec_ike_restarts_total is 3" 20 is ipop_ipsec_ike_restarts_total 3
is ipop_ipsec_ike_restart_failures_total 0 || fail "ipop_ipsec_ike_restart_failures_total is not 0"
[[ $(wc -l <"$WORK/restarts.log") -eq 3 ]] || fail "restart command ran $(wc -l <"$WORK/restarts.log") times, expected 3"
ok "three restarts ran, none failed"
check_promtool "after the IKE restart"

# --- IPOP's controller stops: the tap stays up and addressed, without carrier -------------------
kill "$CARRIER_PID"
wait_for "carrier lost: ipop_ipsec_ipop_up is 0" 20 is ipop_ipsec_ipop_up 0
CARRIER_PID=
is "$RANGE" 1 || fail "the range must stay protected while the tap has no carrier (fail closed)"
is ipop_ipsec_ike_restarts_total 3 || fail "the IKE daemon was restarted for a tap without carrier"
ok "without carrier: the range stays protected, no restart"
CARRIER_PID=$(in_ns "$CARRIER" ipop)
wait_for "carrier back: ipop_ipsec_ike_restarts_total is 4" 20 is ipop_ipsec_ike_restarts_total 4
is ipop_ipsec_ipop_up 1 || fail "ipop_ipsec_ipop_up is '$(value ipop_ipsec_ipop_up)' with carrier back"
check_promtool "carrier back"
echo "---- $PROM:"
sed 's/^/    /' "$PROM"
echo "PASS: metrics_node_exporter.sh: $CHECKS checks"
