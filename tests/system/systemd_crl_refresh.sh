#!/usr/bin/env bash
# A routine CRL refresh under real systemd, with the .deb installed and Debian's real
# strongswan.service (charon-systemd): it restarts and tears down nothing. On the host's
# Debian 12 (systemd 252, strongSwan 5.9), or with IPOPSEC_SYS_ROOT=DIR on that OS tree
# (scripts/test-trixie: Debian 13, systemd 257, strongSwan 6) with the .deb built there
# (IPOPSEC_SYS_DEB=FILE, else cpack of BUILD_DIR in that tree).
#   - the package (dpkg -i) runs with ike.backend strongswan and racoon.crl; its ipop-ipsecd
#     makes the CA, the certificates and the CRLs; IPOP's tap is a veth to a second namespace,
#     where a peer charon (10.254.0.20, the host's, tests/support/peer_charon.sh: no CHILD_SA
#     config, this kernel has no ESP, so the IKE_SA is kept without one) answers;
#   - the node's trap sets up an IKE_SA with the peer;
#   - a routine refresh lands (`ipop-ipsecd pki crl` again: a new CRL number and next update,
#     the same revoked set): the daemon loads it with strongswan.load_creds_command (swanctl
#     --load-creds), the journal names the load and why; charon's MainPID and InvocationID
#     are unchanged, charon holds the new CRL number, and the IKE_SA with the peer is the same
#     one (unique id), established on both sides; no restart, no reload of the connections;
#   - `systemctl restart ipop-ipsecd` (charon runs on), then a second refresh: the new daemon
#     adopted charon with the CRL it loaded (state.json's ike_crl) and loads the new one the
#     same way, nothing restarted, the same IKE_SA;
#   - a package upgrade (dpkg -i again: prerm upgrade, postinst try-restart): ipop-ipsecd
#     restarted by the package, charon's MainPID, InvocationID and the IKE_SA unchanged, no stop
#     or start of strongswan.service in the journal; a third refresh loaded the same way.
# Prints FIGURE lines: each refresh's CRL landed -> loaded (the journal's time of the load), the
# upgrade's dpkg -i and until the upgraded daemon is healthy.
# Usage: systemd_crl_refresh.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/../support/peer_charon.sh"

# The OS booted is the host's (Debian 12) or IPOPSEC_SYS_ROOT's (scripts/test-trixie: Debian 13),
# its systemd, strongswan.service and swanctl; the peer is the host's charon-systemd.
sys_need charon-systemd swanctl
for f in /usr/lib/systemd/system/strongswan.service /usr/sbin/swanctl /usr/bin/dpkg; do
  [[ -e $SYS_LOWER/$f || -e $SYS_LOWER/${f#/usr} ]] ||
    sys_fail "$f missing in the OS tree $SYS_LOWER: run scripts/setup --test (charon-systemd, strongswan-swanctl) there"
done
# The package: IPOPSEC_SYS_DEB (a .deb built from BUILD_DIR, as scripts/test-trixie passes the
# one its lintian step built), else cpack from BUILD_DIR with the OS tree's own cpack (the
# .deb's dependencies are that release's).
deb=${IPOPSEC_SYS_DEB:-}
PNS=ipopsec-sysp-$$
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
if [[ -n $deb ]]; then
  [[ -f $deb ]] || sys_fail "IPOPSEC_SYS_DEB=$deb: no such file"
elif [[ $SYS_LOWER == / ]]; then
  sys_need cpack dpkg-deb dpkg-shlibdeps
  cpack -G DEB --config "$SYS_BUILD/CPackConfig.cmake" -B "$SYS_WORK/pkg" >"$SYS_WORK/cpack.log" 2>&1 ||
    { cat "$SYS_WORK/cpack.log" >&2; sys_fail "cpack -G DEB failed"; }
  deb=$(ls "$SYS_WORK"/pkg/ipop-ipsec_*.deb)
else
  systemd-nspawn -q --register=no --keep-unit -D "$ROOT" --bind="$SYS_BUILD" --bind-ro="$SYS_SRC" \
    cpack -G DEB --config "$SYS_BUILD/CPackConfig.cmake" -B /root/pkg >"$SYS_WORK/cpack.log" 2>&1 ||
    { cat "$SYS_WORK/cpack.log" >&2; sys_fail "cpack -G DEB in the OS tree $SYS_LOWER failed"; }
  deb=$(ls "$ROOT"/root/pkg/ipop-ipsec_*.deb)
fi
cp "$deb" "$ROOT/root/ipop-ipsec.deb"
rm -f "$ROOT/usr/sbin/policy-rc.d"  # a real node has none (systemd_package.sh)

# --- IPOP's tap: a veth to the peer's namespace (carrier while both ends are up) ------------
ip netns add "$PNS"
ip -n "$PNS" link set lo up
ip -n "$SYS_NAME" link add ipop type veth peer name ipop netns "$PNS"
ip -n "$PNS" addr add 10.254.0.20/16 dev ipop
ip -n "$PNS" link set ipop up

sys_enable strongswan.service
sys_boot
(
  . "$ROOT/etc/os-release"
  v='${Package} ${Version}'
  sys_log "booted: $PRETTY_NAME, $(sys_run systemctl --version | head -n 1 | cut -d' ' -f1-2)," \
    "$(sys_run dpkg-query -W -f "$v" charon-systemd); the peer: the host's $(dpkg-query -W -f "$v" charon-systemd)"
)

# --- the package, configured for strongSwan with the CRL -----------------------------------
check "dpkg -i $(basename "$deb") succeeds" sys_run dpkg -i /root/ipop-ipsec.deb

# --- certificates: the GroupVPN CA, this node, the peer, the CA's CRL --------------------------
# Made by the installed package's ipop-ipsecd in the container (built for that release), in
# /root/pki there ($P seen from the host).
P=$ROOT/root/pki
certs=$ROOT/etc/ipop-ipsec/certs   # strongSwan's default certificate_dir
mkdir -p "$P" "$certs"
pki() { sys_run ipop-ipsecd pki "$@" >>"$SYS_WORK/pki.log" 2>&1 || sys_fail "ipop-ipsecd pki $*: $(tail -1 "$SYS_WORK/pki.log")"; }
pki init-ca --dir /root/pki/ca --name "GroupVPN CA" --days 2 --key ec
pki issue --ca-dir /root/pki/ca --ip 10.254.0.16 --days 2 --key ec --out /root/pki/node
pki issue --ca-dir /root/pki/ca --ip 10.254.0.20 --days 2 --key ec --out /root/pki/peer
install -m 0644 "$P/node/cacert.pem" "$certs/cacert.pem"
install -m 0644 "$P/node/host-cert.pem" "$certs/host-cert.pem"
install -m 0600 "$P/node/host-key.pem" "$certs/host-key.pem"
# A new CRL lands as an operator (or Ansible) puts it there: a temporary file, then mv
# (LANDED: when the mv is done).
publish() {
  pki crl --ca-dir /root/pki/ca --out /root/pki/crl.new --days 30
  cp "$P/crl.new" "$certs/.crl.pem.new"
  mv -f "$certs/.crl.pem.new" "$certs/crl.pem"
  LANDED=$(date +%s.%N)
}
publish

# --- the peer: charon-systemd on the host in its namespace, a responder without CHILD_SA ----
PEER_RUN=$(mktemp -d /run/ipopsec-syscrl.XXXXXX)
PD=$SYS_WORK/peer
peer_charon_start "$PD" "$PNS" 10.254.0.20 10.254.0.0/16 \
  "$P/peer/host-cert.pem" "$P/peer/host-key.pem" "$P/node/cacert.pem" "$PEER_RUN/peer.vici" ||
  sys_fail "cannot start the peer's charon"

cat >"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml" <<'EOF'
# ipop-ipsecd config of systemd_crl_refresh.sh: the defaults (certificates in
# /etc/ipop-ipsec/certs), strongSwan, the CA's CRL, and quick restart coalescing for the test.
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
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
cursor() { sys_run journalctl -b -n 1 -o export --no-pager | sed -n 's/^__CURSOR=//p'; }
after() { local c=$1; shift; sys_run journalctl -b --no-pager -o cat --after-cursor="$c" "$@"; }
logged_after() { grep -qF -- "$2" <<<"$(after "$1" -u ipop-ipsecd.service)"; }

sys_wait "strongswan.service active (started by the daemon)" 40 eval '[[ $(sw ActiveState) == active ]]'
sys_wait "the daemon reports healthy" 40 healthy
sys_wait "the daemon's start of strongswan.service is done" 20 \
  sys_run grep -q '"last_restart_result": "done"' /run/ipop-ipsec/state.json
sys_wait "charon holds the CA's CRL, number 01" 20 has_crl 01
err=$(peer_charon_load 2>&1) || sys_fail "$err"
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

# A refresh published (at LANDED) after cursor $1 with CRL number $2 was loaded, and nothing
# was torn down.
refresh_loaded() {
  local c=$1 number=$2 loaded
  sys_wait "the daemon loads the new CRL, naming why" 20 \
    logged_after "$c" "loading the changed credentials into strongswan.service (strongswan.load_creds_command; it keeps running, no connection is reloaded, no SA touched): loading the new CRL (revoked set unchanged)"
  sys_wait "the load is done" 20 logged_after "$c" "IKE credentials loaded"
  # When the daemon logged the load done (the journal's timestamp, not when this poll saw it).
  loaded=$(after "$c" -u ipop-ipsecd.service -o short-unix | grep -F "IKE credentials loaded" |
    awk -v a="$LANDED" '$1 >= a { print $1; exit }')
  [[ -n $loaded ]] || sys_fail "no 'IKE credentials loaded' in the journal after the CRL landed"
  sys_log "FIGURE CRL landed -> loaded into charon (journal) $(awk -v a="$LANDED" -v b="$loaded" 'BEGIN { printf "%.2f", b - a }') s"
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
publish
refresh_loaded "$c" 02
check "state.json records the CRL charon loaded (ike_crl)" \
  sys_run grep -q '"ike_crl": {"fingerprint": "[0-9a-f]\+", "revoked": \[\]' /run/ipop-ipsec/state.json

# --- 2. ipop-ipsecd restarts (charon runs on), then another refresh -------------------------
c=$(cursor)
check "systemctl restart ipop-ipsecd succeeds" sys_run systemctl restart ipop-ipsecd.service
new=$(sys_prop ipop-ipsecd.service MainPID)
sys_wait "the new daemon (pid $new) wrote its state" 20 state_pid_is "$new"
sys_wait "the new daemon reports healthy" 20 healthy
publish
refresh_loaded "$c" 03

# --- 3. a package upgrade (dpkg -i of the package again: prerm upgrade, postinst try-restart)
c=$(cursor)
before=$(sys_prop ipop-ipsecd.service MainPID)
up0=$(date +%s.%N)
check "dpkg -i of the package again (an upgrade) succeeds" sys_run dpkg -i /root/ipop-ipsec.deb
sys_log "FIGURE package upgrade: dpkg -i took $(since "$up0") s"
new=$(sys_prop ipop-ipsecd.service MainPID)
check "the upgrade restarted ipop-ipsecd (MainPID $before -> $new)" test "$new" != "$before"
sys_wait "the upgraded daemon (pid $new) wrote its state" 20 state_pid_is "$new"
sys_wait "the upgraded daemon reports healthy" 20 healthy
sys_log "FIGURE package upgrade: the upgraded daemon seen healthy $(since "$up0") s after dpkg -i began"
check "after the upgrade charon's MainPID is still $charon_pid" test "$(sw MainPID)" = "$charon_pid"
check "after the upgrade strongswan.service is the same invocation" test "$(sw InvocationID)" = "$charon_inv"
check "after the upgrade the node's IKE_SA with the peer is the same one ($ike)" test "$(node_ike_id)" = "$ike"
check "the upgraded daemon logged no restart (IPOPSEC_ACTION=restart)" \
  test -z "$(after "$c" -u ipop-ipsecd.service IPOPSEC_ACTION=restart)"
publish
refresh_loaded "$c" 04
sys_pass
