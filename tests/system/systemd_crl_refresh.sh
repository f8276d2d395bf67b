#!/usr/bin/env bash
# A routine CRL refresh under real systemd, with the .deb installed and Debian's real
# strongswan.service (charon-systemd): it restarts and tears down nothing.
#   - the package (cpack, dpkg -i) runs with ike.backend strongswan and racoon.crl; IPOP's tap
#     is a veth to a second namespace, where a peer charon (10.254.0.20, on the host, with no
#     CHILD_SA config: this kernel has no ESP, so the IKE_SA is kept without one) answers;
#   - the node's trap sets up an IKE_SA with the peer;
#   - a routine refresh lands (`ipop-ipsecd pki crl` again: a new CRL number and next update,
#     the same revoked set): the daemon loads it with strongswan.load_creds_command (swanctl
#     --load-creds), the journal names the load and why; charon's MainPID and InvocationID
#     are unchanged, charon holds the new CRL number, and the IKE_SA with the peer is the same
#     one (unique id), established on both sides; no restart, no reload of the connections;
#   - `systemctl restart ipop-ipsecd` (charon runs on), then a second refresh: the new daemon
#     adopted charon with the CRL it loaded (state.json's ike_crl) and loads the new one the
#     same way, nothing restarted, the same IKE_SA;
#   - a package upgrade (dpkg -i again): ipop-ipsecd restarted by the package, charon's MainPID,
#     InvocationID and the IKE_SA unchanged; a third refresh loaded the same way.
# Usage: systemd_crl_refresh.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_need cpack dpkg-deb dpkg-shlibdeps charon-systemd swanctl
[[ -f /lib/systemd/system/strongswan.service ]] || sys_fail "strongswan.service missing: run scripts/setup (charon-systemd)"
PNS=ipopsec-sysp-$$
PEER_PID=
PEER_RUN=
crl_cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)) && [[ -f ${PD:-}/charon.log ]]; then
    echo "---- the peer's charon log (last 20 lines)" >&2
    tail -n 20 "$PD/charon.log" >&2
  fi
  if [[ -n $PEER_PID ]]; then
    kill "$PEER_PID" 2>/dev/null
    wait "$PEER_PID" 2>/dev/null
  fi
  ip netns del "$PNS" 2>/dev/null
  [[ -n $PEER_RUN ]] && rm -rf "$PEER_RUN"
  (exit "$rc")
  sys_cleanup
}
sys_setup --no-install
trap crl_cleanup EXIT
cpack -G DEB --config "$SYS_BUILD/CPackConfig.cmake" -B "$SYS_WORK/pkg" >"$SYS_WORK/cpack.log" 2>&1 ||
  { cat "$SYS_WORK/cpack.log" >&2; sys_fail "cpack -G DEB failed"; }
deb=$(ls "$SYS_WORK"/pkg/ipop-ipsec_*.deb)
cp "$deb" "$ROOT/root/ipop-ipsec.deb"
rm -f "$ROOT/usr/sbin/policy-rc.d"  # a real node has none (systemd_package.sh)

# --- certificates: the GroupVPN CA, this node, the peer, the CA's CRL --------------------------
P=$SYS_WORK/pki
certs=$ROOT/etc/racoon/certs
mkdir -p "$P" "$certs"
pki() { "$SYS_BIN" pki "$@" >>"$P/pki.log" 2>&1 || sys_fail "ipop-ipsecd pki $*: $(tail -1 "$P/pki.log")"; }
pki init-ca --dir "$P/ca" --name "GroupVPN CA" --days 2 --key ec
pki issue --ca-dir "$P/ca" --ip 10.254.0.16 --days 2 --key ec --out "$P/node"
pki issue --ca-dir "$P/ca" --ip 10.254.0.20 --days 2 --key ec --out "$P/peer"
install -m 0644 "$P/node/cacert.pem" "$certs/cacert.pem"
install -m 0644 "$P/node/host-cert.pem" "$certs/host-cert.pem"
install -m 0600 "$P/node/host-key.pem" "$certs/host-key.pem"
# A new CRL lands as an operator (or Ansible) puts it there: a temporary file, then mv.
publish() {
  pki crl --ca-dir "$P/ca" --out "$P/crl.new" --days 30
  cp "$P/crl.new" "$certs/.crl.pem.new"
  mv -f "$certs/.crl.pem.new" "$certs/crl.pem"
}
publish

# --- IPOP's tap: a veth to the peer's namespace (carrier while both ends are up) ------------
ip netns add "$PNS"
ip -n "$PNS" link set lo up
ip -n "$SYS_NAME" link add ipop type veth peer name ipop netns "$PNS"
ip -n "$PNS" addr add 10.254.0.20/16 dev ipop
ip -n "$PNS" link set ipop up

# --- the peer: charon-systemd on the host in its namespace, a responder without CHILD_SA ----
PEER_RUN=$(mktemp -d /run/ipopsec-syscrl.XXXXXX)
PD=$SYS_WORK/peer
mkdir -p "$PD/swanctl/x509" "$PD/swanctl/x509ca" "$PD/swanctl/private"
cp "$P/peer/host-cert.pem" "$PD/swanctl/x509/peer.pem"
cp "$P/peer/host-key.pem" "$PD/swanctl/private/peer.pem"
cp "$P/node/cacert.pem" "$PD/swanctl/x509ca/ca.pem"
cat >"$PD/swanctl/swanctl.conf" <<CONF
connections {
  node {
    version = 2
    local_addrs = 10.254.0.20
    remote_addrs = 10.254.0.0/16
    proposals = aes256-sha256-modp2048
    local {
      auth = pubkey
      certs = peer.pem
    }
    remote {
      auth = pubkey
      id = %any
    }
  }
}
CONF
cat >"$PD/strongswan.conf" <<CONF
charon {
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-netlink socket-default vici updown hmac sha1 sha2 aes gcm kdf
  install_routes = no
  plugins {
    vici {
      socket = unix://$PEER_RUN/peer.vici
    }
  }
  filelog {
    peer {
      path = $PD/charon.log
      flush_line = yes
      default = 1
    }
  }
}
CONF
ip netns exec "$PNS" env STRONGSWAN_CONF="$PD/strongswan.conf" /usr/sbin/charon-systemd </dev/null >"$PD/charon.out" 2>&1 &
PEER_PID=$!
peer_sas() { swanctl --list-sas --uri "unix://$PEER_RUN/peer.vici" 2>/dev/null; }
peer_up() { swanctl --stats --uri "unix://$PEER_RUN/peer.vici" >/dev/null 2>&1; }

sys_enable strongswan.service
sys_boot

# --- the package, configured for strongSwan with the CRL -----------------------------------
check "dpkg -i succeeds" sys_run dpkg -i /root/ipop-ipsec.deb
cat >"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml" <<'EOF'
# ipop-ipsecd config of systemd_crl_refresh.sh: the defaults, strongSwan, the CA's CRL, and
# quick restart coalescing for the test.
ipop:
  interface: ipop
protect:
  ranges: [10.254.0.0/16]
ike:
  backend: strongswan
  control: systemd
  unit: strongswan.service
  quiet_period: 1s
  min_interval: 2s
  restart_timeout: 30s
racoon:
  certificate_dir: /etc/racoon/certs
  crl: crl.pem
EOF
check "ipop-ipsecd check passes on the config, the certificates and the CRL" sys_run ipop-ipsecd check
check "systemctl start ipop-ipsecd succeeds" sys_run systemctl start ipop-ipsecd.service
ip -n "$SYS_NAME" addr add 10.254.0.16/16 dev ipop
ip -n "$SYS_NAME" link set ipop up

sw() { sys_prop strongswan.service "$1"; }
healthy() { sys_run grep -q '"healthy": true' /run/ipop-ipsec/state.json; }
state_pid_is() { sys_run grep -q "\"pid\": $1," /run/ipop-ipsec/state.json; }
# The CRL numbers charon holds ("serial: NN" of --list-certs --type x509_crl).
crl_numbers() { sys_run swanctl --list-certs --type x509_crl 2>/dev/null | awk '/serial:/ { print $2 }'; }
has_crl() { grep -qx "$1" <<<"$(crl_numbers)"; }
node_sas() { sys_run swanctl --list-sas 2>/dev/null; }
# The unique id of the node's established IKE_SA with the peer ("" when none).
node_ike_id() { awk '/ESTABLISHED/ { id = $2; sub(/,$/, "", id) } /remote .*10\.254\.0\.20/ && id { print id; exit }' <<<"$(node_sas)"; }
node_has_ike() { [[ -n $(node_ike_id) ]]; }
peer_has_ike() { grep -q ESTABLISHED <<<"$(peer_sas)"; }
cursor() { sys_run journalctl -b -n 1 -o export --no-pager | sed -n 's/^__CURSOR=//p'; }
after() { local c=$1; shift; sys_run journalctl -b --no-pager -o cat --after-cursor="$c" "$@"; }
logged_after() { grep -qF -- "$2" <<<"$(after "$1" -u ipop-ipsecd.service)"; }

sys_wait "strongswan.service active (started by the daemon)" 40 eval '[[ $(sw ActiveState) == active ]]'
sys_wait "the daemon reports healthy" 40 healthy
sys_wait "the daemon's start of strongswan.service is done" 20 \
  sys_run grep -q '"last_restart_result": "done"' /run/ipop-ipsec/state.json
sys_wait "charon holds the CA's CRL, number 01" 20 has_crl 01
sys_wait "the peer's charon listens" 10 peer_up
SWANCTL_DIR=$PD/swanctl swanctl --load-all --noprompt --uri "unix://$PEER_RUN/peer.vici" >"$PD/load.log" 2>&1 ||
  sys_fail "the peer's charon refused its configuration: $(tail -3 "$PD/load.log")"
ping_peer() { ip netns exec "$SYS_NAME" ping -c1 -W1 -I 10.254.0.16 10.254.0.20 >/dev/null 2>&1 || true; }
ping_peer
ike_up() { node_has_ike || { ping_peer; false; }; }
sys_wait "the node's trap sets up an IKE_SA with the peer" 30 ike_up
sys_wait "the peer holds its IKE_SA with the node" 10 peer_has_ike
charon_pid=$(sw MainPID)
charon_inv=$(sw InvocationID)
ike=$(node_ike_id)
check "the real charon runs (MainPID $charon_pid is charon-systemd)" \
  test "$(sys_run cat "/proc/$charon_pid/comm")" = charon-systemd
sys_log "charon: MainPID $charon_pid, InvocationID $charon_inv; IKE_SA with the peer: $ike"

# A refresh landed at cursor $1 with CRL number $2 was loaded, and nothing was torn down.
refresh_loaded() {
  local c=$1 number=$2 t0=$3
  sys_wait "the daemon loads the new CRL, naming why" 20 \
    logged_after "$c" "loading the changed credentials into strongswan.service (strongswan.load_creds_command; it keeps running, no connection is reloaded, no SA touched): loading the new CRL (revoked set unchanged)"
  sys_wait "the load is done" 20 logged_after "$c" "IKE credentials loaded"
  sys_log "FIGURE CRL landed -> loaded into charon $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
  check "charon holds the new CRL, number $number" has_crl "$number"
  check "charon's MainPID is still $charon_pid" test "$(sw MainPID)" = "$charon_pid"
  check "strongswan.service is the same invocation (never stopped and started)" test "$(sw InvocationID)" = "$charon_inv"
  check "the daemon logged no restart (IPOPSEC_ACTION=restart)" \
    test -z "$(after "$c" -u ipop-ipsecd.service IPOPSEC_ACTION=restart)"
  check "the daemon did not reload the connections (strongswan.load_command)" \
    eval '! logged_after "$c" "loading the changed IKE configuration"'
  check "the journal has no stop or start of strongswan.service" \
    test -z "$(after "$c" -u strongswan.service | grep -E 'Stopping|Stopped|Starting|Started|Main process exited' || true)"
  check "the node's IKE_SA with the peer is the same one ($ike)" test "$(node_ike_id)" = "$ike"
  check "the peer still holds its IKE_SA with the node" peer_has_ike
  sys_wait "the daemon reports healthy" 10 healthy
}

# --- 1. a routine refresh ----------------------------------------------------------------------
c=$(cursor)
t0=$(date +%s.%N)
publish
refresh_loaded "$c" 02 "$t0"
check "state.json records the CRL charon loaded (ike_crl)" \
  sys_run grep -q '"ike_crl": {"fingerprint": "[0-9a-f]\+", "revoked": \[\]' /run/ipop-ipsec/state.json

# --- 2. ipop-ipsecd restarts (charon runs on), then another refresh -------------------------
c=$(cursor)
check "systemctl restart ipop-ipsecd succeeds" sys_run systemctl restart ipop-ipsecd.service
new=$(sys_prop ipop-ipsecd.service MainPID)
sys_wait "the new daemon (pid $new) wrote its state" 20 state_pid_is "$new"
sys_wait "the new daemon reports healthy" 20 healthy
t0=$(date +%s.%N)
publish
refresh_loaded "$c" 03 "$t0"

# --- 3. a package upgrade (dpkg -i of the package again: prerm upgrade, postinst try-restart)
c=$(cursor)
before=$(sys_prop ipop-ipsecd.service MainPID)
check "dpkg -i of the package again (an upgrade) succeeds" sys_run dpkg -i /root/ipop-ipsec.deb
new=$(sys_prop ipop-ipsecd.service MainPID)
check "the upgrade restarted ipop-ipsecd (MainPID $before -> $new)" test "$new" != "$before"
sys_wait "the upgraded daemon (pid $new) wrote its state" 20 state_pid_is "$new"
sys_wait "the upgraded daemon reports healthy" 20 healthy
check "after the upgrade charon's MainPID is still $charon_pid" test "$(sw MainPID)" = "$charon_pid"
check "after the upgrade strongswan.service is the same invocation" test "$(sw InvocationID)" = "$charon_inv"
check "after the upgrade the node's IKE_SA with the peer is the same one ($ike)" test "$(node_ike_id)" = "$ike"
check "the upgraded daemon logged no restart (IPOPSEC_ACTION=restart)" \
  test -z "$(after "$c" -u ipop-ipsecd.service IPOPSEC_ACTION=restart)"
t0=$(date +%s.%N)
publish
refresh_loaded "$c" 04 "$t0"
sys_pass
