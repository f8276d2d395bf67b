#!/usr/bin/env bash
# packaging/debian/prerm, `remove`: it looks for the daemon's policies at the priorities
# the daemon's state file records (/run/ipop-ipsec/state.json, owned_priorities: also an
# earlier priority the config no longer names) and at those of the installed config
# (xfrm.protect_priority / bypass_priority; defaults 250000, or 500000 with ike.backend
# strongswan, and 1000), and names those that hold policies, with the command that removes
# them. Under systemd it stops ipop-ipsecd, then the IKE daemon's unit (the state file's
# ike_unit, else the config's, else the backend's; none with ike.control: command).
#
# The script runs under dash (POSIX sh, as dpkg runs it) in a private mount namespace whose
# /etc is an overlay (upper layer on a tmpfs of that namespace) holding the test's
# /etc/ipop-ipsec/ipop-ipsecd.yaml, and whose /run is a tmpfs holding the test's state file
# (and /run/systemd/system when the case is "under systemd"): the host's /etc and /run are
# never written. `ip`, `systemctl` and `deb-systemd-invoke` are stubs first in PATH: `ip`
# logs its arguments and reports a policy at the priorities in $STUB_PRIORITY only,
# `systemctl is-active` says active, `deb-systemd-invoke` logs what it is asked to do.
# Nothing touches the kernel or a service.
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
for p in \$STUB_PRIORITY; do
  [ "\$*" = "xfrm policy list priority \$p" ] && echo "src 10.254.0.0/16 dst 10.254.0.0/16 dir out priority \$p"
done
exit 0
EOF
printf '#!/bin/sh\necho "$*" >>"%s/invoke.log"\nexit 0\n' "$WORK" >"$WORK/bin/deb-systemd-invoke"
printf '#!/bin/sh\n[ "$1" = is-active ] && echo active\nexit 0\n' >"$WORK/bin/systemctl"
chmod 0755 "$WORK/bin/ip" "$WORK/bin/deb-systemd-invoke" "$WORK/bin/systemctl"

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# run_prerm CONFIG_FILE|- STUB_PRIORITIES [STATE_FILE|- [systemd]]: runs `prerm remove`,
# with that state file as /run/ipop-ipsec/state.json, under systemd if asked; sets ERR (its
# stderr), QUERIED (the priorities it asked `ip` about, space-separated) and INVOKED (what it
# asked deb-systemd-invoke, one call a line).
run_prerm() {
  local config=$1
  : >"$WORK/ip.log"
  : >"$WORK/invoke.log"
  ERR=$(STUB_PRIORITY=$2 PATH="$WORK/bin:$PATH" unshare --mount --propagation private \
    "$DASH" -c '
      set -e
      mount -t tmpfs tmpfs "$1/mnt"
      mkdir -p "$1/mnt/upper/ipop-ipsec" "$1/mnt/work"
      [ "$2" = - ] || cp "$2" "$1/mnt/upper/ipop-ipsec/ipop-ipsecd.yaml"
      [ "$5" = - ] || cp "$5" "$1/mnt/state.json"
      mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/mnt/upper,workdir=$1/mnt/work" /etc
      [ "$2" = - ] || test -f /etc/ipop-ipsec/ipop-ipsecd.yaml
      mount -t tmpfs tmpfs /run
      [ "$5" = - ] || { mkdir -p /run/ipop-ipsec; cp "$1/mnt/state.json" /run/ipop-ipsec/state.json; }
      [ "$6" != systemd ] || mkdir -p /run/systemd/system
      exec "$3" "$4" remove' sh "$WORK" "$config" "$DASH" "$PRERM" "${3:--}" "${4:-}" 2>&1 >/dev/null) ||
    fail "prerm remove failed: $ERR"
  QUERIED=$(sed -n 's/^xfrm policy list priority //p' "$WORK/ip.log" | tr '\n' ' ' | sed 's/ $//')
  INVOKED=$(cat "$WORK/invoke.log")
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
[[ $ERR == *"(priority 250000) stay"*"remove them with: ip xfrm policy deleteall priority 250000 (see"* ]] ||
  fail "no config, policies at 250000: message is '$ERR'"
pass "no config: the racoon defaults 250000 and 1000 asked; 250000, which holds policies, named"

run_prerm - 42
[[ -z $ERR ]] || fail "no policies left, yet prerm said: $ERR"
pass "no policies left: no message"

run_prerm "$SRC/config/ipop-ipsecd.yaml" 1000
[[ $QUERIED == "250000 1000" ]] || fail "the shipped example: queried '$QUERIED'"
[[ $ERR == *"(priority 1000) stay"*"deleteall priority 1000 (see"* ]] || fail "the shipped example, a bypass policy left: '$ERR'"
pass "the shipped example config: 250000 and 1000; a bypass policy alone is found too"

run_prerm "$(config $'ike:\n  backend: strongswan   # IKEv2\n')" 500000
[[ $QUERIED == "500000 1000" ]] || fail "strongswan backend: queried '$QUERIED', expected 500000 1000"
[[ $ERR == *"(priority 500000) stay"* ]] || fail "strongswan backend: message '$ERR'"
pass "ike.backend strongswan: the default protect priority 500000"

run_prerm "$(config $'# node 7\nike:\n  backend: racoon\nxfrm:\n  # moved away from charon\n  protect_priority: 260000  # ours\n  bypass_priority: "900"\ndaemon:\n  log_level: debug\n')" "260000 900"
[[ $QUERIED == "260000 900" ]] || fail "configured priorities: queried '$QUERIED', expected 260000 900"
[[ $ERR == *"(priorities 260000 and 900) stay"*"remove them with: ip xfrm policy deleteall priority 260000; ip xfrm policy deleteall priority 900 (see"* ]] ||
  fail "configured priorities: message '$ERR'"
pass "xfrm.protect_priority / bypass_priority from the config (comments, quotes)"

run_prerm "$(config $'ike:\n  backend: strongswan\nxfrm:\n  protect_priority: 700000\n')" 250000
[[ $QUERIED == "700000 1000" ]] || fail "protect set, bypass default: queried '$QUERIED'"
[[ -z $ERR ]] || fail "policies at 250000 belong to someone else here, yet prerm said: $ERR"
pass "only the configured priorities count (250000 is not ours with protect_priority 700000)"

run_prerm "$(config $'daemon:\n  protect_priority: 1\nxfrm: {protect_priority: 2}\n#xfrm:\n  bypass_priority: 3\n')" 250000
[[ $QUERIED == "250000 1000" ]] || fail "keys outside a block xfrm section: queried '$QUERIED', expected the defaults"
pass "keys of other sections, flow style, commented-out sections: the defaults"

# The state file of a daemon whose policies still carry 250000, while the config on disk
# already names 260000 (edited, not reloaded): only the state file knows 250000.
state() {  # OWNED IKE_UNIT: a state file as the daemon writes it (its lines that matter here)
  local f=$WORK/state.$((++CONFIGS)).json
  printf '{\n  "schema_version": 1,\n  "owned_priorities": [%s],\n  "ike_backend": "racoon",\n  "ike_unit": "%s",\n  "pid": 7,\n  "written_at": "2026-01-01T00:00:00Z"\n}\n' "$1" "$2" >"$f"
  echo "$f"
}
moved=$(config $'xfrm:\n  protect_priority: 260000\n  bypass_priority: 900\n')
run_prerm "$moved" "250000 900" "$(state "900, 250000" racoon.service)"
[[ $QUERIED == "900 250000 260000" ]] || fail "state file + config: queried '$QUERIED', expected 900 250000 260000"
[[ $ERR == *"(priorities 900 and 250000) stay"*"deleteall priority 900; ip xfrm policy deleteall priority 250000 (see"* ]] ||
  fail "state file + config: message '$ERR'"
pass "owned_priorities of the state file: 250000, which the config no longer names, is found and named"

run_prerm "$moved" "250000" "$(state "" racoon.service)"
[[ $QUERIED == "260000 900" ]] || fail "empty owned_priorities: queried '$QUERIED', expected the config's 260000 900"
pass "a state file without owned priorities: the config's"

# Under systemd: ipop-ipsecd first, then the IKE daemon's unit.
run_prerm "$(config $'ike:\n  backend: racoon\n')" "" "$(state "1000, 500000" strongswan.service)" systemd
[[ $INVOKED == $'stop ipop-ipsecd.service\nstop strongswan.service' ]] || fail "state file's ike_unit: invoked '$INVOKED'"
[[ $ERR == *"stopping strongswan.service"* ]] || fail "the stop of the IKE daemon is not said: '$ERR'"
pass "under systemd: ipop-ipsecd stopped, then the IKE unit the state file names (strongswan.service)"

run_prerm "$(config $'ike:\n  backend: strongswan\n')" "" - systemd
[[ $INVOKED == $'stop ipop-ipsecd.service\nstop strongswan.service' ]] || fail "no state file, backend strongswan: invoked '$INVOKED'"
run_prerm - "" - systemd
[[ $INVOKED == $'stop ipop-ipsecd.service\nstop racoon.service' ]] || fail "no state file, no config: invoked '$INVOKED'"
run_prerm "$(config $'ike:\n  backend: racoon\n  unit: "racoon-groupvpn.service"  # ours\n')" "" - systemd
[[ $INVOKED == $'stop ipop-ipsecd.service\nstop racoon-groupvpn.service' ]] || fail "config's ike.unit: invoked '$INVOKED'"
pass "without a state file: the config's ike.unit, else the backend's unit"

run_prerm "$(config $'ike:\n  control: command\n  restart_command: [/usr/local/sbin/restart-ike]\n')" "" - systemd
[[ $INVOKED == "stop ipop-ipsecd.service" ]] || fail "ike.control command: invoked '$INVOKED'"
run_prerm - "" "$(state "" "ike.restart_command /usr/local/sbin/restart-ike")" systemd
[[ $INVOKED == "stop ipop-ipsecd.service" ]] || fail "state file with a restart command: invoked '$INVOKED'"
pass "ike.control: command: only ipop-ipsecd is stopped (the operator's command runs the IKE daemon)"

run_prerm - "" "$(state "" strongswan.service)"
[[ -z $INVOKED ]] || fail "without systemd: invoked '$INVOKED'"
pass "without systemd: nothing is stopped"

echo "PASS: prerm_priorities ($CHECKS checks)"
