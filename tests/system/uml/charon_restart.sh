#!/bin/bash
# ike.restart_command of one mesh node (UML test): (re)starts this node's charon-systemd
# by its PID - never by name - with the node's own strongswan.conf and vici socket, waits
# until the vici socket answers, then loads the swanctl configuration (what
# strongswan.service's ExecStartPost does on a real host). Runs inside the node's network
# namespace (ipop-ipsecd's child).
#   charon_restart.sh NODE_DIR RUN_DIR GATE_FILE
# The test holds every start until GATE_FILE exists, to observe the node before any IKE
# daemon runs (bounded: 60 s, then the restart fails).
set -u
node=$1 rundir=$2 gate=$3
uri=unix://$rundir/charon.vici
for ((i = 0; i < 600; i++)); do [[ -e $gate ]] && break; sleep 0.1; done
[[ -e $gate ]] || { echo "the test never let charon start ($gate)"; exit 1; }
if [[ -s $node/charon.pid ]]; then
  pid=$(<"$node/charon.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
fi
rm -f "$rundir/charon.vici"
echo "$(date +%s.%N) start" >>"$node/charon-starts.log"
# setsid: out of ipop-ipsecd's process group (its timeout kills that group); no inherited
# pipes, or the daemon would wait for charon's output to end.
STRONGSWAN_CONF=$node/strongswan.conf setsid /usr/sbin/charon-systemd </dev/null >>"$node/charon.out" 2>&1 &
echo $! >"$node/charon.pid"
for ((i = 0; i < 150; i++)); do
  /usr/sbin/swanctl --stats --uri "$uri" >/dev/null 2>&1 && break
  sleep 0.1
done
/usr/sbin/swanctl --stats --uri "$uri" >/dev/null 2>&1 || { echo "charon's vici socket $uri does not answer"; exit 1; }
SWANCTL_DIR=$node/swanctl /usr/sbin/swanctl --load-all --noprompt --uri "$uri"
