#!/usr/bin/env bash
# `ipop-ipsecd check` against what THIS host would refuse at run time, on the real kernel, and
# `check --reload` (systemd's ExecReload) logging its refusal as a refused reload:
#
#  - in a network namespace of its own with a LAN-like interface (a bridge, 10.254.1.1/24), a
#    config protecting 10.254.0.0/16 (which covers it) gets a warning naming the range, the
#    address and the interface; with --strict it is an error (exit 78); a range that covers
#    no address, or protect.allow_underlay_overlap: true, gets no such warning;
#  - check --reload (what `systemctl reload` runs) with a config that does not validate exits
#    78 and, run as systemd runs it (INVOCATION_ID set), sends each error to the journal with
#    MESSAGE_ID = kReloadRefused (the id of a refused SIGHUP, read from lib/core/status/events.hpp) and
#    file:line:col; a standalone systemd-journald in a private mount namespace (tmpfs /run)
#    receives it and journalctl finds it by that id. --reload --strict refuses the overlap the
#    same way. A valid config passes --reload (exit 0) whatever its certificates.
#
# Usage: check_host.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)

set -euo pipefail

BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[[ $(id -u) == 0 ]] || { echo "FAIL: needs root (network and mount namespaces)" >&2; exit 1; }

NS=ipopsec-check-$$
WORK=$(mktemp -d /tmp/ipopsec-check-host.XXXXXX)
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT


CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }
got() { printf 'exit %s\nstdout:\n%s\nstderr:\n%s' "$RC" "$OUT" "$ERR"; }

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add lan0 type bridge
ip -n "$NS" addr add 10.254.1.1/24 dev lan0
ip -n "$NS" link set lan0 up

config() {  # FILE RANGE [PROTECT-EXTRA]
  printf 'protect:\n  ranges: [%s]\n%bike:\n  control: command\n  restart_command: [/bin/true]\nracoon:\n  certificate_dir: %s/certs\ndaemon:\n  state_dir: %s/state\n' \
    "$2" "${3:-}" "$WORK" "$WORK" >"$1"
}
run_ns() {  # ARGS... : ipop-ipsecd in the namespace; sets OUT ERR RC
  set +e
  ip netns exec "$NS" "$BIN" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  RC=$?
  set -e
  OUT=$(cat "$WORK/stdout")
  ERR=$(cat "$WORK/stderr")
}

# --- the underlay overlap, as the daemon would refuse it on this host --------------------------
config "$WORK/overlap.yaml" 10.254.0.0/16
WHY="10.254.0.0/16 covers 10.254.1.1/24 on 'lan0'"
run_ns check --config "$WORK/overlap.yaml"
[[ $RC == 1 ]] || fail "overlap without --strict: a warning only (exit 1 for the missing certificates); $(got)"
grep -q "^warning: this host would refuse a range: $WHY; refusing to protect it" <<<"$OUT" ||
  fail "no warning naming the range, the address and the interface; $(got)"
run_ns check --strict --config "$WORK/overlap.yaml"
[[ $RC == 78 ]] || fail "overlap with --strict: exit 78 expected; $(got)"
grep -q "^error: this host would refuse a range: $WHY" <<<"$ERR" || fail "--strict: no error line; $(got)"
pass "a range over another interface's address: a warning with the reason; --strict: error, exit 78"

config "$WORK/apart.yaml" 10.200.0.0/16
run_ns check --strict --config "$WORK/apart.yaml"
[[ $RC == 1 && $OUT != *"would refuse"* && $ERR != *"would refuse"* ]] || fail "a range apart from every address; $(got)"
config "$WORK/allowed.yaml" 10.254.0.0/16 '  allow_underlay_overlap: true\n'
run_ns check --strict --config "$WORK/allowed.yaml"
[[ $RC == 1 && $OUT != *"would refuse"* && $ERR != *"would refuse"* ]] || fail "allow_underlay_overlap: true; $(got)"
pass "a range that covers no address, or allow_underlay_overlap: true: no refusal (exit 1 only for the certificates)"

run_ns check --reload --config "$WORK/apart.yaml"
[[ $RC == 0 && $OUT == *ok ]] || fail "check --reload of a valid config without certificates: exit 0 expected; $(got)"
pass "check --reload: a valid config passes (certificates are the daemon's to judge)"

# --- check --reload into a real journald ---------------------------------------------------------
ID=$(sed -n 's/.*\bkReloadRefused = "\([0-9a-f]\{32\}\)";.*/\1/p' "$SRC/lib/core/status/events.hpp")
[[ -n $ID ]] || fail "no kReloadRefused in lib/core/status/events.hpp"
cp "$WORK/overlap.yaml" "$WORK/broken.yaml"
printf 'protect:\n  rangez: x\n' >>"$WORK/broken.yaml"  # a second protect: and an unknown key
cat >"$WORK/journal.sh" <<'EOF'
# In a private mount namespace: a tmpfs /run (and /var/log/journal) for a journald of our own.
set -u
BIN=$1 WORK=$2 NS=$3
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/log
[[ -d /var/log/journal ]] && mount -t tmpfs tmpfs /var/log/journal
/lib/systemd/systemd-journald >"$WORK/journald.log" 2>&1 &
JPID=$!
for _ in $(seq 200); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.05; done
[[ -S /run/systemd/journal/socket ]] || { echo "journald did not come up"; cat "$WORK/journald.log"; kill $JPID; exit 2; }
# As systemd runs ExecReload: INVOCATION_ID set (journal logging).
INVOCATION_ID=0123456789abcdef0123456789abcdef "$BIN" check --reload --config "$WORK/broken.yaml" >"$WORK/reload.out" 2>&1
echo "rc=$?" >"$WORK/reload.rc"
# The second refusal: valid config, but this host (the test's namespace) would refuse its range.
INVOCATION_ID=0123456789abcdef0123456789abcdef nsenter --net="$WORK/netns-file" "$BIN" check --reload --strict \
  --config "$WORK/overlap.yaml" >"$WORK/strict.out" 2>&1
echo "rc=$?" >"$WORK/strict.rc"
for _ in $(seq 200); do
  n=$(journalctl -D /run/log/journal --no-pager -o cat "MESSAGE_ID=$4" 2>/dev/null | grep -c 'reload refused')
  [[ $n -ge 2 ]] && break
  sleep 0.05
done
journalctl -D /run/log/journal --no-pager -o export "MESSAGE_ID=$4" >"$WORK/entries.txt" 2>&1
kill $JPID
wait $JPID 2>/dev/null
exit 0
EOF
touch "$WORK/netns-file"
mount --bind "/run/netns/$NS" "$WORK/netns-file"
set +e
unshare --mount bash "$WORK/journal.sh" "$BIN" "$WORK" "$NS" "$ID" >"$WORK/journal.log" 2>&1
RC=$?
set -e
umount "$WORK/netns-file"
[[ $RC == 0 ]] || fail "the journald harness failed: $(cat "$WORK/journal.log")"
[[ $(cat "$WORK/reload.rc") == rc=78 ]] || fail "check --reload with a broken config: exit 78 expected: $(cat "$WORK/reload.rc") $(cat "$WORK/reload.out")"
[[ $(cat "$WORK/strict.rc") == rc=78 ]] || fail "check --reload --strict with the overlap: exit 78 expected: $(cat "$WORK/strict.rc") $(cat "$WORK/strict.out")"
ENTRIES=$(cat "$WORK/entries.txt")
grep -q "^MESSAGE=reload refused: $WORK/broken.yaml:[0-9]*:[0-9]*: protect" <<<"$ENTRIES" ||
  fail "no entry MESSAGE_ID=$ID with the broken config's file:line:col error:
$ENTRIES
check --reload printed: $(cat "$WORK/reload.out")"
grep -q "^MESSAGE=reload refused: this host would refuse a range: $WHY" <<<"$ENTRIES" ||
  fail "no entry MESSAGE_ID=$ID for the refused overlap (--strict):
$ENTRIES"
grep -q "^SYSLOG_IDENTIFIER=ipop-ipsecd$" <<<"$ENTRIES" && grep -q "^IPOPSEC_ACTION=refuse-reload$" <<<"$ENTRIES" ||
  fail "the entries lack SYSLOG_IDENTIFIER=ipop-ipsecd / IPOPSEC_ACTION=refuse-reload:
$ENTRIES"
pass "check --reload: each refusal reaches journald with MESSAGE_ID=$ID (broken config: file:line:col; --strict: the overlap), exit 78"

echo "PASS: check_host ($CHECKS checks)"
