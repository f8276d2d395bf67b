#!/usr/bin/env bash
# The Prometheus alert rules shipped for the metrics file (deploy/prometheus/ipop-ipsec.rules.yml):
# `promtool check rules` accepts them, `promtool test rules` runs the scenarios of
# metrics_alert_rules.test.yml (a crashed node whose file stays with healthy 1 but an old
# timestamp, a cleanly stopped node whose file is gone, an unhealthy node, a node without
# ipop-ipsec), the same scenarios fail against rules with the staleness check taken out (the
# test can fail), and docs/operations.md ("Monitoring with Prometheus") holds the rules verbatim.
# Usage: metrics_alert_rules.sh [IPOP_IPSECD_BINARY BUILD_DIR]   (no root needed)
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RULES=$SRC/deploy/prometheus/ipop-ipsec.rules.yml
TESTS=$SRC/tests/integration/metrics_alert_rules.test.yml
CHECKS=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok: $*"; }
command -v promtool >/dev/null || fail "needed tool 'promtool' is missing: run scripts/setup --test"
WORK=$(mktemp -d /tmp/ipopsec-rules.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

out=$(promtool check rules "$RULES" 2>&1) || fail "promtool check rules: $out"
[[ $out == *"SUCCESS: 3 rules found"* ]] || fail "expected 3 rules: $out"
ok "promtool check rules accepts $RULES (3 rules)"

out=$(promtool test rules "$TESTS" 2>&1) || fail "promtool test rules: $out"
ok "promtool test rules: the stale, absent and unhealthy scenarios alert as expected"

# The same scenarios against rules whose staleness threshold is 10 minutes: must fail.
mkdir -p "$WORK/deploy/prometheus" "$WORK/tests/integration"
sed 's/ipop_ipsec_metrics_timestamp_seconds > 180/ipop_ipsec_metrics_timestamp_seconds > 600/' "$RULES" \
  >"$WORK/deploy/prometheus/ipop-ipsec.rules.yml"
cmp -s "$RULES" "$WORK/deploy/prometheus/ipop-ipsec.rules.yml" && fail "the staleness expression was not found to change"
cp "$TESTS" "$WORK/tests/integration/"
if out=$(promtool test rules "$WORK/tests/integration/metrics_alert_rules.test.yml" 2>&1); then
  fail "the scenarios pass against rules that miss the crashed node: they test nothing"
fi
[[ $out == *IpopIpsecMetricsStale* ]] || fail "the broken rules failed, but not on the stale alert: $out"
ok "rules with a 600 s threshold fail the crashed-node scenario"

# docs/operations.md: the rules verbatim, from `groups:` on.
awk '/^groups:/ { on = 1 } on' "$RULES" >"$WORK/rules.body"
python3 - "$SRC/docs/operations.md" "$WORK/rules.body" <<'PY' || fail "docs/operations.md does not hold deploy/prometheus/ipop-ipsec.rules.yml verbatim (from groups: on)"
import sys
doc, body = open(sys.argv[1]).read(), open(sys.argv[2]).read()
sys.exit(0 if body and body in doc else 1)
PY
ok "docs/operations.md holds the rules verbatim"
echo "PASS: metrics_alert_rules.sh: $CHECKS checks"
