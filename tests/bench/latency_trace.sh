#!/usr/bin/env bash
# Where a reaction's time goes: runs `ipopsec_bench latency` (the latency section of
# docs/performance.md) under perf with the scheduler's tracepoints and the send system calls,
# and prints, for each row's peer process, the median and p90 of
#   woken -> on a CPU        (sched_wakeup -> sched_switch to it: the kernel's part)
#   on a CPU -> the send     (sched_switch to it -> the send of the policies: its own part,
#                             user space and the system calls before the send)
# The send: the daemon's sendto of the range's four policies (one datagram of >= 1000 bytes;
# its removals are smaller requests), the reference's sendmsg (its four adds, or on the old
# address's removal its four deletes, in one datagram alike). Rows in the bench's order: the
# daemon back to back, the reference back to back, (the shell, not traced), the daemon with
# changes 20 ms apart, the reference 20 ms apart. Tracing costs each event a few microseconds,
# so the bench's own figures printed here are not the page's; the split is what this is for.
#   tests/bench/latency_trace.sh [BUILD_DIR]     (root; perf from Debian's linux-perf)
# IPOPSEC_BENCH_CHANGES (default here 300) sets the changes per row.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$root/build}")
[[ $(id -u) -eq 0 ]] || { echo "latency_trace: run as root" >&2; exit 1; }
command -v perf >/dev/null || { echo "latency_trace: needs perf (apt-get install linux-perf)" >&2; exit 1; }
for f in "$build/ipop-ipsecd" "$build/tests/bench/ipopsec_bench"; do
  [[ -x $f ]] || { echo "latency_trace: $f is missing (scripts/build)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IPOPSEC_BENCH_CHANGES=${IPOPSEC_BENCH_CHANGES:-300} perf record -q -a -o "$tmp/perf.data" \
  -e sched:sched_wakeup,sched:sched_switch,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg -- \
  "$build/tests/bench/ipopsec_bench" "$build/ipop-ipsecd" latency | grep -E '^\| (ipop-ipsecd|reference)'
perf script -i "$tmp/perf.data" >"$tmp/perf.txt" 2>/dev/null
python3 - "$tmp/perf.txt" <<'EOF'
import re, sys
line_re = re.compile(r'^\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
woken, running, rows, busy, last_send = {}, {}, {}, {}, {}
for line in open(sys.argv[1]):
    m = line_re.match(line)
    if not m:
        continue
    comm, pid, _, t, name, rest = m.groups()
    pid, t = int(pid), float(t)
    if name == 'sched:sched_wakeup':
        woken[int(re.search(r'\bpid=(\d+)', rest).group(1))] = t
    elif name == 'sched:sched_switch':
        running[int(re.search(r'next_pid=(\d+)', rest).group(1))] = t
    else:
        if name == 'syscalls:sys_enter_sendto' and comm.startswith('ipop-ipsecd'):
            if int(re.search(r'len: (0x[0-9a-f]+)', rest).group(1), 16) < 1000:
                continue
            who = 'ipop-ipsecd'
        elif name == 'syscalls:sys_enter_sendmsg' and comm.startswith('ipopsec_refer'):
            who = 'reference'
        else:
            continue
        rows.setdefault((who, pid), [])
        # Only a send that follows a fresh wake-up: a process already on a CPU since its last
        # send (a change that came while it was busy) has no wake-up of its own to split.
        if pid in woken and pid in running and last_send.get(pid, 0) < woken[pid] <= running[pid] <= t:
            rows[(who, pid)].append((running[pid] - woken[pid], t - running[pid]))
        else:
            busy[(who, pid)] = busy.get((who, pid), 0) + 1
        last_send[pid] = t
def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e6 if xs else float('nan')
seen = {}
print()
print('| process (row order) | sends after a wake-up | sends while already on a CPU (not split) | woken -> on a CPU, p50 / p90 us | on a CPU -> the send, p50 / p90 us |')
print('|---|---|---|---|---|')
for (who, pid), v in rows.items():
    seen[who] = seen.get(who, 0) + 1
    row = {1: 'back to back', 2: 'changes 20 ms apart'}.get(seen[who], 'row %d' % seen[who])
    print(f'| {who}, {row} | {len(v)} | {busy.get((who, pid), 0)} | {pct([a for a, _ in v], .5):.0f} / {pct([a for a, _ in v], .9):.0f} '
          f'| {pct([b for _, b in v], .5):.0f} / {pct([b for _, b in v], .9):.0f} |')
EOF
