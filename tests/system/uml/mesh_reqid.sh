#!/bin/bash
# An experiment for the mesh test (mesh_bench.sh --patch-reqid), not a fix: the daemon's
# ike.restart_command / strongswan.load_command on a node, which loads the daemon's rendered
# swanctl config with a fixed `reqid` added to each child (so duplicate CHILD_SAs of a
# pair, from both ends initiating at once, share one reqid), from a patched copy in
# NODE_DIR/patched; the daemon's own file is left as it wrote it.
#   mesh_reqid.sh restart NODE_DIR RUN_DIR GATE_FILE | load NODE_DIR RUN_DIR
set -u
mode=$1 d=$2 run=$3
p=$d/patched
mkdir -p "$p/swanctl/conf.d"
ln -sfn "$d/strongswan.conf" "$p/strongswan.conf"
for x in x509 x509ca private; do ln -sfn "$d/swanctl/$x" "$p/swanctl/$x"; done
echo 'include conf.d/*.conf' >"$p/swanctl/swanctl.conf"
awk '{ print } /start_action = trap/ { sub(/start_action.*/, ""); printf "%sreqid = %d\n", $0, 4242 + n++ }' \
  "$d/swanctl/conf.d/ipop-ipsec.conf" >"$p/swanctl/conf.d/ipop-ipsec.conf"
touch "$p/charon-starts.log"
ln -sfn "$p/charon.pid" "$d/charon.pid"
ln -sfn "$p/charon-starts.log" "$d/charon-starts.log"
if [[ $mode == restart ]]; then
  exec /bin/bash "$(dirname "$0")/charon_restart.sh" "$p" "$run" "$4"
fi
exec /usr/bin/env "SWANCTL_DIR=$p/swanctl" /usr/sbin/swanctl --load-all --noprompt --uri "unix://$run/charon.vici"
