#!/usr/bin/env bash
# `ipop-ipsecd status` as the operator runs it: the real binary, as root and as an
# unprivileged user (nobody), against state files written here.
#
#  - run by nobody, a daemon pid that belongs to root is running (kill(pid, 0) gives EPERM:
#    the process exists), in the text and in the JSON;
#  - `status --json` prints one valid JSON object on stdout for every exit code: protected (0),
#    daemon gone (2), no state file / unreadable / not a state file (3), bad command line (64),
#    config error (78);
#  - the text output starts with "daemon not running" when it is not.
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
printf 'daemon:\n  state_dir: %s/state\n' "$WORK" >"$CONFIG"
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

write_state() {  # PID HEALTHY
  cat >"$STATE" <<EOF
{
  "status": "protecting 10.254.0.0/16 (test)",
  "healthy": $2,
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
[[ $RC == 2 ]] || fail "nobody cannot read the kernel's policies, so not verified: exit 2, got $RC"
expect_json kernel_verified false "nobody"
pass "status --json as nobody: root's live daemon is running (EPERM means it exists); exit 2, kernel not verified"

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

# --- the daemon is gone -------------------------------------------------------------------------
kill "$SLEEP_PID"
wait "$SLEEP_PID" 2>/dev/null || true
GONE=$SLEEP_PID
SLEEP_PID=
for who in nobody root; do
  run_status "$who" --config "$CONFIG" --json
  [[ $RC == 2 ]] || fail "$who: dead pid: exit 2 expected, got $RC"
  expect_json running false "$who, dead pid"
  expect_json protected false "$who, dead pid"
  run_status "$who" --config "$CONFIG"
  [[ $OUT == "daemon not running"* ]] || fail "$who: text does not start with 'daemon not running':
$OUT"
done
pass "pid $GONE gone: running false (JSON), text starts with 'daemon not running', exit 2"

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
[[ $RC == 3 ]] || fail "unreadable state file: exit 3 expected, got $RC"
expect_json running null "unreadable state file: unknown"
pass "unreadable state file: valid JSON, running null (unknown), exit 3"

# --- not a state file (YAML, not JSON) -------------------------------------------------------------
printf 'status: forged\nhealthy: true\npid: 1\n' >"$STATE"
chmod 0644 "$STATE"
run_status nobody --config "$CONFIG" --json
[[ $RC == 3 ]] || fail "non-JSON state file: exit 3 expected, got $RC"
expect_json running null "non-JSON state file"
[[ $(json_get reason) == *"not valid JSON"* ]] || fail "non-JSON state file: reason: $OUT"
pass "a state file that is YAML but not JSON: valid JSON out, exit 3"

# --- config error, bad command line -------------------------------------------------------------
run_status nobody --config "$WORK/missing.yaml" --json
[[ $RC == 78 ]] || fail "missing config: exit 78 expected, got $RC"
expect_json running null "missing config"
[[ $(json_get reason) == *"missing.yaml"* ]] || fail "missing config: reason does not name the file: $OUT"
run_status nobody --config "$CONFIG" --json --no-such-option
[[ $RC == 64 ]] || fail "bad option: exit 64 expected, got $RC"
expect_json exit_code 64 "bad option"
pass "config error (78) and bad command line (64): valid JSON"

echo "PASS: status_cli ($CHECKS checks)"
