#!/usr/bin/env bash
# Where the real binary reads the certificates when the config does not set
# racoon.certificate_dir (core/config/certificate_dir.hpp), asked with `ipop-ipsecd check` in a private
# mount namespace whose /etc is an overlay of the host's (nothing of the host's /etc changes):
#   1. strongswan, certificates in /etc/racoon/certs only (a node set up before the new
#      default): check passes and warns once, naming the key and both directories;
#   2. strongswan, the files moved to /etc/ipop-ipsec/certs: check passes, no warning;
#   3. strongswan, neither directory (a new install): the errors name /etc/ipop-ipsec/certs;
#   4. racoon, certificates in /etc/ipop-ipsec/certs only: racoon's own directory is named;
#   5. strongswan with racoon.certificate_dir set to /etc/ipop-ipsec/certs, certificates in
#      /etc/racoon/certs only: the set directory is kept (errors name it), no fallback.
# Usage: certificate_dir_fallback.sh IPOP_IPSECD_BINARY BUILD_DIR
set -euo pipefail
BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }
[[ $(id -u) == 0 ]] || fail "needs root (a private mount namespace with an overlay /etc)"
for t in unshare mount; do command -v "$t" >/dev/null || fail "needed tool '$t' is missing"; done
WORK=$(mktemp -d /tmp/ipopsec-certdir.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The node's certificate and the CA's, made with the daemon's own pki command.
"$BIN" pki init-ca --dir "$WORK/ca" --name "certdir test CA" --days 2 >/dev/null
"$BIN" pki issue --ca-dir "$WORK/ca" --ip 10.254.0.16 --days 2 --out "$WORK/pki" >/dev/null
for f in cacert.pem host-cert.pem host-key.pem; do [[ -s $WORK/pki/$f ]] || fail "pki issue made no $f"; done

# run NAME DIR-WITH-THE-FILES CONFIG: `check` in a private /etc that holds the three files in
# DIR only (no other certificate directory); its stdout+stderr in $OUT, its status in $RC.
run() {
  local name=$1 dir=$2 config=$3
  printf '%s' "$config" >"$WORK/$name.yaml"
  mkdir -p "$WORK/$name"
  RC=0
  OUT=$(unshare --mount --propagation private bash -c '
    set -e
    w=$1; dir=$2; bin=$3; cfg=$4; pki=$5
    mount -t tmpfs tmpfs "$w"
    mkdir "$w/upper" "$w/work"
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$w/upper,workdir=$w/work" /etc
    rm -rf /etc/racoon/certs /etc/ipop-ipsec/certs
    if [[ -n $dir ]]; then
      install -d -m 0755 "$dir"
      install -m 0644 "$pki/cacert.pem" "$pki/host-cert.pem" "$dir/"
      install -m 0600 "$pki/host-key.pem" "$dir/"
    fi
    exec "$bin" check --config "$cfg"' _ "$WORK/$name" "$dir" "$BIN" "$WORK/$name.yaml" "$WORK/pki" 2>&1) || RC=$?
  printf '%s\n' "$OUT" | sed "s/^/    [$name] /"
}
has() { grep -qF -- "$1" <<<"$OUT"; }
count() { grep -cF -- "$1" <<<"$OUT" || true; }

SWAN=$'ike:\n  backend: strongswan\n'

run old /etc/racoon/certs "$SWAN"
[[ $RC == 0 ]] || fail "1: check failed ($RC) with the certificates in /etc/racoon/certs"
[[ $(count "warning: racoon.certificate_dir: not set") == 1 ]] || fail "1: not exactly one warning naming racoon.certificate_dir"
has "/etc/ipop-ipsec/certs (its default with ike.backend strongswan) holds none of the certificate files" ||
  fail "1: the warning does not say the new directory is empty"
has "reading them from /etc/racoon/certs; set 'racoon.certificate_dir: /etc/racoon/certs'" ||
  fail "1: the warning does not name the directory used and the key to set"
ok "1: strongswan, certificates in /etc/racoon/certs only: check passes, one warning naming racoon.certificate_dir"

run moved /etc/ipop-ipsec/certs "$SWAN"
[[ $RC == 0 ]] || fail "2: check failed ($RC) with the certificates in /etc/ipop-ipsec/certs"
! has "racoon.certificate_dir: not set" || fail "2: warned although the new directory holds the files"
ok "2: strongswan, certificates in /etc/ipop-ipsec/certs: check passes, no warning"

run new "" "$SWAN"
[[ $RC != 0 ]] || fail "3: check passed without any certificate"
has "/etc/ipop-ipsec/certs/host-cert.pem does not exist" || fail "3: the error does not name /etc/ipop-ipsec/certs"
! has "/etc/racoon/certs" || fail "3: a new install's errors name /etc/racoon/certs"
ok "3: strongswan, no certificates anywhere: check fails naming /etc/ipop-ipsec/certs/host-cert.pem (exit $RC)"

run racoon /etc/ipop-ipsec/certs $'ike:\n  backend: racoon\n'
[[ $RC != 0 ]] || fail "4: racoon passed with the certificates outside /etc/racoon/certs"
has "/etc/racoon/certs/host-cert.pem does not exist" || fail "4: the error does not name racoon's directory"
ok "4: racoon, certificates only in /etc/ipop-ipsec/certs: check fails naming /etc/racoon/certs (exit $RC)"

run explicit /etc/racoon/certs "$SWAN"$'racoon:\n  certificate_dir: /etc/ipop-ipsec/certs\n'
[[ $RC != 0 ]] || fail "5: an explicit certificate_dir was redirected"
has "/etc/ipop-ipsec/certs/host-cert.pem does not exist" || fail "5: the error does not name the directory the config sets"
! has "racoon.certificate_dir: not set" || fail "5: warned about a key the config sets"
ok "5: strongswan, certificate_dir set: kept (check fails naming it, exit $RC), no fallback"

echo "PASS: certificate_dir_fallback.sh: $CHECKS checks"
