#!/usr/bin/env bash
# The Ansible role of deploy/ansible against a GroupVPN of throw-away systemd containers
# (slow: about 2 minutes, plus cpack). Three nodes and a CA host, each systemd-nspawn on its
# own overlay of the host root in its own network namespace. The CA host is a 4th container,
# not the controller: as in a real GroupVPN it is a machine of its own, so "the key never
# travels" is checked across three kinds of places (node, CA host, controller), and the CA's
# key and the role's CA tasks (delegated to it) run where they would. The nodes' simulated
# IPOP taps (`ipop`, a veth) are ports of one bridge in a namespace of the test's own, so the
# nodes run IKE with each other there. The controller is this script: ansible-playbook
# reaches every container with Ansible's community.docker.nsenter connection (each module
# really runs inside the container's mount, network, PID, UTS and IPC namespaces: the
# container's systemd, files and network), so no SSH server is needed and no test traffic
# touches the host's network.
#   1st run: installs the .deb (cpack), enrolls each node (key and request made on the node,
#            signed on the CA host), writes the config from inventory variables, starts the
#            service, distributes the CRL, asserts every node protected. Then: every node's
#            `status --json` says protected, each private key exists on its node only (not on
#            the CA host, the other nodes or the controller), and two nodes set up an IKE SA.
#   2nd run: PLAY RECAP says changed=0 for every host.
#   3rd run: node3 marked ipop_ipsec_revoked: its certificate is revoked on the CA host, the
#            new CRL reaches node1 and node2 (their charon loads it), node3 is not contacted;
#            IKE from node3 to node1 is refused (node1's charon: certificate revoked), while
#            node1 -> node2 still authenticates. (This kernel has no ESP: the CHILD_SA cannot
#            be installed, so the proof is at the IKE level.)
#   4th run: the revoked inventory again: changed=0.
#   5th run: renewal (ipop_ipsec_renew_days beyond the validity): node1 and node2 get new
#            certificates for the keys they have; charon restarted with them, protected again.
# Usage: ansible_fleet.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

NODES=(node1 node2 node3)
declare -A IP=([node1]=10.254.0.11 [node2]=10.254.0.12 [node3]=10.254.0.13)
RANGE=10.254.0.0/16
EXCLUDE='[10.254.0.1, 10.254.255.255]'

sys_need ansible-playbook ansible-doc cpack dpkg-deb dpkg-shlibdeps openssl swanctl charon-systemd python3
sys_fleet_setup

# The controller is this script; Ansible keeps its files in the test's work folder.
ctl=$SYS_WORK/ctl
mkdir -p "$ctl/tmp" "$ctl/home"
ansible_env() {
  ANSIBLE_HOME=$ctl/home ANSIBLE_LOCAL_TEMP=$ctl/tmp ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
    ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_FORKS=4 "$@"
}
ansible_env ansible-doc -t connection -l 2>/dev/null | grep -q '^community.docker.nsenter ' ||
  sys_fail "Ansible's connection community.docker.nsenter is missing (Debian's package 'ansible': scripts/setup --test)"

# --- the package -----------------------------------------------------------------------------
# (cpack's preinstall step makes the build dir's targets first: quick when it is up to date)
t_cpack=$SECONDS
MAKEFLAGS=-j2 cpack -G DEB --config "$SYS_BUILD/CPackConfig.cmake" -B "$SYS_WORK/pkg" >"$SYS_WORK/cpack.log" 2>&1 ||
  { cat "$SYS_WORK/cpack.log" >&2
    tail -n 40 "$SYS_WORK"/pkg/_CPack_Packages/*/DEB/PreinstallOutput.log >&2 2>/dev/null
    sys_fail "cpack -G DEB failed"; }
deb=$(ls "$SYS_WORK"/pkg/ipop-ipsec_*.deb)
check "cpack built $(basename "$deb") in $((SECONDS - t_cpack)) s" test -f "$deb"

# --- the containers ----------------------------------------------------------------------------
sys_add ca "${NODES[@]}"
for n in ca "${NODES[@]}"; do
  r=${SYS_ROOTS[$n]}
  # A clean slate: no trace of an earlier install of the project on the host.
  rm -rf "$r/etc/ipop-ipsec" "$r/run/ipop-ipsec" "$r/var/lib/ipop-ipsec" "$r/etc/racoon" \
         "$r/etc/swanctl/conf.d/ipop-ipsec.conf" "$r/root/.ansible"
  # Container images (this machine's too) ship a policy-rc.d that forbids maintainer scripts
  # to start or stop services; a real node has none.
  rm -f "$r/usr/sbin/policy-rc.d"
  if [[ -e $r/usr/sbin/ipop-ipsecd ]]; then
    sys_fail "the host has /usr/sbin/ipop-ipsecd installed: the role must install it (remove it on the host)"
  fi
done
for n in "${NODES[@]}"; do
  r=${SYS_ROOTS[$n]}
  sys_attach "$n" ipop
  # The simulated IPOP: a oneshot unit like IPOP's own that gives the tap (here the veth
  # `ipop` on the overlay segment) its GroupVPN address. The role does not manage IPOP.
  mkdir -p "$r/etc/ipop-sim"
  echo "${IP[$n]}/16" >"$r/etc/ipop-sim/address"
  cat >"$r/etc/systemd/system/ipop.service" <<'UNIT'
[Unit]
Description=Simulated IPOP GroupVPN (the tap is a veth on the test's overlay segment)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'ip link set ipop up && ip addr replace "$(cat /etc/ipop-sim/address)" dev ipop'
ExecStop=/bin/sh -c 'ip addr flush dev ipop; ip link set ipop down'
[Install]
WantedBy=multi-user.target
UNIT
  systemctl --root="$r" enable ipop.service >/dev/null 2>&1 || sys_fail "cannot enable ipop.service in $n"
done
sys_boot ca "${NODES[@]}"
check "the nodes reach each other on the overlay segment (plain ping before any policy)" \
  sys_on node1 ping -c1 -W2 "${IP[node2]}"
for n in ca "${NODES[@]}"; do
  check "$n: ipop-ipsec is not installed before the role runs" bash -c "! nsenter -t ${SYS_PID1S[$n]} -a dpkg -s ipop-ipsec >/dev/null 2>&1"
done

# --- the controller's inventories -------------------------------------------------------------
# inventory FILE [REVOKED_HOST]
inventory() {
  local f=$1 revoked=${2:-} n
  {
    echo "# written by tests/system/ansible_fleet.sh"
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: community.docker.nsenter"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "    ansible_remote_tmp: /root/.ansible/tmp"
    echo "  children:"
    echo "    ipop_ipsec_ca:"
    echo "      hosts:"
    echo "        ca: {ansible_nsenter_pid: ${SYS_PID1S[ca]}}"
    echo "    ipop_ipsec_nodes:"
    echo "      vars:"
    echo "        ipop_ipsec_ca_host: ca"
    echo "        ipop_ipsec_ca_dir: /srv/groupvpn-ca"
    echo "        ipop_ipsec_deb: $deb"
    echo "        ipop_ipsec_backend: strongswan"
    echo "        ipop_ipsec_ranges: [$RANGE]"
    echo "        ipop_ipsec_exclude: $EXCLUDE"
    echo "        ipop_ipsec_quiet_period: 1s"
    echo "        ipop_ipsec_min_interval: 2s"
    echo "      hosts:"
    for n in "${NODES[@]}"; do
      echo "        $n:"
      echo "          ansible_nsenter_pid: ${SYS_PID1S[$n]}"
      echo "          ipop_ipsec_ip: ${IP[$n]}"
      echo "          ipop_ipsec_dns: $n.vpn"
      if [[ $n == "$revoked" ]]; then echo "          ipop_ipsec_revoked: true"; fi
    done
  } >"$f"
}
inventory "$ctl/inventory.yml"
inventory "$ctl/inventory-revoked.yml" node3

# play NAME INVENTORY [ARGS...]: runs the playbook, its output in $ctl/NAME.log; sets PLAY_SECONDS.
play() {
  local name=$1 inv=$2 t0 t1 rc=0
  shift 2
  t0=$(date +%s.%N)
  ansible_env timeout 300 ansible-playbook -i "$inv" "$@" "$SYS_SRC/deploy/ansible/site.yml" >"$ctl/$name.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  PLAY_SECONDS=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
  if ((rc != 0)); then
    tail -n 80 "$ctl/$name.log" >&2
    sys_fail "ansible-playbook ($name) exited $rc"
  fi
  sed -n '/^PLAY RECAP/,$p' "$ctl/$name.log" | grep . | sed 's/^/    /'
  grep -A2 '^\[WARNING\]\|^\[DEPRECATION' "$ctl/$name.log" | sed 's/^/    /' || true
}
# recap_field HOST FIELD LOG: the number in the PLAY RECAP line of HOST
recap_field() {
  sed -n '/^PLAY RECAP/,$p' "$3" | awk -v h="$1" -v f="$2" \
    '$1 == h { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }'
}
recap_is() { [[ $(recap_field "$1" "$2" "$4") == "$3" ]]; }

status_json() { sys_on "$1" ipop-ipsecd status --json 2>/dev/null; }
protected() {
  status_json "$1" | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["protected"] is True else 1)'
}
# an IKE SA of node $1 with the address $2 in state ESTABLISHED
ike_established() {
  sys_on "$1" swanctl --list-sas --noblock 2>/dev/null |
    awk -v peer="@ $2[" '/ESTABLISHED/ { est = 1; next } /^[^ ]/ { est = 0 } est && index($0, peer) { found = 1 } END { exit !found }'
}
# ping_trigger FROM TO_IP: a packet into the trap policy: charon initiates IKE to TO_IP.
ping_trigger() { sys_on "$1" ping -c1 -W1 "$2" >/dev/null 2>&1 || true; }
# poll_ike WHAT SECONDS FROM TO_IP CMD...: re-trigger from FROM until CMD succeeds (bounded)
poll_ike() {
  local what=$1 limit=$2 from=$3 to=$4
  shift 4
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || sys_fail "timed out after ${limit}s waiting for: $what"
    ping_trigger "$from" "$to"
  done
  sys_log "seen: $what"
}
charon_log() { sys_on "$1" journalctl -b --no-pager -o cat -u strongswan.service; }

# --- 1st run: from nothing to a protected GroupVPN ---------------------------------------------
play run1 "$ctl/inventory.yml"
RUN1=$PLAY_SECONDS
sys_log "first run: ${RUN1} s for ${#NODES[@]} nodes and the CA host"
for n in "${NODES[@]}"; do
  check "run 1: $n ok, failed=0" recap_is "$n" failed 0 "$ctl/run1.log"
  check "$n: ipop-ipsec installed from the .deb" sys_on "$n" dpkg -s ipop-ipsec
  check "$n: ipop-ipsecd status --json says protected" protected "$n"
  check "$n: the config has the inventory's range and exclusions" sys_on "$n" sh -c \
    "grep -qx '  ranges: \[\"$RANGE\"\]' /etc/ipop-ipsec/ipop-ipsecd.yaml &&
     grep -qx '  exclude: \[\"10.254.0.1\", \"10.254.255.255\"\]' /etc/ipop-ipsec/ipop-ipsecd.yaml &&
     grep -qx '  backend: strongswan' /etc/ipop-ipsec/ipop-ipsecd.yaml"
  check "$n: the exclusion's bypass policy is in the kernel" sys_on "$n" sh -c \
    "ip xfrm policy | grep -q 'dst 10.254.0.1/32'"
  check "$n: ipop-ipsecd started strongswan.service (the real charon)" \
    test "$(sys_on "$n" systemctl show -P ActiveState strongswan.service)" = active
  check "$n: its certificate names its address and is signed by the CA" sys_on "$n" sh -c \
    "openssl x509 -in /etc/racoon/certs/host-cert.pem -noout -ext subjectAltName | grep -q 'IP Address:${IP[$n]}' &&
     openssl verify -CAfile /etc/racoon/certs/cacert.pem /etc/racoon/certs/host-cert.pem"
  check "$n: the CRL is in place" sys_on "$n" test -s /etc/racoon/certs/crl.pem
done
check "ca: the CA is on the CA host" sys_on ca test -s /srv/groupvpn-ca/ca-key.pem
check "ca: ipop-ipsecd.service is not enabled on the CA host" \
  bash -c "! nsenter -t ${SYS_PID1S[ca]} -a systemctl is-enabled -q ipop-ipsecd.service"
for n in "${NODES[@]}"; do
  check "$n: no CA key on a node" sys_on "$n" sh -c "! ls /srv/groupvpn-ca/ca-key.pem 2>/dev/null"
done

# The private keys: each exists on its node only. Searched for in two forms: a line of its PEM
# body, and the base64 of the file itself (how Ansible's slurp/fetch would carry it), across
# the CA host's files (its overlay's upper layer: everything it wrote), the other nodes',
# and the controller's (Ansible's home, temp and output).
key_found_in() {  # KEYFILE DIR...: the key's bytes appear in a file under DIR
  local key=$1 line b64
  shift
  line=$(sed -n '3p' "$key")
  b64=$(base64 -w0 "$key" | cut -c81-160)
  grep -rqsF -e "$line" -e "$b64" "$@"
}
for n in "${NODES[@]}"; do
  key=${SYS_ROOTS[$n]}/etc/racoon/certs/host-key.pem
  check "$n: its private key is on the node, mode 0600" test "$(stat -c %a "$key")" = 600
  check "$n: the search finds the key in the node's own files (control)" key_found_in "$key" "$SYS_WORK/$n/o/upper"
  others=("$SYS_WORK/ca/o/upper" "$ctl")
  [[ -d /root/.ansible ]] && others+=(/root/.ansible)
  for m in "${NODES[@]}"; do [[ $m == "$n" ]] || others+=("$SYS_WORK/$m/o/upper"); done
  check "$n: its private key is nowhere else (CA host, other nodes, controller)" eval '! key_found_in "$key" "${others[@]}"'
done
check "the CA host holds the nodes' requests, not their keys" bash -c \
  "ls '${SYS_ROOTS[ca]}'/srv/groupvpn-ca/nodes/node1/host.csr && ! find '$SYS_WORK/ca/o/upper' -name 'host-key.pem' | grep -q ."

# Two good nodes authenticate each other (before any revocation), and so does node3 (so that
# its refusal later is the revocation's doing).
poll_ike "node1 -> node2: IKE SA established" 40 node1 "${IP[node2]}" ike_established node1 "${IP[node2]}"
poll_ike "node3 -> node1: IKE SA established (before the revocation)" 40 node3 "${IP[node1]}" ike_established node3 "${IP[node1]}"
child=$(charon_log node1 | grep -m1 -E 'unable to (install|add)|Function not implemented|CHILD_SA .*failed|failed to establish CHILD_SA' || true)
sys_log "what happens to the CHILD_SA on this kernel (no ESP): ${child:-no failure logged}"

# --- 2nd run: nothing to do --------------------------------------------------------------------
play run2 "$ctl/inventory.yml"
RUN2=$PLAY_SECONDS
sys_log "second run: ${RUN2} s"
for n in "${NODES[@]}"; do
  check "run 2: $n changed=0" recap_is "$n" changed 0 "$ctl/run2.log"
  check "run 2: $n failed=0 unreachable=0" eval 'recap_is "$n" failed 0 "$ctl/run2.log" && recap_is "$n" unreachable 0 "$ctl/run2.log"'
done

# --- 3rd run: node3 revoked ------------------------------------------------------------------
serial3=$(sys_on node3 openssl x509 -in /etc/racoon/certs/host-cert.pem -noout -serial | cut -d= -f2)
sys_log "node3's certificate serial: $serial3"
# node3 drops its IKE SAs, so that its next packet to node1 starts a new IKE_SA (with its
# certificate), as a revoked node coming back would.
for c in $(sys_on node3 swanctl --list-conns 2>/dev/null | awk -F: '/^[^ ]/ { print $1 }'); do
  sys_on node3 swanctl --terminate --ike "$c" --force --timeout 5 >/dev/null 2>&1 || true
done
sys_wait "node3 has no IKE SA with node1" 20 eval '! ike_established node3 "${IP[node1]}"'
node3_tmp_before=$(stat -c %y "${SYS_ROOTS[node3]}/root/.ansible/tmp" 2>/dev/null || echo none)
node1_tmp_before=$(stat -c %y "${SYS_ROOTS[node1]}/root/.ansible/tmp" 2>/dev/null || echo none)
check "runs 1 and 2 used Ansible's temp dir in node3 (/root/.ansible/tmp)" test "$node3_tmp_before" != none
charon_starts() { charon_log "$1" | grep -c '^Started strongswan' || true; }
crl_writes() {
  sys_on "$1" journalctl -b --no-pager -o cat -u ipop-ipsecd.service | grep -c 'wrote /etc/swanctl/x509crl/ipop-ipsec.crl.pem' || true
}
declare -A restarts_before crl_writes_before
for n in node1 node2; do
  restarts_before[$n]=$(charon_starts "$n")
  crl_writes_before[$n]=$(crl_writes "$n")
done
play run3 "$ctl/inventory-revoked.yml"
RUN3=$PLAY_SECONDS
sys_log "third run (node3 revoked): ${RUN3} s"
check "run 3: node3 was not contacted (its Ansible temp dir untouched; node1's was used)" eval \
  '[[ $(stat -c %y "${SYS_ROOTS[node3]}/root/.ansible/tmp") == "$node3_tmp_before" &&
      $(stat -c %y "${SYS_ROOTS[node1]}/root/.ansible/tmp") != "$node1_tmp_before" ]]'
check "run 3: node3's serial is in the CA's revoked.txt" grep -q "^$serial3 .* keyCompromise" "${SYS_ROOTS[ca]}/srv/groupvpn-ca/revoked.txt"
crl_serials() { sys_on "$1" openssl crl -in /etc/racoon/certs/crl.pem -noout -text | awk '/Serial Number:/ { print $3 }'; }
for n in node1 node2; do
  check "run 3: $n changed (the new CRL)" eval '(( $(recap_field "$n" changed "$ctl/run3.log") > 0 ))'
  check "$n: its CRL revokes node3's serial" grep -qx "$serial3" <<<"$(crl_serials "$n")"
  check "$n: still protected" protected "$n"
  # ipop-ipsecd hands the new CRL to charon (x509crl/), loads it into the running charon and
  # cuts only the revoked node's SAs (strongswan.cut_command); charon then holds it.
  sys_wait "$n: ipop-ipsecd wrote the new CRL for charon and loaded it naming node3's serial" 40 eval \
    '(( $(crl_writes "$n") > ${crl_writes_before[$n]} )) &&
      sys_on "$n" journalctl -b --no-pager -o cat -u ipop-ipsecd.service | grep -qi "the new CRL revokes serial $serial3"'
  check "$n: charon was not restarted for the revocation" eval '(( $(charon_starts "$n") == ${restarts_before[$n]} ))'
  sys_wait "$n: charon lists node3's serial as revoked (swanctl --list-certs --type x509_crl)" 20 eval \
    'sys_on "$n" swanctl --list-certs --type x509_crl 2>/dev/null | tr -d : | grep -qi "$serial3"'
done
check "node3 kept its (revoked) certificate and its charon: the refusal is the other nodes' doing" \
  test "$(sys_on node3 systemctl show -P ActiveState strongswan.service)" = active

# node3 -> node1: refused. node1's charon says why; node3 learns AUTHENTICATION_FAILED.
refused() {
  charon_log node1 | grep -q 'certificate was revoked' &&
    charon_log node3 | grep -q 'received AUTHENTICATION_FAILED notify error'
}
poll_ike "node3 -> node1 refused: node1 says the certificate was revoked, node3 got AUTHENTICATION_FAILED" 60 \
  node3 "${IP[node1]}" refused
sys_log "node1's charon: $(charon_log node1 | grep -m1 'certificate was revoked')"
check "node1 has no IKE SA with node3" eval '! ike_established node1 "${IP[node3]}"'
check "node3 has no IKE SA with node1" eval '! ike_established node3 "${IP[node1]}"'
# node1 -> node2: both good, both with the new CRL: still authenticated.
poll_ike "node1 -> node2 after the revocation: IKE SA established" 40 node1 "${IP[node2]}" ike_established node1 "${IP[node2]}"

# --- 4th run: the revocation is not done twice -----------------------------------------------
play run4 "$ctl/inventory-revoked.yml"
RUN4=$PLAY_SECONDS
for n in "${NODES[@]}"; do
  check "run 4 (revoked inventory again): $n changed=0" recap_is "$n" changed 0 "$ctl/run4.log"
done

# --- 5th run: renewal (every certificate "expires within 400 days"): same key, new certificate --
pub() { sys_on "$1" openssl x509 -in /etc/racoon/certs/host-cert.pem -noout -pubkey | sha256sum; }
serial() { sys_on "$1" openssl x509 -in /etc/racoon/certs/host-cert.pem -noout -serial; }
declare -A key_sum serial_before pub_before starts_before
for n in node1 node2; do
  key_sum[$n]=$(sha256sum <"${SYS_ROOTS[$n]}/etc/racoon/certs/host-key.pem")
  serial_before[$n]=$(serial "$n")
  pub_before[$n]=$(pub "$n")
  starts_before[$n]=$(charon_starts "$n")
done
play run5 "$ctl/inventory-revoked.yml" -e ipop_ipsec_renew_days=400
RUN5=$PLAY_SECONDS
for n in node1 node2; do
  check "run 5 (renewal): $n has a new certificate (serial $(serial "$n" | cut -d= -f2))" test "$(serial "$n")" != "${serial_before[$n]}"
  check "run 5 (renewal): $n kept its key (the same file, the same public key certified)" eval \
    '[[ $(sha256sum <"${SYS_ROOTS[$n]}/etc/racoon/certs/host-key.pem") == "${key_sum[$n]}" && $(pub "$n") == "${pub_before[$n]}" ]]'
  # A new certificate restarts charon (ipop-ipsecd's ike step, after its quiet period): while
  # it restarts, no peer can connect and the status truthfully says not healthy; the play may
  # end before or during that restart, so this waits for the restart and health after it.
  sys_wait "run 5 (renewal): $n: charon restarted with the new certificate, and protected again" 60 eval \
    '(( $(charon_starts "$n") > ${starts_before[$n]} )) && protected "$n"'
done
check "run 5: the CA keeps every certificate issued to node1 (for a later revocation)" \
  test "$(ls "${SYS_ROOTS[ca]}/srv/groupvpn-ca/nodes/node1/issued" | wc -l)" -eq 2

sys_log "run times: first ${RUN1} s, second ${RUN2} s, third (revocation) ${RUN3} s, fourth ${RUN4} s, fifth (renewal) ${RUN5} s; whole test $((SECONDS - SYS_T0)) s"
sys_pass
