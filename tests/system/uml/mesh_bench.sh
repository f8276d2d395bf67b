#!/usr/bin/env bash
# The N-node mesh in User-Mode-Linux, measured against the best possible (on demand:
# `scripts/bench mesh`), and checked (CI: tests/system/uml_mesh8.sh). One UML guest holds
# N+1 nodes (network namespaces), each with its own charon-systemd; the guest script
# (tests/system/uml/mesh_guest.sh, phases in mesh_nodes.sh) times, on the same nodes in the
# same run:
#   a  last tap up -> every pair exchanging ESP          (N nodes come up in range A)
#   b  range change on all nodes -> every pair again     (all N move to range B)
#   c  one node joins the running mesh -> ESP with all   (node N+1, range B)
# once with ipop-ipsecd on every node, and twice for the anchors: charon started (or its
# config loaded) by hand at the ideal moment with static configs for the final addresses,
# one connection per peer ("anchor"), or ipop-ipsecd's own rendered files ("anchor_own").
# It asserts every pair's ESP (answered probes, SA packet counters, the capture) and no
# plaintext; the timings are printed, never asserted.
#   mesh_bench.sh IPOP_IPSECD BUILD_DIR [--nodes N] [--rounds R] [--no-anchor | --peer-anchor-only | --own-anchor-only] [--mem SIZE]
#                 [--one-way] [--patch-reqid] [--compare-acquire-retry] [--markdown FILE]
# --one-way: only one node of each pair sends probes (one IKE initiator per pair); by default
# both do at once, as real traffic does. --patch-reqid: an experiment (mesh_reqid.sh).
# --compare-acquire-retry: each round also runs the daemon with ike.acquire_retry off
# ("daemon_noretry", printed beside "daemon" after the table).
# --markdown writes the results as a docs/performance.md section to FILE.
# IPOPSEC_MESH_KEEP=1 keeps the work folder (every node's daemon and charon logs) for a look.
set -euo pipefail
bin=$(realpath "$1")
build=$(realpath "$2")
shift 2
src=$(cd "$(dirname "$0")/../../.." && pwd)
nodes=8 rounds=1 anchor=2 mem=512M markdown= ways=2 patch=0 noretry=0
while (($#)); do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-anchor) anchor=0; shift ;;
    --peer-anchor-only) anchor=1; shift ;;
    --own-anchor-only) anchor=3; shift ;;
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
if [[ $(id -u) -ne 0 ]]; then echo "mesh_bench: must run as root" >&2; exit 1; fi
for tool in /usr/bin/linux.uml /usr/sbin/charon-systemd /usr/sbin/swanctl /usr/bin/tcpdump /usr/bin/perl; do
  [[ -x $tool ]] || { echo "mesh_bench: $tool is missing; run scripts/setup" >&2; exit 1; }
done
kver=$(ls /usr/lib/uml/modules 2>/dev/null | head -1)
[[ -n $kver ]] || { echo "mesh_bench: no UML modules in /usr/lib/uml/modules; run scripts/setup" >&2; exit 1; }

work=$(mktemp -d "$build/uml-mesh-bench.XXXXXX")
uml_pid=
cleanup() {
  local rc=$?
  set +e
  if [[ -n $uml_pid ]] && kill -0 "$uml_pid" 2>/dev/null; then
    kill -TERM "$uml_pid"
    wait "$uml_pid" 2>/dev/null
  fi
  if ((rc != 0)) && [[ -d $work ]]; then
    echo "---- mesh_bench: evidence for the failure (daemon and charon logs, tails)"
    for d in "$work"/r*/[ds]*; do
      [[ -d $d ]] || continue
      echo "-- ${d#"$work"/}/daemon.log"; tail -8 "$d/daemon.log" 2>/dev/null
      echo "-- ${d#"$work"/}/charon.log"; grep -E 'IKE|CHD|CFG|KNL' "$d/charon.log" 2>/dev/null | tail -8
    done
  fi
  if [[ -n ${IPOPSEC_MESH_KEEP:-} ]]; then
    echo "mesh_bench: IPOPSEC_MESH_KEEP is set: the work folder (logs, capture) stays: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Certificates: the project's own pki, EC P-256 (short IKE exchanges on UML's slow CPU).
pki=$work/pki
for i in $(seq 1 $((nodes + 1))); do
  [[ $i == 1 ]] && "$bin" pki init-ca --dir "$pki/ca" --name "GroupVPN CA" --days 2 --key ec >>"$work/pki.log" 2>&1
  "$bin" pki issue --ca-dir "$pki/ca" --ip "10.254.0.$((10 + i))" --dns "n$i.groupvpn" --days 2 --key ec \
    --out "$pki/n$i" >>"$work/pki.log" 2>&1 || { echo "mesh_bench: ipop-ipsecd pki failed: $(tail -3 "$work/pki.log")" >&2; exit 1; }
done

source "$src/tests/system/uml/host.sh"
uml_prepare "$work"
# The guest runs copies: editing the scripts in the tree during a run must not change it.
mkdir -p "$work/uml"
cp "$src/tests/system/uml/"{mesh_guest.sh,mesh_nodes.sh,mesh_probe.pl,mesh_reqid.sh,echo.pl,charon_restart.sh} "$work/uml/"
printf '#!/bin/bash\nexec /bin/bash %s %s %s %s %s %s %s %s %s %s\n' "$work/uml/mesh_guest.sh" "$work" "$bin" "$work" \
  "$nodes" "$rounds" "$anchor" "$ways" "$patch" "$noretry" >"$work/init"
chmod +x "$work/init"
echo "mesh_bench: booting a UML guest (Linux $kver, mem=$mem) with $nodes nodes + 1 joiner, $rounds round(s), anchor $anchor, probes $ways way(s), reqid patch $patch"
start=$SECONDS
uml_boot "$work" "$work/init" $((240 + rounds * (anchor + 1 + noretry) * 400)) "$mem"
set +e
wait "$uml_pid"
uml_rc=$?
set -e
uml_pid=
guest_s=$((SECONDS - start))
echo "mesh_bench: guest ran $guest_s s (exit $uml_rc)"
echo "---- guest console"
grep -v -E '^[[:space:]]*\[<|^(Call Trace|Stack):' "$work/console.log" | sed -n '/as init process/,$p'
echo "----"

# --- the table: per scenario, the median over the rounds ------------------------------
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
values() { awk -v p="$1" -v s="$2" '$1 == p && $2 == s { print $4 }' "$work/times" 2>/dev/null; }
table() {
  echo "| scenario | ipop-ipsecd s | anchor_own s | ratio | anchor s | ratio | rounds (ipop-ipsecd / anchor_own / anchor) |"
  echo "|---|---|---|---|---|---|---|"
  local s what d o a
  for s in a b c; do
    case $s in
      a) what="(a) last tap up -> all $((nodes * (nodes - 1) / 2)) pairs exchanging ESP" ;;
      b) what="(b) range change on all $nodes nodes -> all pairs again" ;;
      c) what="(c) node $((nodes + 1)) joins -> ESP with all $nodes others" ;;
    esac
    d=$(values daemon $s | awk '$1 != "none"' | median)
    o=$(values anchor_own $s | awk '$1 != "none"' | median)
    a=$(values anchor $s | awk '$1 != "none"' | median)
    echo "| $what | $d | $o | $(ratio "$d" "$o") | $a | $(ratio "$d" "$a") | $(values daemon $s | paste -sd' ') / $(values anchor_own $s | paste -sd' ') / $(values anchor $s | paste -sd' ') |"
  done
}
# startup WHAT: the last node's charon in (a), median per phase (start or loaded)
startup() {
  local ph out=
  for ph in daemon anchor_own anchor; do out+="${out:+, }$ph $(values "${ph}_$1" a | awk '$1 != "none"' | median)"; done
  echo "$out"
}
ratio() { if [[ $1 != - && $2 != - ]]; then awk -v d="$1" -v a="$2" 'BEGIN { printf "%.2f", d / a }'; else echo -; fi; }
echo
echo "Mesh of N=$nodes nodes (+1 joiner) in one UML guest; seconds, median of $rounds round(s); goal: ratio <= 1.2"
table
echo "ipop-ipsecd CPU, all nodes, median s: a $(values daemon_cpu a | median), b $(values daemon_cpu b | median), c $(values daemon_cpu c | median)"
echo "(a), node $nodes's tap up -> its charon started, median s: $(startup start); -> its first connection installed: $(startup loaded)"
if ((noretry)); then
  echo
  echo "ike.acquire_retry: the default (1s) against off, same run; seconds, median of $rounds round(s)"
  echo "| scenario | default | off | rounds (default / off) |"
  echo "|---|---|---|---|"
  for s in a b c; do
    echo "| $s | $(values daemon $s | awk '$1 != "none"' | median) | $(values daemon_noretry $s | awk '$1 != "none"' | median) | $(values daemon $s | paste -sd' ') / $(values daemon_noretry $s | paste -sd' ') |"
  done
fi
if [[ -n $markdown ]]; then
  {
    echo "### Mesh convergence in User-Mode-Linux: N = $nodes nodes, against the best possible"
    echo
    echo "\`tests/system/uml/mesh_bench.sh\`: one UML guest (Linux $kver, mem=$mem, one host CPU) holds $nodes nodes plus a joiner,"
    echo "each a network namespace with its own charon (strongSwan $(dpkg-query -W -f '${Version}' strongswan-libcharon 2>/dev/null || echo '?'))"
    echo "on one overlay segment. ipop-ipsecd: every node runs the daemon (backend strongswan, ranges"
    echo "[10.254.0.0/16, 10.253.0.0/16], its default quiet period and interval), which starts and reloads charon."
    echo "Anchors: no daemon; each node's charon is started (a, c) or its config loaded (b) by hand at the"
    echo "ideal moment (as soon as its address is there), with a static swanctl config written for the final"
    echo "addresses. *anchor_own*: exactly the files ipop-ipsecd writes for that address (\`ipop-ipsecd render\`:"
    echo "one connection per range, charon's trap covering the range), so it differs from the daemon only in"
    echo "timing. *anchor*: one connection per peer (the peers' addresses known in advance, which a GroupVPN"
    echo "node does not know), the same proposals, certificates and trap-on-demand."
    echo "Timed from the event (the last tap up, the last address change, the joiner's tap up) to the last"
    if ((ways == 2)); then
      echo "first answer of a UDP echo between every pair (every node probes all its peers every 100 ms, so both ends"
      echo "of a pair send at once and both charons may initiate);"
    else
      echo "first answer of a UDP echo between every pair (only the lower-numbered node of a pair, and the joiner,"
      echo "probe, every 100 ms: one IKE initiator per pair; the answer proves both directions);"
    fi
    echo "then every pair's ESP SAs must show packets both ways and the capture ESP and no plaintext."
    if ((patch)); then
      echo "**Experiment (--patch-reqid):** the daemon's rendered swanctl config was loaded with a fixed"
      echo "\`reqid\` added to its child (tests/system/uml/mesh_reqid.sh); without it, duplicate CHILD_SAs from"
      echo "both ends initiating at once get different reqids and a pair can stay dark (XfrmInTmplMismatch)."
    fi
    echo "Same nodes, same run; median of $rounds round(s); the phases of a round run in an order that turns by one"
    echo "each round (round 1: the daemon first; round 2: the next phase first, ...), so none always follows another."
    echo
    table
    echo
    echo "ipop-ipsecd's own CPU time, its $((nodes + 1)) processes together, from the event until the round's checks were"
    echo "done (user + system, median): (a) $(values daemon_cpu a | median) s, (b) $(values daemon_cpu b | median) s,"
    echo "(c) $(values daemon_cpu c | median) s; on the guest's one CPU, shared with the charons and probers."
    echo
    echo "(a), the last node (n$nodes), median s: its tap up -> its charon-systemd started: $(startup start);"
    echo "-> charon's first connection installed (its log, milliseconds): $(startup loaded)."
    echo
    echo "UML caveats: the whole mesh shares one host CPU through UML's ptrace-based system calls"
    echo "(every syscall, fork and exec costs far more than on real hosts, and the $((nodes + 1)) charons, daemons and"
    echo "probers take turns), so the absolute seconds are much larger than on real nodes; the ratios are what"
    echo "this measures, every column paying the same overhead. The guest ran $guest_s s in all."
  } >"$markdown"
fi
result=$(cat "$work/result" 2>/dev/null || echo none)
if [[ $result != PASS ]]; then
  echo "mesh_bench: FAILED (result: $result, guest exit $uml_rc)" >&2
  exit 1
fi
echo "mesh_bench: PASSED"
