#!/usr/bin/env bash
# The command line's help and error lines, from outside (the real binary):
#
#  - `ipop-ipsecd --help` is the overview: exit 0, every command named;
#  - `ipop-ipsecd COMMAND --help` (and -h) for check, render, status, flush, pki, pki init-ca,
#    pki issue: exit 0, stdout only, its usage line ("usage: ipop-ipsecd COMMAND"), and none of
#    the options that belong to other commands only (render's --address, status's --json,
#    issue's --ca-dir, ...);
#  - a bad option (and an unknown command, a missing required option, a bad value) exits 64
#    with a line starting "error: " on stderr, and nothing but such lines there;
#  - the other error paths keep their exit codes and the same "error: " form on stderr: a
#    missing config (78, check/flush/render; status reports it and, with no state file at
#    the default place, cannot tell: 4), certificate problems (check: 1), a bad
#    --address (64), an --output-dir that is a file (64); render creates a missing
#    --output-dir (mkdir -p, mode 0755 whatever the umask).
#
# status and flush run in a network namespace of their own (unshare --net, root only; skipped
# otherwise): the kernel policies they read are that namespace's, none.
#
# Usage: cli_help.sh IPOP_IPSECD_BINARY BUILD_DIR

set -euo pipefail

BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
WORK=$(mktemp -d /tmp/ipopsec-cli-help.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=0
[[ $(id -u) == 0 ]] && ROOT=1

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# run ARGS...: sets OUT, ERR, RC.
run() {
  set +e
  "$BIN" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  RC=$?
  set -e
  OUT=$(cat "$WORK/stdout")
  ERR=$(cat "$WORK/stderr")
}
run_netns() {
  set +e
  unshare --net "$BIN" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  RC=$?
  set -e
  OUT=$(cat "$WORK/stdout")
  ERR=$(cat "$WORK/stderr")
}
got() { printf 'exit %s\nstdout:\n%s\nstderr:\n%s' "$RC" "$OUT" "$ERR"; }

# has_option TEXT OPTION: OPTION (e.g. --out) appears as a whole option, not inside another
# (--output-dir is not --out).
has_option() { grep -Eq -- "(^|[^[:alnum:]-])$2([^[:alnum:]-]|$)" <<<"$1"; }

# expect_error WHAT CODE: exit CODE, at least one "error: " line, every stderr line one.
expect_error() {
  [[ $RC == "$2" ]] || fail "$1: exit $2 expected; $(got)"
  grep -q '^error: ' <<<"$ERR" || fail "$1: no line starting 'error: ' on stderr; $(got)"
  local l
  while IFS= read -r l; do
    [[ -z $l || $l == "error: "* ]] || fail "$1: a stderr line not of the form 'error: ...': '$l'; $(got)"
  done <<<"$ERR"
}

# Each command's own options: those no other command has. --config is shared by the
# daemon and check/render/status/flush; --days, --key, --force by the two pki subcommands.
declare -A OWN=(
  [run]="--version"
  [check]="--strict --reload"
  [render]="--address --output-dir"
  [status]="--json"
  [flush]=""
  [pki init-ca]="--dir --name"
  [pki issue]="--ca-dir --ip --dns --out"
)
MAIN_SHARED="--config"
PKI_SHARED="--days --key --force"

# --- the overview --------------------------------------------------------------------------
for h in --help -h; do
  run "$h"
  [[ $RC == 0 && -z $ERR ]] || fail "ipop-ipsecd $h: exit 0 and nothing on stderr expected; $(got)"
  for c in check render status flush pki; do
    grep -q "ipop-ipsecd $c" <<<"$OUT" || fail "ipop-ipsecd $h does not name '$c'; $(got)"
  done
done
run --version
[[ $RC == 0 && $OUT == "ipop-ipsecd "* ]] || fail "--version; $(got)"
pass "ipop-ipsecd --help / -h: the overview names every command; --version works"

# --- COMMAND --help ------------------------------------------------------------------------
for sub in check render status flush "pki init-ca" "pki issue"; do
  read -r -a argv <<<"$sub"
  others=""
  for k in "${!OWN[@]}"; do [[ $k == "$sub" ]] || others+=" ${OWN[$k]}"; done
  # The main commands' shared option is another command's to the pki ones, and the reverse.
  if [[ $sub == pki* ]]; then others+=" $MAIN_SHARED"; else others+=" $PKI_SHARED"; fi
  for h in --help -h; do
    run "${argv[@]}" "$h"
    [[ $RC == 0 ]] || fail "$sub $h: exit 0 expected; $(got)"
    [[ -z $ERR ]] || fail "$sub $h: stderr not empty; $(got)"
    grep -q "^usage: ipop-ipsecd $sub" <<<"$OUT" || fail "$sub $h: no 'usage: ipop-ipsecd $sub' line; $(got)"
    for o in ${OWN[$sub]} $([[ $sub == pki* ]] && echo "$PKI_SHARED" || echo "$MAIN_SHARED"); do
      has_option "$OUT" "$o" || fail "$sub $h: its own option $o is not shown; $(got)"
    done
    for o in $others; do
      ! has_option "$OUT" "$o" || fail "$sub $h: shows $o, another command's option; $(got)"
    done
  done
  pass "$sub --help / -h: exit 0, its usage and options (${OWN[$sub]:-only the shared ones}), no other command's"
done

# pki --help: the pki overview, both subcommands, none of the main commands' options.
run pki --help
[[ $RC == 0 && -z $ERR ]] || fail "pki --help; $(got)"
grep -q "ipop-ipsecd pki init-ca" <<<"$OUT" && grep -q "ipop-ipsecd pki issue" <<<"$OUT" ||
  fail "pki --help does not name init-ca and issue; $(got)"
for o in $MAIN_SHARED ${OWN[render]} ${OWN[status]} ${OWN[run]}; do
  ! has_option "$OUT" "$o" || fail "pki --help shows $o; $(got)"
done
pass "pki --help: both subcommands, no option of the main commands"

# --- bad command lines: 64, "error: " -------------------------------------------------------
for sub in "" check render status flush "pki init-ca" "pki issue"; do
  read -r -a argv <<<"$sub"
  run "${argv[@]}" --no-such-option
  expect_error "${sub:-ipop-ipsecd} --no-such-option" 64
  [[ -z $OUT ]] || fail "${sub:-ipop-ipsecd} --no-such-option: stdout not empty; $(got)"
done
pass "a bad option: exit 64, 'error: ' on stderr, for the daemon and every command"

run frobnicate
expect_error "an unknown command" 64
run pki
expect_error "pki without a subcommand" 64
run pki frobnicate
expect_error "an unknown pki subcommand" 64
run check --address 10.0.0.1/8
expect_error "render's --address given to check" 64
run render --config /dev/null --address 10.0.0.1/8
expect_error "render without --output-dir" 64
run pki init-ca --dir "$WORK/ca" --key dsa
expect_error "pki init-ca --key dsa" 64
run pki issue --ca-dir "$WORK/no-ca" --ip 10.254.0.16
expect_error "pki issue without --out" 64
pass "unknown command, missing subcommand, an option of another command, missing required options, bad values: 64, 'error: '"

run pki issue --out "$WORK/x" --ca-dir "$WORK/no-ca" --ip 10.254.0.16
expect_error "pki issue with a CA directory that does not exist" 1
pass "pki issue with no CA: exit 1 (as before), 'error: '"

# --- other error paths: the same form, the same exit codes ----------------------------------
# status and flush fall back to the running daemon's state file (none at the default place in
# a private /run): status cannot tell (4), flush cannot tell which policies are its own (78).
run_private_run() {
  set +e
  unshare --net --mount sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' sh "$BIN" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  RC=$?
  set -e
  OUT=$(cat "$WORK/stdout")
  ERR=$(cat "$WORK/stderr")
}
for sub in check render status flush; do
  extra=()
  [[ $sub == render ]] && extra=(--address 10.254.0.16/16 --output-dir "$WORK/r0")
  if [[ $ROOT == 1 ]]; then
    run_private_run "$sub" --config "$WORK/missing.yaml" "${extra[@]}"
  elif [[ $sub == status || $sub == flush ]]; then
    continue  # would read the host's /run/ipop-ipsec
  else
    run "$sub" --config "$WORK/missing.yaml" "${extra[@]}"
  fi
  code=78
  [[ $sub == status ]] && code=4
  expect_error "$sub with a missing config" "$code"
  grep -q "^error: .*missing.yaml" <<<"$ERR" || fail "$sub: the missing config is not named; $(got)"
done
pass "a missing config: 'error: ' lines naming it; exit 78 (check, render, flush), 4 (status: cannot tell)"

CONFIG=$WORK/ipop-ipsecd.yaml
# ike.control command: a state_dir of its own with the default unit's drop-in is refused.
printf 'ike:\n  control: command\n  restart_command: [/bin/true]\nracoon:\n  certificate_dir: %s/certs\ndaemon:\n  state_dir: %s/state\n' "$WORK" "$WORK" >"$CONFIG"
run check --config "$CONFIG"
expect_error "check without certificates" 1
[[ $OUT == *"config ok; 3 certificate problems"* ]] || fail "check without certificates; $(got)"
pass "check without certificates: exit 1, one 'error: ' line per problem on stderr"

run render --config "$CONFIG" --address 10.254.0.300/16 --output-dir "$WORK/r1"
expect_error "render --address 10.254.0.300/16" 64
touch "$WORK/file"
run render --config "$CONFIG" --address 10.254.0.16/16 --output-dir "$WORK/file/sub"
expect_error "render --output-dir under a regular file" 64
set +e
(umask 077 && "$BIN" render --config "$CONFIG" --address 10.254.0.16/16 --output-dir "$WORK/new/a/b" >"$WORK/stdout" 2>"$WORK/stderr")
RC=$?
set -e
OUT=$(cat "$WORK/stdout")
ERR=$(cat "$WORK/stderr")
[[ $RC == 0 && -s $WORK/new/a/b/policies.txt ]] || fail "render into a missing directory; $(got)"
for d in new new/a new/a/b; do
  [[ $(stat -c %a "$WORK/$d") == 755 ]] || fail "render: $d created with mode $(stat -c %a "$WORK/$d"), not 0755"
done
pass "render: a bad --address or an --output-dir under a file: 64, 'error: '; a missing --output-dir is created (0755)"

if [[ $ROOT == 1 ]]; then
  run_netns status --config "$CONFIG"
  [[ $RC == 3 && $OUT == "daemon not running"* ]] || fail "status without a state file: exit 3; $(got)"
  mkdir -p "$WORK/state"
  echo 'not: json' >"$WORK/state/state.json"
  run_netns status --config "$CONFIG"
  expect_error "status with a state file that is not one" 4
  run_netns flush --config "$CONFIG"
  [[ $RC == 0 && $OUT == "removed 0 policies" && -z $ERR ]] || fail "flush in an empty namespace; $(got)"
  pass "status: 3 without a state file, 4 and 'error: ' with a bad one; flush: 0"
else
  echo "SKIP: status and flush in a network namespace need root"
fi

echo "PASS: cli_help ($CHECKS checks)"
