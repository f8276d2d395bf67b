# The two phases of the mesh benchmark's guest (sourced by tests/system/uml/mesh_guest.sh,
# which defines N, J, W, BIN, UML, addr, in_ns, tap_up, readdress, the probes and the checks).
# Each phase starts from nodes without taps, SAs or policies and leaves them so.

# static_swanctl DIR RANGE ME PEER_INDEX...: the anchor's swanctl folder: one connection per
# peer, written for the final addresses, the same proposals, certificates and trap-on-demand
# as the daemon renders (its defaults: lib/core/render_swanctl.cpp).
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

# teardown NODE_DIRS...: daemons and charons stopped by PID, taps gone, SAs and policies flushed
teardown() {
  local d pid i k
  for d in "$@"; do
    for pid in $(cat "$d/daemon.pid" "$d/charon.pid" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  for d in "$@"; do
    for pid in $(cat "$d/daemon.pid" "$d/charon.pid" 2>/dev/null); do
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

# startup_say PHASE ROUND NODE_DIR I: how node I's charon came up after its tap (scenario a's
# last node): tap up -> charon-systemd started (charon_restart.sh's log), -> its first
# connection installed (charon's log, milliseconds); printed, and in $W/times as
# "PHASE_start" and "PHASE_loaded".
startup_say() {
  local phase=$1 round=$2 d=$3 i=$4 start loaded
  start=$(head -1 "$d/charon-starts.log" 2>/dev/null | awk '{ print $1 }')
  [[ -n $start ]] || { say "$phase a: n$i's charon never started"; return; }
  read -r start loaded <<<"$(awk -v tap="${TAP_UP_AT[$i]}" -v start="$(date -d "@$start" +%T.%N)" '
    function sec(t, a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
    function since(t, d) { d = sec(t) - sec(tap); return d < -43200 ? d + 86400 : d }
    / installing \047/ { printf "%.2f %.2f\n", since(start), since($1); found = 1; exit }
    END { if (!found) printf "%.2f none\n", since(start) }' "$d/charon.log")"
  say "$phase a: n$i's tap up -> its charon started $start s, -> its first connection installed $loaded s"
  echo "${phase}_start a $round $start" >>"$W/times"
  echo "${phase}_loaded a $round $loaded" >>"$W/times"
}

# daemon_phase ROUND [noretry]: phase "daemon", or "daemon_noretry" with ike.acquire_retry off
daemon_phase() {
  local round=$1 i k d run t0 restart load refused cpu dirs=() phase=daemon p=d extra=
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

  probes_mesh "$p$round-a" A
  probe_ready "$p$round-a"
  cpu=$(cpu_ticks "${dirs[@]}")
  for i in $(seq 1 "$N"); do tap_up "$i" "$(addr A "$i")"; done
  t0=$(now)
  probe_go "$p$round-a"
  run_probes "$p$round-a" "$phase" a "$round" "$t0" $(seq 1 "$N")
  startup_say "$phase" "$round" "$W/r$round/$p$N" "$N"
  cpu_say "$phase" a "$round" "$cpu" "${dirs[@]}"
  say "charon starts/config loads per node:$(counts "${dirs[@]}")"

  probes_mesh "$p$round-b" B
  probe_ready "$p$round-b"
  refused=$(refusals "${dirs[@]}")
  cpu=$(cpu_ticks "${dirs[@]}")
  for i in $(seq 1 "$N"); do readdress "$i" "$(addr A "$i")" "$(addr B "$i")"; done
  t0=$(now)
  probe_go "$p$round-b"
  run_probes "$p$round-b" "$phase" b "$round" "$t0" $(seq 1 "$N")
  cpu_say "$phase" b "$round" "$cpu" "${dirs[@]}"
  say "charon starts/config loads per node:$(counts "${dirs[@]}")"
  # Every node had B's responder-only connection before it moved: a peer that moved first
  # is answered, never refused, also before the node's own reload.
  refused=$(($(refusals "${dirs[@]}") - refused))
  ((refused == 0)) && ok "$phase b: no IKE_SA_INIT refused (NO_PROPOSAL_CHOSEN) while the nodes moved" ||
    fail "$phase b: $refused IKE_SA_INIT(s) refused with NO_PROPOSAL_CHOSEN while the nodes moved to $RANGE_B"

  probes_join "$p$round-c"
  probe_ready "$p$round-c"
  cpu=$(cpu_ticks "${dirs[@]}")
  tap_up "$J" "$(addr B "$J")"
  t0=$(now)
  probe_go "$p$round-c"
  run_probes "$p$round-c" "$phase" c "$round" "$t0" $(seq 1 "$J")
  cpu_say "$phase" c "$round" "$cpu" "${dirs[@]}"
  say "charon starts/config loads per node:$(counts "${dirs[@]}")"
  say "guest memory in use with $J daemons and charons: $(free -m | awk '/^Mem/ {print $3}') MiB of $(free -m | awk '/^Mem/ {print $2}')"
  teardown "${dirs[@]}"
}

# anchor_phase ROUND SHAPE: SHAPE peers (phase "anchor": one connection per peer) or own
# (phase "anchor_own": ipop-ipsecd's own rendered files for the final address)
anchor_phase() {
  local round=$1 shape=$2 i d r t0 dirs=() phase=anchor p=s
  [[ $shape == own ]] && phase=anchor_own p=o
  say "== round $round, $phase: no daemon; charon started (or its config loaded) by hand at the ideal moment, static configs ($shape)"
  for i in $(seq 1 "$J"); do
    d=$W/r$round/$p$i
    dirs+=("$d")
    mkdir -p "$d"
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
    # The same fail-closed policies as the daemon's, set by hand: no plaintext before charon.
    for r in "$RANGE_A" "$RANGE_B"; do
      for dir in in out; do
        in_ns "$i" ip xfrm policy add src "$r" dst "$r" dir "$dir" priority "$PRIO" tmpl proto esp mode transport
      done
    done
  done

  probes_mesh "$p$round-a" A
  probe_ready "$p$round-a"
  for i in $(seq 1 "$N"); do
    tap_up "$i" "$(addr A "$i")"
    ((i == N)) && t0=$(now)
    charon_start "$i" "$W/r$round/$p$i" "/run/mesh/$p$i"
  done
  probe_go "$p$round-a"
  run_probes "$p$round-a" "$phase" a "$round" "$t0" $(seq 1 "$N")
  startup_say "$phase" "$round" "$W/r$round/$p$N" "$N"

  probes_mesh "$p$round-b" B
  probe_ready "$p$round-b"
  for i in $(seq 1 "$N"); do
    readdress "$i" "$(addr A "$i")" "$(addr B "$i")"
    ((i == N)) && t0=$(now)
    in_ns "$i" /usr/bin/env "SWANCTL_DIR=$W/r$round/$p$i/swanctl-B" /usr/sbin/swanctl --load-all --noprompt \
      --uri "unix:///run/mesh/$p$i/charon.vici" >>"$W/r$round/$p$i/restart.out" 2>&1 &
  done
  probe_go "$p$round-b"
  run_probes "$p$round-b" "$phase" b "$round" "$t0" $(seq 1 "$N")

  probes_join "$p$round-c"
  probe_ready "$p$round-c"
  tap_up "$J" "$(addr B "$J")"
  t0=$(now)
  charon_start "$J" "$W/r$round/$p$J" "/run/mesh/$p$J"
  probe_go "$p$round-c"
  run_probes "$p$round-c" "$phase" c "$round" "$t0" $(seq 1 "$J")
  teardown "${dirs[@]}"
}
