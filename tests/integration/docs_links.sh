#!/usr/bin/env bash
# Every Markdown link in README.md and docs/*.md leads somewhere: each relative link's target
# file (or directory) exists inside the repository, and each #anchor is a heading of the
# target Markdown file (GitHub's anchors: lower case, punctuation dropped, spaces -> '-',
# a repeated heading gets -1, -2, ...). Links in fenced code blocks and inline code are not
# links; http(s) and mailto links are not followed (the tests never touch the network).
# No doc sends a reader outside the repository (../shared, /work/...).
# First the checker is run on a small fixture with one good link of each kind and one broken
# link of each kind, and must accept the first and report every one of the second, so that
# this test can fail. Usage: docs_links.sh [IPOP_IPSECD_BINARY BUILD_DIR] (both unused).
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d /tmp/ipopsec-docs-links.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }

cat >"$WORK/check.py" <<'PY'
import os, re, sys, unicodedata

root = os.path.realpath(sys.argv[1])
files = sys.argv[2:]

def slug(heading):
    h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)     # [text](url) -> text
    h = h.strip().lower()
    h = "".join(c for c in h if c in " -_" or unicodedata.category(c)[0] in "LN")
    return h.replace(" ", "-")

def scan(path):
    """(anchors, links): the file's heading anchors, and (line, target) of each link."""
    anchors, seen, links = set(), {}, []
    fence = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if fence is not None:
            continue
        h = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if h:
            s = slug(h.group(1))
            k = seen.get(s, 0)
            seen[s] = k + 1
            anchors.add(s if k == 0 else f"{s}-{k}")
        for a in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line):
            anchors.add(a)
        text = re.sub(r"(`+).*?\1", "", line)                   # inline code is not a link
        for t in re.findall(r"\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)", text):
            links.append((n, t))
        for t in re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text):  # reference definitions
            links.append((n, t))
    return anchors, links

cache = {}
def anchors_of(path):
    if path not in cache:
        cache[path] = scan(path)[0]
    return cache[path]

errors, count = [], 0
for f in files:
    path = os.path.realpath(f)
    rel = os.path.relpath(path, root)
    text = open(path, encoding="utf-8").read()
    for bad in ("../shared", "/work/"):
        if bad in text:
            errors.append(f"{rel}: mentions '{bad}' (outside the repository)")
    for n, target in scan(path)[1]:
        count += 1
        where = f"{rel}:{n}: ({target})"
        if re.match(r"^(https?|mailto):", target):
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("/"):
            errors.append(f"{where}: neither a relative path nor an http(s) link")
            continue
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else os.path.realpath(os.path.join(os.path.dirname(path), file_part))
        if not (dest == root or dest.startswith(root + os.sep)):
            errors.append(f"{where}: leads outside the repository")
            continue
        if not os.path.exists(dest):
            errors.append(f"{where}: {os.path.relpath(dest, root)} does not exist")
            continue
        if anchor:
            if not dest.endswith(".md"):
                errors.append(f"{where}: an anchor into {os.path.relpath(dest, root)}, which is not Markdown")
            elif anchor not in anchors_of(dest):
                errors.append(f"{where}: {os.path.relpath(dest, root)} has no heading with anchor #{anchor}")
for e in errors:
    print("broken:", e)
print(f"{count} links in {len(files)} files, {len(errors)} broken")
sys.exit(1 if errors else 0)
PY

# --- the checker itself, on a fixture -----------------------------------------------------------
F=$WORK/fixture
mkdir -p "$F/docs" "$F/config"
: >"$F/config/x.yaml"
cat >"$F/README.md" <<'EOF'
# Top

## Quick start: `a` and (b), c.d

[same file](#quick-start-a-and-b-cd) [other](docs/a.md#details) [again](docs/a.md#details-1)
[plain](docs/a.md) [config](config/x.yaml) [web](https://example.org/x#y) `[code](nowhere.md)`

```sh
# not a heading
[not a link](nowhere.md)
```
EOF
cat >"$F/docs/a.md" <<'EOF'
# A
## Details
## Details
[back](../README.md#top) [up](../config/x.yaml)
EOF
python3 "$WORK/check.py" "$F" "$F/README.md" "$F/docs/a.md" >"$WORK/good.out" 2>&1 ||
  fail "the checker refuses good links: $(cat "$WORK/good.out")"
grep -q '^8 links in 2 files, 0 broken$' "$WORK/good.out" || fail "the checker did not count the fixture's 8 links: $(cat "$WORK/good.out")"
ok "the checker accepts the fixture's good links (8, code blocks and inline code skipped)"
cat >"$F/docs/b.md" <<'EOF'
# B
[1](missing.md) [2](a.md#no-such-heading) [3](#not-here) [4](../../outside.md)
[5](../config/x.yaml#anchor) [6](/etc/passwd) see ../shared/DESIGN.md
```
# not-here
```
EOF
if python3 "$WORK/check.py" "$F" "$F/docs/b.md" >"$WORK/bad.out" 2>&1; then
  fail "the checker accepts broken links: $(cat "$WORK/bad.out")"
fi
for want in 'docs/b.md:2: (missing.md): docs/missing.md does not exist' \
  'docs/b.md:2: (a.md#no-such-heading): docs/a.md has no heading with anchor #no-such-heading' \
  'docs/b.md:2: (#not-here): docs/b.md has no heading with anchor #not-here' \
  'docs/b.md:2: (../../outside.md): leads outside the repository' \
  'docs/b.md:3: (../config/x.yaml#anchor): an anchor into config/x.yaml, which is not Markdown' \
  'docs/b.md:3: (/etc/passwd): neither a relative path nor an http(s) link' \
  "docs/b.md: mentions '../shared' (outside the repository)"; do
  grep -qF "broken: $want" "$WORK/bad.out" || fail "the checker did not report '$want': $(cat "$WORK/bad.out")"
done
ok "the checker reports each of the fixture's 7 broken links"

# --- the project's docs -----------------------------------------------------------------------
shopt -s nullglob
docs=("$SRC/README.md" "$SRC"/docs/*.md)
((${#docs[@]} > 1)) || fail "no docs/*.md next to README.md"
if ! python3 "$WORK/check.py" "$SRC" "${docs[@]}" >"$WORK/docs.out" 2>&1; then
  cat "$WORK/docs.out" >&2
  fail "broken links in README.md or docs/*.md (listed above)"
fi
ok "$(tail -n 1 "$WORK/docs.out") (README.md, docs/*.md)"
echo "PASS: docs_links.sh: $CHECKS checks"
