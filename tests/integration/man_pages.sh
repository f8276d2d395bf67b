#!/usr/bin/env bash
# The man pages: both render without a warning (man -l, groff -ww), ipop-ipsecd(8) shows
# every command and option the binary itself lists (--help) and the strongSwan backend,
# and ipop-ipsecd.yaml(5) documents exactly the keys of the example config
# config/ipop-ipsecd.yaml, which are exactly the keys the config parser knows (asked from
# the binary: a section given as a scalar makes `check` list the section's keys).
# Usage: man_pages.sh IPOP_IPSECD_BINARY BUILD_DIR   (no root needed)
set -euo pipefail
BIN=${1:?usage: $0 IPOP_IPSECD_BINARY BUILD_DIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN8=$SRC/docs/ipop-ipsecd.8
MAN5=$SRC/docs/ipop-ipsecd.yaml.5
EXAMPLE=$SRC/config/ipop-ipsecd.yaml
WORK=$(mktemp -d /tmp/ipopsec-man.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }
for t in man groff; do command -v "$t" >/dev/null || fail "needed tool '$t' is missing: run scripts/setup --test"; done

# --- rendering ------------------------------------------------------------------------------
for page in "$MAN8" "$MAN5"; do
  warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "man --warnings -l $(basename "$page") warns:
$warnings"
  warnings=$(groff -ww -man -Tutf8 -z "$page" 2>&1)
  [[ -z $warnings ]] || fail "groff -ww -man $(basename "$page") warns:
$warnings"
  [[ $(MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l) -gt 50 ]] || fail "$(basename "$page") renders to almost nothing"
  ok "$(basename "$page") renders without warnings"
done
TEXT8=$(MANWIDTH=200 man -l "$MAN8" 2>/dev/null | col -bx)
TEXT5=$(MANWIDTH=200 man -l "$MAN5" 2>/dev/null | col -bx)

# --- ipop-ipsecd(8): every command and each command's options -------------------------------
commands=$("$BIN" --help | sed -n 's/^\(usage:\)\? *ipop-ipsecd \([a-z]\+\) .*/\2/p' | sort -u)
pki=$("$BIN" pki --help | sed -n 's/^\(usage:\)\? *ipop-ipsecd pki \([a-z-]\+\) .*/\2/p' | sort -u)
[[ $(wc -w <<<"$commands") -ge 5 && $(wc -w <<<"$pki") -ge 4 ]] ||
  fail "could not read the commands from --help (got: $commands / pki: $pki)"
for c in $commands; do
  [[ $c == pki ]] && continue
  grep -q "^ *ipop-ipsecd $c\b" <<<"$TEXT8" || fail "ipop-ipsecd(8) SYNOPSIS lacks 'ipop-ipsecd $c'"
done
for c in $pki; do
  grep -q "^ *ipop-ipsecd pki $c\b" <<<"$TEXT8" || fail "ipop-ipsecd(8) SYNOPSIS lacks 'ipop-ipsecd pki $c'"
done
ok "ipop-ipsecd(8) shows every command: $(echo $commands) and pki $(echo $pki)"
while read -r c; do
  [[ -z $c || $c == pki ]] && continue
  for o in $("$BIN" $c --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$o\b" <<<"$TEXT8" || fail "ipop-ipsecd(8) does not mention '$o' of '$c'"
  done
done < <(printf '%s\n' $commands; printf 'pki %s\n' $pki)
ok "ipop-ipsecd(8) mentions every option of every command"
for w in "backend: strongswan" "strongswan.service" "swanctl" "charon" "ipop-ipsecd.yaml(5)"; do
  grep -qF -- "$w" <<<"$TEXT8" || fail "ipop-ipsecd(8) says nothing of '$w' (the strongSwan backend)"
done
ok "ipop-ipsecd(8) covers the strongSwan backend"

# --- ipop-ipsecd.yaml(5) vs. the example config vs. the parser -------------------------------
# The example's keys: "section:" at column 0, "  key:" below it, "    key:" under phase1/2;
# keys shown commented out with their default ("  # unit: racoon.service") count too.
awk '
  /^[a-z_0-9]+:/ { sec = $1; sub(":.*", "", sec); sub2 = ""; next }
  /^  [a-z_0-9]+:/ { k = $1; sub(":.*", "", k); print sec "." k; sub2 = k; next }
  /^    [a-z_0-9]+:/ { k = $1; sub(":.*", "", k); print sec "." sub2 "." k; next }
  /^  # [a-z_0-9]+: (\[|[^ ]+$)/ { k = $2; sub(":.*", "", k); print sec "." k }
' "$EXAMPLE" | sort -u >"$WORK/example"
# The example's parents (proposals.phase1) are sections, not leaf keys.
grep -E '^[a-z_]+\.(phase1|phase2)\.' "$WORK/example" | cut -d. -f1,2 | sort -u >"$WORK/parents"
comm -23 "$WORK/example" "$WORK/parents" >"$WORK/example.keys"
[[ $(wc -l <"$WORK/example.keys") -ge 30 ]] || fail "read only $(wc -l <"$WORK/example.keys") keys from the example"

# The parser's keys, from the binary: every section (and proposals.phase1/phase2) given as
# a scalar makes `check` say "expected a mapping with the keys a, b, ...".
keys_of() {  # YAML-TEXT PREFIX
  printf '%s\n' "$1" >"$WORK/probe.yaml"
  { "$BIN" check --config "$WORK/probe.yaml" 2>&1 || true; } | sed -n "s/.* $2: expected a mapping with the keys\? \\(.*\\), got .*/\\1/p" |
    sed 's/ and /, /; s/, /\n/g' | sed "s/^/$2./"
}
printf 'no_such_section_zz: 1\n' >"$WORK/probe.yaml"
sections=$({ "$BIN" check --config "$WORK/probe.yaml" 2>&1 || true; } | sed -n 's/.*known keys here: //p' | sed 's/ and /, /; s/, /\n/g')
[[ $(wc -w <<<"$sections") -ge 8 ]] || fail "could not read the sections from check's error (got: $sections)"
: >"$WORK/schema.keys"
for s in $sections; do
  if [[ $s == proposals ]]; then
    keys_of "proposals: {phase1: 1, phase2: 1}" proposals.phase1 >>"$WORK/schema.keys"
    keys_of "proposals: {phase1: 1, phase2: 1}" proposals.phase2 >>"$WORK/schema.keys"
    keys_of "proposals: 1" proposals | grep -v -e '^proposals.phase1$' -e '^proposals.phase2$' >>"$WORK/schema.keys"
  else
    keys_of "$s: 1" "$s" >>"$WORK/schema.keys"
  fi
done
sort -u -o "$WORK/schema.keys" "$WORK/schema.keys"
[[ $(wc -l <"$WORK/schema.keys") -ge 30 ]] || fail "read only $(wc -l <"$WORK/schema.keys") keys from the parser"
diff -u "$WORK/schema.keys" "$WORK/example.keys" >"$WORK/d1" ||
  fail "the example config and the parser disagree on the keys (- parser only, + example only):
$(cat "$WORK/d1")"
ok "config/ipop-ipsecd.yaml shows exactly the parser's $(wc -l <"$WORK/schema.keys") keys"

# The man page's keys: those in the tags of its .TP entries (the line after .TP), before
# "(default ...".
awk 'prev == ".TP" { print } { prev = $0 }' "$MAN5" | sed 's/(default.*//' | grep -oE '\b(ipop|protect|ike|racoon|strongswan|certificates|proposals|xfrm|daemon)\.[a-z_0-9]+(\.[a-z_0-9]+)?' |
  sort -u >"$WORK/man.keys"
diff -u "$WORK/example.keys" "$WORK/man.keys" >"$WORK/d2" ||
  fail "ipop-ipsecd.yaml(5) and the example config disagree on the keys (- example only, + man page only):
$(cat "$WORK/d2")"
ok "ipop-ipsecd.yaml(5) documents exactly those keys"
# Each key's default in the example appears in its man entry (the scalar defaults).
while read -r key value; do
  entry=$(awk -v k="$key" 'prev == ".TP" && index($0, k) { on = 1; print; prev = $0; next }
                           on && /^\.TP/ { exit } on { print } { prev = $0 }' "$MAN5")
  grep -qF -- "$value" <<<"$entry" || fail "ipop-ipsecd.yaml(5): the entry of $key does not show the example's default '$value'"
done < <(awk '
  /^[a-z_0-9]+:/ { sec = $1; sub(":.*", "", sec); next }
  /^  [a-z_0-9]+: [a-z0-9\/]+$/ { k = $1; sub(":.*", "", k); print sec "." k, $2 }' "$EXAMPLE")
ok "every scalar default of the example is the one ipop-ipsecd.yaml(5) shows"
echo "PASS: man_pages.sh: $CHECKS checks"
