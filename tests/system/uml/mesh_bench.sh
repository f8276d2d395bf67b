#!/usr/bin/env bash
# The N-node mesh in User-Mode-Linux, measured against the two anchors nothing can beat (on
# demand: `scripts/bench mesh`), and checked (CI: tests/system/uml_mesh8.sh, --no-anchor).
# One UML guest holds N+1 nodes (network namespaces), each with its own charon-systemd; the
# guest script (tests/system/uml/mesh_guest.sh, phases in mesh_nodes.sh) times, on the same
# nodes in the same run:
#   a  last tap up -> every pair exchanging ESP          (N nodes come up in range A)
#   b  range change on all nodes -> every pair again     (all N move to range B)
#   c  one node joins the running mesh -> ESP with all   (node N+1, range B)
# with ipop-ipsecd on every node ("daemon"), and for the anchors, with no daemon and exactly
# the files ipop-ipsecd renders for the final addresses: "limit", every charon already
# running with all its connections loaded before the event (only IKE is left); "ideal", a
# watcher per node (tests/bench/addr_watch.cpp) starts charon (a, c) or loads the new files
# (b) the moment IPOP is up on its node (the tap's address there and the tap up with carrier:
# the daemon's own condition), all nodes in parallel (the product's order), then removes the
# larval states of unanswered ACQUIREs as the daemon does once charon listens, and after a
# start retries unanswered ACQUIREs on the daemon's ike.acquire_retry schedule
# (tests/bench/larval_flush.cpp).
# --peer-anchor adds the old hand-timed anchor with one connection per peer ("anchor").
# It asserts every pair's ESP (answered probes, SA packet counters, the capture) and no
# plaintext; the timings are printed, never asserted. Every round counts: a round that timed
# out or failed its checks is a failure in the table, never dropped.
#   mesh_bench.sh IPOP_IPSECD BUILD_DIR [--nodes N] [--rounds R] [--no-anchor | --peer-anchor] [--mem SIZE]
#                 [--one-way] [--patch-reqid] [--compare-acquire-retry] [--markdown FILE]
# The anchors need BUILD_DIR/tests/bench/ipopsec_addr_watch (cmake --build BUILD_DIR --target
# ipopsec_addr_watch). --one-way: only one node of each pair sends probes (one IKE initiator
# per pair); by default both do at once, as real traffic does. --patch-reqid: an experiment
# (mesh_reqid.sh). --compare-acquire-retry: each round also runs the daemon with
# ike.acquire_retry off ("daemon_noretry"). --mem: the guest's memory (default 512M up to 8
# nodes, 64M more per node above). --markdown writes the results as a docs/performance.md
# section to FILE. IPOPSEC_MESH_KEEP=1 keeps the work folder (every node's logs) for a look.
set -euo pipefail
bin=$(realpath "$1")
build=$(realpath "$2")
shift 2
src=$(cd "$(dirname "$0")/../../.." && pwd)
nodes=8 rounds=1 anchor=1 mem= markdown= ways=2 patch=0 noretry=0
while (($#)); do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-anchor) anchor=0; shift ;;
    --peer-anchor) anchor=2; shift ;;
    --one-way) ways=1; shift ;;
    --patch-reqid) patch=1; shift ;;
    --compare-acquire-retry) noretry=1; shift ;;
    --mem) mem=$2; shift 2 ;;
    --markdown) markdown=$2; shift 2 ;;
    *) echo "mesh_bench: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[[ $nodes =~ ^[0-9]+$ ]] && ((nodes >= 2 && nodes <= 60)) || { echo "mesh_bench: --nodes $nodes: give 2..60" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ ]] && ((rounds >= 1)) || { echo "mesh_bench: --rounds $rounds: give 1 or more" >&2; exit 2; }
[[ -n $mem ]] || mem=$((512 + 64 * (nodes > 8 ? nodes - 8 : 0)))M
watch=$build/tests/bench/ipopsec_addr_watch
if ((anchor)) && [[ ! -x $watch || ! -x $build/tests/bench/ipopsec_larval_flush ]]; then
  echo "mesh_bench: the anchors need $watch and ipopsec_larval_flush beside it: cmake --build $build --target" \
    "ipopsec_addr_watch ipopsec_larval_flush (or give --no-anchor)" >&2
  exit 1
fi
source "$src/tests/system/uml/mesh_setup.sh"
mesh_host_init uml-mesh-bench "$build"

for i in $(seq 1 $((nodes + 1))); do
  ((i > 1)) || mesh_ca ca "GroupVPN CA"
  mesh_cert "n$i" ca "10.254.0.$((10 + i))" "n$i.groupvpn"
done

# The guest runs copies: editing the scripts in the tree during a run must not change it.
mkdir -p "$work/uml"
cp "$src/tests/system/uml/"{mesh_guest.sh,mesh_nodes.sh,mesh_probe.pl,mesh_reqid.sh,echo.pl,charon_restart.sh} "$work/uml/"
phases=$((1 + noretry + (anchor ? 2 : 0) + (anchor == 2)))
timeout=$((nodes > 8 ? 15 * nodes : 120))   # the guest's per scenario (mesh_guest.sh)
guest_ok=1
mesh_guest_run mesh_bench $((240 + rounds * phases * (3 * (timeout + 10) + 60 + 5 * nodes))) "$mem" \
  "$work/uml/mesh_guest.sh" "$work" "$bin" "$work" "$nodes" "$rounds" "$anchor" "$ways" "$patch" "$noretry" "$watch" ||
  guest_ok=0

# --- the tables: every round, from the guest's $work/times, steps, mem and phase_s ----------
names=(daemon limit ideal)
((anchor == 2)) && names+=(anchor)
((noretry)) && names+=(daemon_noretry)
((anchor)) || names=(daemon)
# stats PHASE SCEN: "COUNT FAILED MIN MEDIAN MAX EVERY_ROUND..." of PHASE's rounds of SCEN; a
# failed round ("none": a pair never answered within the guest's timeout; "bad": the ESP
# checks failed) counts as longer than every time: it is in the count and moves the median
# up, and the median is "failed" when it falls on one
stats() {
  awk -v p="$1" -v s="$2" '$1 == p && $2 == s { n++; r = r " " $4; if ($4 ~ /^[0-9.]+$/) v[++k] = $4 + 0; else f++ }
    function at(i) { return i <= k ? v[i] : "F" }
    END {
      if (!n) { print "0 0 - - - -"; exit }
      for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      if (n % 2) med = at((n + 1) / 2)
      else med = (at(n / 2) == "F" || at(n / 2 + 1) == "F") ? "F" : (at(n / 2) + at(n / 2 + 1)) / 2
      printf "%d %d %s %s %s%s\n", n, f, k ? sprintf("%.2f", v[1]) : "-", med == "F" ? "failed" : sprintf("%.2f", med),
        f ? "failed" : sprintf("%.2f", v[k]), r
    }' "$work/times" 2>/dev/null || echo "0 0 - - - -"
}
median_of() { local st; read -r -a st <<<"$(stats "$1" "$2")"; echo "${st[3]}"; }
ratio() { if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then awk -v d="$1" -v a="$2" 'BEGIN { printf "%.2f", d / a }'; else echo -; fi; }
what() {
  case $1 in
    a) echo "(a) last tap up -> all $((nodes * (nodes - 1) / 2)) pairs exchanging ESP" ;;
    b) echo "(b) range change on all $nodes nodes -> all pairs again" ;;
    c) echo "(c) node $((nodes + 1)) joins -> ESP with all $nodes others" ;;
  esac
}
rounds_table() {
  echo "| scenario | variant | rounds | failed | min s | median s | max s | every round, s |"
  echo "|---|---|---|---|---|---|---|---|"
  local s v st
  for s in a b c; do
    for v in "${names[@]}"; do
      read -r -a st <<<"$(stats "$v" "$s")"
      echo "| $(what "$s") | $v | ${st[0]} | ${st[1]} | ${st[2]} | ${st[3]} | ${st[4]} | ${st[*]:5} |"
    done
  done
}
ratio_table() {
  local s d i l
  echo "| scenario | daemon s | ideal in order s | limit s | daemon / ideal | daemon / limit | ideal / limit |"
  echo "|---|---|---|---|---|---|---|"
  for s in a b c; do
    d=$(median_of daemon $s) i=$(median_of ideal $s) l=$(median_of limit $s)
    echo "| $(what "$s") | $d | $i | $l | $(ratio "$d" "$i") | $(ratio "$d" "$l") | $(ratio "$i" "$l") |"
  done
}
# step PHASE SCEN COLUMN(5..8): "median (min .. max)" of a steps column over nodes and rounds
step() {
  awk -v p="$1" -v s="$2" -v c="$3" '$1 == p && $2 == s && $c != "-" { v[++k] = $c + 0 }
    END {
      if (!k) { print "-"; exit }
      for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      m = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
      printf "%.3f (%.3f .. %.3f)\n", m, v[1], v[k]
    }' "$work/steps" 2>/dev/null || echo -
}
steps_table() {
  local s v
  echo "| variant | scenario | nodes x rounds | address added -> reaction | -> charon started | -> first connection installed | -> first CHILD_SA established |"
  echo "|---|---|---|---|---|---|---|"
  for s in a c; do
    for v in "${names[@]}"; do
      echo "| $v | $s | $(awk -v p="$v" -v s="$s" '$1 == p && $2 == s' "$work/steps" 2>/dev/null | wc -l) | $(step "$v" $s 5) | $(step "$v" $s 6) | $(step "$v" $s 7) | $(step "$v" $s 8) |"
    done
  done
}
med() { step "$@" | awk '{ print $1 }'; }
sub() { if [[ $1 =~ ^-?[0-9.]+$ && $2 =~ ^-?[0-9.]+$ ]]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; else echo -; fi; }
sec() { if [[ $1 =~ ^-?[0-9.]+$ ]]; then echo "$1 s"; else echo "$1"; fi; }
gap_text() {
  local s=$1 d i l dc ic lc dl il ll dr ds
  d=$(median_of daemon "$s") i=$(median_of ideal "$s") l=$(median_of limit "$s")
  dc=$(med daemon "$s" 8) ic=$(med ideal "$s" 8) lc=$(med limit "$s" 8)
  dl=$(med daemon "$s" 7) il=$(med ideal "$s" 7) ll=$(med limit "$s" 7)
  dr=$(med daemon "$s" 5) ds=$(med daemon "$s" 6)
  echo "($s), medians: the event -> the last pair answering: daemon $(sec "$d"), ideal $(sec "$i"), limit $(sec "$l");"
  echo "daemon - limit $(sec "$(sub "$d" "$l")"), daemon - ideal $(sec "$(sub "$d" "$i")"). Per node, from its address added: the daemon"
  echo "reacts after $(sec "$dr") and its charon is started after $(sec "$ds"), its first connection installed after $(sec "$dl")"
  echo "(ideal $(sec "$il"); the limit's $(sec "$ll"), before the address); the first CHILD_SA after $(sec "$dc") (ideal $(sec "$ic"),"
  echo "limit $(sec "$lc")): the daemon's node has its first CHILD_SA $(sec "$(sub "$dc" "$lc")") after the limit's, the"
  echo "ideal's $(sec "$(sub "$ic" "$lc")") after; the rest of the gap lies between a node's first and last pair."
}
resources() {
  local idle
  idle=$(awk '$1 == "idle" { print $3 " MiB of " $4 }' "$work/mem" 2>/dev/null || true)
  echo "Guest memory in use (MiB of MemTotal) with nothing started: ${idle:-?}; at the end of (c), all $((nodes + 1)) nodes up,"
  echo "per phase and round: $(awk '$1 != "idle" { printf "%s%s r%s %s (load %s)", n++ ? ", " : "", $1, $2, $3, $5 }' "$work/mem" 2>/dev/null)."
  echo "Each phase's wall time in the guest, s: $(awk '{ printf "%s%s r%s %s", n++ ? ", " : "", $1, $2, $3 }' "$work/phase_s" 2>/dev/null)."
}
echo
echo "Mesh of N=$nodes nodes (+1 joiner) in one UML guest (mem=$mem); seconds; every round ($rounds)"
rounds_table
if ((anchor)); then
  echo
  ratio_table
  echo
  steps_table
  echo
  gap_text a
  gap_text c
fi
echo
echo "ipop-ipsecd CPU, all nodes, median s: a $(median_of daemon_cpu a), b $(median_of daemon_cpu b), c $(median_of daemon_cpu c)"
resources
if [[ -n $markdown ]]; then
  {
    echo "### Mesh convergence in User-Mode-Linux: N = $nodes nodes, against the limit and the ideal in order"
    echo
    echo "\`tests/system/uml/mesh_bench.sh --nodes $nodes --rounds $rounds$( ((noretry)) && echo ' --compare-acquire-retry')\`: one UML guest (Linux $kver, mem=$mem, one host CPU) holds"
    echo "$nodes nodes plus a joiner, each a network namespace with its own charon (strongSwan"
    echo "$(dpkg-query -W -f '${Version}' strongswan-libcharon 2>/dev/null || echo '?')) on one overlay segment. Variants, in the same run on the same nodes:"
    echo "- *daemon*: every node runs ipop-ipsecd (backend strongswan, ranges [10.254.0.0/16, 10.253.0.0/16],"
    echo "  its defaults), which starts charon once the tap has its address and reloads it on a change."
    if ((noretry)); then
      echo "- *daemon_noretry*: the same with \`ike.acquire_retry: off\` (no larval state removed after an"
      echo "  ACQUIRE, only once charon listens after a start or reload): what the retry costs or saves here."
    fi
    if ((anchor)); then
      echo "- *limit*: no daemon; every charon already running with all its connections loaded, exactly the"
      echo "  files ipop-ipsecd renders for the final address (\`ipop-ipsecd render\`), before the event: (a) before"
      echo "  the taps get their addresses, (b) range B's files loaded before any address changes, (c) the"
      echo "  joiner's charon up and loaded before its tap. Only IKE is left: nothing can beat it, but it breaks"
      echo "  the order the product requires (charon only once IPOP is up)."
      echo "- *ideal*: the ideal in that order: no daemon; one watcher per node (\`ipopsec_addr_watch\`,"
      echo "  tests/bench/addr_watch.cpp: rtnetlink link and address events, one write, one exec), started before the"
      echo "  event, runs the daemon's own command the moment IPOP is up on its node by the daemon's own test (the"
      echo "  node's address on the tap, the tap up with carrier; the test adds the address, then sets the link up),"
      echo "  all nodes in parallel:"
      echo "  (a, c) charon_restart.sh, the daemon's ike.restart_command (charon-systemd started, the files"
      echo "  loaded); (b) \`swanctl --load-all\` of range B's files, its strongswan.load_command; then, as the"
      echo "  daemon does once charon listens, the larval states of unanswered ACQUIREs removed"
      echo "  (\`ipopsec_larval_flush\`, tests/bench/larval_flush.cpp, the daemon's own code); after a start, the"
      echo "  same process then follows the kernel's ACQUIREs and retries them on the daemon's ike.acquire_retry"
      echo "  schedule (its default, the daemon's AcquireRetry), as the daemon does, until the phase ends, and"
      echo "  starts that schedule over when (b) loads range B's files, as the daemon's reload does."
      ((anchor == 2)) && echo "- *anchor*: no daemon; one connection per peer, each charon started from a shell loop after its tap."
    fi
    echo
    echo "Timed from the event (the last tap up, the last address change, the joiner's tap up) to the last"
    if ((ways == 2)); then
      echo "first answer of a UDP echo between every pair (every node probes all its peers every 100 ms, so both ends"
      echo "of a pair send at once and both charons may initiate);"
    else
      echo "first answer of a UDP echo between every pair (only the lower-numbered node of a pair, and the joiner,"
      echo "probe, every 100 ms: one IKE initiator per pair);"
    fi
    echo "then every pair's ESP SAs must show packets both ways, the capture ESP for every pair and no plaintext."
    if ((patch)); then
      echo "**Experiment (--patch-reqid):** the daemon's swanctl config loaded with a fixed \`reqid\` per child (mesh_reqid.sh)."
    fi
    echo "Every round is listed; a round that timed out (a pair without answer within ${timeout} s: \"none\") or failed"
    echo "its ESP checks (\"bad\") counts as a failure and as longer than any time in the median. The phases"
    echo "of a round run in an order that turns by one each round."
    echo
    rounds_table
    if ((anchor)); then
      echo
      echo "Ratios of the medians above (same run):"
      echo
      ratio_table
      echo
      echo "Where the time goes, per node, from the node's own logs (seconds since the test ran \`ip addr add\` on"
      echo "its tap, whose link it sets up right after; median (min .. max) over the nodes of (a) and the rounds,"
      echo "and the joiner in (c)): the reaction (the daemon's 'restarting' line, the watcher's 'seen' line),"
      echo "charon-systemd started, its first connection installed (the trap), its first CHILD_SA established"
      echo "(charon's log, ms). The limit's charon was started and loaded before (negative):"
      echo
      steps_table
      echo
      gap_text a
      echo
      gap_text c
    fi
    echo
    echo "ipop-ipsecd's own CPU time, its $((nodes + 1)) processes together, from the event until the round's checks were"
    echo "done (user + system, median): (a) $(median_of daemon_cpu a) s, (b) $(median_of daemon_cpu b) s,"
    echo "(c) $(median_of daemon_cpu c) s; on the guest's one CPU, shared with the charons and probers."
    echo
    resources
    echo
    echo "UML caveats: the whole mesh shares one host CPU through UML's ptrace-based system calls"
    echo "(every syscall, fork and exec costs far more than on real hosts, and the $((nodes + 1)) charons, daemons and"
    echo "probers take turns), so the absolute seconds are much larger than on real nodes; the ratios are what"
    echo "this measures, every variant paying the same overhead. The guest ran $mesh_guest_s s in all."
  } >"$markdown"
fi
if ((!guest_ok)); then
  echo "mesh_bench: FAILED (result: $(cat "$work/result" 2>/dev/null || echo none), guest exit $mesh_uml_rc)" >&2
  exit 1
fi
echo "mesh_bench: PASSED"
