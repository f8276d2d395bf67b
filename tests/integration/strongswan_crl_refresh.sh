#!/usr/bin/env bash
# A new CRL with the strongSwan backend, on this machine's kernel: the real daemon
# (ike.backend strongswan, control command) and a real charon-systemd in a network namespace
# made here, IPOP's tap held by ipopsec-tap-carrier, racoon.crl naming the CA's CRL.
#   - a routine refresh (`pki crl` again: a new CRL number and next update, the same revoked
#     serials) is loaded into the running charon (strongswan.load_command): charon's PID is
#     unchanged, `swanctl --list-certs --type x509_crl` shows the new CRL number, the daemon logs why
#     ('loading the new CRL (revoked set unchanged)') and restarts nothing;
#   - a CRL that revokes a peer's certificate still restarts charon, naming the serial.
# (SAs need ESP, which this kernel lacks: tests/system/uml_mesh.sh's revocation phase.)
# Usage: strongswan_crl_refresh.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
set -euo pipefail
BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
CARRIER=${2:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}/ipopsec-tap-carrier
CHECKS=0
NS='' WORK='' DAEMON_PID='' CARRIER_PID=''
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
[[ -x $CARRIER ]] || fail "no $CARRIER: build the ipopsec-tap-carrier target"
for t in /usr/sbin/charon-systemd /usr/sbin/swanctl; do
  [[ -x $t ]] || fail "needed tool $t is missing: run scripts/setup --test"
done

cleanup() {
  local rc=$? pid i
  set +e
  for pid in $DAEMON_PID $CARRIER_PID; do
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

# --- the node ----------------------------------------------------------------------------------
NS=ipopsec-crl-$$
ip netns add "$NS"
ip -n "$NS" link set lo up
echo 'include conf.d/*.conf' >"$D/swanctl/swanctl.conf"
cat >"$D/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-netlink socket-default vici updown hmac sha1 sha2 aes gcm kdf
  install_routes = no
  plugins {
    vici {
      socket = unix://$RUN/charon.vici
    }
  }
  filelog {
    node {
      path = $D/charon.log
      flush_line = yes
      default = 1
    }
  }
}
EOF
# ike.restart_command: (re)start charon by its pid, wait for its vici socket, load everything.
cat >"$D/charon_restart.sh" <<EOF
#!/bin/bash
if [[ -s $D/charon.pid ]] && kill "\$(<$D/charon.pid)" 2>/dev/null; then
  for ((i = 0; i < 100; i++)); do kill -0 "\$(<$D/charon.pid)" 2>/dev/null || break; sleep 0.1; done
fi
rm -f $RUN/charon.vici
STRONGSWAN_CONF=$D/strongswan.conf setsid /usr/sbin/charon-systemd </dev/null >>$D/charon.out 2>&1 &
echo \$! >$D/charon.pid
for ((i = 0; i < 100; i++)); do /usr/sbin/swanctl --stats --uri unix://$RUN/charon.vici >/dev/null 2>&1 && break; sleep 0.1; done
SWANCTL_DIR=$D/swanctl exec /usr/sbin/swanctl --load-all --noprompt --uri unix://$RUN/charon.vici
EOF
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
daemon:
  state_dir: $D/state
  remember_dir: ""
  log_level: debug
EOF
ip netns exec "$NS" "$BIN" --config "$D/ipop-ipsecd.yaml" >"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
ip -n "$NS" tuntap add dev ipop mode tap
CARRIER_PID=$(ip netns exec "$NS" "$CARRIER" ipop)
ip -n "$NS" addr add 172.31.0.16/16 dev ipop
ip -n "$NS" link set ipop up

wait_for() {  # WHAT SECONDS CMD...
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon exited while waiting for: $what"
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for: $what"
    sleep 0.1
  done
  ok "$what"
}
healthy() { grep -q '"healthy": true' "$D/state/state.json"; }
log_has() { grep -qF -- "$1" "$D/daemon.log"; }
# The CRL numbers charon holds (swanctl --list-certs --type x509_crl: "serial: NN" is the CRL number).
crl_numbers() { SWANCTL_DIR=$D/swanctl swanctl --list-certs --type x509_crl --uri "unix://$RUN/charon.vici" 2>/dev/null | awk '/serial:/ { print $2 }'; }
has_crl() { crl_numbers | grep -qx "$1"; }
charon_pid() { cat "$D/charon.pid"; }

wait_for "the daemon reports healthy, charon started with the first CRL" 40 healthy
wait_for "charon holds CRL number 01" 10 has_crl 01
pid1=$(charon_pid)
kill -0 "$pid1" || fail "charon (pid $pid1) does not run"
restarts_before=$(grep -c 'restarting ' "$D/daemon.log" || true)

echo "== a routine refresh: the same revoked set, a new CRL number"
publish
wait_for "the daemon loads the new CRL, naming why" 20 log_has "loading the new CRL (revoked set unchanged)"
wait_for "charon holds the new CRL number 02" 20 has_crl 02
wait_for "the load is done" 10 log_has "IKE configuration loaded"
[[ $(charon_pid) == "$pid1" ]] && kill -0 "$pid1" || fail "charon was restarted: pid $pid1 -> $(charon_pid)"
ok "charon's PID is unchanged ($pid1)"
restarts_after=$(grep -c 'restarting ' "$D/daemon.log" || true)
[[ $restarts_after == "$restarts_before" ]] || fail "the daemon restarted charon: $(grep 'restarting ' "$D/daemon.log" | tail -1)"
ok "no restart logged for the refresh"
wait_for "healthy after the refresh" 10 healthy

echo "== a revocation: the peer's certificate"
serial=$(openssl x509 -in "$WORK/peer/host-cert.pem" -noout -serial | cut -d= -f2)
pki revoke --ca-dir "$WORK/ca" --cert "$WORK/peer/host-cert.pem" --reason keyCompromise
publish
wait_for "the daemon restarts charon naming the revoked serial" 20 log_has "the new CRL revokes serial $serial"
wait_for "charon holds CRL number 03" 20 has_crl 03
[[ $(charon_pid) != "$pid1" ]] || fail "charon's PID did not change on the revocation"
ok "charon restarted for the revocation (pid $pid1 -> $(charon_pid))"

echo "strongswan_crl_refresh: PASSED ($CHECKS checks)"
