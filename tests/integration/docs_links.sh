#!/usr/bin/env bash
# Every Markdown link in README.md and docs/*.md leads somewhere: each relative link's target
# file (or directory) exists inside the repository, and each #anchor is a heading of the
# target Markdown file (GitHub's anchors: lower case, punctuation dropped, spaces -> '-',
# a repeated heading gets -1, -2, ...). Links in fenced code blocks and inline code are not
# links; http(s) and mailto links are not followed (the tests never touch the network).
# No doc sends a reader outside the repository (../shared, /work/...).
# A benchmark's figure names the section of docs/performance.md it comes from: each "quoted
# name" between a link to performance.md and the next ')' begins a heading of that file.
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

def prose(path):
    """The file's text outside fenced code blocks, runs of white space as one space."""
    out, fence = [], None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if m:
            fence = m.group(1) if fence is None else (None if m.group(1)[0] == fence[0] else fence)
            continue
        if fence is None:
            out.append(line)
    return re.sub(r"\s+", " ", "".join(out))

def headings(path):
    hs, fence = [], None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if m:
            fence = m.group(1) if fence is None else (None if m.group(1)[0] == fence[0] else fence)
        elif fence is None and (h := re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*$", line)):
            hs.append(h.group(1))
    return hs

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
    for m in re.finditer(r"\]\(([^)#\s]*performance\.md)\)([^)]*)", prose(path)):
        dest = os.path.realpath(os.path.join(os.path.dirname(path), m.group(1)))
        if not os.path.exists(dest):
            continue                                            # reported above
        for name in re.findall(r"\"([^\"]+)\"", m.group(2)):
            count += 1
            if not any(h.startswith(name) for h in headings(dest)):
                errors.append(f"{rel}: \"{name}\" (after a link to {m.group(1)}) begins no heading of {os.path.relpath(dest, root)}")
for e in errors:
    print("broken:", e)
print(f"{count} links and section names in {len(files)} files, {len(errors)} broken")
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
(about 1 ms: [perf](docs/performance.md), "Reaction
latency", "Idle")

```sh
# not a heading
[not a link](nowhere.md)
```
EOF
printf '# Performance\n### Reaction latency: x -> y\n### Idle cost\n' >"$F/docs/performance.md"
cat >"$F/docs/a.md" <<'EOF'
# A
## Details
## Details
[back](../README.md#top) [up](../config/x.yaml)
EOF
python3 "$WORK/check.py" "$F" "$F/README.md" "$F/docs/a.md" >"$WORK/good.out" 2>&1 ||
  fail "the checker refuses good links: $(cat "$WORK/good.out")"
grep -q '^11 links and section names in 2 files, 0 broken$' "$WORK/good.out" ||
  fail "the checker did not count the fixture's 9 links and 2 section names: $(cat "$WORK/good.out")"
ok "the checker accepts the fixture's 9 good links and 2 section names (code blocks and inline code skipped)"
cat >"$F/docs/b.md" <<'EOF'
# B
[1](missing.md) [2](a.md#no-such-heading) [3](#not-here) [4](../../outside.md)
[5](../config/x.yaml#anchor) [6](/etc/passwd) see ../shared/DESIGN.md
([performance.md](performance.md), "Reaction time")
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
  "docs/b.md: mentions '../shared' (outside the repository)" \
  'docs/b.md: "Reaction time" (after a link to performance.md) begins no heading of docs/performance.md'; do
  grep -qF "broken: $want" "$WORK/bad.out" || fail "the checker did not report '$want': $(cat "$WORK/bad.out")"
done
ok "the checker reports each of the fixture's 7 broken links and its wrong section name"

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
