# The phases of the mesh benchmark's guest (sourced by tests/system/uml/mesh_guest.sh, which
# defines N, J, W, BIN, WATCH, UML, addr, in_ns, tap_up, readdress, the probes and the
# checks): daemon_phase (ipop-ipsecd on every node), limit_phase and ideal_phase (the two
# anchors: no daemon, ipop-ipsecd's own rendered files), anchor_phase (one connection per
# peer, hand-timed). Each phase starts from nodes without taps, SAs or policies and leaves
# them so.

# static_swanctl DIR RANGE ME PEER_INDEX...: the anchor's swanctl folder: one connection per
# peer, written for the final addresses, the same proposals, certificates and trap-on-demand
# as the daemon renders (its defaults: lib/core/render/render_swanctl.cpp).
static_swanctl() {
  local dir=$1 r=$2 me=$3 j peer pki=$W/pki/n$4
  shift 4
  mkdir -p "$dir/conf.d" "$dir/x509" "$dir/x509ca" "$dir/private"
  cp "$pki/host-cert.pem" "$dir/x509/host.pem"
  cp "$pki/cacert.pem" "$dir/x509ca/ca.pem"
  cp "$pki/host-key.pem" "$dir/private/host.pem"
  chmod 700 "$dir/private"
  echo 'include conf.d/*.conf' >"$dir/swanctl.conf"
  {
    echo "connections {"
    for j in "$@"; do
      peer=$(addr "$r" "$j")
      cat <<EOF
  peer-n$j {
    version = 2
    local_addrs = $me
    remote_addrs = $peer
    proposals = aes256-sha256-modp2048
    dpd_delay = 30s
    mobike = no
    encap = no
    local {
      auth = pubkey
      certs = host.pem
    }
    remote {
      auth = pubkey
      id = %any
      cacerts = ca.pem
    }
    children {
      peer-n$j {
        mode = transport
        local_ts = $me/32
        remote_ts = $peer/32
        esp_proposals = aes256-sha256-modp2048,aes128-sha256-modp2048
        start_action = trap
        dpd_action = clear
        close_action = none
      }
    }
  }
EOF
    done
    echo "}"
  } >"$dir/conf.d/static.conf"
}

# own_swanctl DIR ADDRESS I: the second anchor's swanctl folder: exactly the files
# ipop-ipsecd would write for that final address (`ipop-ipsecd render`; the certificates
# under the names it copies them to), so that anchor differs from the daemon only in timing.
own_swanctl() {
  local dir=$1 pki=$W/pki/n$3
  mkdir -p "$dir/conf.d" "$dir/x509" "$dir/x509ca" "$dir/private" "$dir.render"
  cp "$pki/host-cert.pem" "$dir/x509/ipop-ipsec-host.pem"
  cp "$pki/cacert.pem" "$dir/x509ca/ipop-ipsec-ca.pem"
  cp "$pki/host-key.pem" "$dir/private/ipop-ipsec-host.pem"
  chmod 700 "$dir/private"
  echo 'include conf.d/*.conf' >"$dir/swanctl.conf"
  node_yaml "$dir.render/ipop-ipsecd.yaml" "$3" "$dir" "[/bin/true]" "[/bin/true]" /run/mesh/render
  "$BIN" render --config "$dir.render/ipop-ipsecd.yaml" --address "$2/16" --output-dir "$dir.render" >/dev/null ||
    fatal "ipop-ipsecd render failed for $2"
  cp "$dir.render/ipop-ipsec.conf" "$dir/conf.d/ipop-ipsec.conf"
}

# node_yaml FILE I SWANCTL_DIR RESTART LOAD RUN_DIR [IKE_EXTRA]: node I's ipop-ipsecd.yaml (IKE
# timings: the daemon's defaults; IKE_EXTRA: more lines of the ike section)
node_yaml() {
  cat >"$1" <<EOF
# mesh node $2 (tests/system/uml/mesh_guest.sh); IKE timings: the daemon's defaults
ipop:
  interface: ipop
protect:
  ranges: [$RANGE_A, $RANGE_B]
ike:
  backend: strongswan
  control: command
  restart_command: $4
  restart_timeout: 90s
${7:-}racoon:
  certificate_dir: $W/pki/n$2
strongswan:
  swanctl_dir: $3
  config: $3/conf.d/ipop-ipsec.conf
  load_command: $5
  dpd_delay: 30
daemon:
  state_dir: $6/state
  remember_dir: $6/lib
  log_level: info
EOF
}

# others I LAST: the node indexes 1..LAST without I
others() { seq 1 "$2" | grep -vx "$1"; }

charon_start() { # charon_start I NODE_DIR RUN_DIR: charon_restart.sh, in the background
  mkdir -p "$3"
  in_ns "$1" /bin/bash "$UML/charon_restart.sh" "$2" "$3" "$W/gate" >>"$2/restart.out" 2>&1 &
}

# teardown NODE_DIRS...: daemons, watchers and charons stopped by PID, taps gone, SAs and
# policies flushed
teardown() {
  local d pid i k
  for d in "$@"; do
    for pid in $(cat "$d/daemon.pid" "$d/watch.pid" "$d/charon.pid" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  for d in "$@"; do
    for pid in $(cat "$d/daemon.pid" "$d/watch.pid" "$d/charon.pid" 2>/dev/null); do
      for ((k = 0; k < 100; k++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    done
  done
  for i in $(seq 1 "$J"); do
    ip link del "v$i" 2>/dev/null
    in_ns "$i" ip xfrm state flush
    in_ns "$i" ip xfrm policy flush
  done
  rm -rf /run/mesh
}

warm_up() { # one charon start and stop (page cache of the guest), outside the timings
  local d=$W/warm
  mkdir -p "$d/swanctl/conf.d"
  echo 'include conf.d/*.conf' >"$d/swanctl/swanctl.conf"
  strongswan_conf "$d" /run/mesh/warm
  mkdir -p /run/mesh/warm
  in_ns 1 /bin/bash "$UML/charon_restart.sh" "$d" /run/mesh/warm "$W/gate" >"$d/restart.out" 2>&1 ||
    fatal "charon does not start in the guest: $(tail -3 "$d/restart.out")"
  "$BIN" --version >/dev/null 2>&1
  # The first ESP SA with these algorithms makes the kernel build its crypto instance
  # (authenc(hmac(sha256),cbc(aes)), module requests through the guest's modprobe): seconds
  # in UML, paid once per boot. Without this, charon's first SA installs in round 1 (the
  # daemon's phase) waited for it and every pair of that scenario with them.
  in_ns 1 ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode transport \
    enc 'cbc(aes)' 0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
    auth-trunc 'hmac(sha256)' 0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 128 ||
    fatal "the guest kernel refuses an ESP SA with cbc(aes) and hmac(sha256)"
  teardown "$d"
  ok "warm-up: charon started and stopped once, one ESP SA made and removed"
}

refusals() { # refusals DIRS...: IKE_SA_INITs the nodes' charons refused for want of a config
  local d n=0
  for d in "$@"; do n=$((n + $(cat "$d/charon.log" 2>/dev/null | grep -c 'sending NO_PROPOSAL_CHOSEN'))); done
  echo "$n"
}

counts() { # counts DIRS...: "charon starts / config loads" per node, for the log
  local d out=
  for d in "$@"; do
    out+=" ${d##*/}:$(cat "$d/charon-starts.log" 2>/dev/null | wc -l)/$(cat "$d/daemon.log" 2>/dev/null | grep -c 'IKE configuration loaded')"
  done
  echo "$out"
}

# cpu_ticks DIRS...: the CPU time (clock ticks, user + system) the daemons of DIRS have used so far
cpu_ticks() {
  local d t=0 pid f
  for d in "$@"; do
    pid=$(cat "$d/daemon.pid" 2>/dev/null) || continue
    f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    f=${f##*) }  # past the command name, which may hold spaces
    read -r -a f <<<"$f"
    t=$((t + f[11] + f[12]))  # utime, stime: fields 14 and 15 of stat
  done
  echo "$t"
}
# cpu_say PHASE SCENARIO ROUND TICKS_BEFORE DIRS...: what the daemons cost the guest's one CPU
# from the event until the checks were done (printed, and in $W/times as "PHASE_cpu")
cpu_say() {
  local phase=$1 scen=$2 round=$3 before=$4 s
  shift 4
  s=$(awk -v t="$(($(cpu_ticks "$@") - before))" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}')
  say "ipop-ipsecd CPU during $phase $scen (round $round), all nodes: $s s"
  echo "${phase}_cpu $scen $round $s" >>"$W/times"
}

# steps_say PHASE SCEN ROUND I NODE_DIR: where node I's time went after its tap got its
# address (scenarios a and c), from the node's own logs, in seconds since the test ran `ip
# addr add` on the tap (its link is set up right after): "react" the daemon's first
# 'restarting' line (ipop-ipsecd) or the watcher's 'seen' line (ideal); "started"
# charon-systemd started (charon_restart.sh's log); "loaded" charon's first connection
# installed (its trap, charon's log); "child" charon's first CHILD_SA established (charon's
# log). "-" where the node has no such line (the limit has no reaction; its charon was
# started and loaded before the address: negative). Printed, and in $W/steps as
# "PHASE SCEN ROUND nI REACT STARTED LOADED CHILD".
steps_say() {
  local phase=$1 scen=$2 round=$3 i=$4 d=$5 start seen line
  start=$(head -1 "$d/charon-starts.log" 2>/dev/null | awk '{ print $1 }')
  [[ -n $start ]] && start=$(date -d "@$start" +%T.%N)
  seen=$(awk '$2 == "seen" { print $1; exit }' "$d/watch-$scen.log" 2>/dev/null)
  [[ -n $seen ]] && seen=$(date -d "@$seen" +%T.%N)
  line=$(touch "$d/charon.log" "$d/daemon.log" 2>/dev/null
    awk -v tap="${ADDR_AT[$i]}" -v start="$start" -v seen="$seen" -v dlog="$d/daemon.log" '
    function sec(t, a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
    function since(t, d) { if (t == "") return "-"; d = sec(t) - sec(tap); if (d < -43200) d += 86400; return sprintf("%.3f", d) }
    BEGIN {
      react = seen
      while (react == "" && (getline l < dlog) > 0) {
        split(l, f, " ")
        if (l ~ / restarting /) react = f[2]
      }
    }
    / installing \047/ && loaded == "" { loaded = $1 }
    /CHILD_SA .* established/ && child == "" { child = $1 }
    END { print since(react), since(start), since(loaded), since(child) }' "$d/charon.log")
  say "$phase $scen: n$i's address added -> reaction, charon started, first connection installed, first CHILD_SA (s): $line"
  echo "$phase $scen $round n$i $line" >>"$W/steps"
}

# mem_say PHASE ROUND: the guest's memory in use and load (PHASE idle: before any phase); in
# $W/mem as "PHASE ROUND USED_MIB TOTAL_MIB LOAD1"
mem_say() {
  local used total load
  read -r total used <<<"$(free -m | awk '/^Mem/ { print $2, $3 }')"
  load=$(cut -d' ' -f1 /proc/loadavg)
  say "guest memory in use ($1): $used MiB of $total; load average $load"
  echo "$1 $2 $used $total $load" >>"$W/mem"
}

# scenario PHASE P ROUND SCEN [ACTION]: one timed scenario on node folders $W/r<ROUND>/<P><I>:
# the probers of SCEN ready, its event (a: the N taps up in range A; b: the N nodes moved
# to B; c: the joiner's tap up in B), T0 when the event is complete, the probers released,
# the time recorded and every pair's ESP checked (run_probes), and for a and c where each
# node's time went (steps_say). ACTION (the per-peer anchor's hand start) runs as
# "ACTION I" right after node I's part of the event, in the foreground; T0 is taken when
# the last node's part is done, before its ACTION.
scenario() {
  local phase=$1 p=$2 round=$3 scen=$4 action=${5:-} tag=$2$3-$4 i t0 nodes
  nodes=$(seq 1 "$N")
  [[ $scen == c ]] && nodes=$J
  case $scen in
    a) probes_mesh "$tag" A ;;
    b) probes_mesh "$tag" B ;;
    c) probes_join "$tag" ;;
  esac
  probe_ready "$tag"
  for i in $nodes; do
    case $scen in
      a) tap_up "$i" "$(addr A "$i")" ;;
      b) readdress "$i" "$(addr A "$i")" "$(addr B "$i")" ;;
      c) tap_up "$i" "$(addr B "$i")" ;;
    esac
    [[ $i == "${nodes##*[!0-9]}" ]] && t0=$(now)
    [[ -z $action ]] || $action "$i"
  done
  probe_go "$tag"
  if [[ $scen == c ]]; then run_probes "$tag" "$phase" c "$round" "$t0" $(seq 1 "$J"); else run_probes "$tag" "$phase" "$scen" "$round" "$t0" $(seq 1 "$N"); fi
  [[ $scen == b ]] && return 0
  for i in $nodes; do steps_say "$phase" "$scen" "$round" "$i" "$W/r$round/$p$i"; done
}

# daemon_phase ROUND [noretry]: phase "daemon", or "daemon_noretry" with ike.acquire_retry off
daemon_phase() {
  local round=$1 i k d run restart load refused cpu dirs=() phase=daemon p=d extra=
  if [[ ${2:-} == noretry ]]; then phase=daemon_noretry p=e extra=$'  acquire_retry: off\n'; fi
  say "== round $round, $phase: every node runs ipop-ipsecd, which starts and reloads its charon"
  for i in $(seq 1 "$J"); do
    d=$W/r$round/$p$i run=/run/mesh/$p$i
    dirs+=("$d")
    mkdir -p "$d/swanctl/conf.d" "$d/swanctl/x509ca" "$d/swanctl/x509" "$d/swanctl/private" "$run"
    chmod 700 "$d/swanctl/private"
    echo 'include conf.d/*.conf' >"$d/swanctl/swanctl.conf"
    strongswan_conf "$d" "$run"
    restart="[/bin/bash, $UML/charon_restart.sh, $d, $run, $W/gate]"
    load="[/usr/bin/env, SWANCTL_DIR=$d/swanctl, /usr/sbin/swanctl, --load-all, --noprompt, --uri, \"unix://$run/charon.vici\"]"
    if ((PATCH_REQID)); then
      restart="[/bin/bash, $UML/mesh_reqid.sh, restart, $d, $run, $W/gate]"
      load="[/bin/bash, $UML/mesh_reqid.sh, load, $d, $run]"
    fi
    node_yaml "$d/ipop-ipsecd.yaml" "$i" "$d/swanctl" "$restart" "$load" "$run" "$extra"
    # Not through in_ns (a function: $! would be a subshell's): ip netns exec execs the daemon.
    ip netns exec "n$i" "$BIN" --config "$d/ipop-ipsecd.yaml" >"$d/daemon.log" 2>&1 &
    echo $! >"$d/daemon.pid"
  done
  for i in $(seq 1 "$J"); do
    for ((k = 0; k < 200; k++)); do
      (($(in_ns "$i" ip xfrm policy | grep -c "priority $PRIO") >= 4)) && break
      sleep 0.1
    done
    (($(in_ns "$i" ip xfrm policy | grep -c "priority $PRIO") >= 4)) ||
      fatal "n$i: ipop-ipsecd installed no fail-closed policies for both ranges: $(tail -3 "$W/r$round/$p$i/daemon.log")"
  done
  ok "daemons running, fail-closed policies for $RANGE_A and $RANGE_B in on every node"

  cpu=$(cpu_ticks "${dirs[@]}")
  scenario "$phase" "$p" "$round" a
  cpu_say "$phase" a "$round" "$cpu" "${dirs[@]}"
  say "charon starts/config loads per node:$(counts "${dirs[@]}")"

  refused=$(refusals "${dirs[@]}")
  cpu=$(cpu_ticks "${dirs[@]}")
  scenario "$phase" "$p" "$round" b
  cpu_say "$phase" b "$round" "$cpu" "${dirs[@]}"
  say "charon starts/config loads per node:$(counts "${dirs[@]}")"
  # Every node had B's responder-only connection before it moved: a peer that moved first
  # is answered, never refused, also before the node's own reload.
  refused=$(($(refusals "${dirs[@]}") - refused))
  ((refused == 0)) && ok "$phase b: no IKE_SA_INIT refused (NO_PROPOSAL_CHOSEN) while the nodes moved" ||
    fail "$phase b: $refused IKE_SA_INIT(s) refused with NO_PROPOSAL_CHOSEN while the nodes moved to $RANGE_B"

  cpu=$(cpu_ticks "${dirs[@]}")
  scenario "$phase" "$p" "$round" c
  cpu_say "$phase" c "$round" "$cpu" "${dirs[@]}"
  say "charon starts/config loads per node:$(counts "${dirs[@]}")"
  mem_say "$phase" "$round"
  teardown "${dirs[@]}"
}

# --- the anchors: no daemon ------------------------------------------------------------
# anchor_nodes ROUND P SHAPE: the node folders of an anchor phase, $W/r<ROUND>/<P><I>, in
# DIRS: strongswan.conf, swanctl/ (the final address in range A; the joiner's in B) and
# swanctl-B/ (the final address in B), with SHAPE own: exactly ipop-ipsecd's rendered files,
# or SHAPE peers: one connection per peer; and the daemon's fail-closed policies, set by
# hand (no plaintext before charon).
anchor_nodes() {
  local round=$1 p=$2 shape=$3 i d r dir
  DIRS=()
  for i in $(seq 1 "$J"); do
    d=$W/r$round/$p$i
    DIRS+=("$d")
    mkdir -p "$d" "/run/mesh/$p$i"
    strongswan_conf "$d" "/run/mesh/$p$i"
    if [[ $shape == own ]]; then
      if ((i < J)); then
        own_swanctl "$d/swanctl" "$(addr A "$i")" "$i"
        own_swanctl "$d/swanctl-B" "$(addr B "$i")" "$i"
      else
        own_swanctl "$d/swanctl" "$(addr B "$i")" "$i"
      fi
    elif ((i < J)); then
      static_swanctl "$d/swanctl" A "$(addr A "$i")" "$i" $(others "$i" "$N")
      static_swanctl "$d/swanctl-B" B "$(addr B "$i")" "$i" $(others "$i" "$J")
    else
      static_swanctl "$d/swanctl" B "$(addr B "$i")" "$i" $(others "$i" "$J")
    fi
    for r in "$RANGE_A" "$RANGE_B"; do
      for dir in in out; do
        in_ns "$i" ip xfrm policy add src "$r" dst "$r" dir "$dir" priority "$PRIO" tmpl proto esp mode transport
      done
    done
  done
}

# load_b I NODE_DIR RUN_DIR: the node's range-B files loaded into its running charon, as the
# daemon's strongswan.load_command does
load_b() {
  in_ns "$1" /usr/bin/env "SWANCTL_DIR=$2/swanctl-B" /usr/sbin/swanctl --load-all --noprompt \
    --uri "unix://$3/charon.vici" >>"$2/restart.out" 2>&1
}

# wait_all WHAT PIDS...: waits for the background jobs PIDS; fatal unless each succeeded
wait_all() {
  local what=$1 pid bad=0
  shift
  for pid in "$@"; do wait "$pid" || bad=$((bad + 1)); done
  ((bad == 0)) || fatal "$what: $bad of $# failed"
}

# limit_phase ROUND: phase "limit", what nothing can beat: every charon already running with
# all its connections loaded (ipop-ipsecd's rendered files for the final address) before the
# event, so only IKE itself is left. (a) the N charons started and loaded before the taps get
# their addresses; (b) range B's files loaded on all N before any address changes; (c) the
# joiner's charon started and loaded before its tap comes up.
limit_phase() {
  local round=$1 p=l phase=limit i pids=() DIRS
  say "== round $round, limit: no daemon; every charon running with all its connections loaded before the event"
  anchor_nodes "$round" $p own
  for i in $(seq 1 "$N"); do
    charon_start "$i" "$W/r$round/$p$i" "/run/mesh/$p$i"
    pids+=($!)
  done
  wait_all "limit a: charon started and its files loaded before the taps" "${pids[@]}"
  scenario "$phase" $p "$round" a
  pids=()
  for i in $(seq 1 "$N"); do
    load_b "$i" "$W/r$round/$p$i" "/run/mesh/$p$i" &
    pids+=($!)
  done
  wait_all "limit b: range B's files loaded before the addresses change" "${pids[@]}"
  scenario "$phase" $p "$round" b
  charon_start "$J" "$W/r$round/$p$J" "/run/mesh/$p$J"
  wait_all "limit c: the joiner's charon started and its files loaded before its tap" $!
  scenario "$phase" $p "$round" c
  mem_say "$phase" "$round"
  teardown "${DIRS[@]}"
}

# watch I SCEN ADDRESS COMMAND...: node I's watcher (ipopsec_addr_watch) in the ideal phase:
# execs COMMAND the moment ADDRESS is on its tap and the tap is up with carrier (what the daemon
# waits for); its log is the node's watch-SCEN.log
watch() {
  local i=$1 scen=$2 a=$3 d=$W/r$round/i$1
  shift 3
  # Not through in_ns (a function: $! would be a subshell's): ip netns exec execs the watcher.
  ip netns exec "n$i" "$WATCH" ipop "$a" "$d/watch-$scen.log" "$@" >>"$d/restart.out" 2>&1 &
  echo $! >>"$d/watch.pid"
}
# watch_ready SCEN NODES...: every watcher of SCEN subscribed (bounded: 30 s)
watch_ready() {
  local scen=$1 i f k
  shift
  for i in "$@"; do
    f=$W/r$round/i$i/watch-$scen.log
    for ((k = 0; k < 300; k++)); do grep -q ' ready ' "$f" 2>/dev/null && break; sleep 0.1; done
    grep -q ' ready ' "$f" 2>/dev/null || fatal "ideal $scen: the watcher of n$i never subscribed"
  done
}
# restart_on I SCEN ADDRESS: node I's charon started by its watcher (charon_restart.sh, the
# daemon's ike.restart_command); load_on I: its range B files loaded by its watcher (`swanctl
# --load-all`, the daemon's strongswan.load_command). Then, as the daemon does once charon
# listens after either, the larval states of ACQUIREs nobody answered are removed
# (ipopsec_larval_flush, the daemon's own code): without it, a pair whose first packet raced
# charon's start waits for a retransmit or the larval state's expiry, and the ideal is not
# the best possible. After a start, the same process stays (--follow) and does what the
# daemon's ike.acquire_retry does, on its schedule, until the teardown stops it: a pair a
# peer refused while its charon was still loading is asked again. load_on starts that
# schedule over (SIGUSR1 to that process, the first in the node's watch.pid) right before
# its load, as the daemon's reload does (AcquireRetry::restart); unlike the daemon's, it
# does not ignore the ACQUIREs that come while the load runs.
restart_on() {
  watch "$1" "$2" "$3" /bin/bash -c '/bin/bash "$0" "$1" "$2" "$3" && exec "$4" --follow "$5" "$6"' "$UML/charon_restart.sh" \
    "$W/r$round/i$1" "/run/mesh/i$1" "$W/gate" "$LARVAL" "$RANGE_A" "$RANGE_B"
}
load_on() {
  local follower
  follower=$(head -1 "$W/r$round/i$1/watch.pid")
  watch "$1" b "$(addr B "$1")" /bin/bash -c 'kill -USR1 "$5"; SWANCTL_DIR="$0" /usr/sbin/swanctl --load-all --noprompt --uri "$1" && exec "$2" "$3" "$4"' \
    "$W/r$round/i$1/swanctl-B" "unix:///run/mesh/i$1/charon.vici" "$LARVAL" "$RANGE_A" "$RANGE_B" "$follower"
}

# ideal_phase ROUND: phase "ideal", the ideal in the order the product requires (charon only
# once IPOP is up): one watcher per node, started before the event, execs the same command
# the daemon runs, with the same rendered files, the moment IPOP is up on the node (its
# address on the tap, the tap up with carrier); all nodes in parallel. (a) and (c): charon
# started (restart_on); (b): range B's files loaded when the node's B address appears
# (load_on); then the stale larval states removed, as the daemon does.
ideal_phase() {
  local round=$1 p=i phase=ideal i DIRS
  say "== round $round, ideal: no daemon; a watcher per node starts charon (loads its config) the moment IPOP is up there"
  anchor_nodes "$round" $p own
  for i in $(seq 1 "$N"); do restart_on "$i" a "$(addr A "$i")"; done
  watch_ready a $(seq 1 "$N")
  scenario "$phase" $p "$round" a
  for i in $(seq 1 "$N"); do load_on "$i"; done
  watch_ready b $(seq 1 "$N")
  scenario "$phase" $p "$round" b
  restart_on "$J" c "$(addr B "$J")"
  watch_ready c "$J"
  scenario "$phase" $p "$round" c
  mem_say "$phase" "$round"
  teardown "${DIRS[@]}"
}

# anchor_phase ROUND: phase "anchor" (--peer-anchor), the old hand-timed anchor: one
# connection per peer (the peers' addresses known in advance, which a GroupVPN node does not
# know), each charon started (a, c) or its config loaded (b) from a shell loop right after
# its node's address is there.
anchor_phase() {
  local round=$1 p=s phase=anchor DIRS
  say "== round $round, anchor: no daemon; charon started (or its config loaded) from a shell loop, one connection per peer"
  anchor_nodes "$round" $p peers
  scenario "$phase" $p "$round" a hand_start
  scenario "$phase" $p "$round" b hand_load
  scenario "$phase" $p "$round" c hand_start
  mem_say "$phase" "$round"
  teardown "${DIRS[@]}"
}
hand_start() { charon_start "$1" "$W/r$round/s$1" "/run/mesh/s$1"; }
hand_load() { load_b "$1" "$W/r$round/s$1" "/run/mesh/s$1" & }
