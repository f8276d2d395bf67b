#!/usr/bin/env bash
# A kernel without UDP socket diagnostics (issue 22, point 8), for real: User-Mode-Linux,
# whose udp_diag is a module, booted with module autoloading off and udp_diag not loaded
# (as in a container that cannot load it). The real daemon must not wait out
# ike.restart_timeout for an answer the kernel cannot give ("is UDP 500 bound"): it takes the
# finished restart as the answer, says why once, and removes the larval states at once; with
# udp_diag loaded it waits for the bind again (tests/system/uml/no_udp_diag_guest.sh).
# Usage: uml_no_udp_diag.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
set -euo pipefail
bin=$(realpath "$1")
build=$(realpath "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: uml_no_udp_diag: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "must run as root"
for tool in /usr/bin/linux.uml /usr/bin/openssl /sbin/modprobe /usr/bin/python3; do
  [[ -x $tool ]] || fail "$tool is missing; run scripts/setup --test"
done
ls /usr/lib/uml/modules/*/kernel/net/ipv4/udp_diag.ko >/dev/null 2>&1 || fail "no udp_diag module for UML; run scripts/setup --test"

work=$(mktemp -d "$build/uml-no-udp-diag.XXXXXX")
uml_pid=
cleanup() {
  local rc=$?
  set +e
  if [[ -n $uml_pid ]] && kill -0 "$uml_pid" 2>/dev/null; then
    kill -TERM "$uml_pid"
    wait "$uml_pid" 2>/dev/null
  fi
  if ((rc != 0)) && [[ -f $work/daemon.log ]]; then
    echo "---- daemon log (last 30 lines)"; tail -30 "$work/daemon.log"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=uml/host.sh
source "$src/tests/system/uml/host.sh"
uml_prepare "$work"

# A CA and a host certificate for 10.254.0.16: the daemon checks them before every restart.
certs=$work/certs
mkdir -p "$certs" "$work/pki" "$work/run"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=no-udp-diag test CA" \
  -keyout "$work/pki/ca-key.pem" -out "$certs/cacert.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=node16" -addext "subjectAltName=IP:10.254.0.16" \
  -keyout "$certs/host-key.pem" -out "$work/pki/host.csr" 2>/dev/null
openssl x509 -req -in "$work/pki/host.csr" -CA "$certs/cacert.pem" -CAkey "$work/pki/ca-key.pem" \
  -CAcreateserial -days 2 -copy_extensions copy -out "$certs/host-cert.pem" 2>/dev/null
chmod 0600 "$certs/host-key.pem"

# The stand-in IKE daemon: each restart records when it ran; from the second on it binds
# UDP 500 two seconds later (the first binds nothing: without udp_diag nobody could tell).
cat >"$work/restart.sh" <<EOS
#!/bin/sh
n=\$(( \$(cat "$work/restarts" 2>/dev/null || echo 0) + 1 ))
echo \$n >"$work/restarts"
date +%s.%N >"$work/restart\$n.at"
[ -f "$work/binder.pid" ] && kill "\$(cat "$work/binder.pid")" 2>/dev/null
if [ \$n -ge 2 ]; then
  ( sleep 2; exec python3 -c "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 500)); time.sleep(600)" ) </dev/null >/dev/null 2>&1 &
  echo \$! >"$work/binder.pid"
fi
EOS
chmod 0755 "$work/restart.sh"
cat >"$work/ipop-ipsecd.yaml" <<EOF2
ipop:
  interface: ipop
protect:
  ranges: [10.254.0.0/16]
ike:
  control: command
  restart_command: ["$work/restart.sh"]
  restart_timeout: 20s
  quiet_period: 300ms
  min_interval: 1s
racoon:
  config: $work/racoon.conf
  spd_file: $work/ipsec-tools.conf
  certificate_dir: $certs
daemon:
  state_dir: $work/run
  remember_dir: ""
  log_level: debug
EOF2

printf '#!/bin/bash\nexec /bin/bash %s %s %s\n' "$src/tests/system/uml/no_udp_diag_guest.sh" "$work" "$bin" >"$work/init"
chmod +x "$work/init"
start=$SECONDS
uml_boot "$work" "$work/init" 120 256M
wait "$uml_pid" || true
uml_pid=
grep -E '^\[ *[0-9.]+s\] (ok|FAIL|==)' "$work/console.log" || true
[[ -f $work/result ]] || { tail -40 "$work/console.log"; fail "the guest wrote no result"; }
[[ $(cat "$work/result") == PASS ]] || fail "see the FAIL lines above"
echo "PASS: uml_no_udp_diag.sh ($((SECONDS - start)) s in the guest)"
