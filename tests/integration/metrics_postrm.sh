#!/usr/bin/env bash
# packaging/debian/postrm removes the metrics file (daemon.metrics_file) that a daemon which
# did not stop cleanly left behind, on `remove` (which `purge` runs first, while the config,
# a conffile, is still there): read from the installed config (quoted, commented), left
# alone when the config sets none, when it is not the daemon's (a first line other than an
# ipop_ipsec_ family: said on stderr) or a symlink, and on `purge` alone (config gone).
#
# The script runs under dash (as dpkg runs it) in a private mount and network namespace whose
# /etc (holding the test's config), /var/lib and /run are overlays (upper layers on a tmpfs of
# that namespace): the host's files and policies are never touched (remove records what purge
# needs in /var/lib/ipop-ipsec; purge removes files and policies). deb-systemd-helper and journalctl are stubs first in PATH.
#
# Usage: metrics_postrm.sh IPOP_IPSECD_BINARY BUILD_DIR   (root: mount namespace)

set -euo pipefail

[[ $(id -u) == 0 ]] || { echo "FAIL: needs root (mount namespace)" >&2; exit 1; }
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
POSTRM=$SRC/packaging/debian/postrm
DASH=$(command -v dash || echo /bin/sh)

WORK=$(mktemp -d /tmp/ipopsec-postrm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/mnt" "$WORK/textfile"
for stub in deb-systemd-helper journalctl systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/stubs.log"\nexit 0\n' "$stub" "$WORK" >"$WORK/bin/$stub"
  chmod 0755 "$WORK/bin/$stub"
done

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# run_postrm CONFIG_FILE|- ACTION: runs `postrm ACTION` with that config installed; sets ERR.
run_postrm() {
  ERR=$(PATH="$WORK/bin:$PATH" unshare --mount --net --propagation private \
    "$DASH" -c '
      set -e
      mount -t tmpfs tmpfs "$1/mnt"
      mkdir -p "$1/mnt/upper/ipop-ipsec" "$1/mnt/work" "$1/mnt/lib/upper" "$1/mnt/lib/work" "$1/mnt/run/upper" "$1/mnt/run/work"
      [ "$2" = - ] || cp "$2" "$1/mnt/upper/ipop-ipsec/ipop-ipsecd.yaml"
      mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/mnt/upper,workdir=$1/mnt/work" /etc
      mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$1/mnt/lib/upper,workdir=$1/mnt/lib/work" /var/lib
      mount -t overlay overlay -o "lowerdir=/run,upperdir=$1/mnt/run/upper,workdir=$1/mnt/run/work" /run
      [ "$2" = - ] || test -f /etc/ipop-ipsec/ipop-ipsecd.yaml
      [ "$2" != - ] || ! test -e /etc/ipop-ipsec/ipop-ipsecd.yaml
      exec "$3" "$4" "$5"' sh "$WORK" "$1" "$DASH" "$POSTRM" "$2" 2>&1 >/dev/null) ||
    fail "postrm $2 failed: $ERR"
}
PROM=$WORK/textfile/ipop-ipsec.prom
metrics() { printf '# HELP ipop_ipsec_info x\n# TYPE ipop_ipsec_info gauge\nipop_ipsec_info 1\n' >"$PROM"; }
config() {  # DAEMON-SECTION-LINES: a config file, its path printed
  local f=$WORK/config.$((++CONFIGS)).yaml
  printf 'ipop:\n  interface: ipop\ndaemon:\n%b' "$1" >"$f"
  echo "$f"
}
CONFIGS=0

"$DASH" -n "$POSTRM" || fail "postrm is not valid POSIX sh (dash -n)"
pass "postrm parses under dash"

metrics
run_postrm "$(config "  metrics_file: $PROM\n")" remove
[[ ! -e $PROM ]] || fail "remove: the metrics file a crashed daemon left is still there"
[[ -z $ERR ]] || fail "remove said: $ERR"
pass "remove: the metrics file named by daemon.metrics_file is removed"

metrics
run_postrm "$(config "  log_level: info\n  metrics_file: \"$PROM\"   # for node_exporter\n  state_dir: /run/ipop-ipsec\n")" remove
[[ ! -e $PROM ]] || fail "remove: a quoted, commented metrics_file was not found"
pass "remove: a quoted value with a comment, among other keys"

metrics
run_postrm "$(config "  metrics_file: \"\"\n")" remove
[[ -e $PROM ]] || fail "remove: metrics_file \"\" (off) removed a file"
run_postrm "$(config "  log_level: info\n")" remove
[[ -e $PROM ]] || fail "remove: no metrics_file in the config, yet a file was removed"
run_postrm "$SRC/config/ipop-ipsecd.yaml" remove
[[ -e $PROM ]] || fail "remove: the shipped example config (metrics off) removed a file"
pass "remove: metrics off (\"\", absent, the shipped example): nothing removed"

printf 'not ours\n' >"$WORK/textfile/other.prom"
run_postrm "$(config "  metrics_file: $WORK/textfile/other.prom\n")" remove
[[ -e $WORK/textfile/other.prom ]] || fail "remove: a file that does not hold ipop-ipsecd's metrics was removed"
[[ $ERR == *"other.prom (daemon.metrics_file) does not hold ipop-ipsecd's metrics; left in place"* ]] ||
  fail "remove, a foreign file: said '$ERR'"
ln -s "$PROM" "$WORK/textfile/link.prom"
run_postrm "$(config "  metrics_file: $WORK/textfile/link.prom\n")" remove
[[ -L $WORK/textfile/link.prom && -e $PROM ]] || fail "remove: a symlink (or what it points to) was removed"
pass "remove: a foreign file (said on stderr) and a symlink are left in place"

run_postrm - purge
[[ -e $PROM ]] || fail "purge without a config removed a file"
pass "purge with the config gone: nothing to read, no error"
grep -q '^deb-systemd-helper mask ipop-ipsecd.service' "$WORK/stubs.log" || fail "remove did not mask the unit any more"
pass "remove still masks the unit"
echo "PASS: metrics_postrm.sh: $CHECKS checks"
