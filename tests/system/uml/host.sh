# Host side of every User-Mode-Linux test (sourced): prepares a work folder for a guest
# and boots it. The same path on every machine: the ptrace shim (xstate_shim.c) is always
# preloaded; on hosts whose XSAVE area fits UML's buffer it passes through, on hosts with a
# larger one (Intel Xeon with AMX) it is what lets linux.uml 6.1 boot at all.
#   uml_prepare WORK            modprobe wrapper over /usr/lib/uml/modules, the shim
#   uml_boot WORK INIT SECONDS [MEM]
#                               boot with INIT as init and MEM of guest memory (768M),
#                               console in WORK/console.log; sets uml_pid (the caller
#                               waits for it and cleans up)
#   uml_run NAME GUEST WORK BIN SRC SECONDS
#                               the whole run of a test guest: WORK/init runs
#                               `bash GUEST WORK BIN SRC`, uml_boot, wait, the console from
#                               the guest's init on; returns non-zero unless the guest wrote
#                               PASS to WORK/result (the caller's cleanup trap still owns
#                               uml_pid while it runs)

uml_prepare() {
  local work=$1 src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  mkdir -p "$work/modroot/lib"
  ln -sfn /usr/lib/uml/modules "$work/modroot/lib/modules"
  printf '#!/bin/sh\nexec /sbin/modprobe -d %s "$@"\n' "$work/modroot" >"$work/modprobe"
  chmod +x "$work/modprobe"
  if ! cc -O2 -shared -fPIC -Wall -Werror -o "$work/xstate_shim.so" "$src/xstate_shim.c" -ldl \
    2>"$work/xstate_shim.log"; then
    echo "uml: cannot build the ptrace shim: $(cat "$work/xstate_shim.log")" >&2
    return 1
  fi
  echo "uml: host XSAVE features: $(grep -m1 -o -w -E 'amx_tile' /proc/cpuinfo || echo 'no AMX'); ptrace shim preloaded"
}

uml_boot() {
  local work=$1 init=$2 seconds=$3 mem=${4:-768M}
  LD_PRELOAD=$work/xstate_shim.so timeout --kill-after=10 "$seconds" /usr/bin/linux.uml mem="$mem" \
    root=/dev/root rootfstype=hostfs rootflags=/ rw init="$init" con=null con0=null,fd:1 \
    >"$work/console.log" 2>&1 </dev/null &
  uml_pid=$!
}

uml_run() {
  local name=$1 guest=$2 work=$3 bin=$4 src=$5 seconds=$6 start rc result
  printf '#!/bin/bash\nexec /bin/bash %s %s %s %s\n' "$guest" "$work" "$bin" "$src" >"$work/init"
  chmod +x "$work/init"
  start=$SECONDS
  uml_boot "$work" "$work/init" "$seconds"
  rc=0
  wait "$uml_pid" || rc=$?
  uml_pid=
  echo "$name: guest ran $((SECONDS - start)) s (exit $rc)"
  echo "---- guest console (kernel messages and the test's own lines, [time] ok/FAIL ...)"
  grep -v -E '^[[:space:]]*\[<|^(Call Trace|Stack):' "$work/console.log" | sed -n '/as init process/,$p'
  echo "----"
  result=$(cat "$work/result" 2>/dev/null || echo "none")
  if [[ $result != PASS ]]; then
    echo "$name: FAILED (result: $result, guest exit $rc)" >&2
    return 1
  fi
  echo "$name: PASSED ($((SECONDS - start)) s in the guest)"
}
