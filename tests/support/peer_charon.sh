# tests/support/peer_charon.sh -- sourced (not run) by the tests whose node needs a real IKE peer:
# tests/integration/strongswan_crl_refresh.sh and tests/system/systemd_crl_refresh.sh.
#
#   peer_charon_start DIR NETNS ADDR RANGE CERT KEY CACERT VICI
#     starts this machine's charon-systemd in the network namespace NETNS (the caller made it
#     and deletes it) as a responder at ADDR for any node in RANGE whose certificate CACERT
#     signed; it proves itself with CERT and KEY. Its swanctl dir, strongswan.conf, charon.log
#     and charon.out are written into DIR; its vici socket is the path VICI. Sets PEER_PID: the
#     caller's trap ends it by that pid (and waits for it).
#   peer_charon_load
#     waits (10 s at most) until its vici socket answers, then loads its connection
#     (swanctl --load-all); on failure says why on stderr and returns 1.
#   peer_sas / peer_has_ike
#     its swanctl --list-sas / whether it holds an established IKE_SA.
# (charon_test_conf, for the peer's strongswan.conf, comes from tests/support/charon_conf.sh.)
#
# The peer has no CHILD_SA config: it answers IKE_AUTH with IDr, AUTH and TS_UNACCEPTABLE and
# both sides keep the IKE_SA, on any kernel and strongSwan release. (With a CHILD_SA config the
# peer's charon would have to install ESP SAs, which a kernel without ESP lacks; strongSwan 6
# then answers NO_PROPOSAL_CHOSEN alone, without IDr/AUTH, and the node ends the IKE_SA: 'IDr
# payload missing'. 5.9 keeps IDr/AUTH.)

source "$(dirname "${BASH_SOURCE[0]}")/charon_conf.sh"   # charon_test_conf

PEER_PID=
PEER_DIR=
PEER_VICI=

peer_charon_start() {
  local dir=$1 netns=$2 addr=$3 range=$4 cert=$5 key=$6 cacert=$7
  PEER_DIR=$dir PEER_VICI=$8
  [[ -x /usr/sbin/charon-systemd && -x /usr/sbin/swanctl ]] ||
    { echo "peer_charon_start: /usr/sbin/charon-systemd or /usr/sbin/swanctl is missing: run scripts/setup --test" >&2; return 1; }
  mkdir -p "$dir/swanctl/x509" "$dir/swanctl/x509ca" "$dir/swanctl/private"
  cp "$cert" "$dir/swanctl/x509/peer.pem"
  cp "$key" "$dir/swanctl/private/peer.pem"
  cp "$cacert" "$dir/swanctl/x509ca/ca.pem"
  cat >"$dir/swanctl/swanctl.conf" <<CONF
connections {
  node {
    version = 2
    local_addrs = $addr
    remote_addrs = $range
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
  charon_test_conf "$PEER_VICI" "$dir/charon.log" peer >"$dir/strongswan.conf"
  ip netns exec "$netns" env STRONGSWAN_CONF="$dir/strongswan.conf" /usr/sbin/charon-systemd \
    </dev/null >"$dir/charon.out" 2>&1 &
  PEER_PID=$!
}

peer_charon_load() {
  local deadline=$((SECONDS + 10))
  until swanctl --stats --uri "unix://$PEER_VICI" >/dev/null 2>&1; do
    kill -0 "$PEER_PID" 2>/dev/null ||
      { echo "the peer's charon (pid $PEER_PID) exited: $(tail -n 3 "$PEER_DIR/charon.out")" >&2; return 1; }
    ((SECONDS < deadline)) || { echo "the peer's charon does not answer on $PEER_VICI after 10 s" >&2; return 1; }
    sleep 0.1
  done
  SWANCTL_DIR=$PEER_DIR/swanctl swanctl --load-all --noprompt --uri "unix://$PEER_VICI" >"$PEER_DIR/load.log" 2>&1 ||
    { echo "the peer's charon refused its configuration: $(tail -n 3 "$PEER_DIR/load.log")" >&2; return 1; }
}

peer_sas() { swanctl --list-sas --uri "unix://$PEER_VICI" 2>/dev/null; }
peer_has_ike() { grep -q ESTABLISHED <<<"$(peer_sas)"; }
