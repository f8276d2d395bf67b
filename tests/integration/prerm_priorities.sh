#!/usr/bin/env bash
# packaging/debian/prerm, `remove`: it looks for the daemon's policies at the priorities
# of the installed config (xfrm.protect_priority / bypass_priority; defaults 250000, or
# 500000 with ike.backend strongswan, and 1000), not at 250000 only, and names them.
#
# The script runs under dash (POSIX sh, as dpkg runs it) in a private mount namespace whose
# /etc is an overlay (upper layer on a tmpfs of that namespace) holding the test's
# /etc/ipop-ipsec/ipop-ipsecd.yaml: the host's /etc is never written. `ip` and
# `deb-systemd-invoke` are stubs first in PATH: the stub `ip` logs its arguments and reports
# a policy at the priority $STUB_PRIORITY only. Nothing touches the kernel.
#
# Usage: prerm_priorities.sh IPOP_IPSECD_BINARY BUILD_DIR

set -euo pipefail

[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (mount namespace)"; exit 0; }
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PRERM=$SRC/packaging/debian/prerm
DASH=$(command -v dash || echo /bin/sh)

WORK=$(mktemp -d /tmp/ipopsec-prerm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/mnt"
cat >"$WORK/bin/ip" <<EOF
#!/bin/sh
echo "\$*" >>"$WORK/ip.log"
case "\$*" in
  "xfrm policy list priority \$STUB_PRIORITY") echo "src 10.254.0.0/16 dst 10.254.0.0/16 dir out priority \$STUB_PRIORITY" ;;
esac
exit 0
EOF
printf '#!/bin/sh\nexit 0\n' >"$WORK/bin/deb-systemd-invoke"
chmod 0755 "$WORK/bin/ip" "$WORK/bin/deb-systemd-invoke"

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# run_prerm CONFIG_FILE|- STUB_PRIORITY: runs `prerm remove`; sets ERR (its stderr) and
# QUERIED (the priorities it asked `ip` about, space-separated).
run_prerm() {
  local config=$1
  : >"$WORK/ip.log"
  ERR=$(STUB_PRIORITY=$2 PATH="$WORK/bin:$PATH" unshare --mount --propagation private \
    "$DASH" -c '
      set -e
      mount -t tmpfs tmpfs "$1/mnt"
      mkdir -p "$1/mnt/upper/ipop-ipsec" "$1/mnt/work"
      [ "$2" = - ] || cp "$2" "$1/mnt/upper/ipop-ipsec/ipop-ipsecd.yaml"
      mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/mnt/upper,workdir=$1/mnt/work" /etc
      [ "$2" = - ] || test -f /etc/ipop-ipsec/ipop-ipsecd.yaml
      exec "$3" "$4" remove' sh "$WORK" "$config" "$DASH" "$PRERM" 2>&1 >/dev/null) ||
    fail "prerm remove failed: $ERR"
  QUERIED=$(sed -n 's/^xfrm policy list priority //p' "$WORK/ip.log" | tr '\n' ' ' | sed 's/ $//')
}

config() {  # TEXT: writes a config file, prints its path
  local f=$WORK/config.$((++CONFIGS)).yaml
  printf '%s' "$1" >"$f"
  echo "$f"
}
CONFIGS=0

"$DASH" -n "$PRERM" || fail "prerm is not valid POSIX sh (dash -n)"
pass "prerm parses under dash"

run_prerm - 250000
[[ $QUERIED == "250000 1000" ]] || fail "no config: queried '$QUERIED', expected the racoon defaults 250000 1000"
[[ $ERR == *"priorities 250000 and 1000"*"deleteall priority 250000"*"deleteall priority 1000"* ]] ||
  fail "no config, policies at 250000: message is '$ERR'"
pass "no config: the racoon defaults 250000 and 1000, named in the message"

run_prerm - 42
[[ -z $ERR ]] || fail "no policies left, yet prerm said: $ERR"
pass "no policies left: no message"

run_prerm "$SRC/config/ipop-ipsecd.yaml" 1000
[[ $QUERIED == "250000 1000" ]] || fail "the shipped example: queried '$QUERIED'"
[[ $ERR == *"priorities 250000 and 1000"* ]] || fail "the shipped example, a bypass policy left: '$ERR'"
pass "the shipped example config: 250000 and 1000; a bypass policy alone is found too"

run_prerm "$(config $'ike:\n  backend: strongswan   # IKEv2\n')" 500000
[[ $QUERIED == "500000 1000" ]] || fail "strongswan backend: queried '$QUERIED', expected 500000 1000"
[[ $ERR == *"priorities 500000 and 1000"* ]] || fail "strongswan backend: message '$ERR'"
pass "ike.backend strongswan: the default protect priority 500000"

run_prerm "$(config $'# node 7\nike:\n  backend: racoon\nxfrm:\n  # moved away from charon\n  protect_priority: 260000  # ours\n  bypass_priority: "900"\ndaemon:\n  log_level: debug\n')" 260000
[[ $QUERIED == "260000 900" ]] || fail "configured priorities: queried '$QUERIED', expected 260000 900"
[[ $ERR == *"priorities 260000 and 900"*"deleteall priority 260000"*"deleteall priority 900"* ]] ||
  fail "configured priorities: message '$ERR'"
pass "xfrm.protect_priority / bypass_priority from the config (comments, quotes)"

run_prerm "$(config $'ike:\n  backend: strongswan\nxfrm:\n  protect_priority: 700000\n')" 250000
[[ $QUERIED == "700000 1000" ]] || fail "protect set, bypass default: queried '$QUERIED'"
[[ -z $ERR ]] || fail "policies at 250000 belong to someone else here, yet prerm said: $ERR"
pass "only the configured priorities count (250000 is not ours with protect_priority 700000)"

run_prerm "$(config $'daemon:\n  protect_priority: 1\nxfrm: {protect_priority: 2}\n#xfrm:\n  bypass_priority: 3\n')" 250000
[[ $QUERIED == "250000 1000" ]] || fail "keys outside a block xfrm section: queried '$QUERIED', expected the defaults"
pass "keys of other sections, flow style, commented-out sections: the defaults"

echo "PASS: prerm_priorities ($CHECKS checks)"
