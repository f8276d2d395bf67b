#!/usr/bin/env bash
# Removing the Debian package leaves the node as it was before, under a real systemd with
# Debian's real strongswan.service (charon-systemd). The .deb is built here with CPack and
# installed with dpkg inside the container; the operator's certificates (with a CRL) are in
# /etc/racoon/certs, and the operator has files of their own beside the daemon's (a swanctl
# connection and certificate, a c_rehash-style symlink) and an XFRM policy of their own.
#   1. Install, config edited for strongSwan (racoon.crl set), daemon running: the daemon's
#      policies, charon's trap, all five /etc/swanctl/*/ipop-ipsec* files, auto-ranges and the
#      state files are there. `apt-get purge ipop-ipsec`: no policy of ours (the operator's
#      stays), no file of ours (every path listed), the operator's certificates and files stay,
#      the config (a conffile) is gone as dpkg does on purge; `systemctl restart strongswan`
#      then loads no connection of ours and installs no trap; a packet to the range leaves
#      the tap in the clear.
#   2. Install again, run, `apt-get remove ipop-ipsec`: the policies stay (fail closed: a packet
#      to the range is dropped, the tap sends nothing), the removal prints strongSwan's
#      priority 500000; the README's commands for after a removal (the code block after the
#      marker <!-- test: lift-after-remove -->, found in README.md or docs/*.md) run exactly as
#      written: no policy of ours is left and the packet leaves in the clear. charon, started
#      again, loads the connection left in conf.d and installs its trap; the purge makes the
#      running charon drop it (no restart) and leaves no file of ours.
# Usage: systemd_purge.sh IPOP_IPSECD_BINARY BUILD_DIR   (root)
source "$(dirname "$0")/lib.sh" "$@"

sys_need cpack dpkg-deb dpkg-shlibdeps charon-systemd swanctl tcpdump
[[ -f /lib/systemd/system/strongswan.service ]] || sys_fail "strongswan.service missing: run scripts/setup (charon-systemd)"
sys_setup --no-install
cpack -G DEB --config "$SYS_BUILD/CPackConfig.cmake" -B "$SYS_WORK/pkg" >"$SYS_WORK/cpack.log" 2>&1 ||
  { cat "$SYS_WORK/cpack.log" >&2; sys_fail "cpack -G DEB failed"; }
deb=$(ls "$SYS_WORK"/pkg/ipop-ipsec_*.deb)
cp "$deb" "$ROOT/root/ipop-ipsec.deb"
rm -f "$ROOT/usr/sbin/policy-rc.d"   # the host's image forbids maintainer scripts to start units

# --- what the operator made ------------------------------------------------------------------
# The GroupVPN's CA, this node's certificate and the CA's CRL, made with the project's pki.
certs=$ROOT/etc/racoon/certs
pki() { "$SYS_BIN" pki "$@" >>"$SYS_WORK/pki.log" 2>&1 || sys_fail "ipop-ipsecd pki $*: $(tail -1 "$SYS_WORK/pki.log")"; }
pki init-ca --dir "$SYS_WORK/ca" --name "GroupVPN CA" --days 2 --key ec
pki issue --ca-dir "$SYS_WORK/ca" --ip 10.254.0.16 --days 2 --key ec --out "$certs"
pki crl --ca-dir "$SYS_WORK/ca" --out "$certs/crl.pem" --days 2
hash=$(openssl x509 -hash -noout -in "$certs/cacert.pem")
ln -s cacert.pem "$certs/$hash.0"          # c_rehash's symlink: the operator's, not the daemon's
mkdir -p "$ROOT/etc/swanctl/conf.d" "$ROOT/etc/swanctl/x509"
printf '# the operator'"'"'s own swanctl file\nconnections {\n}\n' >"$ROOT/etc/swanctl/conf.d/operator.conf"
cp "$certs/cacert.pem" "$ROOT/etc/swanctl/x509/operator.pem"
operator_files=(/etc/racoon/certs/cacert.pem /etc/racoon/certs/host-cert.pem /etc/racoon/certs/host-key.pem
  /etc/racoon/certs/crl.pem "/etc/racoon/certs/$hash.0" /etc/swanctl/conf.d/operator.conf /etc/swanctl/x509/operator.pem)
sys_make_ipop 10.254.0.16/16
sys_enable ipop.service strongswan.service
sys_boot
# A quiet tap: no IPv6 (router solicitations, MLD) and a fixed neighbour for the peer address
# (no ARP), so the test's ping is the packet that shows whether the range is in the clear.
sys_wait "the tap has its address" 20 eval 'grep -q "10.254.0.16/16" <<<"$(sys_run ip -4 addr show dev ipop)"'
ip netns exec "$SYS_NAME" sysctl -q -w net.ipv6.conf.ipop.disable_ipv6=1 || sys_fail "cannot turn IPv6 off on the tap"
check "a fixed neighbour for 10.254.0.20 on the tap" \
  sys_run ip neigh replace 10.254.0.20 lladdr 02:00:0a:fe:00:14 dev ipop nud permanent
# An XFRM policy of the operator's, at a priority of its own.
check "the operator's own policy (10.253.0.0/16, priority 1234) is installed" \
  sys_run ip xfrm policy add src 10.253.0.0/16 dst 10.253.0.0/16 dir out priority 1234 tmpl proto esp mode transport

config() {  # the operator edits the installed conffile: strongSwan, the CA's CRL
  sys_write_config strongswan strongswan.service
  printf 'racoon:\n  crl: crl.pem\n' >>"$ROOT/etc/ipop-ipsec/ipop-ipsecd.yaml"
  check "ipop-ipsecd check passes on the edited config" sys_run ipop-ipsecd check
}
policies() { sys_run ip xfrm policy; }
ours_in() { grep -q '^src 10.254.0.0/16 dst 10.254.0.0/16' <<<"$(policies)"; }
trap_in() { grep -q '^src 10.254.0.16/32 dst 10.254.0.0/16' <<<"$(policies)"; }
no_policy_of_ours() { ! grep -Eq '10\.254\.|priority (500000|1000) ' <<<"$(policies)"; }
operator_policy() { grep -q '^src 10.253.0.0/16 dst 10.253.0.0/16' <<<"$(policies)"; }
healthy() { sys_run grep -q '"healthy": true' /run/ipop-ipsec/state.json; }
# A packet to a peer's address in the range: sent in the clear it leaves on the tap, where a
# capture sees the ICMP echo request itself; under the daemon's policy with no IKE daemon
# running it is dropped. (Not the tap's TX counter: the container's own IGMP reports for
# its multicast groups move it at any time.)
send_one() { sys_run ping -c 1 -W 1 10.254.0.20 >/dev/null 2>&1 || true; }
sent_in_clear() {
  local cap pid n
  cap=$(mktemp -p "$SYS_WORK" cap.XXXXXX)
  ip netns exec "$SYS_NAME" timeout 5 tcpdump -i ipop -n -l --immediate-mode -c 1 \
    'icmp[icmptype] == icmp-echo and dst host 10.254.0.20' >"$cap.out" 2>"$cap.err" &
  pid=$!
  sys_wait "tcpdump listens on the tap" 5 grep -q "listening on ipop" "$cap.err"
  send_one
  wait "$pid" || true  # ends after the first such packet, or at its timeout
  n=$(grep -c 'ICMP echo request' "$cap.out" || true)
  sys_log "plaintext echo requests to 10.254.0.20 on the tap after one ping: $n"
  ((n > 0))
}
# Every file the package or the daemon put on the node.
our_files=(/usr/sbin/ipop-ipsecd /lib/systemd/system/ipop-ipsecd.service
  /lib/systemd/system/strongswan.service.d/ipop-ipsec.conf /lib/systemd/system/racoon.service.d/ipop-ipsec.conf
  /etc/swanctl/conf.d/ipop-ipsec.conf /etc/swanctl/x509ca/ipop-ipsec-ca.pem /etc/swanctl/x509/ipop-ipsec-host.pem
  /etc/swanctl/private/ipop-ipsec-host.pem /etc/swanctl/x509crl/ipop-ipsec.crl.pem
  /var/lib/ipop-ipsec/auto-ranges /var/lib/ipop-ipsec /run/ipop-ipsec/state.json /run/ipop-ipsec/ipop-up
  /run/ipop-ipsec /etc/ipop-ipsec/ipop-ipsecd.yaml /etc/ipop-ipsec/ipop-ipsecd.yaml.sample /etc/ipop-ipsec)
install_and_run() {
  check "dpkg -i succeeds" sys_run dpkg -i /root/ipop-ipsec.deb
  config
  check "systemctl start ipop-ipsecd succeeds" sys_run systemctl start ipop-ipsecd.service
  sys_wait "the daemon's policies for 10.254.0.0/16" 30 ours_in
  sys_wait "charon's trap for 10.254.0.16 -> 10.254.0.0/16" 40 trap_in
  sys_wait "the daemon reports healthy" 30 healthy
  sys_wait "the remembered range (/var/lib/ipop-ipsec/auto-ranges)" 30 sys_run test -s /var/lib/ipop-ipsec/auto-ranges
  local f
  for f in "${our_files[@]}"; do check "before: $f is there" sys_run test -e "$f"; done
  check "the private key copy is 0600" test "$(sys_run stat -c %a /etc/swanctl/private/ipop-ipsec-host.pem)" = 600
}
nothing_of_ours_left() {
  local f
  for f in "${our_files[@]}"; do check "after purge: $f is gone" sys_run test ! -e "$f"; done
  check "after purge: no other file named *ipop-ipsec* under /etc, /var/lib, /run (but dpkg's and systemd's runtime)" \
    test -z "$(sys_run find /etc /var/lib /run -name '*ipop-ipsec*' -not -path '/var/lib/dpkg/*' -not -path '/run/systemd/*' 2>/dev/null)"
  for f in "${operator_files[@]}"; do check "after purge: the operator's $f stays" sys_run test -e "$f"; done
  check "after purge: the operator's c_rehash symlink is still a symlink" sys_run test -L "/etc/racoon/certs/$hash.0"
  check "after purge: no policy of ours (10.254.x, priorities 500000, 1000)" no_policy_of_ours
  check "after purge: the operator's own policy (priority 1234) stays" operator_policy
  local status
  status=$(sys_run dpkg-query -W -f='${Status}' ipop-ipsec 2>/dev/null || true)
  check "dpkg knows the package no more, not even its config ('$status')" \
    eval '[[ -z $status || $status == *not-installed ]]'
}
# charon, restarted, loads what is in /etc/swanctl: nothing of ours, so no trap.
restart_charon_no_trap() {
  check "systemctl restart strongswan succeeds" sys_run systemctl restart strongswan.service
  sys_wait "charon answers over vici" 20 sys_run swanctl --stats
  local conns
  conns=$(sys_run swanctl --list-conns 2>/dev/null)
  check "charon loaded no connection of ours (swanctl --list-conns: '${conns//$'\n'/ }')" \
    eval '! grep -q "10\.254\." <<<"$conns"'
  check "charon holds no certificate of ours (node16)" eval '! sys_run swanctl --list-certs 2>/dev/null | grep -q "10.254.0.16"'
  check "after the restart of charon: no trap, no policy of ours" no_policy_of_ours
  check "a packet to the range leaves the tap in the clear" sent_in_clear
}

# --- 1. purge straight away ----------------------------------------------------------------
install_and_run
purge=$(sys_run apt-get purge -y ipop-ipsec 2>&1) || sys_fail "apt-get purge ipop-ipsec failed: $purge"
grep 'ipop-ipsec:' <<<"$purge" | sed 's/^/    /' || true
check "apt-get purge ipop-ipsec succeeds" true
nothing_of_ours_left
restart_charon_no_trap

# --- 2. remove, the README's commands, purge ----------------------------------------------
install_and_run
removal=$(sys_run apt-get remove -y ipop-ipsec 2>&1) || sys_fail "apt-get remove failed: $removal"
grep 'ipop-ipsec:' <<<"$removal" | sed 's/^/    /' || true
check "the removal names strongSwan's priority 500000" grep -q "IPsec policies (priority 500000.*) stay in the kernel" <<<"$removal"
check "charon is stopped by the removal" test "$(sys_prop strongswan.service ActiveState)" = inactive
check "the daemon's policies stay after remove (fail closed)" ours_in
check "after remove, a packet to the range is dropped, not sent in the clear" eval '! sent_in_clear'
check "the config stays after remove (conffile)" sys_run test -f /etc/ipop-ipsec/ipop-ipsecd.yaml
sys_run_doc_block lift-after-remove
check "after the README's commands: no policy of ours" no_policy_of_ours
check "after the README's commands: the operator's own policy stays" operator_policy
check "after the README's commands: a packet to the range leaves the tap in the clear" sent_in_clear
# Between remove and purge charon is started again (enabled, no drop-in holds it back any
# more): it loads the connection the daemon left in conf.d and installs its trap. The purge
# makes that running charon drop it (swanctl --load-all), without a restart.
check "systemctl start strongswan after the removal" sys_run systemctl start strongswan.service
sys_wait "charon loads the connection the daemon left and installs its trap" 30 trap_in
charon_pid=$(sys_prop strongswan.service MainPID)
check "apt-get purge ipop-ipsec (after remove) succeeds" sys_run apt-get purge -y ipop-ipsec
check "the purge made the running charon drop its trap" eval '! trap_in'
check "charon was not restarted by the purge (MainPID $charon_pid)" \
  test "$(sys_prop strongswan.service ActiveState)/$(sys_prop strongswan.service MainPID)" = "active/$charon_pid"
nothing_of_ours_left
restart_charon_no_trap
sys_pass
