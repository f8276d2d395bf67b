#!/usr/bin/env bash
# A new CRL with the strongSwan backend, on this machine's kernel: the real daemon
# (ike.backend strongswan, control command) and a real charon-systemd in a network namespace
# made here, racoon.crl naming the CA's CRL; IPOP's "tap" is a veth (carrier) to a second
# namespace where a peer (172.31.0.20, a plain charon-systemd) answers IKE.
#   - the node's trap sets up an IKE_SA with the peer (tests/support/peer_charon.sh: a responder
#     with no CHILD_SA config, so both sides keep the IKE_SA on a kernel without ESP);
#   - a routine refresh (`pki crl` again: a new CRL number and next update, the same revoked
#     serials) is loaded into the running charon (strongswan.load_creds_command, swanctl
#     --load-creds: no connection is reloaded; strongSwan 6's --load-all closes IKE_SAs without a
#     CHILD_SA, which every IKE_SA on this kernel is): charon's PID is unchanged, `swanctl
#     --list-certs --type x509_crl` shows the new CRL number, the IKE_SA with the peer is the
#     same one (unique id) and established on both sides, the daemon logs why ('loading the new
#     CRL (revoked set unchanged)') and restarts nothing;
#   - ipop-ipsecd is restarted (charon runs on): state.json holds the CRL charon loaded
#     (ike_crl), the new daemon adopts charon and restarts nothing, and judges the next CRL
#     against that one (a revocation is loaded and cut, not a restart);
#   - a CRL that revokes the peer's certificate is loaded the same way, then the daemon runs
#     strongswan.cut_command (`ipop-ipsecd cut-revoked`): the IKE_SA with the peer ends on both
#     sides, charon's PID is unchanged, and the log names the serial and the peer cut; the
#     peer's next attempt is refused (its certificate is revoked).
# (ESP needs UML: tests/system/uml_mesh.sh's revocation phase.)
# Usage: strongswan_crl_refresh.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
set -euo pipefail
source "$(dirname "$0")/../support/peer_charon.sh"
source "$(dirname "$0")/../support/wait_for.sh"   # wait_for
BIN=$(realpath "${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}")
CHECKS=0
NS='' PNS='' WORK='' DAEMON_PID=''
RUN=/run/ipopsec-crl-$$
fail() {
  echo "FAIL: $*" >&2
  if [[ -n $WORK ]]; then
    [[ -f $WORK/node/daemon.log ]] && { echo "---- daemon log (last 25 lines)" >&2; tail -n 25 "$WORK/node/daemon.log" >&2; }
    [[ -f $WORK/node/charon.log ]] && { echo "---- charon log (last 15)" >&2; tail -n 15 "$WORK/node/charon.log" >&2; }
  fi
  exit 1
}
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }
[[ $(id -u) -eq 0 ]] || fail "needs root (network namespace, XFRM policies)"
for t in /usr/sbin/charon-systemd /usr/sbin/swanctl; do
  [[ -x $t ]] || fail "needed tool $t is missing: run scripts/setup --test"
done

cleanup() {
  local rc=$? pid i
  set +e
  for pid in $DAEMON_PID $PEER_PID; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n $WORK && -s $WORK/node/charon.pid ]]; then
    pid=$(<"$WORK/node/charon.pid")
    kill "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  [[ -n $NS ]] && ip netns del "$NS" 2>/dev/null
  [[ -n $PNS ]] && ip netns del "$PNS" 2>/dev/null
  rm -rf "$RUN"
  [[ -n $WORK ]] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d /tmp/ipopsec-crl.XXXXXX)
D=$WORK/node
mkdir -p "$D/swanctl/conf.d" "$RUN"

# --- certificates: this node, a peer (revoked later), the CA's CRL (nothing revoked yet) -----
pki() { "$BIN" pki "$@" >>"$WORK/pki.log" 2>&1 || fail "ipop-ipsecd pki $*: $(tail -1 "$WORK/pki.log")"; }
pki init-ca --dir "$WORK/ca" --name "GroupVPN CA" --days 2 --key ec
pki issue --ca-dir "$WORK/ca" --ip 172.31.0.16 --days 2 --key ec --out "$WORK/certs"
pki issue --ca-dir "$WORK/ca" --ip 172.31.0.20 --days 2 --key ec --out "$WORK/peer"
# publish: a new CRL into the certificate directory as an operator does (temporary file, mv)
publish() {
  pki crl --ca-dir "$WORK/ca" --out "$WORK/crl.new" --days 30
  mv "$WORK/crl.new" "$WORK/certs/crl.pem"
}
publish

# --- the peer: its own namespace and charon, a responder for the node ---------------------------
NS=ipopsec-crl-$$
PNS=ipopsec-crlp-$$
ip netns add "$NS"
ip netns add "$PNS"
ip -n "$NS" link set lo up
ip -n "$PNS" link set lo up
peer_charon_start "$WORK/peerd" "$PNS" 172.31.0.20 172.31.0.0/16 \
  "$WORK/peer/host-cert.pem" "$WORK/peer/host-key.pem" "$WORK/certs/cacert.pem" "$RUN/peer.vici" ||
  fail "cannot start the peer's charon"

# --- the node ----------------------------------------------------------------------------------
echo 'include conf.d/*.conf' >"$D/swanctl/swanctl.conf"
charon_test_conf "$RUN/charon.vici" "$D/charon.log" node >"$D/strongswan.conf"
# ike.restart_command: (re)start charon by its pid, wait for its vici socket, load everything.
charon_restart_script "$D" "$RUN" >"$D/charon_restart.sh"
chmod 755 "$D/charon_restart.sh"
cat >"$D/ipop-ipsecd.yaml" <<EOF
ipop:
  interface: ipop
protect:
  ranges: [172.31.0.0/16]
ike:
  backend: strongswan
  control: command
  restart_command: [/bin/bash, $D/charon_restart.sh]
  quiet_period: 300ms
  min_interval: 1s
racoon:
  certificate_dir: $WORK/certs
  crl: crl.pem
strongswan:
  swanctl_dir: $D/swanctl
  config: $D/swanctl/conf.d/ipop-ipsec.conf
  load_command: [/usr/bin/env, SWANCTL_DIR=$D/swanctl, /usr/sbin/swanctl, --load-all, --noprompt, --uri, "unix://$RUN/charon.vici"]
  load_creds_command: [/usr/bin/env, SWANCTL_DIR=$D/swanctl, /usr/sbin/swanctl, --load-creds, --noprompt, --uri, "unix://$RUN/charon.vici"]
  cut_command: [$BIN, cut-revoked, --uri, "unix://$RUN/charon.vici"]
daemon:
  state_dir: $D/state
  remember_dir: ""
  log_level: debug
EOF
ip netns exec "$NS" "$BIN" --config "$D/ipop-ipsecd.yaml" >"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
ip -n "$NS" link add ipop type veth peer name ipop netns "$PNS"
ip -n "$PNS" addr add 172.31.0.20/16 dev ipop
ip -n "$PNS" link set ipop up
ip -n "$NS" addr add 172.31.0.16/16 dev ipop
ip -n "$NS" link set ipop up

healthy() { grep -q '"healthy": true' "$D/state/state.json"; }
log_has() { grep -qF -- "$1" "$D/daemon.log"; }
# The CRL numbers charon holds (swanctl --list-certs --type x509_crl: "serial: NN" is the CRL number).
crl_numbers() { SWANCTL_DIR=$D/swanctl swanctl --list-certs --type x509_crl --uri "unix://$RUN/charon.vici" 2>/dev/null | awk '/serial:/ { print $2 }'; }
has_crl() { crl_numbers | grep -qx "$1"; }
charon_pid() { cat "$D/charon.pid"; }
node_sas() { SWANCTL_DIR=$D/swanctl swanctl --list-sas --uri "unix://$RUN/charon.vici" 2>/dev/null; }
# The unique id of the node's established IKE_SA with the peer ("" when none).
node_ike_id() { node_sas | awk '/ESTABLISHED/ { id = $2; sub(/,$/, "", id) } /remote .*172\.31\.0\.20/ && id { print id; exit }'; }
node_has_ike() { [[ -n $(node_ike_id) ]]; }

wait_for "the daemon reports healthy, charon started with the first CRL" 40 healthy
wait_for "charon holds CRL number 01" 10 has_crl 01
pid1=$(charon_pid)
kill -0 "$pid1" || fail "charon (pid $pid1) does not run"
err=$(peer_charon_load 2>&1) || fail "$err"
ip netns exec "$NS" ping -c1 -W1 -I 172.31.0.16 172.31.0.20 >/dev/null 2>&1 || true
wait_for "the node's trap sets up an IKE_SA with the peer" 15 node_has_ike
wait_for "the peer holds its IKE_SA with the node" 5 peer_has_ike
ike1=$(node_ike_id)
restarts_before=$(grep -c 'restarting ' "$D/daemon.log" || true)

echo "== a routine refresh: the same revoked set, a new CRL number"
publish
wait_for "the daemon loads the new CRL, naming why" 20 log_has "loading the new CRL (revoked set unchanged)"
wait_for "charon holds the new CRL number 02" 20 has_crl 02
wait_for "the credentials load is done" 10 log_has "IKE credentials loaded"
log_has "loading the changed credentials into" || fail "the refresh was not loaded with strongswan.load_creds_command"
! log_has "IKE configuration loaded" || fail "the refresh reloaded the connections (strongswan.load_command)"
ok "loaded with load_creds_command, no connection reloaded"
[[ $(charon_pid) == "$pid1" ]] && kill -0 "$pid1" || fail "charon was restarted: pid $pid1 -> $(charon_pid)"
ok "charon's PID is unchanged ($pid1)"
restarts_after=$(grep -c 'restarting ' "$D/daemon.log" || true)
[[ $restarts_after == "$restarts_before" ]] || fail "the daemon restarted charon: $(grep 'restarting ' "$D/daemon.log" | tail -1)"
ok "no restart logged for the refresh"
[[ $(node_ike_id) == "$ike1" ]] || fail "the node's IKE_SA $ike1 with the peer is gone: $(node_sas)"
peer_has_ike || fail "the peer's IKE_SA with the node is gone"
ok "the IKE_SA with the peer is unchanged ($ike1) and established on both sides"
wait_for "healthy after the refresh" 10 healthy

echo "== ipop-ipsecd restarts, charon runs on"
crl_fp=$(grep -o '"ike_crl": {"fingerprint": "[0-9a-f]*"' "$D/state/state.json" | sed 's/.*: "//; s/"$//')
[[ -n $crl_fp ]] || fail "state.json names no CRL charon runs with: $(grep ike_crl "$D/state/state.json")"
ok "state.json records the CRL charon loaded (ike_crl fingerprint $crl_fp)"
kill "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
echo "---- restart of ipop-ipsecd" >>"$D/daemon.log"
ip netns exec "$NS" "$BIN" --config "$D/ipop-ipsecd.yaml" >>"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
adopted() { [[ $(grep -o '"pid": [0-9]*' "$D/state/state.json") == "\"pid\": $DAEMON_PID" ]] && healthy; }
wait_for "the new daemon adopts charon and reports healthy" 20 adopted
[[ $(charon_pid) == "$pid1" ]] && kill -0 "$pid1" || fail "charon was restarted: pid $pid1 -> $(charon_pid)"
[[ $(grep -c 'restarting ' "$D/daemon.log" || true) == "$restarts_before" ]] ||
  fail "the adopting daemon restarted charon: $(grep 'restarting ' "$D/daemon.log" | tail -1)"
[[ $(grep -c 'loading the changed' "$D/daemon.log" || true) == 1 ]] ||
  fail "the adopting daemon loaded something again: $(grep 'loading the changed' "$D/daemon.log" | tail -1)"
[[ $(node_ike_id) == "$ike1" ]] || fail "the node's IKE_SA $ike1 with the peer is gone: $(node_sas)"
ok "adopted: charon's PID ($pid1) and the IKE_SA ($ike1) unchanged, nothing restarted or loaded"

echo "== a revocation: the peer's certificate"
serial=$(openssl x509 -in "$WORK/peer/host-cert.pem" -noout -serial | cut -d= -f2)
pki revoke --ca-dir "$WORK/ca" --cert "$WORK/peer/host-cert.pem" --reason keyCompromise
publish
wait_for "the daemon loads the CRL naming the revoked serial" 20 log_has "the new CRL revokes serial $serial"
wait_for "charon holds CRL number 03" 20 has_crl 03
wait_for "the daemon logs the peer cut" 20 log_has "the new CRL revokes serial $serial: cut CN=172.31.0.20 at 172.31.0.20 ($ike1)"
gone() { ! peer_has_ike; }
wait_for "the peer's IKE_SA with the node ended (charon's DELETE)" 10 gone
node_gone() { ! node_has_ike; }
wait_for "the node's IKE_SA with the peer ended" 10 node_gone
[[ $(charon_pid) == "$pid1" ]] && kill -0 "$pid1" || fail "charon was restarted: pid $pid1 -> $(charon_pid)"
ok "charon's PID is unchanged ($pid1): cut, not restarted"
[[ $(grep -c 'restarting ' "$D/daemon.log" || true) == "$restarts_before" ]] ||
  fail "the daemon restarted charon: $(grep 'restarting ' "$D/daemon.log" | tail -1)"
ok "no restart logged for the revocation"
# Traffic to the revoked peer again: the node's trap initiates, and its charon refuses the
# peer's certificate.
refused() {
  ip netns exec "$NS" ping -c1 -W1 -I 172.31.0.16 172.31.0.20 >/dev/null 2>&1 || true
  grep -q "certificate was revoked" "$D/charon.log"
}
wait_for "the node refuses the revoked peer on a new attempt ('certificate was revoked')" 20 refused
! node_has_ike || fail "the revoked peer set up an IKE_SA again: $(node_sas)"
ok "no IKE_SA with the revoked peer"

echo "strongswan_crl_refresh: PASSED ($CHECKS checks)"
