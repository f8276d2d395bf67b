#!/usr/bin/env bash
# README.md's "## Quick start", run as a new operator would run it on a fresh clone: the
# commands are EXTRACTED from the README (its first ```sh block after "## Quick start"), so
# the README and the program cannot drift apart.
#
# Substitutions, the only ones (each must apply where stated, or the test fails):
#  1. a leading `sudo ` is dropped: the test runs as root already (and sudo may be absent);
#  2. `build/ipop-ipsecd` -> the binary under test (ctest's build dir, not the README's build/);
#  3. `/tmp/out` -> a directory of this test that does not exist yet (render must create it).
#
# Lines skipped, and what is checked of them instead:
#  - the one running `scripts/setup` (apt-get: needs the network and installs packages;
#    with it `scripts/build`, which builds into the source tree's build/): both scripts
#    exist, are executable and parse (`bash -n`);
#  - the daemon in the foreground (the binary with no command: it runs until stopped):
#    `--help` works, and `check` with the very arguments of that line exits neither 64
#    (bad command line) nor 78 (config error).
#
# Every other line runs verbatim (after the substitutions) with bash, from the top of the
# source tree, in a sandbox: a new network namespace (`unshare --net`: the kernel policies
# that status and flush see are that namespace's, none) and mount namespace in which
# /etc/racoon and /run/ipop-ipsec, if this machine has them, are hidden under empty tmpfs
# mounts, as on a fresh machine (no certificates, no daemon state). Asserted per command,
# as the README's text promises:
#  - check:  exit 1; "config ok; 3 certificate problems" on stdout; on stderr one
#            "error: /etc/racoon/certs/<file> does not exist" line for each of cacert.pem,
#            host-cert.pem and host-key.pem, and nothing but "error: " lines;
#  - render: exit 0; the missing --output-dir created (mode 0755) with racoon.conf,
#            ipsec-tools.conf and policies.txt (the ESP require policies of 172.31.0.0/16),
#            a "wrote" line for each; nothing on stderr; /etc/ipsec-tools.conf untouched;
#  - status: exit 3; stdout starts "daemon not running: no state file /run/ipop-ipsec/state.json";
#  - flush:  exit 0; "removed 0 policies".
# And wherever a line's comment says "exit N:", its exit code is N.
# A line of the block this test does not know fails the test (say what it promises here).
#
# Usage: readme_quickstart.sh IPOP_IPSECD_BINARY BUILD_DIR

set -euo pipefail

BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (unshare --net --mount)"; exit 0; }
BIN=$(realpath "$BIN")
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
README=$SRC/README.md

WORK=$(mktemp -d /tmp/ipopsec-quickstart.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
OUTDIR=$WORK/out  # substitution 3; must not exist before render

CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

# --- the block, from the README ---------------------------------------------------------------
mapfile -t BLOCK < <(awk '
  /^## Quick start[[:space:]]*$/ { inside = 1; next }
  inside && /^## /               { exit }
  inside && !code && /^```sh[[:space:]]*$/ { code = 1; next }
  code && /^```/                 { exit }
  code                           { print }' "$README")
((${#BLOCK[@]} > 0)) || fail "README.md: no \`\`\`sh block under '## Quick start'"
echo "README.md Quick start: ${#BLOCK[@]} lines"

# run_sandboxed LINE: sets OUT, ERR, RC.
run_sandboxed() {
  set +e
  unshare --net --mount bash -c '
    for d in /etc/racoon /run/ipop-ipsec; do
      if [[ -d $d ]]; then mount -t tmpfs -o mode=0755 ipopsec-quickstart "$d" || exit 125; fi
    done
    cd "$1" || exit 125
    eval "$2"' readme-quickstart "$SRC" "$1" >"$WORK/stdout" 2>"$WORK/stderr"
  RC=$?
  set -e
  OUT=$(cat "$WORK/stdout")
  ERR=$(cat "$WORK/stderr")
  [[ $RC != 125 ]] || fail "the sandbox could not be set up: $ERR"
}

# only_error_lines: every non-empty stderr line has the CLI's one error form.
only_error_lines() {
  local l
  while IFS= read -r l; do
    [[ -z $l || $l == "error: "* ]] || fail "$1: a stderr line not of the form 'error: ...': $l"
  done <<<"$ERR"
}

ipsec_tools_before=$(stat -c '%Y %s %i' /etc/ipsec-tools.conf 2>/dev/null || echo absent)
declare -A SEEN=()
n=0
for raw in "${BLOCK[@]}"; do
  n=$((n + 1))
  [[ -n ${raw//[[:space:]]/} ]] || continue
  where="README.md Quick start, line $n: $raw"

  # The skipped lines.
  if [[ $raw == *scripts/setup* ]]; then
    for s in setup build; do
      [[ -x $SRC/scripts/$s ]] || fail "$where: scripts/$s is not an executable file"
      bash -n "$SRC/scripts/$s" || fail "$where: scripts/$s does not parse"
    done
    SEEN[setup]=1
    pass "skipped (apt-get, builds into build/): scripts/setup and scripts/build exist and parse"
    continue
  fi

  line=$raw
  [[ $line == "sudo "* ]] && line=${line#sudo }                                  # substitution 1
  [[ $line == build/ipop-ipsecd\ * ]] || fail "$where: neither scripts/setup nor build/ipop-ipsecd"
  line="$(printf '%q' "$BIN")${line#build/ipop-ipsecd}"                          # substitution 2
  read -r -a words <<<"${raw%%#*}"
  [[ ${words[0]} == sudo ]] && words=("${words[@]:1}")
  cmd=${words[1]:-}
  comment=""
  [[ $raw == *"#"* ]] && comment=${raw#*#}

  if [[ -z $cmd || $cmd == -* ]]; then
    # The daemon in the foreground: it runs until stopped. Its command line must parse and
    # the config it names must validate (check with the same arguments: 1 = certificates).
    set +e
    "$BIN" --help >"$WORK/help" 2>&1
    hrc=$?
    (cd "$SRC" && "$BIN" check "${words[@]:1}" >/dev/null 2>"$WORK/stderr")
    crc=$?
    set -e
    [[ $hrc == 0 ]] && grep -q "run the daemon" "$WORK/help" || fail "$where: ipop-ipsecd --help: exit $hrc
$(cat "$WORK/help")"
    [[ $crc != 64 && $crc != 78 ]] || fail "$where: its arguments do not parse or its config does not validate \
(check ${words[*]:1}: exit $crc)
$(cat "$WORK/stderr")"
    SEEN[daemon]=1
    pass "skipped (the daemon, in the foreground): --help works; check ${words[*]:1} exits $crc, not 64/78"
    continue
  fi

  if [[ $cmd == render ]]; then
    [[ $line == *" --output-dir /tmp/out"* ]] || fail "$where: render's --output-dir is not /tmp/out any more: update this test"
    line=${line/ --output-dir \/tmp\/out/ --output-dir $(printf '%q' "$OUTDIR")}  # substitution 3
    [[ ! -e $OUTDIR ]] || fail "$OUTDIR exists before render"
  fi

  run_sandboxed "$line"
  got="exit $RC
stdout:
$OUT
stderr:
$ERR"
  if [[ $comment =~ exit\ ([0-9]+): ]]; then
    [[ $RC == "${BASH_REMATCH[1]}" ]] || fail "$where: the README says exit ${BASH_REMATCH[1]}; got $got"
  fi
  case $cmd in
    check)
      [[ $RC == 1 ]] || fail "$where: exit 1 expected (config ok, no certificates); got $got"
      [[ $OUT == *"config ok; 3 certificate problems"* ]] || fail "$where: no 'config ok; 3 certificate problems'; got $got"
      for f in cacert.pem host-cert.pem host-key.pem; do
        grep -q "^error: /etc/racoon/certs/$f does not exist" <<<"$ERR" ||
          fail "$where: no 'error: /etc/racoon/certs/$f does not exist' on stderr; got $got"
      done
      only_error_lines "$where"
      pass "check: exit 1, config ok, one error line for each of the 3 missing certificate files"
      ;;
    render)
      [[ $RC == 0 ]] || fail "$where: exit 0 expected; got $got"
      [[ -d $OUTDIR && $(stat -c %a "$OUTDIR") == 755 ]] || fail "$where: $OUTDIR not created with mode 0755"
      for f in racoon.conf ipsec-tools.conf policies.txt; do
        [[ -s $OUTDIR/$f ]] || fail "$where: $OUTDIR/$f missing or empty; got $got"
        [[ $OUT == *"wrote $OUTDIR/$f"* ]] || fail "$where: no 'wrote $OUTDIR/$f'; got $got"
      done
      for dir in in out; do
        grep -qx "$dir 172.31.0.0/16 -> 172.31.0.0/16 esp/transport/require prio [0-9]*" "$OUTDIR/policies.txt" ||
          fail "$where: policies.txt has no '$dir' require policy for 172.31.0.0/16:
$(cat "$OUTDIR/policies.txt")"
      done
      [[ -z $ERR ]] || fail "$where: stderr not empty; got $got"
      [[ $(stat -c '%Y %s %i' /etc/ipsec-tools.conf 2>/dev/null || echo absent) == "$ipsec_tools_before" ]] ||
        fail "$where: /etc/ipsec-tools.conf changed"
      pass "render: exit 0, the missing output dir created (0755) with racoon.conf, ipsec-tools.conf, policies.txt"
      ;;
    status)
      [[ $RC == 3 ]] || fail "$where: exit 3 expected (no daemon running); got $got"
      [[ $OUT == "daemon not running: no state file /run/ipop-ipsec/state.json"* ]] ||
        fail "$where: not 'daemon not running: no state file /run/ipop-ipsec/state.json'; got $got"
      pass "status: exit 3, 'daemon not running: no state file /run/ipop-ipsec/state.json'"
      ;;
    flush)
      [[ $RC == 0 ]] || fail "$where: exit 0 expected; got $got"
      [[ $OUT == "removed 0 policies" ]] || fail "$where: not 'removed 0 policies'; got $got"
      [[ -z $ERR ]] || fail "$where: stderr not empty; got $got"
      pass "flush: exit 0, 'removed 0 policies'"
      ;;
    *)
      fail "$where: a command this test does not know ('$cmd'): add what the README promises of it"
      ;;
  esac
  SEEN[$cmd]=1
done

for want in setup check render daemon status flush; do
  [[ -n ${SEEN[$want]:-} ]] || fail "README.md Quick start: no '$want' line any more (update this test)"
done
echo "PASS: readme_quickstart ($CHECKS checks)"
