#!/usr/bin/env bash
# `ipop-ipsecd status` as the operator runs it: the real binary, as root and as an
# unprivileged user (nobody), against state files written here.
#
#  - run by nobody, a daemon pid that belongs to root is running (kill(pid, 0) gives EPERM:
#    the process exists), in the text and in the JSON;
#  - `status --json` prints one valid JSON object on stdout for every exit code (LSB): running
#    and healthy (0), running and not healthy (1), daemon gone / no state file (3), unreadable
#    or not a state file / cannot tell (4), bad command line (64);
#  - health is what the daemon recorded: nobody, who cannot read the kernel's policies, gets 0
#    with kernel_verified null, never a verdict of its own;
#  - the text output starts with "daemon not running" when it is not;
#  - a config on disk that does not validate (the daemon runs on its last good one) is no
#    reason to fail: status reads the state file at the file's daemon.state_dir (as far as it
#    reads) or at the default /run/ipop-ipsec (a private /run here), says the config is not
#    valid with its file:line:col error, shows RELOAD REFUSED, and exits as for a good config;
#    flush removes the policies with the priorities the daemon recorded (real XFRM policies in
#    the namespace).
#
# Every status runs in a network namespace of its own (unshare --net): the XFRM policies it
# compares against are that namespace's (none), never the host's. The only process started
# is a `sleep` standing in for the daemon, killed by its pid.
#
# Usage: status_cli.sh IPOP_IPSECD_BINARY BUILD_DIR

set -euo pipefail

BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (setpriv, unshare)"; exit 0; }

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)

WORK=$(mktemp -d /tmp/ipopsec-status.XXXXXX)
SLEEP_PID=
cleanup() {
  if [[ -n $SLEEP_PID ]]; then kill "$SLEEP_PID" 2>/dev/null || true; wait "$SLEEP_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 0755 "$WORK"
mkdir -m 0755 "$WORK/state"
CONFIG=$WORK/ipop-ipsecd.yaml
# ike.control command: a state_dir of its own with the default unit's drop-in is refused.
printf 'ike:\n  control: command\n  restart_command: [/bin/true]\ndaemon:\n  state_dir: %s/state\n' "$WORK" >"$CONFIG"
chmod 0644 "$CONFIG"
STATE=$WORK/state/state.json

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# status ARGS... as root / as nobody, each in a fresh network namespace. Sets OUT, ERR, RC.
run_status() {
  local who=$1; shift
  local pre=()
  [[ $who == nobody ]] && pre=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  set +e
  OUT=$(unshare --net "${pre[@]}" "$BIN" status "$@" 2>"$WORK/stderr")
  RC=$?
  set -e
  ERR=$(cat "$WORK/stderr")
}

# json_get KEY: prints the top-level KEY of $OUT as JSON; fails unless $OUT is exactly one
# valid JSON object.
json_get() {
  printf '%s' "$OUT" | "$PY" -c '
import json, sys
try:
    obj = json.load(sys.stdin)
except ValueError as e:
    sys.exit("not valid JSON: %s" % e)
if not isinstance(obj, dict):
    sys.exit("not a JSON object")
print(json.dumps(obj.get(sys.argv[1], "<absent>")))' "$1" || fail "status $* printed no valid JSON object:
$OUT
stderr: $ERR"
}

expect_json() {  # KEY EXPECTED-JSON-VALUE WHAT
  local got
  got=$(json_get "$1")
  [[ $got == "$2" ]] || fail "$3: $1 is $got, expected $2 (rc $RC)
$OUT
stderr: $ERR"
}

write_state() {  # PID HEALTHY [RELOAD-REFUSED]
  cat >"$STATE" <<EOF
{
  "status": "protecting 10.254.0.0/16 (test)",
  "healthy": $2,
  "reload_refused": "${3:-}",
  "owned_priorities": [1000, 250000],
  "interface": "ipop",
  "tap_state": "up",
  "ipop_up": true,
  "local_address": "10.254.0.16/16",
  "ranges": ["10.254.0.0/16"],
  "policies": [],
  "ike_unit": "racoon.service",
  "pid": $1,
  "written_at": $(date +%s)
}
EOF
  chmod 0644 "$STATE"
}

# --- a live daemon owned by root --------------------------------------------------------------
sleep 300 &
SLEEP_PID=$!
write_state "$SLEEP_PID" true

run_status nobody --config "$CONFIG" --json
expect_json running true "nobody, root's live pid"
expect_json pid "$SLEEP_PID" "nobody, the state file's keys follow the verdict"
expect_json status '"protecting 10.254.0.0/16 (test)"' "nobody, the state file's keys follow the verdict"
expect_json exit_code "$RC" "nobody"
[[ $RC == 0 ]] || fail "nobody cannot read the kernel's policies: the daemon's own health counts, exit 0, got $RC"
expect_json kernel_verified null "nobody"
[[ $(json_get kernel_note) == *"run status as root"* ]] || fail "nobody: kernel_note does not say why: $OUT"
pass "status --json as nobody: root's live daemon is running (EPERM means it exists); exit 0 as recorded, kernel not verified (null)"

run_status nobody --config "$CONFIG"
[[ $OUT != *"not running"* ]] || fail "status as nobody says the live daemon is not running:
$OUT"
[[ $OUT == *"daemon:     running (pid $SLEEP_PID)"* ]] || fail "no 'daemon: running' line:
$OUT"
pass "status as nobody: 'daemon: running', never 'not running'"

run_status root --config "$CONFIG" --json
[[ $RC == 0 ]] || fail "root, live pid, healthy, the kernel's (empty) policies match: exit 0 expected, got $RC
$OUT
$ERR"
expect_json running true "root"
expect_json protected true "root"
expect_json kernel_verified true "root"
expect_json reason '""' "root"
pass "status --json as root: protected, exit 0"

# --- running, not healthy (as the daemon recorded it) ------------------------------------------
write_state "$SLEEP_PID" false
for who in nobody root; do
  run_status "$who" --config "$CONFIG" --json
  [[ $RC == 1 ]] || fail "$who: running, not healthy: exit 1 expected, got $RC"
  expect_json running true "$who, not healthy"
  expect_json protected false "$who, not healthy"
  expect_json reason '"protecting 10.254.0.0/16 (test)"' "$who, not healthy: the daemon's status line is the reason"
done
run_status root --config "$CONFIG"
[[ $RC == 1 && $OUT == *"health:     NOT healthy"* ]] || fail "text, not healthy: rc $RC
$OUT"
pass "running, not healthy (state.json's healthy: false): exit 1, the daemon's reason"

# --- a config that does not validate while the daemon runs on its last good one ---------------
GOOD=$(cat "$CONFIG")
printf '%s\nprotect:\n  rangez: [10.254.0.0/16]\n' "$GOOD" >"$CONFIG"
write_state "$SLEEP_PID" false "ipop-ipsecd.yaml:6:3: protect.rangez: unknown key"
run_status root --config "$CONFIG" --json
[[ $RC == 1 ]] || fail "broken config, reload refused: exit 1 (running, not healthy) expected, got $RC
$OUT
$ERR"
expect_json running true "broken config"
expect_json config_valid false "broken config"
[[ $(json_get config_errors) == *"$CONFIG:7:3: protect.rangez: unknown key"* ]] ||
  fail "broken config: config_errors lacks file:line:col: $OUT"
expect_json state_file "\"$STATE\"" "broken config: the state file at the file's daemon.state_dir"
expect_json reload_refused '"ipop-ipsecd.yaml:6:3: protect.rangez: unknown key"' "broken config"
[[ $ERR == *"error: $CONFIG:7:3: protect.rangez"* ]] || fail "broken config: the error is not on stderr: $ERR"
run_status root --config "$CONFIG"
[[ $RC == 1 ]] || fail "broken config, text: exit 1 expected, got $RC"
[[ $OUT == *"config:     NOT VALID, the config $CONFIG does not validate: $CONFIG:7:3: protect.rangez: unknown key"* ]] ||
  fail "broken config: no 'config: NOT VALID' line with the error:
$OUT"
[[ $OUT == *"a reload would be refused"* && $OUT == *"reload:     RELOAD REFUSED, running config kept: ipop-ipsecd.yaml:6:3"* ]] ||
  fail "broken config: RELOAD REFUSED not shown:
$OUT"
[[ $OUT == *"daemon:     running (pid $SLEEP_PID)"* ]] || fail "broken config: the daemon is not said to run:
$OUT"
write_state "$SLEEP_PID" true
run_status nobody --config "$CONFIG" --json
[[ $RC == 0 ]] || fail "broken config on disk, daemon healthy on its last good one: exit 0 expected, got $RC
$OUT"
expect_json config_valid false "broken config, healthy daemon"
pass "config on disk does not validate: status reads the running daemon's state, shows the error (file:line:col) and RELOAD REFUSED; exit 1 / 0 as the daemon recorded"

# flush with that config: the priorities the daemon recorded (250000), real policies in a
# namespace of its own; a policy with another priority is left alone.
set +e
FLUSH=$(unshare --net sh -c '
  ip xfrm policy add src 10.254.0.0/16 dst 10.254.0.0/16 dir out priority 250000 tmpl proto esp mode transport &&
  ip xfrm policy add src 10.254.0.0/16 dst 10.254.0.0/16 dir in priority 250000 tmpl proto esp mode transport &&
  ip xfrm policy add src 10.9.0.0/16 dst 10.9.0.0/16 dir out priority 77 tmpl proto esp mode transport &&
  "$0" flush --config "$1" && echo "left: $(ip xfrm policy | grep -c "^src")"' "$BIN" "$CONFIG" 2>"$WORK/stderr")
RC=$?
set -e
[[ $RC == 0 && $FLUSH == *"removing the policies with the priorities the running daemon recorded in $STATE (1000, 250000)"* &&
   $FLUSH == *"removed 2 policies"* && $FLUSH == *"left: 1" ]] || fail "flush with a broken config: rc $RC
$FLUSH
$(cat "$WORK/stderr")"
pass "flush with a broken config: the recorded priorities, says so, removes the daemon's 2 policies and leaves the other"

# The file is not even YAML: its daemon.state_dir cannot be read, the default /run/ipop-ipsec
# is used (a private /run here).
printf 'daemon: [\n' >"$CONFIG"
mkdir -p "$WORK/run/ipop-ipsec"
run_private_run() {  # ARGS... : status in a fresh network and mount namespace, $WORK/run as /run
  set +e
  OUT=$(unshare --net --mount sh -c 'mount --bind "$0" /run && exec "$@"' "$WORK/run" "$BIN" status "$@" 2>"$WORK/stderr")
  RC=$?
  set -e
  ERR=$(cat "$WORK/stderr")
}
run_private_run --config "$CONFIG" --json
[[ $RC == 4 ]] || fail "unparseable config, no state file at the default: exit 4 (cannot tell) expected, got $RC
$OUT"
expect_json running null "unparseable config, nothing at the default"
[[ $(json_get reason) == *"may name another daemon.state_dir"* ]] || fail "unparseable config: reason: $OUT"
STATE_SAVED=$STATE
STATE=$WORK/run/ipop-ipsec/state.json
write_state "$SLEEP_PID" true
run_private_run --config "$CONFIG" --json
[[ $RC == 0 ]] || fail "unparseable config, a healthy daemon's state at the default: exit 0 expected, got $RC
$OUT"
expect_json state_file '"/run/ipop-ipsec/state.json"' "unparseable config"
expect_json config_valid false "unparseable config"
run_private_run --config "$WORK/missing.yaml"
[[ $RC == 0 && $OUT == *"config:     NOT VALID"*"missing.yaml"* && $OUT == *"(the default: the config's daemon.state_dir cannot be read)"* ]] ||
  fail "missing config, text: rc $RC
$OUT"
rm -f "$STATE"
STATE=$STATE_SAVED
printf '%s\n' "$GOOD" >"$CONFIG"
pass "a config that is not YAML (or missing): the default state dir; 4 (cannot tell) without a state file there, 0 with a healthy one"

# --- the daemon is gone -------------------------------------------------------------------------
kill "$SLEEP_PID"
wait "$SLEEP_PID" 2>/dev/null || true
GONE=$SLEEP_PID
SLEEP_PID=
for who in nobody root; do
  run_status "$who" --config "$CONFIG" --json
  [[ $RC == 3 ]] || fail "$who: dead pid: exit 3 (not running) expected, got $RC"
  expect_json running false "$who, dead pid"
  expect_json protected false "$who, dead pid"
  run_status "$who" --config "$CONFIG"
  [[ $OUT == "daemon not running"* ]] || fail "$who: text does not start with 'daemon not running':
$OUT"
done
pass "pid $GONE gone: running false (JSON), text starts with 'daemon not running', exit 3"

# --- no state file ------------------------------------------------------------------------------
rm -f "$STATE"
for who in nobody root; do
  run_status "$who" --config "$CONFIG" --json
  [[ $RC == 3 ]] || fail "$who: no state file: exit 3 expected, got $RC"
  expect_json running false "$who, no state file"
  expect_json exit_code 3 "$who, no state file"
  [[ $(json_get reason) == *"no state file"* ]] || fail "$who: no reason given: $OUT"
  run_status "$who" --config "$CONFIG"
  [[ $RC == 3 && $OUT == "daemon not running"* ]] || fail "$who: no state file, text: rc $RC
$OUT"
done
pass "no state file: valid JSON {running: false, reason}, text 'daemon not running', exit 3"

# --- a state file nobody may read ----------------------------------------------------------------
write_state 1 true
chmod 0600 "$STATE"
run_status nobody --config "$CONFIG" --json
[[ $RC == 4 ]] || fail "unreadable state file: exit 4 (cannot tell) expected, got $RC"
expect_json running null "unreadable state file: unknown"
pass "unreadable state file: valid JSON, running null (unknown), exit 4"

# --- not a state file (YAML, not JSON) -------------------------------------------------------------
printf 'status: forged\nhealthy: true\npid: 1\n' >"$STATE"
chmod 0644 "$STATE"
run_status nobody --config "$CONFIG" --json
[[ $RC == 4 ]] || fail "non-JSON state file: exit 4 expected, got $RC"
expect_json running null "non-JSON state file"
[[ $(json_get reason) == *"not valid JSON"* ]] || fail "non-JSON state file: reason: $OUT"
pass "a state file that is YAML but not JSON: valid JSON out, exit 4"

# --- bad command line -----------------------------------------------------------------------------
run_status nobody --config "$CONFIG" --json --no-such-option
[[ $RC == 64 ]] || fail "bad option: exit 64 expected, got $RC"
expect_json exit_code 64 "bad option"
pass "bad command line (64): valid JSON"

echo "PASS: status_cli ($CHECKS checks)"
